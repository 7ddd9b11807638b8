import os

from sqlalchemy import create_engine
from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker
from sqlalchemy.pool import StaticPool

from shop.models import Base

DEFAULT_DATABASE_URL = "sqlite:///:memory:"


def make_engine(url: str | None = None) -> Engine:
    url = url or os.environ.get("SHOP_DATABASE_URL", DEFAULT_DATABASE_URL)
    if url.startswith("sqlite") and (":memory:" in url or url in ("sqlite://", "sqlite:///")):
        # One shared connection, so every session sees the same in-memory DB.
        return create_engine(
            url, connect_args={"check_same_thread": False}, poolclass=StaticPool
        )
    if url.startswith("sqlite"):
        return create_engine(url, connect_args={"check_same_thread": False})
    return create_engine(url, pool_pre_ping=True)


engine = make_engine()
SessionLocal = sessionmaker(bind=engine, expire_on_commit=False)


def init_db(bind: Engine = engine) -> None:
    Base.metadata.create_all(bind)


def get_session():
    with SessionLocal() as session:
        yield session
