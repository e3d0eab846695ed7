"""The app's one Database. The URL comes from DATABASE_URL; the default is embedded SQLite."""

import os

from duo_orm import Database

db = Database(os.environ.get("DATABASE_URL", "sqlite:///./fastapi_example.db"))
