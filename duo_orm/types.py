"""Column types and SQL helpers re-exported so models need only ``from duo_orm import ...``."""

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    Enum,
    Float,
    ForeignKey,
    Integer,
    Interval,
    LargeBinary,
    Numeric,
    SmallInteger,
    String,
    Text,
    Time,
    Uuid,
    and_,
    func,
    not_,
    or_,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY as PG_ARRAY
from sqlalchemy.dialects.postgresql import JSONB as PG_JSONB
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .datetime_type import DateTime

__all__ = [
    "JSON",
    "PG_ARRAY",
    "PG_JSONB",
    "PG_UUID",
    "BigInteger",
    "Boolean",
    "Date",
    "DateTime",
    "Enum",
    "Float",
    "ForeignKey",
    "Integer",
    "Interval",
    "LargeBinary",
    "Mapped",
    "Numeric",
    "SmallInteger",
    "String",
    "Text",
    "Time",
    "Uuid",
    "and_",
    "func",
    "mapped_column",
    "not_",
    "or_",
    "relationship",
    "select",
    "text",
]
