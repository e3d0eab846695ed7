"""The end-to-end users app with advanced-alchemy, the way its FastAPI guide writes it.

``SQLAlchemyAsyncConfig`` (``expire_on_commit=False``, ``commit_mode="autocommit"``)
attached with ``AdvancedAlchemy(config=..., app=app)``, a repository service per request
from ``alchemy.provide_service``, and ``to_schema`` for the response. The model is a
plain declarative one: the library's own bases add columns this shared table lacks.
"""

import os
from typing import Annotated

from advanced_alchemy.extensions.fastapi import (
    AdvancedAlchemy,
    AsyncSessionConfig,
    SQLAlchemyAsyncConfig,
    repository,
    service,
)
from fastapi import Depends, FastAPI
from pydantic import BaseModel
from sqlalchemy import String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "e2e_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(100))


class UserCreate(BaseModel):
    email: str
    name: str


class UserRead(BaseModel):
    id: int
    email: str
    name: str


class UserService(service.SQLAlchemyAsyncRepositoryService[User]):
    class Repo(repository.SQLAlchemyAsyncRepository[User]):
        model_type = User

    repository_type = Repo


config = SQLAlchemyAsyncConfig(
    connection_string=os.environ["E2E_DATABASE_URL"],
    session_config=AsyncSessionConfig(expire_on_commit=False),
    commit_mode="autocommit",
)
app = FastAPI()
alchemy = AdvancedAlchemy(config=config, app=app)
Users = Annotated[UserService, Depends(alchemy.provide_service(UserService))]


@app.post("/users/", status_code=201)
async def create_user(users: Users, data: UserCreate) -> UserRead:
    user = await users.create(data)
    return users.to_schema(user, schema_type=UserRead)


@app.get("/users/{user_id}")
async def get_user(users: Users, user_id: int) -> UserRead:
    user = await users.get(user_id)
    return users.to_schema(user, schema_type=UserRead)
