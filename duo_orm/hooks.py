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

from .columns import NO_DEFAULT, column_specs
from .exceptions import ValidationError


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


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
    specs = column_specs(type(instance))
    state = inspect(instance)
    changed = [
        key for key, attr in state.attrs.items() if key in specs and attr.history.has_changes()
    ]
    if not changed:
        return
    now = utc_now()
    for spec in specs.values():
        if "update" in spec.set_on:
            setattr(instance, spec.key, now)
    for key in changed:
        specs[key].check(state.dict.get(key), inserting=False)
    instance.validate()


def run_model_hooks(session: Session, _context: UOWTransaction, _instances: Any) -> None:
    from .model import Model

    for instance in list(session.new):
        if isinstance(instance, Model):
            before_insert(instance)
    for instance in list(session.dirty):
        if isinstance(instance, Model):
            before_update(instance)
