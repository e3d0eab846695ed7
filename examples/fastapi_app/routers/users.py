from typing import Annotated

from fastapi import APIRouter, Depends

from duo_orm_fastapi import ListParams, Page, list_params

from ..db.listings import USERS
from ..db.models import User
from ..db.schemas.user import UserSchema
from ..deps import unit_of_work

router = APIRouter(prefix="/users", tags=["users"], dependencies=[Depends(unit_of_work)])


@router.post("/", response_model=UserSchema.Read, status_code=201)
async def create_user(payload: UserSchema.Create) -> User:
    return await User.create(payload)  # validate() -> 422, duplicate email -> 409


@router.get("/")
async def list_users(
    params: Annotated[ListParams, Depends(list_params(USERS))],
) -> Page[UserSchema.Read]:
    page = await params.apply(User).page()  # an unknown filter, sort, bad value: 400
    return page.to_schema(UserSchema.Read)


@router.get("/{user_id}", response_model=UserSchema.Read)
async def get_user(user_id: int) -> User:
    return await User.get_one(user_id)  # missing -> 404


@router.patch("/{user_id}", response_model=UserSchema.Read)
async def update_user(user_id: int, payload: UserSchema.Update) -> User:
    user = await User.get_one(user_id)
    return await user.update(payload)  # only the fields the client sent


@router.post("/bulk-bump", response_model=int)
async def bump_all() -> int:
    """Append "!" to every name, running validate() and timestamps per row."""
    return await User.where(User.id > 0).update_bulk({"name": User.name + "!"}, with_hooks=True)
