"""duo-orm for Litestar: one database transaction per HTTP request, from one plugin.

```python
app = Litestar(route_handlers=[UserController], plugins=[DuoORMPlugin(db)])
```
"""

from duo_orm.web.extras import framework_extra
from duo_orm.web.openapi import documents_errors
from duo_orm.web.routes import statement_mode

with framework_extra("litestar"):
    from .plugin import DuoORMPlugin, provide_db_session

__all__ = ["DuoORMPlugin", "documents_errors", "provide_db_session", "statement_mode"]
