"""The Litestar example's controller, typed end to end."""

from typing import reveal_type

from litestar import Controller, Litestar, get, post
from litestar.params import FromPath
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from duo_orm_litestar import DuoORMPlugin, provide_db_session

from .database import db
from .models import User
from .schemas import UserCreate, UserRead


class UserController(Controller):
    path = "/users"

    @post("/")
    async def create_user(self, data: UserCreate) -> UserRead:
        user = await User.create(data)
        return user.to_schema(UserRead)

    @get("/{user_id:int}")
    async def get_user(self, user_id: FromPath[int]) -> UserRead:
        return (await User.get_one(user_id)).to_schema(UserRead)

    @get("/raw/count")
    async def raw_count(self, db_session: AsyncSession) -> int:
        return int((await db_session.execute(text("SELECT count(*) FROM users"))).scalar_one())


reveal_type(provide_db_session)  # mypy: def (request: Request[Any, Any, Any]) -> Coroutine[Any, Any, AsyncSession]; pyright: (request: Request[Any, Any, Any]) -> CoroutineType[Any, Any, AsyncSession]
app = Litestar(route_handlers=[UserController], plugins=[DuoORMPlugin(db)])
