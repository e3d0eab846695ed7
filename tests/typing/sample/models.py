"""Models the way the example apps write them: ``class User(db.Model)``."""

from datetime import datetime
from typing import Self

from duo_orm import (
    DateTime,
    ForeignKey,
    Mapped,
    String,
    ValidationError,
    mapped_column,
    relationship,
)

from .database import audit_db, db


class User(db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(255), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    active: Mapped[bool] = mapped_column(default=True)
    nickname: Mapped[str | None]
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), info={"set_on": "create"})
    posts: Mapped[list["Post"]] = relationship(back_populates="author")

    def validate(self) -> None:
        if "@" not in self.email:
            raise ValidationError("email must contain @", field="email")

    def rename(self, name: str) -> Self:
        """A call on ``self`` (typed ``Self``) is ``Any`` to mypy: the plugin sees no model."""
        return self.update(name=name)  # error: mypy[no-any-return]


class Post(db.Model):
    __tablename__ = "posts"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str]
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    author: Mapped[User] = relationship(back_populates="posts")


class AuditEntry(audit_db.Model):
    __tablename__ = "audit_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    action: Mapped[str]
