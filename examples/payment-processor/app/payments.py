"""Payments: validation of requests and a thread-safe in-memory store.

Amounts are integers in the currency's minor unit (cents), never floats. Cards arrive as tokens
from the card vault (`tok_` + 16 to 64 letters or digits); a raw card number is refused and never
stored or logged.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

#: ISO 4217 codes this processor settles in.
SUPPORTED_CURRENCIES = frozenset(
    {"AUD", "CAD", "CHF", "DKK", "EUR", "GBP", "JPY", "NOK", "PLN", "SEK", "USD"}
)
#: The largest single payment, in minor units. Default: 1,000,000.00.
MAX_AMOUNT = 100_000_000
MAX_DESCRIPTION = 200

_TOKEN = re.compile(r"tok_[A-Za-z0-9]{16,64}")
_CARD_NUMBER = re.compile(r"[\d -]{13,23}")
_PAYMENT_ID = re.compile(r"pay_[0-9a-f]{32}")
_IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9_\-]{8,64}")

_CARD = "card_token"
_CREATE_FIELDS = {"amount", "currency", _CARD, "description"}


class ValidationError(Exception):
    """The request is invalid; `errors` maps each field to what is wrong with it."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


class NotFound(Exception):
    """No payment has that ID."""


class Conflict(Exception):
    """The request conflicts with the payment's state or an earlier request."""


@dataclass(frozen=True)
class PaymentRequest:
    amount: int
    currency: str
    card_token: str
    description: str | None = None

    def fingerprint(self) -> str:
        """A stable hash of the request, to tell a retried request from a different one."""
        body = json.dumps(
            [self.amount, self.currency, self.card_token, self.description], separators=(",", ":")
        )
        return hashlib.sha256(body.encode()).hexdigest()


@dataclass
class Payment:
    id: str
    amount: int
    currency: str
    card_token: str
    description: str | None
    created_at: str
    refunded: int = 0
    refunds: list[dict[str, Any]] = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.refunded == 0:
            return "authorized"
        return "refunded" if self.refunded == self.amount else "partially_refunded"

    def to_dict(self) -> dict[str, Any]:
        """The public view: the card token is reduced to its last four characters."""
        return {
            "id": self.id,
            "status": self.status,
            "amount": self.amount,
            "currency": self.currency,
            "card": {"token_last4": self.card_token[-4:]},
            "description": self.description,
            "refunded": self.refunded,
            "refunds": list(self.refunds),
            "created_at": self.created_at,
        }


def parse_payment_request(body: Any) -> PaymentRequest:
    """Validate a `POST /payments` body; raises ValidationError listing every problem."""
    if not isinstance(body, dict):
        raise ValidationError({"body": "must be a JSON object"})
    errors: dict[str, str] = {}
    unknown = sorted(set(body) - _CREATE_FIELDS)
    if unknown:
        errors["body"] = f"unknown fields {unknown}; allowed: {sorted(_CREATE_FIELDS)}"

    amount = body.get("amount")
    if amount is None:
        errors["amount"] = "is required: an integer in minor units (cents)"
    elif isinstance(amount, bool) or not isinstance(amount, int):
        errors["amount"] = "must be an integer in minor units (cents), e.g. 1250 for 12.50"
    elif not 1 <= amount <= MAX_AMOUNT:
        errors["amount"] = f"must be between 1 and {MAX_AMOUNT}, got {amount}"

    currency = body.get("currency")
    if currency is None:
        errors["currency"] = "is required: an ISO 4217 code such as EUR"
    elif not isinstance(currency, str) or currency not in SUPPORTED_CURRENCIES:
        errors["currency"] = f"must be one of {sorted(SUPPORTED_CURRENCIES)}"

    token = body.get(_CARD)
    if token is None:
        errors[_CARD] = "is required: a reference from the card vault (tok_...)"
    elif not isinstance(token, str):
        errors[_CARD] = "must be a string"
    elif _CARD_NUMBER.fullmatch(token):
        errors[_CARD] = "looks like a card number: send the vault reference, never the card"
    elif not _TOKEN.fullmatch(token):
        errors[_CARD] = "must be 'tok_' followed by 16 to 64 letters or digits"

    description = body.get("description")
    if description is not None:
        if not isinstance(description, str):
            errors["description"] = "must be a string"
        elif len(description) > MAX_DESCRIPTION:
            errors["description"] = f"must be at most {MAX_DESCRIPTION} characters"
        elif not description.isprintable():
            errors["description"] = "must not contain control characters"

    if errors:
        raise ValidationError(errors)
    return PaymentRequest(
        amount=amount, currency=currency, card_token=token, description=description
    )


