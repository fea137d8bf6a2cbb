"""Replay the recorder's dead-letter queue through the recorder (`deployline history redrive`).

The queue holds two shapes of message:

- from a rule's target, when EventBridge could not deliver an event after its retries: the body
  is the event, and the message attributes say why (ERROR_CODE, ERROR_MESSAGE, RULE_ARN);
- from the recorder's on-failure destination, when the function failed on an event after
  Lambda's retries: the body is an invocation record whose `requestPayload` is the event and
  whose `responsePayload` holds the error.

The replay runs the recorder's own code here, configured as the deployed function is (its
environment variables, read with GetFunctionConfiguration), with the caller's credentials. A
message whose event is recorded, was recorded already, or is malformed (nothing would ever record
it) is deleted; one whose replay fails again stays in the queue, visible at once for the next
attempt, and the report says why. boto3 only: no aws_cdk.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from deployline.runtime.recorder import Recorder

#: Seconds a received message stays hidden while this run replays it.
VISIBILITY_SECONDS = 300
#: Messages one run looks at, at most.
MAX_MESSAGES = 1000


@dataclass(frozen=True)
class DeadLetter:
    """One message of the queue, read.

    Attributes:
        event: the EventBridge event it carries, or None when the body is neither shape.
        origin: "rule" (undelivered), "function" (failed in the recorder) or "unknown".
        error: why it is in the queue, as far as the message says.
    """

    message_id: str
    receipt: str
    event: Mapping[str, Any] | None
    origin: str
    error: str | None


def read_message(message: Mapping[str, Any]) -> DeadLetter:
    """Read a message from ReceiveMessage into a DeadLetter."""
    body: Any
    try:
        body = json.loads(message.get("Body") or "")
    except json.JSONDecodeError:
        body = None
    attributes = message.get("MessageAttributes") or {}
    common = {"message_id": str(message["MessageId"]), "receipt": str(message["ReceiptHandle"])}
    if isinstance(body, Mapping) and isinstance(body.get("requestPayload"), Mapping):
        response = body.get("responsePayload")
        error = None
        if isinstance(response, Mapping):
            error = f"{response.get('errorType', 'error')}: {response.get('errorMessage', '')}"
        condition = (body.get("requestContext") or {}).get("condition")
        return DeadLetter(
            **common,
            event=body["requestPayload"],
            origin="function",
            error=error or (str(condition) if condition else None),
        )
    if isinstance(body, Mapping) and "detail-type" in body:
        code = (attributes.get("ERROR_CODE") or {}).get("StringValue")
        text = (attributes.get("ERROR_MESSAGE") or {}).get("StringValue")
        error = ": ".join(p for p in (code, text) if p) or None
        return DeadLetter(**common, event=body, origin="rule", error=error)
    return DeadLetter(**common, event=None, origin="unknown", error=None)


@dataclass
class RedriveReport:
    """What one run did: counts by outcome, and every message it kept with the reason."""

    queue: str
    dry_run: bool = False
    outcomes: dict[str, int] = field(default_factory=dict)
    kept: list[tuple[str, str]] = field(default_factory=list)
    seen: int = 0

    def count(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1

    def lines(self) -> list[str]:
        if not self.seen:
            return [f"{self.queue} is empty: nothing to redrive."]
        verb = "would replay" if self.dry_run else "replayed"
        done = ", ".join(f"{n} {outcome}" for outcome, n in sorted(self.outcomes.items()))
        out = [f"{self.queue}: {verb} {self.seen} message(s)" + (f": {done}" if done else ".")]
        if self.kept:
            out.append(f"{len(self.kept)} kept in the queue:")
            out += [f"  {message_id}: {reason}" for message_id, reason in self.kept]
        return out


def redrive(
    *,
    sqs: Any,
    queue_url: str,
    recorder: Recorder | None,
    dry_run: bool = False,
    max_messages: int = MAX_MESSAGES,
    label: str | None = None,
) -> RedriveReport:
    """Replay the queue's messages through `recorder` (None with `dry_run`: only read them)."""
    report = RedriveReport(queue=label or queue_url, dry_run=dry_run)
    seen: set[str] = set()
    requeue: list[DeadLetter] = []
    while report.seen < max_messages:
        batch = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=min(10, max_messages - report.seen),
            VisibilityTimeout=VISIBILITY_SECONDS,
            WaitTimeSeconds=1,
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        fresh = [m for m in batch if m["MessageId"] not in seen]
        if not fresh:
            break
        for message in fresh:
            seen.add(message["MessageId"])
            report.seen += 1
            letter = read_message(message)
            if dry_run or recorder is None:
                report.count(f"from {letter.origin}")
                report.kept.append((letter.message_id, letter.error or "no error given"))
                requeue.append(letter)
                continue
            _replay(letter, recorder, report, requeue, delete=lambda r: _delete(sqs, queue_url, r))
    _make_visible(sqs, queue_url, requeue)
    return report


def _replay(
    letter: DeadLetter,
    recorder: Recorder,
    report: RedriveReport,
    requeue: list[DeadLetter],
    *,
    delete: Callable[[str], None],
) -> None:
    if letter.event is None:
        report.count("kept")
        report.kept.append((letter.message_id, "not an EventBridge event or Lambda failure record"))
        requeue.append(letter)
        return
    try:
        outcome = recorder.handle(letter.event)
    except Exception as exc:  # the report names it; the message waits for the next attempt
        report.count("kept")
        report.kept.append((letter.message_id, f"failed again: {type(exc).__name__}: {exc}"))
        requeue.append(letter)
        return
    report.count(str(outcome.get("result", "handled")))
    delete(letter.receipt)


def _delete(sqs: Any, queue_url: str, receipt: str) -> None:
    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=receipt)


def _make_visible(sqs: Any, queue_url: str, letters: list[DeadLetter]) -> None:
    """Kept messages are visible again at once, for the next run."""
    for start in range(0, len(letters), 10):
        chunk = letters[start : start + 10]
        sqs.change_message_visibility_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": letter.receipt, "VisibilityTimeout": 0}
                for i, letter in enumerate(chunk)
            ],
        )
