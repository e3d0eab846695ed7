"""The FastAPI example's routes, typed end to end."""

from typing import reveal_type

from fastapi import APIRouter, FastAPI
from sqlalchemy import text

from duo_orm_fastapi import DuoORM, RequestSession, statement_mode

from .database import db
from .models import User
from .schemas import UserCreate, UserRead, UserUpdate

router = APIRouter(prefix="/users")


@router.post("/", response_model=UserRead, status_code=201)
async def create_user(payload: UserCreate) -> User:
    return await User.create(payload)


@router.get("/")
async def list_users(sort: str = "id") -> list[UserRead]:
    users = await User.order_by(sort, allowed=("id", "name")).all()
    reveal_type(users)  # mypy: list[User]; pyright: Any
    return [user.to_schema(UserRead) for user in users]


@router.patch("/{user_id}", response_model=UserRead)
async def update_user(user_id: int, payload: UserUpdate) -> User:
    user = await User.get_one(user_id)
    return await user.update(payload)


@router.get("/raw/count")
async def raw_count(session: RequestSession) -> int:
    reveal_type(session)  # both: AsyncSession
    return int((await session.execute(text("SELECT count(*) FROM users"))).scalar_one())


@router.post("/audit")
@statement_mode
async def audit() -> None:
    await User.where(User.id < 0).delete_bulk()


@router.get("/sync/{user_id}", response_model=UserRead)
def get_user_sync(user_id: int) -> User:
    return User.get_one(user_id)  # a def endpoint: the plain value


app = FastAPI()
app.include_router(router)
reveal_type(DuoORM(app, db))  # both: DuoORM
