"""Turn what callers pass as data (dict, keyword arguments, pydantic model) into column values.

A payload (the dict or pydantic model passed positionally) is what a client
usually sent, so it may not set *guarded* fields: the primary key when updating,
a primary key the database generates when creating, and any field named in the
model's ``__guarded__``. Keyword arguments are written at the call site, so they
may: ``User.create(payload, id=7)`` is the code saying it means it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from operator import itemgetter
from typing import Any, cast

from pydantic import BaseModel
from sqlalchemy import inspect
from sqlalchemy.orm import Mapper

from .columns import column_specs
from .exceptions import ConfigurationError, ValidationError

Payload = Mapping[str, Any] | BaseModel | None


def payload_values(
    model: type, payload: Payload, fields: Mapping[str, Any], *, partial: bool
) -> dict[str, Any]:
    """Column values from ``payload`` and ``fields`` (which win on conflicts).

    ``partial`` (updates) keeps only the fields a pydantic client actually set;
    a dict's explicit ``None`` is always kept. Keys that are not mapped columns
    are refused rather than dropped: a silent drop hides typos and
    mass-assignment bugs.
    """
    if payload is None:
        values: dict[str, Any] = {}
    elif isinstance(payload, BaseModel):
        values = payload.model_dump(exclude_unset=partial)
    elif isinstance(payload, Mapping):
        values = dict(payload)
    else:
        raise TypeError(
            f"A payload must be a dict, keyword arguments or a pydantic model, "
            f"not {type(payload).__name__}"
        )
    check_not_guarded(model, values, creating=not partial)
    values.update(fields)
    check_known_fields(model, values)
    return values


def bulk_rows(
    model: type, payloads: Iterable[Payload]
) -> tuple[list[dict[str, Any]], dict[str, list[Any]] | None]:
    """Column values for each payload of a bulk insert, and the same values by column.

    The rows are what ``payload_values`` gives, but plain dicts (the common case)
    are copied in one pass, and when every row has the same keys their names are
    checked once, not once per row. The columns (each key's values down the
    rows) are ``None`` when the rows' keys differ.
    """
    items = list(payloads)
    if set(map(type, items)) == {dict}:
        rows: list[dict[str, Any]] = list(map(dict, cast("list[dict[str, Any]]", items)))
    else:
        rows = [payload_values(model, payload, {}, partial=False) for payload in items]
    columns = columns_of(rows)
    for row in rows[:1] if columns is not None else rows:  # the first bad row, in row order
        check_not_guarded(model, row, creating=True)
        check_known_fields(model, row)
    return rows, columns


def columns_of(rows: list[dict[str, Any]]) -> dict[str, list[Any]] | None:
    """Each key's values down ``rows`` when every row has exactly the same keys, else ``None``."""
    if not rows or len(set(map(len, rows))) != 1:
        return None
    try:
        return {key: list(map(itemgetter(key), rows)) for key in rows[0]}
    except KeyError:  # same number of keys, not the same keys
        return None


def check_known_fields(model: type, values: Mapping[str, Any]) -> None:
    specs = column_specs(model)
    if specs.keys() >= values.keys():
        return
    for key in values:
        if key not in specs:
            raise ValidationError(
                f"{model.__name__} has no field {key!r}; fields are: {', '.join(specs)}",
                field=str(key),
            )


def check_not_guarded(model: type, values: Mapping[str, Any], *, creating: bool) -> None:
    """Refuse a payload that sets a guarded field (see the module docstring)."""
    on_create, on_update = guarded_fields(model)
    guarded = on_create if creating else on_update
    if guarded.isdisjoint(values):
        return
    key = next(key for key in values if key in guarded)
    if key in _declared_guarded(model):
        why = f"it is listed in {model.__name__}.__guarded__"
    elif creating:
        why = f"it is {model.__name__}'s primary key, which the database generates"
    else:
        why = f"it is part of {model.__name__}'s primary key"
    raise ValidationError(
        f"{key} cannot be set from a payload: {why}. Code that means to set it passes it "
        f"as a keyword argument ({key}=...) or sets the attribute.",
        field=str(key),
    )


def guarded_fields(model: type) -> tuple[frozenset[str], frozenset[str]]:
    """The fields a payload may not set when creating, and when updating (cached)."""
    cached: tuple[frozenset[str], frozenset[str]] | None = model.__dict__.get("__duo_guarded__")
    if cached is None:
        specs = column_specs(model)
        mapper: Mapper[Any] = inspect(model)
        keys = {mapper.get_property_by_column(column).key for column in mapper.primary_key}
        declared = _declared_guarded(model)
        generated = {key for key in keys if specs[key].has_default}
        cached = (frozenset(generated | declared), frozenset(keys | declared))
        setattr(model, "__duo_guarded__", cached)  # noqa: B010 - not a declared attribute
    return cached


def _declared_guarded(model: type) -> frozenset[str]:
    raw = getattr(model, "__guarded__", ())
    if isinstance(raw, str) or not isinstance(raw, Iterable):
        raise ConfigurationError(
            f"{model.__name__}.__guarded__ must be a collection of field names, "
            f"e.g. ('role',), got {raw!r}"
        )
    return frozenset(raw)


def check_guarded_declaration(model: type) -> None:
    """At class definition: every name in ``__guarded__`` is a field of the model."""
    mapper: Mapper[Any] = inspect(model)
    for name in _declared_guarded(model):
        if not isinstance(name, str) or not mapper.has_property(name):
            raise ConfigurationError(
                f"{model.__name__}.__guarded__ names {name!r}, which is not one of its fields"
            )
