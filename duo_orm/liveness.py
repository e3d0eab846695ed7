"""Noticing a dead pooled server connection without SQLAlchemy's ping at every checkout.

SQLAlchemy's ``pool_pre_ping`` sends ``SELECT 1`` each time a connection leaves the
pool: a whole round trip per request (on PostgreSQL over loopback, 80-150 µs of a
300-500 µs async read), three on asyncpg. Yet a server that restarts, ends an idle
session or has its backend terminated says so on the socket: it sends its FATAL
notice and closes, and the idle connection's socket turns readable (or the driver
has already marked it closed). Nothing else arrives on an idle pooled connection,
short of a LISTEN notification.

So at checkout: a connection the driver knows is closed is replaced; a quiet socket
is used as it is; a readable one gets the real ping, and is replaced if that fails.
asyncpg reads its socket on the event loop, which may take the FATAL notice off it
before the server has closed, leaving the connection unusable in a state asyncpg does
not show: every asyncpg connection is asked, with one empty query (one round trip; the
dialect's ping wraps it in BEGIN and ROLLBACK). The first dead connection
found invalidates the whole pool, as pre-ping does, so after a restart the others
are replaced without asking each. What neither check can see (a peer that vanished
without closing, behind a firewall) waits for the connect and statement timeouts
either way.
"""

from __future__ import annotations

import enum
import select
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.exc import DisconnectionError, InvalidatePoolError
from sqlalchemy.util import await_only


class Socket(enum.Enum):
    QUIET = "quiet"  # nothing arrived: the connection is as it was left
    READABLE = "readable"  # something arrived while idle: ask the server
    CLOSED = "closed"  # the driver knows it is gone


Probe = Callable[[Any], Socket]


def _psycopg(connection: Any) -> Socket:
    if connection.closed or connection.broken:
        return Socket.CLOSED
    return _polled(connection.pgconn.socket)


def _psycopg2(connection: Any) -> Socket:
    if connection.closed:
        return Socket.CLOSED
    return _polled(connection.fileno())


def _asyncpg(connection: Any) -> Socket:
    return Socket.CLOSED if connection.is_closed() else Socket.READABLE  # see above


def _ask_asyncpg(connection: Any) -> None:
    # The dialect's ping without its BEGIN and ROLLBACK: one round trip (asyncpg keeps
    # the statement prepared). Behind a transaction pooler, with asyncpg's statement
    # cache off, it is parsed again, unnamed, with the round trip that runs it.
    await_only(connection.fetchrow(";"))


# Drivers whose dead connections can be told at checkout, and for some, a ping of
# their own, cheaper than the dialect's; any error it raises means "dead".
PROBES: dict[str, Probe] = {"psycopg": _psycopg, "psycopg2": _psycopg2, "asyncpg": _asyncpg}
PINGS: dict[str, Callable[[Any], None]] = {"asyncpg": _ask_asyncpg}


def _polled(fd: int) -> Socket:
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLPRI)
        ready = bool(poller.poll(0))  # POLLHUP and POLLERR are always reported
    else:  # Windows
        ready = bool(select.select([fd], [], [fd], 0)[0])
    return Socket.READABLE if ready else Socket.QUIET


_FRESH = "duo_orm_fresh"  # in a connection record's ``info`` until its first checkout


def can_watch(driver: str) -> bool:
    return driver in PROBES


def watch(engine: Engine) -> None:
    """Check each connection ``engine``'s pool hands out (``pool_pre_ping`` must be off)."""
    dialect = engine.dialect
    probe = PROBES[dialect.driver]
    ping = PINGS.get(dialect.driver)
    dbapi_error = dialect.loaded_dbapi.Error

    def answers(dbapi_connection: Any, driver: Any) -> bool:
        """Ask the server; ``False``: the connection is dead."""
        if ping is not None:
            try:
                ping(driver)
            except Exception as error:
                if probe(driver) is Socket.CLOSED:
                    return False  # the server closed it: others may be gone too
                # unusable, but the server may be fine: replace this one alone
                raise DisconnectionError("the pooled connection failed its check") from error
            return True
        try:
            dialect.do_ping(dbapi_connection)
        except dbapi_error as error:
            if not dialect.is_disconnect(error, dbapi_connection, None):
                raise
            return False
        return True  # alive: it was a notification, or a notice

    @event.listens_for(engine.pool, "connect")
    def _made(_dbapi_connection: Any, record: Any) -> None:
        record.info[_FRESH] = True

    @event.listens_for(engine.pool, "checkout")
    def _check(dbapi_connection: Any, record: Any, fairy: Any) -> None:
        if record.info.pop(_FRESH, False):
            return  # just connected: nothing to check yet
        driver = fairy.driver_connection
        state = probe(driver)
        if state is Socket.QUIET or (
            state is Socket.READABLE and answers(dbapi_connection, driver)
        ):
            return
        raise InvalidatePoolError("the server closed this pooled connection")
