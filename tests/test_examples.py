"""The example apps (examples/fastapi_app, examples/starlette_app): one users API, end to
end over HTTP on SQLite, whichever framework serves it.

They are tested the way a user tests their app: the duo-orm pytest plugin rolls each
test back (its ``duo_orm_databases`` overridden below to name the examples' Database),
and its ``async_client`` runs each app's lifespan.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from duo_orm import Database

# The example reads its URL at import, as a deployed app would.
os.environ["DATABASE_URL"] = f"sqlite:///{Path(tempfile.mkdtemp()) / 'example.db'}"

from examples.fastapi_app.db.database import db
from examples.fastapi_app.main import app as fastapi_app
from examples.litestar_app.main import app as litestar_app
from examples.starlette_app.main import app as starlette_app

pytestmark = pytest.mark.anyio


APPS = {"fastapi": fastapi_app, "starlette": starlette_app, "litestar": litestar_app}


def invalid_field(body: dict[str, Any]) -> str:
    """The field a 422 names, in FastAPI's shape or in Litestar's."""
    if "extra" in body:
        return str(body["extra"][0]["key"])
    return str(body["detail"][0]["loc"][-1])


@pytest.fixture(scope="session")
def duo_orm_databases() -> Iterator[list[Database]]:
    """The plugin rolls back each test here on the examples' Database (tables made once)."""
    db.create_all()
    yield [db]
    db.disconnect()


@pytest.fixture(params=sorted(APPS))
def duo_orm_app(request: pytest.FixtureRequest) -> Any:
    return APPS[request.param]


@pytest.fixture
def client(async_client: httpx.AsyncClient) -> httpx.AsyncClient:
    """The plugin's ``async_client`` over each example app, lifespan running."""
    return async_client


async def create(client: httpx.AsyncClient, email: str, name: str) -> dict[str, object]:
    response = await client.post("/users/", json={"email": email, "name": name})
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


async def test_create_list_and_get(client: httpx.AsyncClient) -> None:
    ann = await create(client, "ann@x.io", "Ann")
    await create(client, "bob@x.io", "Bob")
    assert set(ann) == {"id", "email", "name", "active", "created_at", "updated_at"}
    listed = (await client.get("/users/")).json()["items"]
    assert [u["email"] for u in listed] == ["ann@x.io", "bob@x.io"]
    by_name = (await client.get("/users/", params={"sort": "-name"})).json()["items"]
    assert [u["name"] for u in by_name] == ["Bob", "Ann"]
    assert (await client.get(f"/users/{ann['id']}")).json()["name"] == "Ann"


async def test_patch_changes_only_what_was_sent(client: httpx.AsyncClient) -> None:
    ann = await create(client, "ann@x.io", "Ann")
    response = await client.patch(f"/users/{ann['id']}", json={"name": "Annie"})
    assert response.status_code == 200
    body = response.json()
    assert (body["name"], body["email"], body["active"]) == ("Annie", "ann@x.io", True)
    assert body["updated_at"] > ann["updated_at"]  # type: ignore[operator]
    bad = await client.patch(f"/users/{ann['id']}", json={"email": "no-at-sign"})
    assert bad.status_code == 422
    assert (await client.get(f"/users/{ann['id']}")).json()["email"] == "ann@x.io"


async def test_missing_user_is_404(client: httpx.AsyncClient) -> None:
    assert (await client.get("/users/999")).status_code == 404
    response = await client.patch("/users/999", json={"name": "X"})
    assert response.status_code == 404 and "not found" in response.json()["detail"]


async def test_validate_failure_and_bad_body_are_422(client: httpx.AsyncClient) -> None:
    refused = await client.post("/users/", json={"email": "nope", "name": "N"})
    assert refused.status_code == 422 and invalid_field(refused.json()) == "email"
    blank = await client.post("/users/", json={"email": "b@x.io", "name": "  "})
    assert blank.status_code == 422 and invalid_field(blank.json()) == "name"
    missing = await client.post("/users/", json={"email": "c@x.io"})
    assert missing.status_code in (400, 422)  # Litestar's own status for a bad body is 400
    assert invalid_field(missing.json()) == "name"
    assert (await client.get("/users/")).json()["items"] == []


async def test_duplicate_email_is_409(client: httpx.AsyncClient) -> None:
    await create(client, "ann@x.io", "Ann")
    response = await client.post("/users/", json={"email": "ann@x.io", "name": "Other"})
    assert response.status_code == 409
    assert [u["name"] for u in (await client.get("/users/")).json()["items"]] == ["Ann"]


async def test_bulk_bump_runs_hooks_per_row(client: httpx.AsyncClient) -> None:
    before = [await create(client, f"u{i}@x.io", f"U{i}") for i in range(3)]
    response = await client.post("/users/bulk-bump")
    assert response.status_code == 200 and response.json() == 3
    after = (await client.get("/users/")).json()["items"]
    assert [u["name"] for u in after] == ["U0!", "U1!", "U2!"]
    assert all(a["updated_at"] > b["updated_at"] for a, b in zip(after, before, strict=True))


