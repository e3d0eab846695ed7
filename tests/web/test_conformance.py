"""DESIGN.md section 3, items 1-10, checked over HTTP for every adapter.

Each test runs per framework, for ``async def`` and ``def`` handlers, on every
database backend. The apps are built by ``apps_<framework>.make_app``.
"""

from __future__ import annotations

import socket

import anyio
import httpx
import pytest
import uvicorn

from duo_orm import Database

from .conftest import FRAMEWORKS, Served, factory
from .scenario import LATER_ONLY, define_shop, startup_failure

pytestmark = pytest.mark.anyio


async def test_2xx_commits_before_the_response(served: Served) -> None:
    response = await served.client.post("/items", json={"name": "a"})
    assert response.status_code == 201
    assert served.names() == ["a"]  # committed by the time the client has the response
    assert (await served.client.get(f"/items/{response.json()['id']}")).json()["name"] == "a"


async def test_3xx_commits(served: Served) -> None:
    response = await served.client.post("/items/then-redirect", json={"name": "r"})
    assert response.status_code == 303
    assert served.names() == ["r"]


async def test_http_error_after_a_write_rolls_back(served: Served) -> None:
    response = await served.client.post("/items/then-http-error", json={"name": "x"})
    assert response.status_code == 400
    assert "refused after writing" in response.text  # in the framework's own error shape
    assert served.names() == []


async def test_unhandled_exception_rolls_back_and_is_a_bare_500(served: Served) -> None:
    transport = httpx.ASGITransport(app=served.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.post("/items/then-crash", json={"name": "x"})
    assert response.status_code == 500
    assert "boom" not in response.text and "Traceback" not in response.text
    assert served.names() == []


async def test_failed_commit_is_never_reported_as_success(served: Served) -> None:
    # The foreign key is DEFERRED: the handler succeeds, the COMMIT is refused.
    response = await served.client.post("/items", json={"name": "orphan", "ref_id": 999})
    assert response.status_code == 409
    body = response.json()
    assert "detail" in body and "INSERT" not in response.text and "999" not in response.text
    assert served.names() == []


async def test_validation_error_is_422_naming_the_field(served: Served) -> None:
    response = await served.client.post("/items", json={"name": "invalid"})
    assert response.status_code == 422
    body = response.json()
    if served.framework == "litestar":  # Litestar's own error shape
        assert body["status_code"] == 422
        [error] = body["extra"]
        assert error["key"] == "name" and "invalid" in error["message"]
    else:  # FastAPI's (Starlette's adapter uses the same)
        [error] = body["detail"]
        assert error["loc"] == ["body", "name"] and "invalid" in error["msg"]
    assert served.names() == []


async def test_bad_body_is_the_frameworks_own_error(served: Served) -> None:
    response = await served.client.post("/items", json={"nome": "a"})
    assert response.status_code == (400 if served.framework == "litestar" else 422)
    assert served.names() == []


async def test_not_found_is_404(served: Served) -> None:
    response = await served.client.get("/items/12345")
    assert response.status_code == 404
    assert "not found" in response.json()["detail"]


async def test_bad_sort_field_is_400(served: Served) -> None:
    response = await served.client.get("/items", params={"sort": "name; DROP TABLE items"})
    assert response.status_code == 400
    assert "sortable fields are: id, name" in response.json()["detail"]
    assert (await served.client.get("/items", params={"sort": "-name"})).status_code == 200


async def test_unique_conflict_is_409_and_keeps_the_first_row(served: Served) -> None:
    assert (await served.client.post("/items", json={"name": "dup"})).status_code == 201
    response = await served.client.post("/items", json={"name": "dup"})
    assert response.status_code == 409
    assert "unique" in response.json()["detail"]
    assert served.names() == ["dup"]


async def test_nested_savepoint_inside_the_request(served: Served) -> None:
    response = await served.client.post("/items/nested", json={"name": "n"})
    assert response.status_code == 201 and response.json() == {"count": 2}
    assert served.names() == ["n", "n-2"]


async def test_route_without_database_opens_no_connection(served: Served) -> None:
    pool = served.pool()
    before = pool.checkedout()
    response = await served.client.get("/nodb")
    assert response.status_code == 200
    assert pool.checkedout() == before == 0


async def test_streaming_commits_before_the_body_and_releases_the_connection(
    served: Served,
) -> None:
    response = await served.client.post("/items/stream", json={"name": "s"})
    assert response.status_code == 200
    assert response.text == "start;committed=1"  # the body saw the committed row
    assert served.pool().checkedout() == 0


async def test_background_task_does_not_reuse_the_request_session(served: Served) -> None:
    response = await served.client.post("/items/background", json={"name": "b"})
    assert response.status_code == 201
    for _ in range(100):
        if served.shop.background:
            break
        await anyio.sleep(0.01)
    assert served.shop.background == [("b", False)]  # statement mode, not the request's
    assert served.names() == ["b", "b-bg"]


async def test_background_task_of_a_request_that_wrote_nothing_runs_on_its_own(
    served: Served,
) -> None:
    # the request's transaction is first asked for after the response started
    response = await served.client.post("/items/background", json={"name": LATER_ONLY})
    assert response.status_code == 201
    for _ in range(100):
        if served.shop.background:
            break
        await anyio.sleep(0.01)
    assert served.shop.background == [(LATER_ONLY, False)]
    assert served.names() == [f"{LATER_ONLY}-bg"]
    assert served.pool().checkedout() == 0


async def test_200_concurrent_requests_no_cross_talk_no_lost_writes(served: Served) -> None:
    results: dict[int, httpx.Response] = {}

    async def one(n: int) -> None:  # half with the session dependency, half without
        path = "/items/tagged" if n % 2 else "/items"
        results[n] = await served.client.post(path, json={"name": f"c{n}"})

    async with anyio.create_task_group() as tg:
        for n in range(200):
            tg.start_soon(one, n)
    assert sorted(r.status_code for r in results.values()) == [201] * 200
    assert all(r.json() == {"own_session": True} for n, r in results.items() if n % 2)
    assert len(served.names()) == 200
    assert served.pool().checkedout() == 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_client_disconnect_rolls_back_and_returns_the_connection(served: Served) -> None:
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(served.app, host="127.0.0.1", port=port, lifespan="off", log_level="error")
    )
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve)
        while not server.started:
            await anyio.sleep(0.01)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=0.3) as client:
            with pytest.raises(httpx.ReadTimeout):  # the client gives up and hangs up
                await client.post("/items/slow", json={"name": "gone"})
        await anyio.sleep(1.5)  # the handler finishes its work after the client left
        server.should_exit = True
    assert served.names() == []
    assert served.pool().checkedout() == 0


@pytest.mark.parametrize("framework_name", FRAMEWORKS)
async def test_unreachable_database_fails_startup_clearly(framework_name: str) -> None:
    db = Database("postgresql://duo@127.0.0.1:1/nowhere")
    app = factory(framework_name)(define_shop(db), "async")
    message = await startup_failure(app)
    assert "Could not connect" in message and "127.0.0.1" in message
