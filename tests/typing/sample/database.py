"""The sample project's one Database, spelled as the README spells it."""

from duo_orm import Database

db = Database("sqlite:///:memory:")


class AuditDatabase(Database):
    """A project's own subclass: its instances declare a ``Model`` too."""

    def retention_days(self) -> int:
        return 30


audit_db: AuditDatabase = AuditDatabase("sqlite:///:memory:")
