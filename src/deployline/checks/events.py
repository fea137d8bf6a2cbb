"""EventBridge rules, CodeStar notification rules and the SNS topics they notify: what an event
pattern matches and where a rule delivers. Pure functions of a parsed Template."""

from __future__ import annotations

import json
from typing import Any

from deployline.checks.iam import action_matches
from deployline.checks.intrinsics import as_list, get_path, literal_str, ref_like, referenced_names
from deployline.checks.template import Resource, Template


def load_json_value(value: Any) -> Any:
    """A JSON-typed property may be written as a JSON string; parse it when it is one."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def event_pattern(rule: Resource) -> dict[str, Any] | None:
    value = load_json_value(rule.prop("EventPattern"))
    return value if isinstance(value, dict) else None


def pattern_values(pattern: dict[str, Any], *path: str) -> list[Any] | None:
    """Values an event pattern matches at `path` (None when the pattern does not filter it)."""
    value = get_path(pattern, *path)
    if value is None:
        return None
    return as_list(value)


def pattern_sources(rule: Resource) -> set[str]:
    pattern = event_pattern(rule)
    if pattern is None:
        return set()
    values = pattern_values(pattern, "source") or []
    return {v for v in values if isinstance(v, str)}


def matches_value(values: list[Any] | None, wanted: str) -> bool:
    """Does an event-pattern value list match `wanted`? Absent filter matches everything;
    content filters (prefix, anything-but, wildcard, equals-ignore-case) are evaluated."""
    if values is None:
        return True
    for item in values:
        if isinstance(item, str) and item == wanted:
            return True
        if not isinstance(item, dict):
            continue
        prefix = item.get("prefix")
        if isinstance(prefix, str) and wanted.startswith(prefix):
            return True
        ignore_case = item.get("equals-ignore-case")
        if isinstance(ignore_case, str) and ignore_case.lower() == wanted.lower():
            return True
        wildcard = item.get("wildcard")
        if isinstance(wildcard, str) and action_matches(wildcard, wanted):
            return True
        if "anything-but" in item:
            excluded = item["anything-but"]
            if isinstance(excluded, dict):
                but_prefix = excluded.get("prefix")
                if isinstance(but_prefix, str) and not wanted.startswith(but_prefix):
                    return True
            elif wanted not in as_list(excluded):
                return True
    return False


def rule_enabled(rule: Resource) -> bool:
    state = literal_str(rule.prop("State"))
    return state is None or state.upper() not in ("DISABLED",)


def rule_target_ids(template: Template, rule: Resource) -> set[str]:
    """Logical IDs of resources in this template that an EventBridge rule targets."""
    out: set[str] = set()
    for target in as_list(rule.prop("Targets")):
        arn = get_path(target, "Arn")
        found = ref_like(arn)
        if found is None and arn is not None:
            names = {n for n in _referenced(arn) if template.get(n) is not None}
            if len(names) == 1:
                found = names.pop()
        if found is not None and template.get(found) is not None:
            res = template.get(found)
            assert res is not None
            out.add(_alias_target(template, res))
    return out


def _referenced(value: Any) -> set[str]:
    return referenced_names(value)


def _alias_target(template: Template, res: Resource) -> str:
    """A Lambda alias or version stands for its function."""
    if res.type in ("AWS::Lambda::Alias", "AWS::Lambda::Version"):
        fn = ref_like(res.prop("FunctionName"))
        if fn is not None and template.get(fn) is not None:
            return fn
    return res.logical_id


PIPELINE_EVENT_SOURCES = frozenset({"aws.codepipeline", "aws.codebuild", "aws.codedeploy"})


def notification_rule_targets(template: Template, rule: Resource) -> list[tuple[str, Any]]:
    """(TargetType, TargetAddress) of a CodeStar notification rule (Targets or TargetAddress)."""
    out: list[tuple[str, Any]] = []
    for target in as_list(rule.prop("Targets")):
        kind = literal_str(get_path(target, "TargetType")) or ""
        out.append((kind, get_path(target, "TargetAddress")))
    if rule.prop("TargetAddress") is not None:
        out.append(("SNS", rule.prop("TargetAddress")))
    return out


def pipeline_notification_topics(template: Template) -> set[str]:
    """SNS topics that receive pipeline, build or deployment notifications: targets of
    EventBridge rules on aws.codepipeline/aws.codebuild/aws.codedeploy events, of CodeStar
    notification rules, and of CodeDeploy deployment group triggers."""
    topics = {t.logical_id for t in template.of_type("AWS::SNS::Topic")}
    out: set[str] = set()
    for rule in template.of_type("AWS::Events::Rule"):
        if pattern_sources(rule) & PIPELINE_EVENT_SOURCES:
            out |= rule_target_ids(template, rule) & topics
    for rule in template.of_type("AWS::CodeStarNotifications::NotificationRule"):
        for _kind, address in notification_rule_targets(template, rule):
            target = ref_like(address)
            if target in topics:
                out.add(target)
    for group in template.of_type("AWS::CodeDeploy::DeploymentGroup"):
        for trigger in as_list(group.prop("TriggerConfigurations")):
            target = ref_like(get_path(trigger, "TriggerTargetArn"))
            if target in topics:
                out.add(target)
    return out
