"""Turn what callers pass as data (dict, keyword arguments, pydantic model) into column values."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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
