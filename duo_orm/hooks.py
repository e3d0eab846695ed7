"""Timestamps, column checks and ``validate()``, run before every INSERT and UPDATE.

They hang off the session's ``before_flush`` event, so they run for every write
the ORM makes: ``create``/``save``/``update``, and attributes changed inside a
transaction and flushed at commit.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.orm import Session, UOWTransaction
from sqlalchemy.orm.attributes import instance_state
from sqlalchemy.orm.base import NO_VALUE

from .columns import NO_DEFAULT, column_specs, stamped_keys
from .exceptions import ValidationError


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def before_insert(instance: Any) -> None:
    specs = column_specs(type(instance))
    values = inspect(instance).dict
    now = utc_now()
    for spec in specs.values():
        if "create" in spec.set_on and values.get(spec.key) is None:
            setattr(instance, spec.key, now)
        elif spec.scalar_default is not NO_DEFAULT and spec.key not in values:
            setattr(instance, spec.key, spec.scalar_default)  # so validate() sees it
    for spec in specs.values():
        if spec.key in values:
            spec.check(values[spec.key], inserting=True)
        elif spec.required:
            raise ValidationError(f"{spec.key} is required", field=spec.key)
    instance.validate()


def before_update(instance: Any) -> None:
    model = type(instance)
    specs = column_specs(model)
    state = instance_state(instance)
    # Only attributes with an entry in committed_state can have changed since they
    # were loaded (SQLAlchemy's flush looks there too); those set back to the value
    # they had are left out. This is get_history().has_changes() of a column, from
    # the values the flush compares: building History objects took a fifth of a
    # hooked bulk walk.
    values = state.dict
    attributes = state.manager
    changed = []
    for key, loaded in state.committed_state.items():
        if key not in specs:
            continue
        current = values.get(key, NO_VALUE)
        if current is NO_VALUE or attributes[key].impl.is_equal(current, loaded) is not True:
            changed.append(key)  # a value set, or a loaded one deleted
    if not changed:
        return
    if len(changed) > 1:  # check in column order, so the same field is named as always
        changed = [key for key in specs if key in changed]
    stamped = stamped_keys(model, "update")
    if stamped:
        now = utc_now()
        for key in stamped:
            setattr(instance, key, now)
    for key in changed:
        specs[key].check(values.get(key), inserting=False)
    instance.validate()


def run_model_hooks(session: Session, _context: UOWTransaction, _instances: Any) -> None:
    from .model import Model

    for instance in list(session.new):
        if isinstance(instance, Model):
            before_insert(instance)
    for instance in list(session.dirty):
        if isinstance(instance, Model):
            before_update(instance)
