"""The framework-neutral web layer the FastAPI, Starlette and Litestar adapters share.

Nothing here imports a web framework: it speaks ASGI, HTTP status codes and
plain dicts, and each adapter turns that into its framework's own types.
"""

from .asgi import UnitOfWorkMiddleware
from .errors import ErrorInfo, classify, problem_body
from .lifespan import compose_lifespan, databases_connected
from .unit_of_work import RequestState, open_unit, request_state

__all__ = [
    "ErrorInfo",
    "RequestState",
    "UnitOfWorkMiddleware",
    "classify",
    "compose_lifespan",
    "databases_connected",
    "open_unit",
    "problem_body",
    "request_state",
]
