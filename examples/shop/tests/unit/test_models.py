"""Fast unit tests of the ORM model and pure helpers (no HTTP)."""
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from shop.db import init_db, make_engine
from shop.models import Item, format_price


@pytest.fixture
def session():
    engine = make_engine("sqlite:///:memory:")
    init_db(engine)
    with Session(engine) as s:
        yield s
    engine.dispose()


@pytest.mark.parametrize(
    ("cents", "expected"),
    [(5, "$0.05"), (123456789, "$1,234,567.89"), (-1250, "-$12.50")],
)
def test_format_price(cents, expected):
    assert format_price(cents) == expected


def test_item_insert_and_read_back(session):
    session.add(Item(name="mug", price_cents=799, stock=3))
    session.commit()
    item = session.scalars(select(Item).where(Item.name == "mug")).one()
    assert item.id is not None
    assert (item.price_cents, item.stock) == (799, 3)


def test_item_stock_defaults_to_zero(session):
    item = Item(name="pen", price_cents=150)
    session.add(item)
    session.commit()
    assert item.stock == 0


def test_item_repr_mentions_name():
    assert "mug" in repr(Item(name="mug", price_cents=1))
