"""The end-to-end users app with Tortoise ORM, the way its FastAPI example writes it.

``RegisterTortoise`` in the app's lifespan (``db_url`` and this module as the models
module; Tortoise's own defaults, WAL on a SQLite file included), pydantic models made by
``pydantic_model_creator``, and ``tortoise_exception_handlers()`` for 404 and 422.
"""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from tortoise import fields
from tortoise.contrib.fastapi import RegisterTortoise, tortoise_exception_handlers
from tortoise.contrib.pydantic import pydantic_model_creator
from tortoise.models import Model


class User(Model):
    id = fields.IntField(primary_key=True)
    email = fields.CharField(max_length=100, unique=True)
    name = fields.CharField(max_length=100)

    class Meta:
        table = "e2e_users"


UserRead = pydantic_model_creator(User, name="UserRead")
UserCreate = pydantic_model_creator(User, name="UserCreate", exclude_readonly=True)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with RegisterTortoise(
        app, db_url=os.environ["E2E_DATABASE_URL"], modules={"models": [__name__]}
    ):
        yield


app = FastAPI(lifespan=lifespan, exception_handlers=tortoise_exception_handlers())


@app.post("/users/", response_model=UserRead, status_code=201)
async def create_user(user: UserCreate) -> UserRead:
    created = await User.create(**user.model_dump(exclude_unset=True))
    return await UserRead.from_tortoise_orm(created)


@app.get("/users/{user_id}", response_model=UserRead)
async def get_user(user_id: int) -> UserRead:
    return await UserRead.from_queryset_single(User.get(id=user_id))
