from datetime import datetime

from pydantic import BaseModel, ConfigDict


class UserSchema:
    # what ?sort= may name: fields clients see (prefix "-" for descending)
    SORTABLE = ("id", "email", "name", "created_at", "updated_at")

    class Create(BaseModel):
        email: str
        name: str

    class Update(BaseModel):
        email: str | None = None
        name: str | None = None
        active: bool | None = None

    class Read(BaseModel):
        model_config = ConfigDict(from_attributes=True)

        id: int
        email: str
        name: str
        active: bool
        created_at: datetime
        updated_at: datetime
