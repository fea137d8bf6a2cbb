"""DL504: an SNS topic that EventBridge cannot deliver to."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from deployline.checks.events import rule_target_ids
from deployline.checks.iam import Statement, policy_document, statements_of
from deployline.checks.intrinsics import (
    as_list,
    is_intrinsic,
    literal_str,
    ref_like,
    ref_target,
    render,
)
from deployline.checks.model import Hit, Rule, Severity
from deployline.checks.template import Resource, Template

EVENTS = "events.amazonaws.com"
AWS_MANAGED_SNS_KEY = "alias/aws/sns"


def _describe(value: Any) -> str:
    text = render(value)
    return "computed by an intrinsic" if text.startswith("${?") else text


def principal_is(statement: Statement, service: str) -> bool:
    """Does a resource-policy statement's Principal include `service` (or everyone)?"""
    principal = statement.raw.get("Principal")
    if principal == "*":
        return True
    if not isinstance(principal, dict):
        return False
    if any(p == "*" for p in as_list(principal.get("AWS"))):
        return True
    return any(literal_str(s) == service for s in as_list(principal.get("Service")))


def allows(statements: list[Statement], service: str, action: str, resource_ok: Any) -> bool:
    """An Allow for `service` covering `action` (and a resource `resource_ok` accepts), with no
    Deny of it for that principal."""
    for st in statements:
        denied = st.effect == "Deny" and principal_is(st, service) and st.covers_action(action)
        if denied and not st.condition:
            return False
    return any(
        st.allows
        and principal_is(st, service)
        and st.covers_action(action)
        and any(resource_ok(r) for r in st.resources)
        for st in statements
    )


class EventBridgeCanPublish(Rule):
    """For each topic targeted by an EventBridge rule: a topic policy (`AWS::SNS::TopicPolicy`
    listing it, or `AWS::SNS::TopicInlinePolicy`) must allow events.amazonaws.com (or `*`) to
    sns:Publish to it; and when `KmsMasterKeyId` names a key of this template (directly or
    through an alias), its key policy must allow events.amazonaws.com kms:Decrypt and
    kms:GenerateDataKey. The AWS managed key alias/aws/sns cannot be granted to EventBridge at
    all: it fires. A key or policy the template does not hold is UNKNOWN. Reported on the
    topic."""

    id = "DL504"
    severity = Severity.HIGH
    family = "Monitoring and audit"
    seed = "002 §6"
    title = "EventBridge cannot publish to the notification topic"
    resource_types = ("AWS::SNS::Topic", "AWS::SNS::TopicPolicy", "AWS::KMS::Key")
    rationale = (
        "EventBridge needs the topic policy to allow events.amazonaws.com, and the topic's KMS "
        "key to let it encrypt: otherwise every notification is dropped silently and the rule "
        "only shows FailedInvocations."
    )
    remediation = (
        "Add an AWS::SNS::TopicPolicy allowing events.amazonaws.com sns:Publish on the topic, "
        "and encrypt with a customer-managed key whose policy allows events.amazonaws.com "
        "kms:Decrypt and kms:GenerateDataKey*."
    )
    fix_example = """\
AlertTopicPolicy:
  Type: AWS::SNS::TopicPolicy
  Properties:
    Topics: [!Ref AlertTopic]
    PolicyDocument:
      Statement:
        - Effect: Allow
          Principal: {Service: events.amazonaws.com}
          Action: sns:Publish
          Resource: !Ref AlertTopic
"""

    def check(self, template: Template) -> Iterator[Hit]:
        topics = {t.logical_id: t for t in template.of_type("AWS::SNS::Topic")}
        targeted: set[str] = set()
        for rule in template.of_type("AWS::Events::Rule"):
            targeted |= rule_target_ids(template, rule) & topics.keys()
        for topic_id in sorted(targeted):
            topic = topics[topic_id]
            yield from self._policy(template, topic)
            yield from self._key(template, topic)

    def _policy(self, template: Template, topic: Resource) -> Iterator[Hit]:
        tid = topic.logical_id

        def resource_ok(value: Any) -> bool:
            return value == "*" or ref_like(value) == tid or "${" + tid + "}" in render(value)

        statements: list[Statement] = []
        unresolved = False
        for policy in template.of_type("AWS::SNS::TopicPolicy"):
            names = [ref_like(t) for t in as_list(policy.prop("Topics"))]
            if tid in names:
                statements += statements_of(policy.prop("PolicyDocument"), "Properties")
            elif None in names:
                unresolved = True
        for policy in template.of_type("AWS::SNS::TopicInlinePolicy"):
            name = ref_like(policy.prop("TopicArn"))
            if name == tid:
                statements += statements_of(policy.prop("PolicyDocument"), "Properties")
            elif name is None:
                unresolved = True
        if allows(statements, EVENTS, "sns:Publish", resource_ok):
            return
        if unresolved or any(is_intrinsic(st.raw.get("Principal")) for st in statements):
            yield self.unknown(
                tid, "", "a topic policy here names its topics or principals with intrinsics"
            )
            return
        what = "no topic policy lets" if not statements else "its topic policy does not let"
        yield self.hit(
            tid,
            "",
            f"an EventBridge rule targets the topic but {what} {EVENTS} sns:Publish to it: "
            "notifications are dropped",
        )

    def _key(self, template: Template, topic: Resource) -> Iterator[Hit]:
        value = topic.prop("KmsMasterKeyId")
        if value is None:
            return
        path = "Properties.KmsMasterKeyId"
        if AWS_MANAGED_SNS_KEY in render(value):
            yield self.hit(
                topic.logical_id,
                path,
                "the topic uses the AWS managed key alias/aws/sns, whose policy cannot allow "
                "EventBridge: notifications are dropped",
            )
            return
        key = self._key_resource(template, value)
        if key is None:
            yield self.unknown(
                topic.logical_id,
                path,
                f"the key ({_describe(value)}) is not in this template; cannot tell whether "
                f"{EVENTS} may use it",
            )
            return
        policy = key.prop("KeyPolicy")
        if policy_document(policy) is None:
            yield self.unknown(
                topic.logical_id, path, f"the policy of {key.logical_id} is an intrinsic"
            )
            return
        statements = statements_of(policy, "Properties.KeyPolicy")
        missing = [
            a
            for a in ("kms:Decrypt", "kms:GenerateDataKey")
            if not allows(statements, EVENTS, a, lambda _r: True)
        ]
        if missing:
            yield self.hit(
                topic.logical_id,
                path,
                f"the policy of key {key.logical_id} does not let {EVENTS} "
                f"{' and '.join(missing)}: EventBridge cannot publish to the encrypted topic",
            )

    @staticmethod
    def _key_resource(template: Template, value: Any) -> Resource | None:
        target = ref_like(value)
        res = template.get(target)
        if res is not None and res.type == "AWS::KMS::Alias":
            res = template.get(ref_target(res.prop("TargetKeyId")) or "")
        if res is not None and res.type == "AWS::KMS::Key":
            return res
        return None
