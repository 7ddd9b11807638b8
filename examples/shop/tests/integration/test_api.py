"""End-to-end tests of the HTTP API. Each test creates the items it needs."""
import os
import uuid

import pytest

pytestmark = pytest.mark.integration


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_health(client):
    r = client.get("/health")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


def test_database_is_the_configured_one(client):
    r = client.get("/info")
    assert r.status_code == 200
    # testdock's backend run serves the app on PostgreSQL and says so through this variable
    assert r.json()["database"] == os.environ.get("SHOP_EXPECT_DATABASE", "sqlite")


def test_create_and_get_item(client, make_item):
    name = unique("lamp")
    created = make_item(name=name, price_cents=2500, stock=2)
    r = client.get(f"/items/{created['id']}")
    assert r.status_code == 200
    assert r.json() == {"id": created["id"], "name": name, "price_cents": 2500, "stock": 2}


def test_list_contains_created_items(client, make_item):
    ids = {make_item(name=unique("cup"))["id"] for _ in range(3)}
    r = client.get("/items")
    assert r.status_code == 200
    assert ids <= {item["id"] for item in r.json()}


def test_delete_item(client, make_item):
    item_id = make_item(name=unique("pen"))["id"]
    assert client.delete(f"/items/{item_id}").status_code == 204
    assert client.get(f"/items/{item_id}").status_code == 404
    assert client.delete(f"/items/{item_id}").status_code == 404


def test_missing_item_is_404(client):
    r = client.get("/items/999999999")
    assert r.status_code == 404
    assert r.json() == {"detail": "item not found"}


@pytest.mark.parametrize(
    "payload",
    [
        {"name": "bad", "price_cents": -1},
        {"name": "", "price_cents": 100},
        {"price_cents": 100},
    ],
)
def test_invalid_item_is_422(client, payload):
    assert client.post("/items", json=payload).status_code == 422
