"""The users API written the Starlette way: ``uvicorn examples.starlette_app.main:app``.

It shares the FastAPI example's models and pydantic schemas (examples/fastapi_app/db).
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from duo_orm_starlette import (
    DuoORMMiddleware,
    duo_exception_handlers,
    duo_lifespan,
    json_body,
    list_params,
)

from ..fastapi_app.db.database import db
from ..fastapi_app.db.listings import USERS
from ..fastapi_app.db.models import User
from ..fastapi_app.db.schemas.user import UserSchema


def read(user: User) -> dict[str, object]:
    return UserSchema.Read.model_validate(user).model_dump(mode="json")


async def create_user(request: Request) -> Response:
    # not JSON, or nested too deep -> 400; JSON that does not fit the schema -> 422
    payload = UserSchema.Create.model_validate(await json_body(request))
    user = await User.create(payload)  # validate() -> 422, duplicate email -> 409
    return JSONResponse(read(user), status_code=201)


async def list_users(request: Request) -> Response:
    params = list_params(USERS, request)  # an unknown filter, sort, bad value: 400
    page = await params.apply(User).page()
    return JSONResponse(page.to_schema(UserSchema.Read).model_dump(mode="json"))


async def get_user(request: Request) -> Response:
    return JSONResponse(read(await User.get_one(request.path_params["user_id"])))


async def update_user(request: Request) -> Response:
    payload = UserSchema.Update.model_validate(await json_body(request))
    user = await User.get_one(request.path_params["user_id"])  # missing -> 404
    return JSONResponse(read(await user.update(payload)))


async def bump_all(request: Request) -> Response:
    bumped = await User.where(User.id > 0).update_bulk({"name": User.name + "!"}, with_hooks=True)
    return JSONResponse(bumped)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)


@asynccontextmanager
async def create_tables(app: Starlette) -> AsyncIterator[None]:
    await db.create_all()  # a demo convenience; real projects use migrations
    yield


app = Starlette(
    routes=[
        Route("/users/", create_user, methods=["POST"]),
        Route("/users/", list_users, methods=["GET"]),
        Route("/users/bulk-bump", bump_all, methods=["POST"]),
        Route("/users/{user_id:int}", get_user, methods=["GET"]),
        Route("/users/{user_id:int}", update_user, methods=["PATCH"]),
    ],
    middleware=[Middleware(DuoORMMiddleware, db=db)],
    lifespan=duo_lifespan(db, lifespan=create_tables),
    # the FastAPI example's API: Starlette's own errors (an unknown path, a wrong method)
    # answer in the same {"detail": ...} shape as the ORM's
    exception_handlers={HTTPException: http_error, **duo_exception_handlers()},
)
