"""duo-orm's pytest plugin: test your own app, each test rolled back.

Configure it in ``[tool.pytest.ini_options]`` (``duo_orm_database = "app.db:db"``);
without that it does nothing. See docs/testing.md.
"""

from ._lifespan import lifespan

__all__ = ["lifespan"]
