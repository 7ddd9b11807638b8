"""Small pytest-benchmark tests of cheap operations."""
import pytest
from sqlalchemy.orm import Session

from shop.db import init_db, make_engine
from shop.main import ItemIn
from shop.models import Item, format_price


def test_bench_format_price(benchmark):
    assert benchmark(format_price, 123456789) == "$1,234,567.89"


def test_bench_item_validation(benchmark):
    payload = {"name": "lamp", "price_cents": 2500, "stock": 2}
    item = benchmark(ItemIn.model_validate, payload)
    assert item.price_cents == 2500


@pytest.fixture
def session():
    engine = make_engine("sqlite:///:memory:")
    init_db(engine)
    with Session(engine) as s:
        yield s
    engine.dispose()


def test_bench_orm_insert(benchmark, session):
    def insert():
        item = Item(name="mug", price_cents=799, stock=3)
        session.add(item)
        session.commit()
        return item.id

    assert benchmark(insert) >= 1
