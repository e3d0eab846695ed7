"""Mistakes, each marked with the checkers that report it. The unmarked ones are
mistakes neither checker can see, kept here so docs/typing.md can say so."""

from .database import db
from .models import Post, User
from .schemas import UserCreate


def sync_mistakes() -> None:
    user: User = User.get_one(1)  # annotated: pyright cannot infer it
    user.nmae  # error: mypy[attr-defined] pyright[reportAttributeAccessIssue] pyright[reportUnknownMemberType]
    User.where(User.nmae == "x")  # error: mypy[attr-defined] pyright[reportAttributeAccessIssue] pyright[reportUnknownMemberType]
    User.create(42)  # error: mypy[arg-type] pyright[reportArgumentType]
    User.create(Post(title="x"))  # error: mypy[arg-type] pyright[reportArgumentType]
    User.create_bulk(42)  # error: mypy[arg-type] pyright[reportArgumentType]
    UserCreate(email=1, name="x")  # error: mypy[arg-type] pyright[reportArgumentType]
    User.get(1).name  # error: mypy[union-attr]
    total: str = User.count()  # error: mypy[assignment]
    User.page(1, 10).itemz  # error: mypy[attr-defined]
    User(email=1)  # the constructor takes **kwargs: checked at run time only
    User.filter_by(nmae="x")  # field names as strings: checked at run time only
    del total


async def async_mistakes() -> None:
    User.create(email="a@x.io", name="A")  # error: mypy[unused-coroutine]
    user = User.get_one(1)  # the missing await shows where the value is used:
    user.name  # error: mypy[attr-defined]
    users: list[User] = User.all()  # error: mypy[assignment]
    del users
    for row in User.all():  # error: mypy[attr-defined]
        del row
    db.create_all()  # error: mypy[unused-coroutine]


class Misspelt(db.Modle):  # error: mypy[name-defined] mypy[misc] pyright[reportAttributeAccessIssue] pyright[reportUnknownMemberType] pyright[reportUntypedBaseClass]
    __tablename__ = "misspelt"
