"""``Database``: one URL, lazily built sync and async engines, and the ``Model`` base."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Connection, Engine, MetaData, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import QueuePool

from . import _callbacks, dispatch
from ._isolation import AsyncIsolation, Isolation, SyncIsolation
from ._pending import pending
from .engines import Access, Engines
from .errors import translate, translated_errors
from .exceptions import (
    ConfigurationError,
    DatabaseError,
    DatabaseUnavailableError,
    UnsupportedOperationError,
)
from .frame import DeferredFrame, Frame, RequestFrames
from .model import Model
from .naming import NAMING_CONVENTION
from .routing import DEFAULT_CHECK_INTERVAL, DEFAULT_MAX_LAG, Router
from .session import DuoSession
from .transaction import TransactionBlock
from .urls import check_dialect, derive_urls

if TYPE_CHECKING:

    class DeclarativeModel(Model, DeclarativeBase):
        """What ``db.Model`` is to a type checker: duo-orm's calls on a declarative base."""


class Database:
    """A database and its model base.

    ``Database("sqlite:///app.db")`` derives a sync and an async URL; engines
    are built on first use. Each instance has its own ``Model`` base and
    metadata, so models of two databases never mix. The metadata names every
    constraint by ``naming_convention`` (``duo_orm.NAMING_CONVENTION`` unless
    given; ``None`` leaves them unnamed, as plain SQLAlchemy does), so migrations
    can see one being removed.

    ``replicas`` are URLs of read replicas of the same database: reads outside a
    transaction, ``db.transaction(read_only=True)`` blocks and read-only requests go
    to one of them until they write (see ``duo_orm.routing``). A replica more than
    ``max_replica_lag`` seconds behind (None: no limit) or down is skipped, checked
    again after ``replica_check_interval`` seconds.
    """

    def __init__(
        self,
        url: str | URL,
        *,
        derive_async: bool = True,
        echo: bool = False,
        engine_options: dict[str, Any] | None = None,
        session_options: dict[str, Any] | None = None,
        naming_convention: Mapping[str, Any] | None = NAMING_CONVENTION,
        engine_kwargs: dict[str, Any] | None = None,
        dialect: str | None = None,
        replicas: Sequence[str | URL] = (),
        max_replica_lag: float | None = DEFAULT_MAX_LAG,
        replica_check_interval: float = DEFAULT_CHECK_INTERVAL,
    ) -> None:
        self.derive_async = derive_async
        if engine_kwargs is not None:  # duo-orm 0.1's name; engine_options is preferred
            if engine_options is not None:
                raise ConfigurationError(
                    "Give engine_options or engine_kwargs (0.1's name for it), not both."
                )
            engine_options = engine_kwargs
        self._use_url(url, echo=echo, engine_options=engine_options)
        if dialect is not None:
            check_dialect(dialect, self.dialect)
        self._router: Router | None = None
        if replicas:
            self._router = Router(
                replicas,
                primary=self._engines,
                max_lag=max_replica_lag,
                check_interval=replica_check_interval,
            )
        self._session_options: dict[str, Any] = {"expire_on_commit": False}
        self._session_options.update(session_options or {})
        self._sync_factory: sessionmaker[Session] | None = None
        self._async_factory: async_sessionmaker[AsyncSession] | None = None
        self._ambient: ContextVar[Frame | DeferredFrame | RequestFrames | None] = ContextVar(
            f"duo_orm_transaction_{id(self):x}", default=None
        )
        # set while a test runs isolated (duo_orm_pytest): every session joins it
        self._isolation: Isolation | None = None
        self.Model: type[DeclarativeModel] = _model_base(self, naming_convention)
        self.metadata: MetaData = self.Model.metadata

    def __repr__(self) -> str:
        return f"Database({self.sync_url.render_as_string(hide_password=True)!r})"

    # -- transactions and sessions -----------------------------------------

    def transaction(self, *, read_only: bool = False) -> TransactionBlock:
        """One session for the block (``with`` or ``async with``); nested blocks are SAVEPOINTs.

        ``read_only=True`` says the block is expected to only read: it runs on a
        replica if the database has one (until it writes) and, on SQLite, takes no
        write lock at BEGIN. It still commits what it writes.
        """
        return TransactionBlock(self, access="read" if read_only else "write")

    def on_commit(self, fn: Callable[[], object]) -> None:
        """Call ``fn()`` once the enclosing unit of work has really committed.

        The enclosing unit is the outermost ``db.transaction()`` block or the
        request transaction; a callback registered inside a SAVEPOINT is dropped
        if that savepoint rolls back, and every callback is dropped on a
        rollback or a failed COMMIT. Outside a transaction (statement mode)
        everything has already committed, so ``fn`` runs at once. ``fn`` takes no
        arguments (bind them with ``functools.partial`` or a lambda) and may be
        async. Registering is a plain call in sync and async code alike: it
        returns nothing to await, so it cannot be forgotten. A callback that
        raises is logged on ``duo_orm.transaction``; the others still run.

        E.g.::

            async with db.transaction():
                user = await User.create(email=email)
                db.on_commit(partial(send_welcome, user.id))
            # sent here, and only if the user row is really there
        """
        _callbacks.register(self, fn, dispatch.statement_session(self))

    @property
    def in_transaction(self) -> bool:
        """Whether ORM calls made here run inside a ``db.transaction()`` block."""
        ambient = self._ambient_frame()
        if isinstance(ambient, DeferredFrame):  # asking must not open it
            if ambient.closed or ambient.declined:
                return False
            return ambient.frame is None or ambient.frame.active
        return ambient is not None and ambient.active

    def standalone_session(self) -> StandaloneSession:
        """A raw session outside the ambient transaction; the caller commits.

        ``with db.standalone_session() as s`` gives a ``Session``,
        ``async with ...`` an ``AsyncSession``.
        """
        return StandaloneSession(self)

    @contextmanager
    def sync_standalone_session(self) -> Iterator[Session]:
        with self.standalone_session() as session:
            yield session

    # -- engines and session factories (plain SQLAlchemy) -------------------

    @property
    def sync_engine(self) -> Engine:
        """The sync ``Engine`` and its pool, built on first use (raw SQL, pandas, tools)."""
        return self._engines.sync_engine()

    @property
    def async_engine(self) -> AsyncEngine:
        """The ``AsyncEngine`` of the running event loop (read it inside async code).

        Async connections belong to the loop that opened them, so each event loop
        gets its own engine and pool: a second ``asyncio.run`` sees a new engine,
        and the previous loop's pool is dropped.
        """
        if not dispatch.event_loop_running():
            raise UnsupportedOperationError(
                "db.async_engine belongs to the running event loop; read it inside async "
                "code (use db.sync_engine in sync code)."
            )
        return self._engines.async_engine()

    @property
    def sync_session_factory(self) -> sessionmaker[Session]:
        """A ``sessionmaker`` for sessions on ``sync_engine``, with duo-orm's session options.

        Its sessions are not ambient (ORM calls do not use them) and the caller
        commits. Under the pytest plugin's isolation they join the test's transaction.
        """
        isolation = self._isolation
        if isinstance(isolation, AsyncIsolation):
            raise UnsupportedOperationError(
                f"This async test holds {self}'s connection on its event loop, where the "
                "async driver runs it; a sync session from another thread cannot use it. "
                "Use `async with db.transaction()` in the test, make the call from async "
                "code, or write the test as a sync one."
            )
        bind: Engine | Connection = isolation.connection if isolation else self.sync_engine
        factory = self._sync_factory
        if factory is None or factory.kw["bind"] is not bind:
            options: dict[str, Any] = dict(self._session_options)
            if isolation is not None:  # BEGIN becomes a SAVEPOINT on the test's connection
                options["join_transaction_mode"] = "create_savepoint"
            factory = sessionmaker(bind=bind, class_=DuoSession, **options)
            self._sync_factory = factory
        return factory

    @property
    def async_session_factory(self) -> async_sessionmaker[AsyncSession]:
        """An ``async_sessionmaker`` for sessions on ``async_engine`` (this event loop's).

        Like ``async_engine`` it belongs to the running loop: read it inside async
        code, and again in each new loop.
        """
        isolation = self._isolation
        if isinstance(isolation, AsyncIsolation):  # the test's own loop and async driver
            isolation.check_loop()
            return async_sessionmaker(
                bind=isolation.async_connection,
                join_transaction_mode="create_savepoint",
                sync_session_class=DuoSession,
                **self._session_options,
            )
        if isinstance(isolation, SyncIsolation):  # its sync connection, via the bridge
            return async_sessionmaker(
                sync_session_class=isolation.session_class, **self._session_options
            )
        engine = self.async_engine
        factory = self._async_factory
        if factory is None or factory.kw["bind"] is not engine:
            factory = async_sessionmaker(
                bind=engine, sync_session_class=DuoSession, **self._session_options
            )
            self._async_factory = factory
        return factory

    # -- lifecycle ----------------------------------------------------------

    def connect(self) -> Any:
        """Build the engine and check that the database answers (fails fast on bad config)."""
        if self._isolation is not None:  # the test's connection is already open
            return _already_done()
        if dispatch.event_loop_running():
            return pending(self._connect_async(), None)
        self._check(lambda: self._ping_sync())
        return None

    async def _connect_async(self) -> None:
        try:
            engine = self._engines.async_engine()
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception as exc:
            error = self._connect_error(exc)
            if error is exc:  # already ours: keep its own cause (e.g. the ImportError)
                raise
            raise error from exc

    def _ping_sync(self) -> None:
        with self._engines.sync_engine().connect() as connection:
            connection.execute(text("SELECT 1"))

    def _check(self, ping: Any) -> None:
        try:
            ping()
        except Exception as exc:
            error = self._connect_error(exc)
            if error is exc:  # already ours: keep its own cause (e.g. the ImportError)
                raise
            raise error from exc

    def _connect_error(self, exc: Exception) -> Exception:
        if isinstance(exc, (ConfigurationError, UnsupportedOperationError)):
            return exc
        mapped = translate(exc)
        reason = str(mapped).strip().splitlines()[0] if str(mapped).strip() else type(exc).__name__
        # unreachable (retry later) stays apart from refused (fix the configuration)
        unreachable = isinstance(mapped, DatabaseUnavailableError)
        error = DatabaseUnavailableError if unreachable else DatabaseError
        return error(
            f"Could not connect to {self.sync_url.render_as_string(hide_password=True)}: {reason}"
        )

    def disconnect(self) -> Any:
        """Dispose every engine and pool; engines are built again on next use.

        A ``sqlite:///:memory:`` database keeps its data: it lives as long as this
        ``Database`` object, so an app's lifespan can stop and start again.
        """
        if self._isolation is not None:  # a test's app shutting down: the test owns it
            return _already_done()
        if dispatch.event_loop_running():
            return pending(self._dispose_async(), None)
        self._engines.dispose_sync()
        if self._router is not None:
            self._router.dispose_sync()
        return None

    async def _dispose_async(self) -> None:
        await self._engines.dispose_async()
        if self._router is not None:
            await self._router.dispose_async()

    def create_all(self) -> Any:
        """CREATE every table of ``db.Model`` that does not exist (tests, scripts, demos)."""
        return self._run_ddl(create=True)

    def drop_all(self) -> Any:
        """DROP every table of ``db.Model``."""
        return self._run_ddl(create=False)

    def _run_ddl(self, *, create: bool) -> Any:
        ddl = self.metadata.create_all if create else self.metadata.drop_all
        isolation = self._isolation
        if isolation is not None:  # inside the test's transaction, rolled back with it
            work = isolation.ddl(ddl)
            return _already_done() if work is None else pending(work, None)
        if dispatch.event_loop_running():

            async def run_async() -> None:
                with translated_errors():
                    async with self._engines.async_engine().begin() as connection:
                        await connection.run_sync(ddl)

            return pending(run_async(), None)
        with translated_errors(), self._engines.sync_engine().begin() as connection:
            ddl(connection)
        return None

    # -- test support (duo_orm_pytest) ----------------------------------------

    def _retarget(self, url: str | URL) -> None:
        """Point this Database at another URL (a test database); engines are rebuilt."""
        old = self._engines
        old.close()
        if self._router is not None:  # a test database has no replicas of its own
            self._router.close()
            self._router = None
        self._use_url(url, echo=old._echo, engine_options=old._options)

    def _use_url(
        self, url: str | URL, *, echo: bool, engine_options: dict[str, Any] | None
    ) -> None:
        urls = derive_urls(url)
        self.url = url if isinstance(url, str) else url.render_as_string(hide_password=True)
        self.dialect = urls.dialect
        self.sync_url: URL = urls.sync
        self.async_url: URL | None = urls.async_ if self.derive_async else None
        self._engines = Engines(
            urls, derive_async=self.derive_async, echo=echo, engine_options=engine_options
        )

    def _isolate(self) -> SyncIsolation:
        """Make every session join one sync-driver transaction until ``_end_isolation()``."""
        self._check_not_isolated()
        self._isolation = isolation = SyncIsolation(self)
        return isolation

    async def _isolate_async(self) -> Isolation:
        """Make every session join one transaction on this event loop's async driver.

        A Database without an async side (``derive_async=False``) stays on its sync one.
        """
        if not self.derive_async:
            return self._isolate()
        self._check_not_isolated()
        isolation = await AsyncIsolation(self).open()
        self._isolation = isolation
        return isolation

    def _check_not_isolated(self) -> None:
        if self._isolation is not None:
            raise UnsupportedOperationError(f"{self!r} is already isolated for a test.")

    def _end_isolation(self) -> None:
        """Roll back everything since ``_isolate()``; sessions use the engines again."""
        isolation, self._isolation = self._isolation, None
        if isinstance(isolation, SyncIsolation):
            isolation.end()

    async def _end_isolation_async(self) -> None:
        """Roll back everything since ``_isolate_async()``, on the test's loop."""
        isolation, self._isolation = self._isolation, None
        if isinstance(isolation, AsyncIsolation):
            await isolation.end()
        elif isinstance(isolation, SyncIsolation):
            isolation.end()

    # -- internals used by dispatch and transactions --------------------------

    def _pool_capacity(self) -> int | None:
        """How many connections the async pool can hand out at once (None: no limit)."""
        if self._isolation is not None:  # one shared connection, no pool to exhaust
            return None
        pool = self._engines.async_engine().sync_engine.pool
        if isinstance(pool, QueuePool):
            overflow = pool._max_overflow
            return None if overflow < 0 else pool.size() + overflow
        return None

    def _current_frame(self, access: Access | None = None) -> Frame | None:
        """The active transaction's frame, or ``None`` for statement mode.

        ``access`` is that of the ORM call asking (``None``: not an ORM call).
        A request's read before anything has begun its transaction runs on its
        own (one autocommit statement, no BEGIN); its first write begins it.
        """
        dispatch.refuse_in_lone_hooks()  # a db.transaction() in a hook of a lone write
        frame = self._ambient_frame()
        if isinstance(frame, DeferredFrame):
            if (
                frame.frame is None
                and access is not None
                and access != "write"
                and frame.lone is None  # a read after a lone write must see it
            ):
                return None
            frame = frame.resolve(write=access == "write")
        return frame if frame is not None and frame.active else None

    def _may_read_replica(self) -> bool:
        """A read may go to a replica unless it comes before the first write of a
        request that may write (which must not build that write on stale rows)."""
        ambient = self._ambient_frame()
        return not isinstance(ambient, DeferredFrame) or ambient.reads_only

    def _ambient_frame(self) -> Frame | DeferredFrame | None:
        """This context's transaction: a block's frame, a request's deferred one (made
        now if nothing asked for it before), or ``None`` for statement mode."""
        ambient = self._ambient.get()
        if isinstance(ambient, RequestFrames):
            return ambient.deferred_for(self)
        return ambient

    def _new_sync_session(self, access: Access = "write") -> Session:
        if access == "write" or self._isolation is not None:
            return self.sync_session_factory()
        primary = self._engines.sync_engine(access)
        if self._router is not None and self._may_read_replica():  # duo_orm.routing
            return self._router.sync_session(primary, access, self._session_options)
        return self.sync_session_factory(bind=primary)

    def _new_async_session(self, access: Access = "write") -> AsyncSession:
        if not self.derive_async:
            raise ConfigurationError(
                "This Database was created with derive_async=False and has no async engine. "
                "Make this call from sync code, or create the Database with derive_async=True."
            )
        if access == "write" or self._isolation is not None:
            return self.async_session_factory()
        primary = self._engines.async_engine(access)
        if self._router is not None and self._may_read_replica():  # duo_orm.routing
            return self._router.async_session(primary, access, self._session_options)
        return self.async_session_factory(bind=primary)


