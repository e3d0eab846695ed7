"""Every public call in sync code. Each ``reveal_type`` line says what each checker sees."""

from typing import reveal_type

from duo_orm import Database, Page, Query

from .database import audit_db, db
from .models import AuditEntry, Post, User
from .schemas import UserCreate, UserRead, UserUpdate


def columns() -> None:
    user = User(email="a@x.io", name="A")
    reveal_type(user.name)  # both: str
    reveal_type(user.nickname)  # both: str | None
    reveal_type(user.posts)  # both: list[Post]
    reveal_type(User.id)  # both: InstrumentedAttribute[int]
    reveal_type(User.fields())  # both: list[str]


def class_calls() -> None:
    reveal_type(User.create(email="a@x.io", name="A"))  # mypy: User; pyright: Any
    reveal_type(User.create(UserCreate(email="a@x.io", name="A")))  # mypy: User; pyright: Any
    reveal_type(User.create(User(email="i@x.io", name="I")))  # mypy: User; pyright: Any
    reveal_type(User.create_bulk([{"email": "b@x.io", "name": "B"}]))  # mypy: int; pyright: Any
    reveal_type(User.create_bulk([{"email": "c@x.io", "name": "C"}], return_models=True))  # mypy: list[User]; pyright: Any
    reveal_type(User.from_schema({"email": "d@x.io", "name": "D"}))  # both: User
    reveal_type(User.get(1))  # mypy: User | None; pyright: Any
    reveal_type(User.get_one(1))  # mypy: User; pyright: Any
    reveal_type(User.all())  # mypy: list[User]; pyright: Any
    reveal_type(User.first())  # mypy: User | None; pyright: Any
    reveal_type(User.one())  # mypy: User; pyright: Any
    reveal_type(User.one_or_none())  # mypy: User | None; pyright: Any
    reveal_type(User.count())  # mypy: int; pyright: Any
    reveal_type(User.exists())  # mypy: bool; pyright: Any
    reveal_type(User.page(1, 20))  # mypy: Page[User]; pyright: Any
    reveal_type(User.iterate())  # mypy: Iterator[User]; pyright: Any
    reveal_type(User.iterate(batch=True))  # mypy: Iterator[list[User]]; pyright: Any
    reveal_type(User.iterate(100, True))  # mypy: Iterator[list[User]]; pyright: Any
    reveal_type(User.update_bulk({"active": False}, require_filter=False))  # mypy: int; pyright: Any
    reveal_type(User.delete_bulk(require_filter=False))  # mypy: int; pyright: Any


def query_chain() -> None:
    query = User.where(User.id > 1).filter_by(active=True).order_by("-id").limit(5).offset(0)
    reveal_type(query)  # both: Query[User]
    reveal_type(User.query().distinct().paginate(10, 0))  # both: Query[User]
    reveal_type(User.join(Post, Post.author_id == User.id).related("posts"))  # both: Query[User]
    reveal_type(query.alchemize())  # both: Select[Any]
    reveal_type(query.all())  # mypy: list[User]; pyright: Any
    reveal_type(query.first())  # mypy: User | None; pyright: Any
    reveal_type(query.one())  # mypy: User; pyright: Any
    reveal_type(query.one_or_none())  # mypy: User | None; pyright: Any
    reveal_type(query.count())  # mypy: int; pyright: Any
    reveal_type(query.exists())  # mypy: bool; pyright: Any
    reveal_type(query.update_bulk(name="x"))  # mypy: int; pyright: Any
    reveal_type(User.where(User.id > 1).delete_bulk())  # mypy: int; pyright: Any
    page = query.page(2, 10)
    reveal_type(page)  # mypy: Page[User]; pyright: Any
    reveal_type(page.items)  # mypy: list[User]; pyright: Any
    reveal_type(page.pages)  # mypy: int; pyright: Any
    for row in query.iterate():
        reveal_type(row)  # mypy: User; pyright: Any
    typed: Query[User] = User.where(User.name == "A")
    assert typed


def instance_calls(user: User) -> None:
    reveal_type(user.save())  # mypy: User; pyright: Any
    reveal_type(user.update(UserUpdate(name="B")))  # mypy: User; pyright: Any
    reveal_type(user.update(name="B"))  # mypy: User; pyright: Any
    reveal_type(user.refresh())  # mypy: User; pyright: Any
    reveal_type(user.delete())  # mypy: None; pyright: Any
    reveal_type(user.apply_schema({"name": "C"}))  # both: User
    reveal_type(user.to_schema(UserRead))  # both: UserRead
    reveal_type(user.to_dict())  # both: dict[str, Any]
    reveal_type(user.rename("D"))  # both: User


def database_calls() -> None:
    reveal_type(db.create_all())  # mypy: None; pyright: Any
    reveal_type(db.connect())  # mypy: None; pyright: Any
    with db.transaction() as session:
        reveal_type(session)  # both: Session
        User.create(email="e@x.io", name="E")
    with db.standalone_session() as raw:
        reveal_type(raw)  # both: Session
    with db.sync_standalone_session() as plain:
        reveal_type(plain)  # both: Session
    reveal_type(db.sync_session_factory)  # both: sessionmaker[Session]
    reveal_type(db.in_transaction)  # both: bool
    reveal_type(db.sync_engine)  # both: Engine
    reveal_type(db.metadata)  # both: MetaData
    db.on_commit(lambda: None)
    reveal_type(db.drop_all())  # mypy: None; pyright: Any
    reveal_type(db.disconnect())  # mypy: None; pyright: Any


def local_database() -> None:
    local = Database("sqlite://")  # a local stays a plain Database: same calls, same types
    reveal_type(local)  # both: Database
    reveal_type(local.create_all())  # mypy: None; pyright: Any


def database_subclass() -> None:
    reveal_type(audit_db.retention_days())  # both: int
    reveal_type(audit_db.create_all())  # mypy: None; pyright: Any
    reveal_type(AuditEntry.get(1))  # mypy: AuditEntry | None; pyright: Any


def pages(page: Page[User]) -> list[str]:
    return [user.email for user in page.items]
