"""duo-orm for Litestar: one database transaction per HTTP request, from one plugin.

```python
app = Litestar(route_handlers=[UserController], plugins=[DuoORMPlugin(db)])
```
"""

from duo_orm.web.extras import framework_extra
from duo_orm.web.listing import Listing, ListParams, Page
from duo_orm.web.openapi import documents_errors
from duo_orm.web.routes import statement_mode

with framework_extra("litestar"):
    from .listing import provide_list_params
    from .plugin import DuoORMPlugin, provide_db_session

__all__ = [
    "DuoORMPlugin",
    "ListParams",
    "Listing",
    "Page",
    "documents_errors",
    "provide_db_session",
    "provide_list_params",
    "statement_mode",
]
