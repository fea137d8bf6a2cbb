"""DL501: a template with a pipeline and no failure notification."""

from __future__ import annotations

from collections.abc import Iterator

from deployline.checks.events import (
    event_pattern,
    matches_value,
    notification_rule_targets,
    pattern_values,
    rule_enabled,
)
from deployline.checks.intrinsics import as_list, is_intrinsic, literal_str
from deployline.checks.model import Hit, Rule, Severity
from deployline.checks.template import Resource, Template

# Event source -> the detail field that carries the state, and the detail-type prefix.
_SOURCES = {
    "aws.codepipeline": ("state", "CodePipeline"),
    "aws.codebuild": ("build-status", "CodeBuild"),
}


def failure_rule_state(rule: Resource) -> bool | None:
    """True when an enabled EventBridge rule with a target matches a FAILED pipeline or build
    state change; None when an intrinsic hides its pattern. A pattern that does not filter on
    the state matches failures too."""
    if not rule_enabled(rule) or not as_list(rule.prop("Targets")):
        return False
    raw = rule.prop("EventPattern")
    pattern = event_pattern(rule)
    if pattern is None:
        return None if raw is not None and is_intrinsic(raw) else False
    sources = pattern_values(pattern, "source")
    detail_types = pattern_values(pattern, "detail-type")
    for source, (field, type_prefix) in _SOURCES.items():
        if sources is None:
            named = [d for d in detail_types or [] if isinstance(d, str)]
            if not any(d.startswith(type_prefix) for d in named):
                continue
        elif not matches_value(sources, source):
            continue
        if matches_value(pattern_values(pattern, "detail", field), "FAILED"):
            return True
    return False


def notification_rule_state(template: Template, rule: Resource) -> bool | None:
    """True for a CodeStar notification rule on failure events that targets an SNS topic."""
    raw_events = rule.prop("EventTypeIds")
    if is_intrinsic(raw_events):
        return None
    events = [literal_str(e) or "" for e in as_list(raw_events)]
    if not any(e.endswith("-failed") for e in events):
        return False
    status = literal_str(rule.prop("Status"))
    if status is not None and status.upper() == "DISABLED":
        return False
    return any(
        kind.upper() == "SNS" for kind, _address in notification_rule_targets(template, rule)
    )


class FailureNotifications(Rule):
    """Template-level: an enabled EventBridge rule with a target, matching `aws.codepipeline`
    (detail.state) or `aws.codebuild` (detail.build-status) events in state FAILED (a pattern
    without a state filter matches failures too), or a CodeStar notification rule on a
    `...-failed` event with an SNS target, satisfies every pipeline in the template. Reported on
    each pipeline."""

    id = "DL501"
    severity = Severity.HIGH
    family = "Monitoring and audit"
    seed = "000 §5, 002 §6, 003 §6"
    title = "No notification when the pipeline or a build fails"
    resource_types = (
        "AWS::CodePipeline::Pipeline",
        "AWS::Events::Rule",
        "AWS::CodeStarNotifications::NotificationRule",
    )
    rationale = (
        "A failed pipeline nobody hears about blocks every later release and leaves the fix "
        "waiting until someone happens to open the console."
    )
    remediation = (
        "Add an EventBridge rule on aws.codepipeline 'CodePipeline Pipeline Execution State "
        "Change' with detail.state FAILED (and aws.codebuild build-status FAILED) targeting an "
        "SNS topic, or a CodeStar notification rule on the failed events."
    )
    fix_example = """\
PipelineFailed:
  Type: AWS::Events::Rule
  Properties:
    EventPattern:
      source: [aws.codepipeline]
      detail-type: [CodePipeline Pipeline Execution State Change]
      detail: {state: [FAILED], pipeline: [!Ref Pipeline]}
    Targets: [{Id: topic, Arn: !Ref AlertTopic}]
"""

    def check(self, template: Template) -> Iterator[Hit]:
        pipelines = template.pipelines
        if not pipelines:
            return
        hidden = False
        for rule in template.of_type("AWS::Events::Rule"):
            state = failure_rule_state(rule)
            if state is True:
                return
            hidden = hidden or state is None
        for rule in template.of_type("AWS::CodeStarNotifications::NotificationRule"):
            state = notification_rule_state(template, rule)
            if state is True:
                return
            hidden = hidden or state is None
        for pipeline in pipelines:
            if hidden:
                yield self.unknown(
                    pipeline.logical_id,
                    "",
                    "no failure notification found, and a rule's event pattern or event types "
                    "are computed by an intrinsic",
                )
            else:
                yield self.hit(
                    pipeline.logical_id,
                    "",
                    "the template has no EventBridge rule on FAILED pipeline/build events and no "
                    "CodeStar notification rule on failures targeting an SNS topic",
                )
