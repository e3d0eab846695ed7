"""duo-orm: SQLAlchemy 2 models that are their own query interface, in sync and async code."""

# -- names duo-orm 0.1 exported, kept for code moving over (docs/upstream.md) --
from sqlalchemy import (
    ARRAY,
    UUID,
    CheckConstraint,
    Identity,
    Index,
    Table,
    UniqueConstraint,
    event,
)

from .database import Database
from .exceptions import (
    ConfigurationError,
    DatabaseBusyError,
    DatabaseError,
    DatabaseUnavailableError,
    DuoOrmError,
    IntegrityError,
    InvalidQueryError,
    MultipleObjectsFoundError,
    ObjectNotFoundError,
    TransactionConflictError,
    UnsupportedOperationError,
    ValidationError,
)
from .model import Model
from .naming import NAMING_CONVENTION
from .query import Page, Query
from .types import (
    JSON,
    PG_ARRAY,
    PG_JSONB,
    PG_UUID,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Integer,
    Interval,
    LargeBinary,
    Mapped,
    Numeric,
    SmallInteger,
    String,
    Text,
    Time,
    Uuid,
    and_,
    func,
    mapped_column,
    not_,
    or_,
    relationship,
    select,
    text,
)

# isort: split
# -- duo-orm 0.1's query names (docs/upstream.md: Queries) --------------------
from .documents import array, json
from .query import Query as QueryBuilder
from .relations import path

__version__ = "0.2.0"

__all__ = [
    "JSON",
    "PG_ARRAY",
    "PG_JSONB",
    "PG_UUID",
    "BigInteger",
    "Boolean",
    "ConfigurationError",
    "Database",
    "DatabaseError",
    "DatabaseBusyError",
    "DatabaseUnavailableError",
    "Date",
    "DateTime",
    "DuoOrmError",
    "Enum",
    "Float",
    "ForeignKey",
    "Integer",
    "IntegrityError",
    "Interval",
    "InvalidQueryError",
    "LargeBinary",
    "Mapped",
    "Model",
    "NAMING_CONVENTION",
    "Page",
    "Query",
    "MultipleObjectsFoundError",
    "Numeric",
    "ObjectNotFoundError",
    "SmallInteger",
    "String",
    "Text",
    "Time",
    "TransactionConflictError",
    "UnsupportedOperationError",
    "Uuid",
    "ValidationError",
    "and_",
    "func",
    "mapped_column",
    "not_",
    "or_",
    "relationship",
    "select",
    "text",
    # duo-orm 0.1's names
    "ARRAY",
    "CheckConstraint",
    "Identity",
    "Index",
    "Table",
    "UUID",
    "UniqueConstraint",
    "event",
    # duo-orm 0.1's query names
    "QueryBuilder",
    "array",
    "json",
    "path",
]
