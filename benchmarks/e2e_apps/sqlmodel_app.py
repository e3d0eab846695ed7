"""The end-to-end users app with SQLModel, the way SQLModel's FastAPI tutorial writes it.

A sync engine from ``create_engine(url)`` (plus ``check_same_thread=False`` on SQLite,
as the tutorial has it), a session per request from a yield dependency, ``def``
endpoints (FastAPI runs them in its thread pool), and separate create/read models.
"""

import os
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException
from sqlmodel import Field, Session, SQLModel, create_engine

url = os.environ["E2E_DATABASE_URL"]
connect_args = {"check_same_thread": False} if url.startswith("sqlite") else {}
engine = create_engine(url, connect_args=connect_args)


class UserBase(SQLModel):
    email: str = Field(max_length=100, unique=True)
    name: str = Field(max_length=100)


class User(UserBase, table=True):
    __tablename__ = "e2e_users"

    id: int | None = Field(default=None, primary_key=True)


class UserCreate(UserBase):
    pass


class UserPublic(UserBase):
    id: int


def get_session() -> Iterator[Session]:
    with Session(engine) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]

app = FastAPI()


@app.post("/users/", response_model=UserPublic, status_code=201)
def create_user(user: UserCreate, session: SessionDep) -> User:
    db_user = User.model_validate(user)
    session.add(db_user)
    session.commit()
    session.refresh(db_user)
    return db_user


@app.get("/users/{user_id}", response_model=UserPublic)
def read_user(user_id: int, session: SessionDep) -> User:
    user = session.get(User, user_id)
    if not user:
        raise HTTPException(status_code=404, detail="User not found")
    return user
