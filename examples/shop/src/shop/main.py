from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from shop.db import engine, get_session, init_db
from shop.models import Item


class ItemIn(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=200)
    price_cents: int = Field(ge=0)
    stock: int = Field(default=0, ge=0)


class ItemOut(ItemIn):
    model_config = ConfigDict(from_attributes=True, str_strip_whitespace=True)

    id: int


init_db()  # create the tables at import, before the first request

app = FastAPI(title="shop")

SessionDep = Annotated[Session, Depends(get_session)]


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/info")
def info() -> dict[str, str]:
    return {"database": engine.dialect.name}


@app.get("/items", response_model=list[ItemOut])
def list_items(session: SessionDep):
    return session.scalars(select(Item).order_by(Item.id)).all()


@app.post("/items", response_model=ItemOut, status_code=201)
def create_item(body: ItemIn, session: SessionDep):
    item = Item(**body.model_dump())
    session.add(item)
    session.commit()
    return item


@app.get("/items/{item_id}", response_model=ItemOut)
def get_item(item_id: int, session: SessionDep):
    item = session.get(Item, item_id)
    if item is None:
        raise HTTPException(status_code=404, detail="item not found")
    return item


@app.delete("/items/{item_id}", status_code=204)
def delete_item(item_id: int, session: SessionDep) -> None:
    item = session.get(Item, item_id)
    if item is None:
        raise HTTPException(status_code=404, detail="item not found")
    session.delete(item)
    session.commit()
