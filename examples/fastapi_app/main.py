"""The users API: ``uvicorn examples.fastapi_app.main:app`` (or ``make serve``)."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from duo_orm_fastapi import DuoORM

from .db.database import db
from .routers import users


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    await db.create_all()  # a demo convenience; real projects use migrations
    yield


app = FastAPI(title="duo-orm FastAPI example", lifespan=lifespan)
app.include_router(users.router)
DuoORM(app, db)  # request transactions, engine lifespan around ours, error handlers, OpenAPI
