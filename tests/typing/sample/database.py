"""The sample project's one Database, spelled as the README spells it."""

from duo_orm import Database

db = Database("sqlite:///:memory:")
