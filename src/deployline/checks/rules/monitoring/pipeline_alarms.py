"""DL505: a template with a pipeline and no alarm on failures or on runs that take too long."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from deployline.checks.intrinsics import as_list, get_path, literal_str, ref_like
from deployline.checks.model import Hit, Rule, Severity
from deployline.checks.rules.monitoring.failure_notifications import failure_rule_state
from deployline.checks.template import Resource, Template

_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|[0-9]+")
_LONG_WORDS = frozenset({"duration", "elapsed", "age", "runtime", "running", "stuck", "time"})
_TRIGGER_METRICS = frozenset({"TriggeredRules", "Invocations", "MatchedEvents"})


def alarm_metrics(alarm: Resource) -> list[tuple[str | None, str | None, dict[str, Any]]]:
    """(namespace, metric name, dimensions) of an alarm: its single metric, or each
    MetricStat of a metric-math alarm. Names behind intrinsics come back as None."""
    out: list[tuple[str | None, str | None, dict[str, Any]]] = []

    def dims(raw: Any) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for item in as_list(raw):
            name = literal_str(get_path(item, "Name"))
            if name is not None:
                found[name] = get_path(item, "Value")
        return found

    if alarm.prop("MetricName") is not None:
        out.append(
            (
                literal_str(alarm.prop("Namespace")),
                literal_str(alarm.prop("MetricName")),
                dims(alarm.prop("Dimensions")),
            )
        )
    for query in as_list(alarm.prop("Metrics")):
        metric = get_path(query, "MetricStat", "Metric")
        if isinstance(metric, dict):
            out.append(
                (
                    literal_str(metric.get("Namespace")),
                    literal_str(metric.get("MetricName")),
                    dims(metric.get("Dimensions")),
                )
            )
    return out


def _failure_rule_ids(template: Template) -> tuple[set[str], set[str]]:
    """Logical IDs and literal names of EventBridge rules that match pipeline/build failures."""
    ids: set[str] = set()
    names: set[str] = set()
    for rule in template.of_type("AWS::Events::Rule"):
        if failure_rule_state(rule) is True:
            ids.add(rule.logical_id)
            name = literal_str(rule.prop("Name"))
            if name:
                names.add(name)
    return ids, names


def _words(name: str) -> list[str]:
    """CamelCase, snake_case and kebab-case metric names as lower-case words."""
    return [w.lower() for w in _WORD.findall(name)]


def classify(
    namespace: str | None, name: str | None, dimensions: dict[str, Any], failure_rules: Any
) -> set[str]:
    """Which gaps a metric closes: "failure" (failed builds or pipeline executions) and
    "duration" (builds or executions running too long)."""
    found: set[str] = set()
    if namespace is None or name is None:
        return found
    custom = not namespace.startswith("AWS/")
    if namespace == "AWS/CodeBuild":
        if name == "FailedBuilds":
            found.add("failure")
        if name in ("Duration", "BuildDuration", "QueuedDuration"):
            found.add("duration")
    elif namespace == "AWS/CodePipeline" or custom:
        words = _words(name)
        if any(w.startswith("fail") for w in words):
            found.add("failure")
        if _LONG_WORDS.intersection(words):
            found.add("duration")
    elif namespace == "AWS/Events" and name in _TRIGGER_METRICS:
        ids, names = failure_rules
        rule = dimensions.get("RuleName")
        if ref_like(rule) in ids or literal_str(rule) in names:
            found.add("failure")
    return found


class PipelineAlarms(Rule):
    """Template-level, reported on each pipeline. Failure metrics: AWS/CodeBuild FailedBuilds,
    AWS/CodePipeline or custom-namespace metrics whose name says "fail", and AWS/Events
    TriggeredRules/Invocations of a rule that matches FAILED pipeline or build events.
    Duration metrics: AWS/CodeBuild Duration/BuildDuration/QueuedDuration, and AWS/CodePipeline
    or custom metrics whose name speaks of duration, age, elapsed or running time. Alarms on
    metric math count through their MetricStat queries."""

    id = "DL505"
    severity = Severity.MEDIUM
    family = "Monitoring and audit"
    seed = "004 Perf 2"
    title = "No alarm on pipeline failures or on runs that take too long"
    resource_types = ("AWS::CodePipeline::Pipeline", "AWS::CloudWatch::Alarm")
    rationale = (
        "Failures that repeat and executions that hang (a stuck approval, a build waiting on a "
        "lock) are invisible without alarms; notifications alone do not page anyone."
    )
    remediation = (
        "Add CloudWatch alarms on AWS/CodeBuild FailedBuilds (or AWS/CodePipeline "
        "FailedPipelineExecutions) and on build Duration or an execution-age metric."
    )
    fix_example = """\
FailedBuildsAlarm:
  Type: AWS::CloudWatch::Alarm
  Properties:
    Namespace: AWS/CodeBuild
    MetricName: FailedBuilds
    Dimensions: [{Name: ProjectName, Value: !Ref BuildProject}]
    Statistic: Sum
    Period: 300
    EvaluationPeriods: 1
    Threshold: 1
    ComparisonOperator: GreaterThanOrEqualToThreshold
SlowBuildAlarm:
  Type: AWS::CloudWatch::Alarm
  Properties:
    Namespace: AWS/CodeBuild
    MetricName: Duration
    Dimensions: [{Name: ProjectName, Value: !Ref BuildProject}]
    Statistic: Maximum
    Period: 300
    EvaluationPeriods: 1
    Threshold: 1800
    ComparisonOperator: GreaterThanOrEqualToThreshold
"""

    def check(self, template: Template) -> Iterator[Hit]:
        pipelines = template.pipelines
        if not pipelines:
            return
        failure_rules = _failure_rule_ids(template)
        closed: set[str] = set()
        hidden = False
        for alarm in template.of_type("AWS::CloudWatch::Alarm"):
            for namespace, name, dimensions in alarm_metrics(alarm):
                if namespace is None or name is None:
                    hidden = True
                closed |= classify(namespace, name, dimensions, failure_rules)
        gaps = [
            text
            for key, text in (
                ("failure", "no alarm on a build or pipeline failure metric"),
                ("duration", "no alarm on builds or executions that run too long"),
            )
            if key not in closed
        ]
        if not gaps:
            return
        for pipeline in pipelines:
            message = "; ".join(gaps)
            if hidden:
                yield self.unknown(
                    pipeline.logical_id,
                    "",
                    f"{message}, and an alarm's metric is computed by an intrinsic",
                )
            else:
                yield self.hit(pipeline.logical_id, "", message)
