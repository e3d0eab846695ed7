"""Every public call in sync code. Each ``reveal_type`` line says what each checker sees."""

from typing import reveal_type

from duo_orm import Page, Query

from .database import db
from .models import Post, User
from .schemas import UserCreate, UserRead, UserUpdate


def columns() -> None:
    user = User(email="a@x.io", name="A")
    reveal_type(user.name)
    reveal_type(user.nickname)
    reveal_type(user.posts)
    reveal_type(User.id)
    reveal_type(User.fields())


def class_calls() -> None:
    reveal_type(User.create(email="a@x.io", name="A"))
    reveal_type(User.create(UserCreate(email="a@x.io", name="A")))
    reveal_type(User.create_bulk([{"email": "b@x.io", "name": "B"}]))
    reveal_type(User.create_bulk([{"email": "c@x.io", "name": "C"}], return_models=True))
    reveal_type(User.from_schema({"email": "d@x.io", "name": "D"}))
    reveal_type(User.get(1))
    reveal_type(User.get_one(1))
    reveal_type(User.all())
    reveal_type(User.first())
    reveal_type(User.one())
    reveal_type(User.one_or_none())
    reveal_type(User.count())
    reveal_type(User.exists())
    reveal_type(User.page(1, 20))
    reveal_type(User.iterate())
    reveal_type(User.iterate(batch=True))
    reveal_type(User.update_bulk({"active": False}, require_filter=False))
    reveal_type(User.delete_bulk(require_filter=False))


def query_chain() -> None:
    query = User.where(User.id > 1).filter_by(active=True).order_by("-id").limit(5).offset(0)
    reveal_type(query)
    reveal_type(User.query().distinct().paginate(10, 0))
    reveal_type(User.join(Post, Post.author_id == User.id).related("posts"))
    reveal_type(query.alchemize())
    reveal_type(query.all())
    reveal_type(query.first())
    reveal_type(query.one())
    reveal_type(query.one_or_none())
    reveal_type(query.count())
    reveal_type(query.exists())
    reveal_type(query.update_bulk(name="x"))
    reveal_type(User.where(User.id > 1).delete_bulk())
    page = query.page(2, 10)
    reveal_type(page)
    reveal_type(page.items)
    reveal_type(page.pages)
    for row in query.iterate():
        reveal_type(row)
    typed: Query[User] = User.where(User.name == "A")
    assert typed


def instance_calls(user: User) -> None:
    reveal_type(user.save())
    reveal_type(user.update(UserUpdate(name="B")))
    reveal_type(user.update(name="B"))
    reveal_type(user.refresh())
    reveal_type(user.delete())
    reveal_type(user.apply_schema({"name": "C"}))
    reveal_type(user.to_schema(UserRead))
    reveal_type(user.to_dict())


def database_calls() -> None:
    reveal_type(db.create_all())
    reveal_type(db.connect())
    with db.transaction() as session:
        reveal_type(session)
        User.create(email="e@x.io", name="E")
    with db.standalone_session() as raw:
        reveal_type(raw)
    reveal_type(db.in_transaction)
    reveal_type(db.sync_engine)
    reveal_type(db.metadata)
    db.on_commit(lambda: None)
    reveal_type(db.drop_all())
    reveal_type(db.disconnect())


def pages(page: Page[User]) -> list[str]:
    return [user.email for user in page.items]
