"""HTTP client fixture for the integration tests.

With SHOP_BASE_URL set (e.g. http://127.0.0.1:8000) the tests talk to that live
server over HTTP; otherwise they run in-process against shop.main.app through
FastAPI's TestClient.
"""
import os

import pytest


@pytest.fixture(scope="session")
def client():
    base_url = os.environ.get("SHOP_BASE_URL")
    if base_url:
        import httpx

        with httpx.Client(base_url=base_url, timeout=10.0) as c:
            yield c
    else:
        from fastapi.testclient import TestClient

        from shop.main import app

        with TestClient(app) as c:
            yield c


@pytest.fixture
def make_item(client):
    """Create an item through the API and return its JSON."""

    def _make(name="widget", price_cents=1000, stock=5):
        r = client.post("/items", json={"name": name, "price_cents": price_cents, "stock": stock})
        assert r.status_code == 201, r.text
        return r.json()

    return _make
