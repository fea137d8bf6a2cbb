from __future__ import annotations

import json
import logging

import pytest
from flask.testing import FlaskClient

from app.payments import MAX_AMOUNT, PaymentStore


def test_health_answers_ok(client: FlaskClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_create_payment_returns_201_with_location_and_masked_token(
    client: FlaskClient, payment_body: dict[str, object]
) -> None:
    response = client.post("/payments", json=payment_body)
    assert response.status_code == 201
    body = response.get_json()
    assert body["status"] == "authorized"
    assert body["amount"] == 1250 and body["currency"] == "EUR"
    assert body["card"] == {"token_last4": "abcd"}
    assert payment_body["card_token"] not in response.get_data(as_text=True)
    assert response.headers["Location"] == f"/payments/{body['id']}"


def test_created_payment_can_be_read_back(
    client: FlaskClient, payment_body: dict[str, object]
) -> None:
    created = client.post("/payments", json=payment_body).get_json()
    response = client.get(f"/payments/{created['id']}")
    assert response.status_code == 200
    assert response.get_json() == created


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("amount", 0, "between 1 and"),
        ("amount", MAX_AMOUNT + 1, "between 1 and"),
        ("amount", 12.5, "integer in minor units"),
        ("amount", True, "integer in minor units"),
        ("amount", "1250", "integer in minor units"),
        ("currency", "eur", "must be one of"),
        ("currency", "XXX", "must be one of"),
        ("card_token", "4242 4242 4242 4242", "looks like a card number"),
        ("card_token", "tok_short", "16 to 64"),
        ("card_token", 42, "must be a string"),
        ("description", "x" * 201, "at most 200"),
        ("description", "line\nbreak", "control characters"),
    ],
)
def test_rejects_invalid_field_with_400_naming_it(
    client: FlaskClient, payment_body: dict[str, object], field: str, value: object, message: str
) -> None:
    response = client.post("/payments", json={**payment_body, field: value})
    assert response.status_code == 400
    details = response.get_json()["details"]
    assert message in details[field]


def test_rejects_missing_fields_listing_each(client: FlaskClient) -> None:
    response = client.post("/payments", json={})
    assert response.status_code == 400
    assert set(response.get_json()["details"]) == {"amount", "currency", "card_token"}


def test_rejects_unknown_fields(client: FlaskClient, payment_body: dict[str, object]) -> None:
    response = client.post("/payments", json={**payment_body, "cvv": "123"})
    assert response.status_code == 400
    assert "cvv" in response.get_json()["details"]["body"]


def test_rejects_a_body_that_is_not_a_json_object(client: FlaskClient) -> None:
    response = client.post("/payments", json=[1, 2])
    assert response.status_code == 400
    assert response.get_json()["details"] == {"body": "must be a JSON object"}


