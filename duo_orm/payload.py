"""Turn what callers pass as data (dict, keyword arguments, pydantic model) into column values."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from operator import itemgetter
from typing import Any, cast

from pydantic import BaseModel

from .columns import column_specs
from .exceptions import ValidationError

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
