"""What clients may filter, sort and page the users list by (all three example apps).

``?name__icontains=an&sort=-created_at&size=20``, then ``page=2`` or ``cursor=``.
"""

from duo_orm.web.listing import Listing

from .models import User
from .schemas.user import UserSchema

USERS = Listing(
    User,
    sort=UserSchema.SORTABLE,
    filters={
        "name": ("eq", "icontains", "istartswith"),
        "email": ("eq",),
        "active": ("eq",),
        "created_at": ("ge", "lt"),
    },
    default_size=20,
    max_size=100,
)