def test_rejects_malformed_json(client: FlaskClient) -> None:
    response = client.post("/payments", data="{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["details"] == {"body": "is not valid JSON"}


def test_rejects_non_json_content_type_with_415(client: FlaskClient) -> None:
    response = client.post("/payments", data="amount=1", content_type="text/plain")
    assert response.status_code == 415
    assert response.get_json()["error"] == "unsupported media type"


def test_rejects_oversized_body_with_413(client: FlaskClient) -> None:
    response = client.post(
        "/payments", data="x" * (17 * 1024), content_type="application/json"
    )
    assert response.status_code == 413


def test_unknown_and_malformed_payment_ids_are_404(client: FlaskClient) -> None:
    assert client.get("/payments/pay_" + "0" * 32).status_code == 404
    assert client.get("/payments/../etc/passwd").status_code == 404
    assert client.get("/payments/not-an-id").get_json()["error"] == "payment not found"


def test_wrong_method_is_405_json(client: FlaskClient) -> None:
    response = client.delete("/payments")
    assert response.status_code == 405
    assert response.get_json()["error"] == "method not allowed"


def test_idempotency_key_replays_the_same_payment(
    client: FlaskClient, payment_body: dict[str, object], store: PaymentStore
) -> None:
    headers = {"Idempotency-Key": "order-42-attempt"}
    first = client.post("/payments", json=payment_body, headers=headers)
    second = client.post("/payments", json=payment_body, headers=headers)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.get_json()["id"] == second.get_json()["id"]
    assert len(store) == 1


def test_idempotency_key_reused_for_a_different_request_is_409(
    client: FlaskClient, payment_body: dict[str, object]
) -> None:
    headers = {"Idempotency-Key": "order-42-attempt"}
    client.post("/payments", json=payment_body, headers=headers)
    response = client.post("/payments", json={**payment_body, "amount": 99}, headers=headers)
    assert response.status_code == 409


def test_malformed_idempotency_key_is_400(
    client: FlaskClient, payment_body: dict[str, object]
) -> None:
    response = client.post("/payments", json=payment_body, headers={"Idempotency-Key": "a b"})
    assert response.status_code == 400
    assert "Idempotency-Key" in response.get_json()["details"]


def test_partial_then_full_refund(client: FlaskClient, payment_body: dict[str, object]) -> None:
    payment = client.post("/payments", json=payment_body).get_json()
    partial = client.post(f"/payments/{payment['id']}/refunds", json={"amount": 250})
    assert partial.status_code == 200
    assert partial.get_json()["status"] == "partially_refunded"
    rest = client.post(f"/payments/{payment['id']}/refunds")
    assert rest.get_json()["status"] == "refunded"
    assert rest.get_json()["refunded"] == 1250
    assert [r["amount"] for r in rest.get_json()["refunds"]] == [250, 1000]


def test_refund_beyond_the_remaining_amount_is_400(
    client: FlaskClient, payment_body: dict[str, object]
) -> None:
    payment = client.post("/payments", json=payment_body).get_json()
    response = client.post(f"/payments/{payment['id']}/refunds", json={"amount": 1251})
    assert response.status_code == 400
    assert "between 1 and 1250" in response.get_json()["details"]["amount"]


def test_refund_of_a_refunded_payment_is_409(
    client: FlaskClient, payment_body: dict[str, object]
) -> None:
    payment = client.post("/payments", json=payment_body).get_json()
    client.post(f"/payments/{payment['id']}/refunds")
    assert client.post(f"/payments/{payment['id']}/refunds").status_code == 409


def test_refund_of_an_unknown_payment_is_404(client: FlaskClient) -> None:
    assert client.post("/payments/pay_" + "a" * 32 + "/refunds").status_code == 404
    assert client.post("/payments/bogus/refunds").status_code == 404


def test_refund_rejects_bad_bodies(client: FlaskClient, payment_body: dict[str, object]) -> None:
    payment = client.post("/payments", json=payment_body).get_json()
    url = f"/payments/{payment['id']}/refunds"
    assert client.post(url, json={"amount": "5"}).status_code == 400
    assert client.post(url, json={"reason": "x"}).status_code == 400
    assert client.post(url, json=[1]).status_code == 400


def test_request_id_is_echoed_or_generated(client: FlaskClient) -> None:
    echoed = client.get("/health", headers={"X-Request-ID": "abc12345-req"})
    assert echoed.headers["X-Request-ID"] == "abc12345-req"
    generated = client.get("/health", headers={"X-Request-ID": "bad id!"})
    assert len(generated.headers["X-Request-ID"]) == 32
    assert generated.headers["X-Content-Type-Options"] == "nosniff"
    assert generated.headers["Cache-Control"] == "no-store"


def test_unexpected_errors_are_500_json_and_logged(
    app: object, client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    from flask import Flask

    assert isinstance(app, Flask)

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("kaboom")

    with caplog.at_level(logging.ERROR, logger="payment_processor"):
        response = client.get("/boom")
    assert response.status_code == 500
    assert response.get_json()["error"] == "internal error"
    assert "kaboom" not in response.get_data(as_text=True)
    assert any(r.getMessage() == "unhandled error" for r in caplog.records)


def test_logs_are_json_with_request_fields(
    client: FlaskClient, payment_body: dict[str, object], capsys: pytest.CaptureFixture[str]
) -> None:
    client.post("/payments", json=payment_body, headers={"X-Request-ID": "trace-0001"})
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    request_lines = [line for line in lines if line["message"] == "request"]
    assert request_lines, lines
    entry = request_lines[-1]
    assert entry["status"] == 201 and entry["method"] == "POST" and entry["path"] == "/payments"
    assert entry["request_id"] == "trace-0001"
    assert all(payment_body["card_token"] not in json.dumps(line) for line in lines)