def _already_done() -> Any:
    """What a call returns when its work ran at once: ``None``, or in async code an
    awaitable of it (the caller writes ``await`` either way)."""
    return pending(_done(), None) if dispatch.event_loop_running() else None


async def _done() -> None:
    """Nothing to wait for."""


class StandaloneSession:
    """``with`` gives a ``Session``, ``async with`` an ``AsyncSession``; neither is ambient."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._sync: Session | None = None
        self._async: AsyncSession | None = None

    def __enter__(self) -> Session:
        self._sync = self._db._new_sync_session()
        return self._sync

    def __exit__(self, *exc_info: object) -> None:
        assert self._sync is not None
        self._sync.close()

    async def __aenter__(self) -> AsyncSession:
        self._async = self._db._new_async_session()
        return self._async

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._async is not None
        await self._async.close()


def _model_base(
    db: Database, naming_convention: Mapping[str, Any] | None
) -> type[DeclarativeModel]:
    metadata = MetaData(naming_convention=dict(naming_convention or {}) or None)
    base = type(
        "Model",
        (Model, DeclarativeBase),
        # _db: duo-orm 0.1's name for the model's Database (``Order._db.transaction()``)
        {"__module__": __name__, "metadata": metadata, "__duo_database__": db, "_db": db},
    )
    return cast("type[DeclarativeModel]", base)