async def test_list_filters_sorts_and_pages_both_ways(client: httpx.AsyncClient) -> None:
    for name in ["Cy", "Ann", "Bob", "Anna", "Dee"]:
        await create(client, f"{name.lower()}@x.io", name)

    async def names(**params: Any) -> tuple[list[str], dict[str, Any]]:
        response = await client.get("/users/", params=params)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return [u["name"] for u in body.pop("items")], body

    assert (await names(name__icontains="ANN", sort="-name"))[0] == ["Anna", "Ann"]
    assert (await names(name="Bob"))[0] == ["Bob"]
    assert (await names(sort="-created_at,name", size=2))[0] == ["Dee", "Anna"]
    second, meta = await names(sort="name", size=2, page=2)
    assert second == ["Bob", "Cy"] and (meta["page"], meta["total"]) == (2, 5)
    first, meta = await names(sort="-id", size=3, cursor="")
    assert first == ["Dee", "Anna", "Bob"] and meta["total"] is None
    rest = (await client.get(str(meta["next"]))).json()
    assert [u["name"] for u in rest["items"]] == ["Ann", "Cy"] and rest["next"] is None
    for bad in ({"updated_at__lt": "2030-01-01"}, {"size": 101}, {"cursor": "forged.cursor"}):
        refused = await client.get("/users/", params=bad)
        assert refused.status_code == 400 and len(refused.content) <= 4096, bad


async def test_bad_sort_is_400(client: httpx.AsyncClient) -> None:
    response = await client.get("/users/", params={"sort": "email desc"})
    assert response.status_code == 400


async def test_litestar_openapi_lists_the_error_responses() -> None:
    transport = httpx.ASGITransport(app=litestar_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        paths = (await client.get("/schema/openapi.json")).json()["paths"]
    assert {"404", "409", "422", "503"} <= set(paths["/users/{user_id}"]["patch"]["responses"])
    assert {"409", "422", "503"} <= set(paths["/users"]["post"]["responses"])
    listing = paths["/users"]["get"]["responses"]
    assert {"400", "503"} <= set(listing) and not {"404", "409"} & set(listing)


async def test_fastapi_openapi_lists_the_error_responses() -> None:
    transport = httpx.ASGITransport(app=fastapi_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        paths = (await client.get("/openapi.json")).json()["paths"]
    assert {"404", "409", "422", "503"} <= set(paths["/users/{user_id}"]["patch"]["responses"])
    assert {"409", "422", "503"} <= set(paths["/users/"]["post"]["responses"])
    listing = paths["/users/"]["get"]["responses"]
    assert {"400", "503"} <= set(listing) and not {"404", "409"} & set(listing)
    error = paths["/users/"]["post"]["responses"]["409"]["content"]["application/json"]["schema"]
    assert error["properties"]["detail"]["type"] == "string"


async def test_hostile_requests_get_documented_bounded_answers(client: httpx.AsyncClient) -> None:
    """A 60 KB sort, a sort by a hidden name, bad JSON, JSON 1,000 deep: each answer is
    a bounded error in the app's shape whose status its OpenAPI lists (Starlette has
    no OpenAPI; Litestar's own 500 for the deep JSON is the framework's, issue 14)."""
    ann = await create(client, "ann@x.io", "Ann")
    openapi = await client.get("/openapi.json")
    if openapi.status_code == 404:
        openapi = await client.get("/schema/openapi.json")
    paths = openapi.json()["paths"] if openapi.status_code == 200 else None
    headers = {"content-type": "application/json"}
    deep = ("[" * 1000 + "]" * 1000).encode()
    tried = [
        ("get", "/users/", {"params": {"sort": "x" * 60_000}}),
        ("get", "/users/", {"params": {"sort": "-active"}}),  # a field, but not sortable
        ("post", "/users/", {"content": b'{"email": ', "headers": headers}),
        ("post", "/users/", {"content": deep, "headers": headers}),
        ("patch", f"/users/{ann['id']}", {"content": b"[", "headers": headers}),
        ("get", "/users/987654", {}),
    ]
    for method, url, options in tried:
        response = await client.request(method, url, **options)
        litestar_own_500 = {"status_code": 500, "detail": "Internal Server Error"}
        assert 400 <= response.status_code < 500 or (
            options.get("content") == deep and response.json() == litestar_own_500
        ), (url, response.status_code)
        assert len(response.content) <= 4096 and response.json()
        if paths is not None and response.status_code < 500:
            template = (
                "/users/{user_id}"
                if url[-1].isdigit()
                else next(p for p in paths if p.rstrip("/") == "/users")
            )
            assert str(response.status_code) in paths[template][method]["responses"], url
    hidden = await client.get("/users/", params={"sort": "-active"})
    assert "sortable fields are: id, email, name, created_at, updated_at" in hidden.text
    assert [u["email"] for u in (await client.get("/users/")).json()["items"]] == ["ann@x.io"]
