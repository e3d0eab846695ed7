from datetime import datetime

from duo_orm import DateTime, Mapped, String, ValidationError, mapped_column

from ..database import db


class User(db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(255), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), info={"set_on": "create"})
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), info={"set_on": {"create", "update"}}
    )

    def validate(self) -> None:
        if "@" not in self.email:
            raise ValidationError("email must contain @", field="email")
        if not self.name.strip():
            raise ValidationError("name may not be blank", field="name")
