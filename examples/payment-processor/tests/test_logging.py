from __future__ import annotations

import json
import logging

from app.structured_logging import JsonFormatter, configure, request_id


def _record(**kwargs: object) -> logging.LogRecord:
    record = logging.LogRecord("svc", logging.WARNING, __file__, 1, "hello %s", ("you",), None)
    for key, value in kwargs.items():
        setattr(record, key, value)
    return record


def test_formats_one_json_object_with_extra_fields() -> None:
    token = request_id.set("req-12345678")
    try:
        line = JsonFormatter().format(_record(fields={"amount": 5, "message": "ignored"}))
    finally:
        request_id.reset(token)
    entry = json.loads(line)
    assert entry["message"] == "hello you"
    assert entry["level"] == "WARNING" and entry["logger"] == "svc"
    assert entry["request_id"] == "req-12345678"
    assert entry["amount"] == 5
    assert entry["time"].endswith("+00:00")


def test_includes_the_exception() -> None:
    try:
        raise ValueError("bad")
    except ValueError:
        import sys

        record = _record(exc_info=sys.exc_info())
    assert "ValueError: bad" in json.loads(JsonFormatter().format(record))["exception"]


def test_configure_falls_back_to_info_on_an_unknown_level() -> None:
    configure("LOUD")
    assert logging.getLogger().level == logging.INFO
    configure("debug")
    assert logging.getLogger().level == logging.DEBUG
    configure("INFO")
