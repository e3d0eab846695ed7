"""duo-orm for Starlette: one database transaction per HTTP request.

```python
app = Starlette(
    routes=[...],
    middleware=[Middleware(DuoORMMiddleware, db=db)],
    lifespan=duo_lifespan(db),
    exception_handlers=duo_exception_handlers(),
)
```
"""

from duo_orm.web.routes import statement_mode

from .errors import duo_exception_handlers
from .middleware import DuoORMMiddleware, duo_lifespan

__all__ = ["DuoORMMiddleware", "duo_exception_handlers", "duo_lifespan", "statement_mode"]
