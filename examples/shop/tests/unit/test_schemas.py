"""Fast unit tests of the pydantic request/response models (no HTTP)."""
import pytest
from pydantic import ValidationError

from shop.main import ItemIn, ItemOut
from shop.models import Item


def test_valid_item_in():
    item = ItemIn(name="  lamp ", price_cents=2500, stock=2)
    assert item.name == "lamp"
    assert item.model_dump() == {"name": "lamp", "price_cents": 2500, "stock": 2}


def test_negative_price_is_rejected():
    with pytest.raises(ValidationError):
        ItemIn(name="lamp", price_cents=-1)


@pytest.mark.parametrize("name", ["", "   "])
def test_empty_name_is_rejected(name):
    with pytest.raises(ValidationError):
        ItemIn(name=name, price_cents=100)


def test_item_out_from_orm_object():
    out = ItemOut.model_validate(Item(id=7, name="cup", price_cents=300, stock=1))
    assert out.id == 7 and out.name == "cup"
