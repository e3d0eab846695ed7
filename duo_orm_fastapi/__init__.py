"""duo-orm for FastAPI: one database transaction per HTTP request.

```python
app = FastAPI()
DuoORM(app, db)                      # middleware, lifespan, error handlers, OpenAPI
router = APIRouter(dependencies=[Depends(unit_of_work)])
```
"""

from duo_orm.web.openapi import documents_errors

from .dependencies import unit_of_work, unit_of_work_for
from .errors import error_responses, install_error_handlers
from .integration import DuoORM, duo_lifespan

__all__ = [
    "DuoORM",
    "documents_errors",
    "duo_lifespan",
    "error_responses",
    "install_error_handlers",
    "unit_of_work",
    "unit_of_work_for",
]
