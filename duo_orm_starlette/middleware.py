"""The Starlette request transaction (pure ASGI) and engine lifespan."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp

from duo_orm import Database
from duo_orm.web import UnitOfWorkMiddleware, compose_lifespan
from duo_orm.web.errors import ErrorStyle, render
from duo_orm.web.routes import endpoint_opted_out

Lifespan = Callable[[Any], AbstractAsyncContextManager[Any]]


class DuoORMMiddleware(UnitOfWorkMiddleware):
    """Every HTTP request runs in one transaction per database.

    It takes a connection only at the first statement, commits just before a
    2xx/3xx response starts, rolls back for anything else (or an exception, or a
    client that left), and answers 409/500 instead when the commit fails. A
    ``ClientDisconnect`` (the client left while its body was read or the response
    streamed) ends the request quietly, with an INFO line instead of a traceback.
    Websocket and lifespan scopes pass through. ``exclude_paths`` get no request
    transaction (their calls run in statement mode), nor do endpoints decorated
    with ``@statement_mode``; ``read_only_paths`` always roll back.
    """

    def __init__(
        self,
        app: ASGIApp,
        db: Database | None = None,
        *,
        databases: Sequence[Database] = (),
        error_style: ErrorStyle = "native",
        exclude_paths: Sequence[str] = (),
        read_only_paths: Sequence[str] = (),
    ) -> None:
        chosen = ([db] if db is not None else []) + list(databases)
        if not chosen:
            raise TypeError("DuoORMMiddleware needs db= (or databases=)")
        super().__init__(
            app,
            databases=chosen,
            render_error=lambda info: render(info, error_style),
            exclude_paths=exclude_paths,
            read_only_paths=read_only_paths,
            route_opted_out=endpoint_opted_out,
            client_gone_errors=(ClientDisconnect,),
        )


def duo_lifespan(*databases: Database, lifespan: Lifespan | None = None) -> Lifespan:
    """``Starlette(lifespan=duo_lifespan(db))``: connect at startup, dispose at shutdown.

    Your own lifespan, passed as ``lifespan=``, runs inside with the databases connected.
    """
    return compose_lifespan(databases, lifespan)
