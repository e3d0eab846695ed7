"""The quickstart: one model, used from plain sync code and from async code.

Run it with ``make demo``. It uses a SQLite file in a temporary directory.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from pydantic import BaseModel

from duo_orm import Database, IntegrityError, Mapped, String, ValidationError, mapped_column

workdir = Path(tempfile.mkdtemp(prefix="duo-orm-demo-"))
db = Database(f"sqlite:///{workdir / 'app.db'}")


class User(db.Model):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(255), unique=True)
    name: Mapped[str]

    def validate(self) -> None:
        if "@" not in self.email:
            raise ValidationError("email must contain @", field="email")


class UserCreate(BaseModel):
    email: str
    name: str


def sync_part() -> None:
    print(f"database: {db.sync_url} (async: {db.async_url})")
    db.create_all()
    user = User.create({"email": "a@x.io", "name": "A"})
    print(f"sync   create      -> {user!r} name={user.name!r}")
    with db.transaction():
        User.create(email="t@x.io", name="in a transaction")
    print(f"sync   transaction -> committed {User.get(2)!r}")
    try:
        User.create(email="not-an-email", name="bad")
    except ValidationError as exc:
        print(f"sync   validate()  -> ValidationError(field={exc.field!r}): {exc}")


async def async_part() -> None:
    user = await User.create(UserCreate(email="b@x.io", name="B"))
    print(f"async  create      -> {user!r} name={user.name!r}")
    again = await User.get(user.id)
    again.name = "C"
    await again.save()
    print(f"async  save        -> name={(await User.get(user.id)).name!r}")
    await again.update({"name": "D"})
    print(f"async  update      -> name={(await User.get(user.id)).name!r}")
    try:
        await User.create(email="a@x.io", name="duplicate")
    except IntegrityError as exc:
        print(f"async  duplicate   -> IntegrityError(kind={exc.kind!r})")
    try:
        async with db.transaction():
            await User.create(email="gone@x.io", name="rolled back")
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    print(f"async  rollback    -> {await User.get(5)!r} (nothing written)")
    await again.delete()
    print(f"async  delete      -> get({user.id}) = {await User.get(user.id)!r}")
    await db.disconnect()


if __name__ == "__main__":
    sync_part()
    asyncio.run(async_part())
    db.disconnect()
    print("done")
