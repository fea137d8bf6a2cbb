from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from app.payments import PaymentStore

VALID_TOKEN = "tok_4242424242424242abcd"


@pytest.fixture
def store() -> PaymentStore:
    return PaymentStore(capacity=100)


@pytest.fixture
def app(store: PaymentStore) -> Iterator[Flask]:
    application = create_app(store=store)
    application.testing = True
    yield application


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def payment_body() -> dict[str, object]:
    return {"amount": 1250, "currency": "EUR", "card_token": VALID_TOKEN, "description": "order 42"}
