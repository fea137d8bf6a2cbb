"""The alarms that decide a deployment is bad: per target group, 5xx rate, unhealthy hosts, p99.

Every environment hands their names to ECS as deployment alarms (ROLLBACK_ON_ALARM): a firing
alarm rolls the deployment back, during the traffic shift and the bake time alike. One set per
target group, so a blue/green deployment's new tasks are judged on their own traffic. Each alarm
also notifies the given topics when it fires and when it recovers, whether or not a deployment is
running.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration, Token
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_sns as sns
from constructs import Construct

from deployline.naming import Kind, Namer

_PERIOD = Duration.minutes(1)
#: p99 target response time above this breaches. Default: 1.5 seconds.
DEFAULT_P99_LATENCY = Duration.millis(1500)


class ServiceAlarms(Construct):
    """5xx rate, unhealthy hosts and p99 latency alarms for each target group.

    Attributes:
        alarms: every alarm, in target-group order (5xx, unhealthy, latency per group).
        alarm_names: their physical names (for ECS deployment alarms).
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        namer: Namer,
        target_groups: Sequence[tuple[str, elbv2.ApplicationTargetGroup]],
        error_rate_percent: float = 5.0,
        p99_latency: Duration = DEFAULT_P99_LATENCY,
        unhealthy_hosts: int = 1,
        evaluation_minutes: int = 3,
        topics: Sequence[sns.ITopic] = (),
    ) -> None:
        """
        Args:
            namer: names the alarms `{service}-{label}-{metric}-{env}`.
            target_groups: (label, target group) pairs, e.g. ("blue", tg).
            error_rate_percent: target 5xx responses above this share of requests breach.
                Default: 5.
            p99_latency: p99 target response time above this breaches; a token must be given
                in seconds (`Duration.seconds(parameter)`). Default: 1.5 seconds.
            unhealthy_hosts: this many unhealthy targets or more breach. Default: 1.
            evaluation_minutes: consecutive breaching minutes before the alarm fires.
                Default: 3.
            topics: topics notified when an alarm fires (ALARM) and recovers (OK), in the
                alarms' own account and region. Default: none (the alarms only roll
                deployments back).
        """
        super().__init__(scope, id)
        _validate(
            target_groups, error_rate_percent, p99_latency, unhealthy_hosts, evaluation_minutes
        )
        self.alarms: list[cloudwatch.Alarm] = []
        for label, group in target_groups:
            self._error_rate_alarm(namer, label, group, error_rate_percent, evaluation_minutes)
            self._unhealthy_hosts_alarm(namer, label, group, unhealthy_hosts, evaluation_minutes)
            self._latency_alarm(namer, label, group, p99_latency, evaluation_minutes)
        self.alarm_names = [alarm.alarm_name for alarm in self.alarms]
        for alarm in self.alarms:
            for topic in topics:
                alarm.add_alarm_action(cw_actions.SnsAction(topic))
                alarm.add_ok_action(cw_actions.SnsAction(topic))

    def _error_rate_alarm(
        self,
        namer: Namer,
        label: str,
        group: elbv2.ApplicationTargetGroup,
        percent: float,
        minutes: int,
    ) -> None:
        errors = group.metrics.http_code_target(
            elbv2.HttpCodeTarget.TARGET_5XX_COUNT, period=_PERIOD, statistic="Sum"
        )
        requests = group.metrics.request_count(period=_PERIOD, statistic="Sum")
        error_rate = cloudwatch.MathExpression(
            expression="100 * FILL(errors, 0) / requests",
            using_metrics={"errors": errors, "requests": requests},
            label=f"{label} target 5xx rate (%)",
            period=_PERIOD,
        )
        self._add_alarm(
            f"{label.capitalize()}ErrorRate",
            namer.name(f"{label}-5xx-rate", Kind.ALARM),
            f"More than {percent}% of requests to the {label} targets answered "
            f"5xx for {minutes} minute(s)",
            error_rate,
            percent,
            cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            minutes,
        )

    def _unhealthy_hosts_alarm(
        self,
        namer: Namer,
        label: str,
        group: elbv2.ApplicationTargetGroup,
        hosts: int,
        minutes: int,
    ) -> None:
        self._add_alarm(
            f"{label.capitalize()}UnhealthyHosts",
            namer.name(f"{label}-unhealthy-hosts", Kind.ALARM),
            f"{hosts} or more {label} targets failed load balancer health checks "
            f"for {minutes} minute(s)",
            group.metrics.unhealthy_host_count(period=_PERIOD, statistic="Maximum"),
            hosts,
            cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            minutes,
        )

    def _latency_alarm(
        self,
        namer: Namer,
        label: str,
        group: elbv2.ApplicationTargetGroup,
        p99_latency: Duration,
        minutes: int,
    ) -> None:
        self._add_alarm(
            f"{label.capitalize()}Latency",
            namer.name(f"{label}-p99-latency", Kind.ALARM),
            f"p99 response time of the {label} targets above "
            f"{_in_words(p99_latency)} for {minutes} minute(s)",
            group.metrics.target_response_time(period=_PERIOD, statistic="p99"),
            p99_latency.to_seconds(integral=False),
            cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            minutes,
        )

    def _add_alarm(
        self,
        construct_id: str,
        name: str,
        description: str,
        metric: cloudwatch.IMetric,
        threshold: float,
        operator: cloudwatch.ComparisonOperator,
        evaluation_minutes: int,
    ) -> None:
        """An alarm on `evaluation_minutes` breaching minutes in a row. No data is not a breach:
        an idle target group (the green one between deploys) must not block a deployment."""
        self.alarms.append(
            cloudwatch.Alarm(
                self,
                construct_id,
                alarm_name=name,
                alarm_description=description,
                metric=metric,
                threshold=threshold,
                comparison_operator=operator,
                evaluation_periods=evaluation_minutes,
                datapoints_to_alarm=evaluation_minutes,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
        )


def _validate(
    target_groups: Sequence[tuple[str, elbv2.ApplicationTargetGroup]],
    error_rate_percent: float,
    p99_latency: Duration,
    unhealthy_hosts: int,
    evaluation_minutes: int,
) -> None:
    """Every check skips values that are unresolved tokens (a CfnParameter, say)."""
    if not target_groups:
        raise ValueError("target_groups must name at least one target group, got none")
    if _known(error_rate_percent) and not 0 < error_rate_percent <= 100:
        raise ValueError(f"error_rate_percent must be in (0, 100], got {error_rate_percent}")
    if _known(unhealthy_hosts) and unhealthy_hosts < 1:
        raise ValueError(f"unhealthy_hosts must be at least 1, got {unhealthy_hosts}")
    if _known(evaluation_minutes) and not 1 <= evaluation_minutes <= 60:
        raise ValueError(f"evaluation_minutes must be 1..60, got {evaluation_minutes}")
    if not p99_latency.is_unresolved() and p99_latency.to_milliseconds(integral=False) < 1:
        raise ValueError(f"p99_latency must be at least 1 ms, got {p99_latency.to_human_string()}")
    labels = [label for label, _ in target_groups]
    if len(set(labels)) != len(labels):
        raise ValueError(f"target group labels must be unique, got {labels}")


def _known(value: object) -> bool:
    return not Token.is_unresolved(value)


def _in_words(latency: Duration) -> str:
    """`1500 ms`; a token (which must be given in seconds: the threshold is in seconds) as
    `<token> s`."""
    if latency.is_unresolved():
        return f"{latency.to_seconds()} s"
    return f"{latency.to_milliseconds()} ms"
