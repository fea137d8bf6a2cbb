from __future__ import annotations

import threading

import pytest

from app.payments import (
    Conflict,
    NotFound,
    PaymentRequest,
    PaymentStore,
    ValidationError,
    parse_payment_request,
)

TOKEN = "tok_abcdefghijklmnop1234"


def _request(amount: int = 100) -> PaymentRequest:
    return PaymentRequest(amount=amount, currency="USD", card_token=TOKEN)


def test_parse_accepts_a_valid_request_without_description() -> None:
    parsed = parse_payment_request({"amount": 1, "currency": "JPY", "card_token": TOKEN})
    assert parsed == PaymentRequest(1, "JPY", TOKEN, None)


def test_parse_collects_every_problem_at_once() -> None:
    with pytest.raises(ValidationError) as err:
        parse_payment_request({"amount": -1, "currency": 5, "card_token": "x", "foo": 1})
    assert set(err.value.errors) == {"amount", "currency", "card_token", "body"}


def test_store_evicts_the_oldest_payment_beyond_capacity() -> None:
    store = PaymentStore(capacity=2)
    first, _ = store.create(_request(1), "key-first-1")
    store.create(_request(2))
    store.create(_request(3))
    assert len(store) == 2
    with pytest.raises(NotFound):
        store.get(first.id)
    # the evicted payment's idempotency key no longer replays it
    again, created = store.create(_request(1), "key-first-1")
    assert created and again.id != first.id


def test_store_rejects_a_capacity_below_one() -> None:
    with pytest.raises(ValueError, match="at least 1, got 0"):
        PaymentStore(capacity=0)


def test_reused_key_with_other_request_conflicts() -> None:
    store = PaymentStore()
    store.create(_request(1), "same-key-123")
    with pytest.raises(Conflict):
        store.create(_request(2), "same-key-123")


def test_concurrent_refunds_never_exceed_the_amount() -> None:
    store = PaymentStore()
    payment, _ = store.create(_request(100))
    errors: list[Exception] = []

    def refund() -> None:
        try:
            store.refund(payment.id, {"amount": 7})
        except (ValidationError, Conflict) as exc:
            errors.append(exc)

    threads = [threading.Thread(target=refund) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.get(payment.id).refunded == 98  # 14 refunds of 7 fit into 100
    assert len(errors) == 6


def test_payment_status_follows_refunds() -> None:
    store = PaymentStore()
    payment, _ = store.create(_request(10))
    assert payment.status == "authorized"
    store.refund(payment.id, {"amount": 4})
    assert payment.status == "partially_refunded"
    store.refund(payment.id, None)
    assert payment.status == "refunded"
