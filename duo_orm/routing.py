"""Read replicas: which server a read-only session's statements go to.

A ``Database`` with replicas gives its statement-mode reads, its
``db.transaction(read_only=True)`` blocks and its read-only requests a
:class:`RoutingSession`. Such a session reads from one replica, chosen when it
first reads, until it writes; from then on every statement goes to the primary,
so a unit of work always reads what it wrote. A replica serves only while a
recent check found it up and no further behind than ``max_lag`` seconds; the
check runs at most once per ``check_interval`` per replica and process, and a
replica that fails it (or fails to hand out a connection) is skipped: the
primary serves the read, and the client never sees the difference.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, Select, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncSession

from .engines import Access, Engines
from .exceptions import ConfigurationError
from .session import DuoSession
from .urls import derive_urls

logger = logging.getLogger("duo_orm.routing")

DEFAULT_MAX_LAG = 10.0  # seconds a replica may trail the primary and still serve reads
DEFAULT_CHECK_INTERVAL = 1.0  # seconds a replica's last check is trusted

# How far a PostgreSQL standby trails, in seconds: nothing when it has replayed all
# the WAL it received (an idle primary sends none, so the age of the last replayed
# transaction says nothing then); otherwise the age of the last transaction it
# replayed (infinite if it has replayed none since it started). A server that is
# not a standby has no lag.
_POSTGRES_LAG = text(
    "SELECT CASE WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM "
    "pg_last_wal_replay_lsn() THEN 0 ELSE COALESCE(EXTRACT(EPOCH FROM "
    "clock_timestamp() - pg_last_xact_replay_timestamp()), 'Infinity') END"
)
_PING = text("SELECT 1")
_ROUTE = "duo_orm.route"  # Session.info key: this session's Route


class Replica:
    """One replica's engines and what its last check found."""

    def __init__(self, engines: Engines) -> None:
        self.engines = engines
        self.usable = False
        self.checked = False  # whether any check has run yet (for the log)
        self.checked_at = -math.inf
        self.name = engines.urls.sync.render_as_string(hide_password=True)

    def engine(self, access: Access, is_async: bool) -> Engine:
        if is_async:
            return self.engines.async_engine(access).sync_engine
        return self.engines.sync_engine(access)

    def mark(self, usable: bool, why: str = "") -> None:
        if not usable and (self.usable or not self.checked):
            logger.warning("Replica %s skipped, reads go to the primary: %s", self.name, why)
        elif usable and not self.usable and self.checked:
            logger.info("Replica %s serves reads again", self.name)
        self.usable, self.checked = usable, True
        self.checked_at = time.monotonic()


class Router:
    """The replicas of one ``Database`` and the rules for using them."""

    def __init__(
        self,
        urls: Sequence[str | URL],
        *,
        primary: Engines,
        max_lag: float | None,
        check_interval: float,
    ) -> None:
        if max_lag is not None and max_lag < 0:
            raise ConfigurationError(f"max_replica_lag must be 0 or more seconds, not {max_lag}")
        if check_interval < 0:
            raise ConfigurationError(
                f"replica_check_interval must be 0 or more seconds, not {check_interval}"
            )
        self.replicas: list[Replica] = []
        for url in urls:
            derived = derive_urls(url)
            if derived.dialect != primary.urls.dialect:
                raise ConfigurationError(
                    f"A replica must be a {primary.urls.dialect} database like the primary, "
                    f"not {derived.dialect}."
                )
            self.replicas.append(Replica(primary.sibling(derived)))
        self.max_lag = max_lag
        self.check_interval = check_interval
        self._turns = itertools.count()

    def sync_session(self, primary: Engine, access: Access, options: dict[str, Any]) -> DuoSession:
        session = RoutingSession(bind=primary, **options)
        session.info[_ROUTE] = Route(self, access, is_async=False)
        return session

    def async_session(self, primary: Any, access: Access, options: dict[str, Any]) -> AsyncSession:
        session = AsyncSession(bind=primary, sync_session_class=RoutingSession, **options)
        session.sync_session.info[_ROUTE] = Route(self, access, is_async=True)
        return session

    def choose(self, session: RoutingSession, access: Access, is_async: bool) -> Engine | None:
        """A usable replica's engine with a connection already taken in ``session``, or
        None (the primary serves). Runs in sync code or in an async session's greenlet."""
        count = len(self.replicas)
        start = next(self._turns)
        for turn in range(count):
            replica = self.replicas[(start + turn) % count]
            if time.monotonic() - replica.checked_at >= self.check_interval:
                self._check(replica, is_async)
            if not replica.usable:
                continue
            engine = replica.engine(access, is_async)
            try:  # take the connection now: a replica gone since its check falls back here
                session.connection(bind_arguments={"bind": engine})
            except Exception as exc:
                replica.mark(False, _reason(exc))
                continue
            return engine
        return None

    def _check(self, replica: Replica, is_async: bool) -> None:
        replica.checked_at = time.monotonic()  # one check per interval, not one per caller
        try:
            with replica.engine("single_read", is_async).connect() as connection:
                if self.max_lag is None or replica.engines.urls.dialect != "postgresql":
                    connection.execute(_PING)
                    lag = 0.0
                else:
                    lag = float(connection.execute(_POSTGRES_LAG).scalar_one())
        except Exception as exc:
            replica.mark(False, _reason(exc))
            return
        if self.max_lag is not None and lag > self.max_lag:
            replica.mark(False, f"{lag:.1f} s behind the primary (max_replica_lag={self.max_lag})")
        else:
            replica.mark(True)

    def dispose_sync(self) -> None:
        for replica in self.replicas:
            replica.engines.dispose_sync()
            replica.checked_at = -math.inf

    async def dispose_async(self) -> None:
        for replica in self.replicas:
            await replica.engines.dispose_async()
            replica.checked_at = -math.inf

    def close(self) -> None:
        for replica in self.replicas:
            replica.engines.close()


def _reason(exc: Exception) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


class Route:
    """Where one session's statements go: its replica until it writes, then the primary."""

    __slots__ = ("access", "is_async", "on_primary", "read_bind", "router")

    def __init__(self, router: Router, access: Access, *, is_async: bool) -> None:
        self.router = router
        self.access = access
        self.is_async = is_async
        self.read_bind: Engine | None = None
        self.on_primary = False  # it wrote, or no replica could serve it


class RoutingSession(DuoSession):
    """A session that reads from a replica until its first write (see module docstring)."""

    def get_bind(
        self,
        mapper: Any = None,
        *,
        clause: Any = None,
        bind: Any = None,
        **kw: Any,
    ) -> Any:
        route: Route | None = self.info.get(_ROUTE)
        if bind is not None or route is None:
            return super().get_bind(mapper, clause=clause, bind=bind, **kw)
        if route.on_primary or self._flushing or not _is_plain_read(clause):
            route.on_primary = True
            return super().get_bind(mapper, clause=clause, **kw)
        if route.read_bind is None:
            chosen = route.router.choose(self, route.access, route.is_async)
            if chosen is None:  # no replica now: the primary serves this session throughout
                route.on_primary = True
                return super().get_bind(mapper, clause=clause, **kw)
            route.read_bind = chosen
        return route.read_bind


def _is_plain_read(clause: Any) -> bool:
    """A SELECT that locks nothing; anything else (raw SQL too) needs the primary."""
    return isinstance(clause, Select) and clause._for_update_arg is None
