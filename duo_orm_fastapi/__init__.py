"""duo-orm for FastAPI: one database transaction per HTTP request.

```python
app = FastAPI()
app.include_router(router)
DuoORM(app, db)                      # middleware, lifespan, error handlers, OpenAPI
```
"""

from duo_orm.web.extras import framework_extra
from duo_orm.web.listing import Listing, ListParams, Page
from duo_orm.web.openapi import documents_errors
from duo_orm.web.routes import statement_mode

with framework_extra("fastapi", "fastapi", "starlette"):  # FastAPI brings Starlette
    from .dependencies import RequestSession, unit_of_work, unit_of_work_for
    from .errors import error_responses, install_error_handlers
    from .integration import DuoORM, duo_lifespan
    from .listing import list_params

__all__ = [
    "DuoORM",
    "ListParams",
    "Listing",
    "Page",
    "RequestSession",
    "documents_errors",
    "duo_lifespan",
    "error_responses",
    "install_error_handlers",
    "list_params",
    "statement_mode",
    "unit_of_work",
    "unit_of_work_for",
]
