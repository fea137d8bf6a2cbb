"""The HTTP API.

    GET  /health                      200 {"status": "ok"} (the load balancer's health check)
    POST /payments                    201 the new payment (200 when an Idempotency-Key repeats)
    GET  /payments/<id>               200 the payment, 404 when unknown
    POST /payments/<id>/refunds       200 the payment after the refund

Errors are JSON: {"error": "...", "details": {...}, "request_id": "..."}. Every response carries
X-Request-ID (the caller's, when it sent a valid one).
"""

from __future__ import annotations

import logging
import os
import re
import time
import uuid
from typing import Any

from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException, UnsupportedMediaType

from app import structured_logging
from app.payments import (
    Conflict,
    NotFound,
    PaymentStore,
    ValidationError,
    parse_payment_request,
    valid_idempotency_key,
    valid_payment_id,
)

log = logging.getLogger("payment_processor")

_REQUEST_ID = re.compile(r"[A-Za-z0-9._\-]{8,128}")
#: Largest accepted request body. Default: 16 KiB.
MAX_BODY_BYTES = 16 * 1024


def create_app(*, store: PaymentStore | None = None) -> Flask:
    """Build the application. `store`: where payments live. Default: a new in-memory store
    holding at most $MAX_STORED_PAYMENTS payments (default 10,000)."""
    structured_logging.configure(os.environ.get("LOG_LEVEL", "INFO"))
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.json.sort_keys = False  # type: ignore[attr-defined]
    payments = (
        store
        if store is not None
        else PaymentStore(int(os.environ.get("MAX_STORED_PAYMENTS", "10000")))
    )

    @app.before_request
    def _start() -> None:
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if _REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
        g.started = time.perf_counter()
        structured_logging.request_id.set(g.request_id)

    @app.after_request
    def _finish(response: Response) -> Response:
        response.headers["X-Request-ID"] = g.get("request_id", "")
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Cache-Control"] = "no-store"
        elapsed_ms = round((time.perf_counter() - g.get("started", time.perf_counter())) * 1000, 2)
        log.log(
            logging.DEBUG if request.path == "/health" else logging.INFO,
            "request",
            extra={
                "fields": {
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "duration_ms": elapsed_ms,
                }
            },
        )
        return response

    @app.get("/health")
    def health() -> tuple[Response, int]:
        return jsonify(status="ok"), 200

    @app.post("/payments")
    def create_payment() -> tuple[Response, int]:
        key = request.headers.get("Idempotency-Key")
        if key is not None and not valid_idempotency_key(key):
            raise ValidationError(
                {"Idempotency-Key": "must be 8 to 64 letters, digits, '-' or '_'"}
            )
        payment_request = parse_payment_request(_json_body())
        payment, created = payments.create(payment_request, key)
        log.info(
            "payment authorized" if created else "payment replayed",
            extra={
                "fields": {
                    "payment_id": payment.id,
                    "amount": payment.amount,
                    "currency": payment.currency,
                }
            },
        )
        status = 201 if created else 200
        response = jsonify(payment.to_dict())
        response.headers["Location"] = f"/payments/{payment.id}"
        return response, status

    @app.get("/payments/<payment_id>")
    def get_payment(payment_id: str) -> tuple[Response, int]:
        if not valid_payment_id(payment_id):
            raise NotFound(payment_id)
        return jsonify(payments.get(payment_id).to_dict()), 200

    @app.post("/payments/<payment_id>/refunds")
    def refund_payment(payment_id: str) -> tuple[Response, int]:
        if not valid_payment_id(payment_id):
            raise NotFound(payment_id)
        body = _json_body() if request.get_data(cache=True) else None
        payment = payments.refund(payment_id, body)
        log.info(
            "payment refunded",
            extra={"fields": {"payment_id": payment.id, "refunded": payment.refunded}},
        )
        return jsonify(payment.to_dict()), 200

    @app.errorhandler(ValidationError)
    def _invalid(exc: ValidationError) -> tuple[Response, int]:
        return _error("invalid request", 400, details=exc.errors)

    @app.errorhandler(NotFound)
    def _not_found(exc: NotFound) -> tuple[Response, int]:
        return _error("payment not found", 404)

    @app.errorhandler(Conflict)
    def _conflict(exc: Conflict) -> tuple[Response, int]:
        return _error(str(exc), 409)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> tuple[Response, int]:
        return _error((exc.name or "error").lower(), exc.code or 500)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> tuple[Response, int]:
        log.exception("unhandled error")
        return _error("internal error", 500)

    app.extensions["payment_store"] = payments
    return app


def _json_body() -> Any:
    if not request.is_json:
        raise UnsupportedMediaType("send the body as JSON with Content-Type: application/json")
    body = request.get_json(silent=True)
    if body is None:
        raise ValidationError({"body": "is not valid JSON"})
    return body


def _error(
    message: str, status: int, *, details: dict[str, str] | None = None
) -> tuple[Response, int]:
    payload: dict[str, Any] = {"error": message, "request_id": g.get("request_id")}
    if details:
        payload["details"] = details
    return jsonify(payload), status