def parse_refund_amount(body: Any, payment: Payment) -> int:
    """Validate a refund body (`{"amount": n}`, default: everything not yet refunded)."""
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise ValidationError({"body": "must be a JSON object"})
    unknown = sorted(set(body) - {"amount"})
    if unknown:
        raise ValidationError({"body": f"unknown fields {unknown}; allowed: ['amount']"})
    remaining = payment.amount - payment.refunded
    amount = body.get("amount", remaining)
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise ValidationError({"amount": "must be an integer in minor units (cents)"})
    if remaining == 0:
        raise Conflict(f"payment {payment.id} is already fully refunded")
    if not 1 <= amount <= remaining:
        raise ValidationError({"amount": f"must be between 1 and {remaining}, got {amount}"})
    return amount


def valid_payment_id(value: str) -> bool:
    return bool(_PAYMENT_ID.fullmatch(value))


def valid_idempotency_key(value: str) -> bool:
    return bool(_IDEMPOTENCY_KEY.fullmatch(value))


class PaymentStore:
    """Payments in memory, safe across threads, holding at most `capacity` (oldest go first).

    Default capacity: 10,000 payments. Idempotency keys map to the payment they created, so a
    retried request returns the same payment instead of charging twice.
    """

    def __init__(self, capacity: int = 10_000) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self._capacity = capacity
        self._payments: OrderedDict[str, Payment] = OrderedDict()
        self._keys: dict[str, tuple[str, str]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._payments)

    def create(
        self, request: PaymentRequest, idempotency_key: str | None = None
    ) -> tuple[Payment, bool]:
        """Store a new payment; returns (payment, created). Raises Conflict on a reused key."""
        with self._lock:
            if idempotency_key is not None and idempotency_key in self._keys:
                fingerprint, payment_id = self._keys[idempotency_key]
                if fingerprint != request.fingerprint():
                    raise Conflict("Idempotency-Key was already used with a different request")
                existing = self._payments.get(payment_id)
                if existing is not None:
                    return existing, False
            payment = Payment(
                id=f"pay_{uuid.uuid4().hex}",
                amount=request.amount,
                currency=request.currency,
                card_token=request.card_token,
                description=request.description,
                created_at=_now(),
            )
            self._payments[payment.id] = payment
            if idempotency_key is not None:
                self._keys[idempotency_key] = (request.fingerprint(), payment.id)
            while len(self._payments) > self._capacity:
                evicted, _ = self._payments.popitem(last=False)
                self._keys = {k: v for k, v in self._keys.items() if v[1] != evicted}
            return payment, True

    def get(self, payment_id: str) -> Payment:
        with self._lock:
            payment = self._payments.get(payment_id)
        if payment is None:
            raise NotFound(payment_id)
        return payment

    def refund(self, payment_id: str, body: Any) -> Payment:
        """Refund part or all of a payment (validated under the lock, so refunds never exceed it)."""
        with self._lock:
            payment = self._payments.get(payment_id)
            if payment is None:
                raise NotFound(payment_id)
            amount = parse_refund_amount(body, payment)
            payment.refunded += amount
            payment.refunds.append({"amount": amount, "created_at": _now()})
            return payment


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
