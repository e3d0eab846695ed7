"""duo-orm for Starlette: one database transaction per HTTP request.

```python
app = Starlette(
    routes=[...],
    middleware=[Middleware(DuoORMMiddleware, db=db)],
    lifespan=duo_lifespan(db),
    exception_handlers=duo_exception_handlers(),
)

async def create_user(request: Request) -> Response:
    data = UserIn.model_validate(await json_body(request))  # bad JSON 400, bad fields 422
```
"""

from duo_orm.web.extras import framework_extra
from duo_orm.web.listing import Listing, ListParams, Page
from duo_orm.web.routes import statement_mode

with framework_extra("starlette"):
    from .body import json_body
    from .errors import duo_exception_handlers
    from .listing import list_params
    from .middleware import DuoORMMiddleware, duo_lifespan

__all__ = [
    "DuoORMMiddleware",
    "ListParams",
    "Listing",
    "Page",
    "duo_exception_handlers",
    "duo_lifespan",
    "json_body",
    "list_params",
    "statement_mode",
]
