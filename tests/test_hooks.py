"""Which changes count as an UPDATE for the hooks: an attribute set back to what was
loaded is no change (no stamp, no validate()), anything else is one. Real databases."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.orm import object_session
from sqlalchemy.orm.attributes import flag_modified

from duo_orm import ValidationError
from duo_orm.hooks import before_update

from .models import Models


def made(m: Models) -> Any:
    return m.User.create(email="a@x.io", name="first", age=30)


def stamp_of(m: Models, user: Any) -> Any:
    return m.User.get(user.id).updated_at


@pytest.mark.parametrize("steps", [["first"], ["other", "first"]])
def test_a_value_set_back_to_what_was_loaded_is_no_change(m: Models, steps: list[str]) -> None:
    user = made(m)
    before = stamp_of(m, user)
    with m.db.transaction():
        loaded = m.User.get(user.id)
        for name in steps:
            loaded.name = name
        loaded.email = "no-at-sign"  # then set back: validate() would refuse it
        loaded.email = "a@x.io"
    assert stamp_of(m, user) == before


def test_a_changed_value_is_stamped_and_validated(m: Models) -> None:
    user = made(m)
    before = stamp_of(m, user)
    with m.db.transaction():
        m.User.get(user.id).name = "second"
    after = m.User.get(user.id)
    assert (after.name, after.updated_at > before) == ("second", True)
    with pytest.raises(ValidationError), m.db.transaction():
        m.User.get(user.id).name = "invalid"
    assert m.User.get(user.id).name == "second"


def test_a_value_set_after_it_was_expired_is_a_change(m: Models) -> None:
    user = made(m)
    with pytest.raises(ValidationError), m.db.transaction():
        loaded = m.User.get(user.id)
        session = object_session(loaded)
        assert session is not None
        session.expire(loaded, ["name"])
        loaded.name = "invalid"  # nothing loaded to compare with: checked all the same
    assert m.User.get(user.id).name == "first"


def test_an_attribute_flagged_modified_is_a_change(m: Models) -> None:
    user = made(m)
    before = stamp_of(m, user)
    with m.db.transaction():
        flag_modified(m.User.get(user.id), "age")
    assert stamp_of(m, user) > before


def test_a_loaded_value_deleted_is_a_change(m: Models) -> None:
    # SQLAlchemy's own flush cannot write such an instance; the hook is asked directly.
    user = made(m)
    with pytest.raises(RuntimeError), m.db.transaction():
        loaded = m.User.get(user.id)
        stamp = loaded.updated_at
        del loaded.age
        before_update(loaded)
        assert loaded.updated_at > stamp
        raise RuntimeError("nothing to store")
