"""The users API as a Litestar controller: ``uvicorn examples.litestar_app.main:app``.

It shares the FastAPI example's models and pydantic schemas (examples/fastapi_app/db).
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import ClassVar

from litestar import Controller, Litestar, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from duo_orm_litestar import DuoORMPlugin, ListParams, Page, provide_list_params

from ..fastapi_app.db.database import db
from ..fastapi_app.db.listings import USERS
from ..fastapi_app.db.models import User
from ..fastapi_app.db.schemas.user import UserSchema


class UserController(Controller):
    path = "/users"
    tags: ClassVar[list[str]] = ["users"]

    @post("/", status_code=201)
    async def create_user(self, data: JSONBody[UserSchema.Create]) -> UserSchema.Read:
        user = await User.create(data)  # validate() -> 422, duplicate email -> 409
        return user.to_schema(UserSchema.Read)

    @get("/", dependencies={"params": provide_list_params(USERS)})
    async def list_users(self, params: NamedDependency[ListParams]) -> Page[UserSchema.Read]:
        page = await params.apply(User).page()  # an unknown filter, sort, bad value: 400
        return page.to_schema(UserSchema.Read)

    @get("/{user_id:int}")
    async def get_user(self, user_id: FromPath[int]) -> UserSchema.Read:
        return (await User.get_one(user_id)).to_schema(UserSchema.Read)  # missing -> 404

    @patch("/{user_id:int}")
    async def update_user(
        self, user_id: FromPath[int], data: JSONBody[UserSchema.Update]
    ) -> UserSchema.Read:
        user = await User.get_one(user_id)
        return (await user.update(data)).to_schema(UserSchema.Read)

    @post("/bulk-bump", status_code=200)
    async def bump_all(self) -> int:
        return await User.where(User.id > 0).update_bulk({"name": User.name + "!"}, with_hooks=True)


@asynccontextmanager
async def create_tables(app: Litestar) -> AsyncIterator[None]:
    await db.create_all()  # a demo convenience; real projects use migrations
    yield


app = Litestar(
    route_handlers=[UserController],
    plugins=[DuoORMPlugin(db)],  # lifespan, request transaction, db_session, error handlers
    lifespan=[create_tables],
)
