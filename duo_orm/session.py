"""The session class every duo-orm session uses, with the model hooks attached."""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.orm import Session

from .hooks import run_model_hooks


class DuoSession(Session):
    """A SQLAlchemy ``Session`` that runs timestamps, checks and ``validate()`` before flush."""


event.listen(DuoSession, "before_flush", run_model_hooks)
