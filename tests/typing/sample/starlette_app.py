"""The Starlette example's endpoints, typed end to end."""

from typing import reveal_type

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from duo_orm_starlette import DuoORMMiddleware, duo_exception_handlers, duo_lifespan, json_body

from .database import db
from .models import User
from .schemas import UserCreate, UserRead


async def create_user(request: Request) -> Response:
    body = await json_body(request)
    reveal_type(body)  # both: Any
    user = await User.create(UserCreate.model_validate(body))
    return JSONResponse(user.to_schema(UserRead).model_dump(mode="json"), status_code=201)


async def count_users(request: Request) -> Response:
    return JSONResponse(await User.count())


app = Starlette(
    routes=[Route("/users/", create_user, methods=["POST"]), Route("/users/count", count_users)],
    middleware=[Middleware(DuoORMMiddleware, db=db)],
    lifespan=duo_lifespan(db),
    exception_handlers=duo_exception_handlers(),
)
