"""``sqlite:///:memory:`` outlives an app's lifespan: two test clients in a row see one database.

Each ``with TestClient(app)`` runs the adapter's startup and shutdown (``db.connect()``
then ``db.disconnect()``); the data must still be there for the next one.
"""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from duo_orm import Database

from .conftest import FRAMEWORKS, factory
from .scenario import Handlers, define_shop


@pytest.mark.parametrize("handlers", ["async", "sync"])
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_memory_database_survives_a_lifespan_restart(framework: str, handlers: Handlers) -> None:
    db = Database("sqlite:///:memory:")
    shop = define_shop(db)
    db.create_all()
    app = factory(framework)(shop, handlers)
    with TestClient(app) as client:
        assert client.post("/items", json={"name": "kept"}).status_code == 201
    with TestClient(app) as client:  # a second startup after the first shutdown
        listing = client.get("/items")
        assert listing.status_code == 200, listing.text
        assert listing.json() == ["kept"]
        assert client.post("/items", json={"name": "more"}).status_code == 201
    assert sorted(item.name for item in shop.Item.all()) == ["kept", "more"]
    db.disconnect()
