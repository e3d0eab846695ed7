"""The end-to-end users app with duo-orm, written as docs/fastapi.md shows.

Served by ``benchmarks/e2e.py`` (``uvicorn duo_orm_app:app --app-dir benchmarks/e2e_apps``);
``E2E_DATABASE_URL`` names the database. This folder holds only the four apps, so a
second duo-orm checkout put first on ``PYTHONPATH`` is the one imported here.
"""

import os

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict

from duo_orm import Database, Mapped, String, mapped_column
from duo_orm_fastapi import DuoORM

db = Database(os.environ["E2E_DATABASE_URL"])


class User(db.Model):
    __tablename__ = "e2e_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(100))


class UserCreate(BaseModel):
    email: str
    name: str


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    name: str


app = FastAPI()
DuoORM(app, db)


@app.post("/users/", response_model=UserRead, status_code=201)
async def create_user(payload: UserCreate) -> User:
    return await User.create(payload)


@app.get("/users/{user_id}", response_model=UserRead)
async def get_user(user_id: int) -> User:
    return await User.get_one(user_id)  # missing -> 404
