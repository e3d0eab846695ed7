"""Every public call in async code: awaited, the call gives the same value as in sync code."""

import asyncio
from typing import reveal_type

from .database import db
from .models import User
from .schemas import UserCreate, UserRead, UserUpdate


async def class_calls() -> None:
    reveal_type(await User.create(UserCreate(email="a@x.io", name="A")))  # mypy: User; pyright: Any
    reveal_type(await User.create_bulk([{"email": "b@x.io", "name": "B"}]))  # mypy: int; pyright: Any
    reveal_type(await User.create_bulk([{"email": "c@x.io", "name": "C"}], return_models=True))  # mypy: list[User]; pyright: Any
    reveal_type(User.from_schema({"email": "d@x.io", "name": "D"}))  # both: User
    reveal_type(await User.get(1))  # mypy: User | None; pyright: Any
    reveal_type(await User.get_one(1))  # mypy: User; pyright: Any
    reveal_type(await User.all())  # mypy: list[User]; pyright: Any
    reveal_type(await User.first())  # mypy: User | None; pyright: Any
    reveal_type(await User.one())  # mypy: User; pyright: Any
    reveal_type(await User.one_or_none())  # mypy: User | None; pyright: Any
    reveal_type(await User.count())  # mypy: int; pyright: Any
    reveal_type(await User.exists())  # mypy: bool; pyright: Any
    reveal_type(await User.page(1, 20))  # mypy: Page[User]; pyright: Any
    reveal_type(await User.update_bulk({"active": False}, require_filter=False))  # mypy: int; pyright: Any
    reveal_type(await User.delete_bulk(require_filter=False))  # mypy: int; pyright: Any
    reveal_type(User.iterate())  # mypy: AsyncIterator[User]; pyright: Any
    async for row in User.iterate():
        reveal_type(row)  # mypy: User; pyright: Any
    async for rows in User.iterate(batch=True):
        reveal_type(rows)  # mypy: list[User]; pyright: Any


async def query_chain() -> None:
    query = User.where(User.active.is_(True)).order_by("-id")
    reveal_type(await query.all())  # mypy: list[User]; pyright: Any
    reveal_type(await query.first())  # mypy: User | None; pyright: Any
    reveal_type(await query.one())  # mypy: User; pyright: Any
    reveal_type(await query.one_or_none())  # mypy: User | None; pyright: Any
    reveal_type(await query.count())  # mypy: int; pyright: Any
    reveal_type(await query.exists())  # mypy: bool; pyright: Any
    reveal_type(await query.update_bulk(name="x"))  # mypy: int; pyright: Any
    reveal_type(await User.where(User.id > 1).delete_bulk())  # mypy: int; pyright: Any
    page = await query.page(2, 10)
    reveal_type(page.items)  # mypy: list[User]; pyright: Any
    gathered = await asyncio.gather(User.count(), User.first())  # error: pyright[reportUnknownVariableType]
    reveal_type(gathered)  # mypy: tuple[int, User | None]; pyright: Unknown


async def instance_calls(user: User) -> None:
    reveal_type(await user.save())  # mypy: User; pyright: Any
    reveal_type(await user.update(UserUpdate(name="B")))  # mypy: User; pyright: Any
    reveal_type(await user.refresh())  # mypy: User; pyright: Any
    reveal_type(await user.delete())  # mypy: None; pyright: Any
    reveal_type(user.to_schema(UserRead))  # both: UserRead


async def database_calls() -> None:
    await db.connect()
    reveal_type(await db.create_all())  # mypy: None; pyright: Any
    async with db.transaction() as session:
        reveal_type(session)  # both: AsyncSession
        await User.create(email="e@x.io", name="E")
    async with db.standalone_session() as raw:
        reveal_type(raw)  # both: AsyncSession
    reveal_type(db.async_engine)  # both: AsyncEngine
    reveal_type(db.async_session_factory)  # both: async_sessionmaker[AsyncSession]
    await db.drop_all()
    await db.disconnect()


async def where_the_call_is_written() -> None:
    counting = (lambda: User.count())()  # a lambda is typed as the function around it
    _ = reveal_type(counting)  # mypy: Coroutine[Any, Any, int]; pyright: Any
    await counting

    def nested() -> int:
        return User.count()  # a def is typed as sync code, wherever it is called from

    reveal_type(nested())  # both: int
