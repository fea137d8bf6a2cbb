"""Alarms and a dashboard for the pipeline: failures, stuck executions, slow builds, DORA metrics.

Which metric measures what (CodePipeline itself publishes no CloudWatch metric):

- failed executions: `AWS/Events TriggeredRules` of the Notifications rule that matches this
  pipeline's FAILED executions (EventBridge counts every match), and, per environment,
  `DeploymentFailed` from the deployment recorder;
- stuck executions: `OldestExecutionAgeSeconds` from the watchdog (`runtime/watchdog.py`), a
  function scheduled every 5 minutes that measures the oldest running execution, not counting
  time spent waiting on a manual approval;
- builds: `AWS/CodeBuild FailedBuilds` and `Duration` per project, the duration alarm at a share
  of the project's timeout (Default: 80%), so a build that creeps towards its timeout is seen
  before it fails;
- lost events: the dead-letter queues of the notification and recorder rules.

Every alarm notifies the alert topics (and the forwarded topic). Without notifications (nobody
named to read them) the alarms still change state on the dashboard and in the console, without
actions, and the failed-execution alarm, which counts the matches of the notifications' rule, is
left out: failed builds and, per environment, failed deployments still alarm.

Missing data is chosen per alarm so that it never hides a failure: count metrics that AWS
publishes only when something happens treat missing data as "not breaching" (no event, no
failure); the watchdog's metric, which is published on every run, treats missing data as
"breaching" (a silent watchdog is itself a failure); queue depths keep their last state
("ignore"), because SQS stops publishing for idle queues.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import Aws, Duration, RemovalPolicy, Token
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_codepipeline as codepipeline
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from deployline import defaults
from deployline.constructs import compliance
from deployline.constructs.deployment_history import (
    METRICS_NAMESPACE,
    DeploymentHistory,
)
from deployline.constructs.notifications import Notifications
from deployline.constructs.runtime_function import (
    RuntimeFunction,
    accept_function_design,
    acknowledge_function_findings,
    publish_metrics_statement,
)
from deployline.naming import Kind, Namer, kebab

#: Default: an execution running longer than an hour is stuck.
MAX_EXECUTION_DURATION = Duration.minutes(60)
#: Default: the watchdog runs every 5 minutes.
WATCHDOG_INTERVAL = Duration.minutes(5)
#: Default: a build that takes 80% of its timeout is slow.
SLOW_BUILD_RATIO = 0.8

METRIC_OLDEST_EXECUTION = "OldestExecutionAgeSeconds"
METRIC_OLDEST_APPROVAL = "OldestApprovalWaitSeconds"
METRIC_IN_PROGRESS = "InProgressExecutions"

_EVENT_PERIOD = Duration.minutes(5)
_DAY = Duration.days(1)
_CONSOLE = f"https://{Aws.REGION}.console.aws.amazon.com"


@dataclass(frozen=True)
class MonitoredBuild:
    """A CodeBuild project of the pipeline, with the timeout it was given.

    Attributes:
        label: a short kebab-case name for alarm names and IDs, e.g. "build", "unit-tests".
        project: the project.
        timeout: the project's timeout (the slow-build alarm fires at a share of it).
    """

    label: str
    project: codebuild.IProject
    timeout: Duration


def _metric_id(name: str) -> str:
    """A metric-math identifier (lowercase start, letters, digits, underscores)."""
    return "m_" + re.sub(r"[^a-z0-9_]", "_", name.lower())


class PipelineMonitoring(Construct):
    """The pipeline's alarms, the watchdog that measures stuck executions, and a dashboard.

    Attributes:
        watchdog: the watchdog `RuntimeFunction`.
        watchdog_schedule: the rule that runs it.
        pipeline_failed_alarm: failed executions (None without notifications).
        stuck_alarm: an execution running longer than `max_execution_duration`.
        failed_build_alarms: `FailedBuilds` per build label.
        slow_build_alarms: `Duration` per build label.
        deployment_failed_alarms: `DeploymentFailed` per environment (with `history`).
        dead_letter_alarms: undelivered or unprocessed events, per queue.
        alarms: every alarm above.
        dashboard: the CloudWatch dashboard.
        metrics_namespace: where the watchdog (and the recorder) publish.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        namer: Namer,
        key: kms.IKey,
        pipeline: codepipeline.IPipeline,
        notifications: Notifications | None,
        builds: Sequence[MonitoredBuild] = (),
        history: DeploymentHistory | None = None,
        max_execution_duration: Duration = MAX_EXECUTION_DURATION,
        slow_build_ratio: float = SLOW_BUILD_RATIO,
        watchdog_interval: Duration = WATCHDOG_INTERVAL,
        log_retention_days: int = defaults.LOG_RETENTION_DAYS,
        removal: RemovalPolicy = RemovalPolicy.RETAIN,
    ) -> None:
        """
        Args:
            namer: names everything `{service}-{type}-{env}` (env "shared" for the pipeline).
            key: the pipeline CMK, for the watchdog's log group and environment (must allow
                CloudWatch Logs: `defaults.allow_logs_to_use_key`).
            pipeline: the pipeline watched.
            notifications: the alert topics that every alarm notifies, and the rule whose
                matches count failed executions; None: alarms without actions, and no
                failed-execution alarm.
            builds: the pipeline's CodeBuild projects. Default: none.
            history: the deployment record; adds per-environment deployment-failure alarms,
                its dead-letter queue alarm and the DORA widgets. Default: None.
            max_execution_duration: an execution running longer is stuck. Default: 60 minutes.
                Must lie between 5 minutes and 24 hours.
            slow_build_ratio: the share of a build's timeout at which it counts as slow.
                Default: 0.8.
            watchdog_interval: how often the watchdog measures. Default: 5 minutes (1 to 15).
            log_retention_days: the watchdog's logs. Default: 30.
            removal: the watchdog's log group removal policy. Default: RETAIN.
        """
        super().__init__(scope, id)
        limit_s, interval_s = self._validate(
            max_execution_duration, slow_build_ratio, watchdog_interval, builds
        )
        self.metrics_namespace = history.metrics_namespace if history else METRICS_NAMESPACE
        self._namer = namer
        self._topics = notifications.alarm_topics if notifications else []
        self._pipeline_dims = {"Service": namer.service, "Pipeline": pipeline.pipeline_name}
        self._watchdog_period = Duration.seconds(interval_s * 3)
        self.alarms: list[cloudwatch.Alarm] = []
        environments = [e.name for e in history.environments] if history else []

        self._watchdog(key, pipeline, watchdog_interval, log_retention_days, removal)
        failures, oldest = self._pipeline_alarms(notifications, max_execution_duration, limit_s)
        self._build_alarms(builds, slow_build_ratio)
        self._deployment_alarms(environments)
        self._dead_letter_alarms(notifications, history)
        self._dashboard(
            pipeline,
            builds,
            environments,
            failures=failures,
            oldest=oldest,
            max_execution_duration=max_execution_duration,
            slow_build_ratio=slow_build_ratio,
        )

    def _validate(
        self,
        max_execution_duration: Duration,
        slow_build_ratio: float,
        watchdog_interval: Duration,
        builds: Sequence[MonitoredBuild],
    ) -> tuple[float, float]:
        """(the stuck limit, the watchdog interval), in seconds, once both are checked."""
        limit_s = max_execution_duration.to_seconds()
        if not Token.is_unresolved(limit_s) and not 300 <= limit_s <= 86400:
            raise ValueError(
                "max_execution_duration must lie between 5 minutes and 24 hours, got "
                f"{max_execution_duration.to_human_string()}"
            )
        if not 0 < slow_build_ratio <= 1:
            raise ValueError(
                f"slow_build_ratio must be more than 0 and at most 1, got {slow_build_ratio}"
            )
        interval_s = watchdog_interval.to_seconds()
        if not Token.is_unresolved(interval_s) and (not 60 <= interval_s <= 900 or interval_s % 60):
            raise ValueError(
                "watchdog_interval must be whole minutes from 1 to 15, got "
                f"{watchdog_interval.to_human_string()}"
            )
        labels = [b.label for b in builds]
        for build in builds:
            if not build.label or kebab(build.label) != build.label:
                raise ValueError(
                    f"MonitoredBuild.label must be lowercase kebab-case like 'unit-tests', "
                    f"got {build.label!r}"
                )
            timeout_s = build.timeout.to_seconds()
            if not Token.is_unresolved(timeout_s) and not 300 <= timeout_s <= 2160 * 60:
                raise ValueError(
                    f"MonitoredBuild.timeout of {build.label!r} must lie between 5 minutes and "
                    f"36 hours (CodeBuild's range), got {build.timeout.to_human_string()}"
                )
        dupes = sorted({label for label in labels if labels.count(label) > 1})
        if dupes:
            raise ValueError(f"each MonitoredBuild needs its own label; {dupes} repeat")
        return limit_s, interval_s

    def _watchdog(
        self,
        key: kms.IKey,
        pipeline: codepipeline.IPipeline,
        watchdog_interval: Duration,
        log_retention_days: int,
        removal: RemovalPolicy,
    ) -> None:
        """The function that measures running executions, and its schedule."""
        namer, service, namespace = self._namer, self._namer.service, self.metrics_namespace
        self.watchdog = RuntimeFunction(
            self,
            "Watchdog",
            namer=namer,
            name="watchdog",
            handler="watchdog.handler",
            description=f"deployline: measures how long {service}'s pipeline executions run",
            key=key,
            environment={
                "PIPELINE_NAME": pipeline.pipeline_name,
                "SERVICE_NAME": service,
                "METRICS_NAMESPACE": namespace,
            },
            timeout=Duration.minutes(1),
            log_retention_days=log_retention_days,
            removal=removal,
            statements=[
                iam.PolicyStatement(
                    sid="ReadPipelineExecutions",
                    actions=[
                        "codepipeline:ListPipelineExecutions",
                        "codepipeline:ListActionExecutions",
                    ],
                    resources=[pipeline.pipeline_arn],
                ),
                publish_metrics_statement("PublishWatchdogMetrics", namespace),
            ],
        )
        acknowledge_function_findings(self.watchdog, metrics_namespace=namespace)
        watchdog = self.watchdog.function_name
        accept_function_design(
            self.watchdog,
            dead_letters=f"a schedule runs {watchdog} and a missed run is superseded by the next "
            "one (no retries): there is nothing to keep in a DLQ",
            concurrency=f"{watchdog} runs once per schedule tick; reserved concurrency would take "
            "from the account's unreserved pool",
            network=f"{watchdog} calls only the CodePipeline and CloudWatch APIs: no VPC resource",
        )
        # A missed run is superseded by the next one: no Lambda-side retries.
        self.watchdog.function.configure_async_invoke(
            retry_attempts=0, max_event_age=watchdog_interval
        )
        self.watchdog_schedule = events.Rule(
            self,
            "WatchdogSchedule",
            rule_name=namer.name("watchdog", Kind.EVENT_RULE),
            description=f"deployline: runs {service}'s pipeline watchdog",
            schedule=events.Schedule.rate(watchdog_interval),
            targets=[
                targets.LambdaFunction(
                    self.watchdog.function, retry_attempts=2, max_event_age=watchdog_interval
                )
            ],
        )

    def _pipeline_alarms(
        self,
        notifications: Notifications | None,
        max_execution_duration: Duration,
        limit_s: float,
    ) -> tuple[cloudwatch.Metric | None, cloudwatch.Metric]:
        """Failed and stuck executions; returns their metrics for the dashboard."""
        namer, service, namespace = self._namer, self._namer.service, self.metrics_namespace
        pipeline_dims, watchdog_period = self._pipeline_dims, self._watchdog_period
        failures = None
        self.pipeline_failed_alarm: cloudwatch.Alarm | None = None
        if notifications is not None:
            failures = self._failed_executions(notifications, service)
        oldest = cloudwatch.Metric(
            namespace=namespace,
            metric_name=METRIC_OLDEST_EXECUTION,
            dimensions_map=pipeline_dims,
            statistic="Maximum",
            period=watchdog_period,
        )
        self.stuck_alarm = self._alarm(
            "ExecutionStuck",
            name=namer.name("pipeline-stuck", Kind.ALARM),
            description=f"An execution of {service}'s pipeline has been running for more than "
            f"{max_execution_duration.to_human_string()} (not counting manual approval waits), "
            "or the watchdog has stopped reporting. Check the running execution's current "
            "action; check the watchdog's logs if no execution runs.",
            metric=oldest,
            threshold=limit_s,
            # The watchdog publishes on every run, 0 included: missing data means it is broken.
            missing=cloudwatch.TreatMissingData.BREACHING,
            ok_action=True,
        )
        return failures, oldest

    def _failed_executions(self, notifications: Notifications, service: str) -> cloudwatch.Metric:
        """The alarm on failed executions: the matches of the notifications' failure rule."""
        failures = cloudwatch.Metric(
            namespace="AWS/Events",
            metric_name="TriggeredRules",
            dimensions_map={"RuleName": notifications.pipeline_failed_rule.rule_name},
            statistic="Sum",
            period=_EVENT_PERIOD,
        )
        self.pipeline_failed_alarm = self._alarm(
            "PipelineFailed",
            name=self._namer.name("pipeline-failures", Kind.ALARM),
            description=f"An execution of {service}'s pipeline failed. Open the pipeline's "
            "execution history to see the failed stage and action.",
            metric=failures,
            threshold=1,
            # EventBridge publishes TriggeredRules only when the rule matches: no data, no
            # failure.
            missing=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        return failures

    def _build_alarms(self, builds: Sequence[MonitoredBuild], slow_build_ratio: float) -> None:
        """Failed and slow builds, per build label."""
        namer, service = self._namer, self._namer.service
        self.failed_build_alarms: dict[str, cloudwatch.Alarm] = {}
        self.slow_build_alarms: dict[str, cloudwatch.Alarm] = {}
        for build in builds:
            self.failed_build_alarms[build.label] = self._alarm(
                f"FailedBuilds-{build.label}",
                name=namer.name(f"{build.label}-failures", Kind.ALARM),
                description=f"A {build.label} build of {service} failed or timed out. The "
                "build's logs name the failing command.",
                metric=build.project.metric_failed_builds(statistic="Sum", period=_EVENT_PERIOD),
                threshold=1,
                # CodeBuild publishes FailedBuilds only when builds end: no build, no failure.
                missing=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            slow_s = round(build.timeout.to_seconds() * slow_build_ratio)
            self.slow_build_alarms[build.label] = self._alarm(
                f"SlowBuilds-{build.label}",
                name=namer.name(f"{build.label}-slow", Kind.ALARM),
                description=f"A {build.label} build of {service} took at least "
                f"{round(slow_build_ratio * 100)}% of its {build.timeout.to_human_string()} "
                "timeout; it will soon time out. Look for slow steps or a missing cache.",
                metric=build.project.metric_duration(statistic="Maximum", period=_EVENT_PERIOD),
                threshold=slow_s,
                # CodeBuild publishes Duration only when builds end: no build, nothing slow.
                missing=cloudwatch.TreatMissingData.NOT_BREACHING,
            )

    def _deployment_alarms(self, environments: Sequence[str]) -> None:
        """Failed deployments per environment (the recorder's metrics)."""
        namer, service, namespace = self._namer, self._namer.service, self.metrics_namespace
        self.deployment_failed_alarms: dict[str, cloudwatch.Alarm] = {}
        for env in environments:
            self.deployment_failed_alarms[env] = self._alarm(
                f"DeploymentFailed-{env}",
                name=namer.name(f"{env}-deploy-failures", Kind.ALARM),
                description=f"A deployment of {service} to {env} failed. The deployment "
                "history (`deployline history`) shows the failed stage and the version "
                "running now.",
                metric=self._dora(
                    namespace, "DeploymentFailed", service, env, "Sum", _EVENT_PERIOD
                ),
                threshold=1,
                # The recorder publishes only when a deployment ends: no deployment, no failure.
                missing=cloudwatch.TreatMissingData.NOT_BREACHING,
            )

    def _dead_letter_alarms(
        self, notifications: Notifications | None, history: DeploymentHistory | None
    ) -> None:
        """Events that could not be delivered or processed."""
        namer = self._namer
        self.dead_letter_alarms: dict[str, cloudwatch.Alarm] = {}
        queues: list[tuple[str, str, str, sqs.IQueue]] = []
        if notifications is not None:
            queues.append(
                (
                    "alerts",
                    "alerts that EventBridge could not deliver",
                    "redrive or delete them",
                    notifications.dead_letter_queue,
                )
            )
        if history is not None:
            queues.append(
                (
                    "recorder",
                    "pipeline and ECS deployment events the deployment recorder could not "
                    "receive or process",
                    "replay them with `deployline history redrive`",
                    history.dead_letter_queue,
                )
            )
        for label, what, then, queue in queues:
            self.dead_letter_alarms[label] = self._alarm(
                f"DeadLetters-{label}",
                name=namer.name(f"{label}-dead-letters", Kind.ALARM),
                description=f"The dead-letter queue holds {what}. Read the messages' error "
                f"attributes, fix the cause, then {then}.",
                metric=queue.metric_approximate_number_of_messages_visible(
                    statistic="Maximum", period=_EVENT_PERIOD
                ),
                threshold=1,
                # SQS stops publishing for idle queues: keep the last state rather than clear.
                missing=cloudwatch.TreatMissingData.IGNORE,
                ok_action=True,
            )

    def _dashboard(
        self,
        pipeline: codepipeline.IPipeline,
        builds: Sequence[MonitoredBuild],
        environments: Sequence[str],
        *,
        failures: cloudwatch.Metric | None,
        oldest: cloudwatch.Metric,
        max_execution_duration: Duration,
        slow_build_ratio: float,
    ) -> None:
        namer, service, namespace = self._namer, self._namer.service, self.metrics_namespace
        pipeline_dims, watchdog_period = self._pipeline_dims, self._watchdog_period
        limit_s = max_execution_duration.to_seconds()
        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=namer.name("pipeline", Kind.DASHBOARD),
            default_interval=Duration.days(7),
        )
        pipeline_link = (
            f"{_CONSOLE}/codesuite/codepipeline/pipelines/{pipeline.pipeline_name}/view"
            f"?region={Aws.REGION}"
        )
        self.dashboard.add_widgets(
            cloudwatch.TextWidget(
                markdown=f"# {service}: delivery pipeline\n"
                f"[Pipeline]({pipeline_link}) · stuck after "
                f"{max_execution_duration.to_human_string()} · builds slow at "
                f"{round(slow_build_ratio * 100)}% of their timeout",
                width=24,
                height=2,
            ),
            cloudwatch.AlarmStatusWidget(
                title="Alarms", alarms=list(self.alarms), width=24, height=4
            ),
        )
        if environments:
            self.dashboard.add_widgets(*self._dora_widgets(namespace, service, environments))
        first: list[cloudwatch.IWidget] = []
        if failures is not None:
            first.append(
                cloudwatch.GraphWidget(
                    title="Failed pipeline executions",
                    left=[failures.with_(period=Duration.hours(1), label="failed executions")],
                    left_y_axis=cloudwatch.YAxisProps(min=0, show_units=False),
                    width=8,
                )
            )
        self.dashboard.add_widgets(
            *first,
            cloudwatch.GraphWidget(
                title="Oldest running execution and approval wait (minutes)",
                left=[
                    cloudwatch.MathExpression(
                        expression="running / 60",
                        using_metrics={"running": oldest},
                        label="running",
                        period=watchdog_period,
                    ),
                    cloudwatch.MathExpression(
                        expression="waiting / 60",
                        using_metrics={
                            "waiting": cloudwatch.Metric(
                                namespace=namespace,
                                metric_name=METRIC_OLDEST_APPROVAL,
                                dimensions_map=pipeline_dims,
                                statistic="Maximum",
                                period=watchdog_period,
                            )
                        },
                        label="waiting for approval",
                        period=watchdog_period,
                    ),
                ],
                left_annotations=[
                    cloudwatch.HorizontalAnnotation(value=limit_s / 60, label="stuck")
                ],
                left_y_axis=cloudwatch.YAxisProps(min=0, show_units=False),
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Running executions",
                left=[
                    cloudwatch.Metric(
                        namespace=namespace,
                        metric_name=METRIC_IN_PROGRESS,
                        dimensions_map=pipeline_dims,
                        statistic="Maximum",
                        period=watchdog_period,
                        label="running executions",
                    )
                ],
                left_y_axis=cloudwatch.YAxisProps(min=0, show_units=False),
                width=8,
            ),
        )
        if builds:
            self.dashboard.add_widgets(
                cloudwatch.GraphWidget(
                    title="Build duration (seconds, longest per hour)",
                    left=[
                        b.project.metric_duration(
                            statistic="Maximum", period=Duration.hours(1), label=b.label
                        )
                        for b in builds
                    ],
                    left_annotations=[
                        cloudwatch.HorizontalAnnotation(
                            value=round(b.timeout.to_seconds() * slow_build_ratio),
                            label=f"{b.label} slow",
                        )
                        for b in builds
                    ],
                    left_y_axis=cloudwatch.YAxisProps(min=0, show_units=False),
                    width=12,
                ),
                cloudwatch.GraphWidget(
                    title="Failed builds",
                    left=[
                        b.project.metric_failed_builds(
                            statistic="Sum", period=Duration.hours(1), label=b.label
                        )
                        for b in builds
                    ],
                    left_y_axis=cloudwatch.YAxisProps(min=0, show_units=False),
                    width=12,
                ),
            )

    def _alarm(
        self,
        id: str,
        *,
        name: str,
        description: str,
        metric: cloudwatch.IMetric,
        threshold: float,
        missing: cloudwatch.TreatMissingData,
        ok_action: bool = False,
    ) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            self,
            id,
            alarm_name=name,
            alarm_description=description,
            metric=metric,
            threshold=threshold,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            datapoints_to_alarm=1,
            treat_missing_data=missing,
        )
        for topic in self._topics:
            alarm.add_alarm_action(cw_actions.SnsAction(topic))
            if ok_action:
                alarm.add_ok_action(cw_actions.SnsAction(topic))
        if not self._topics:
            compliance.accept(
                alarm,
                "CloudWatchAlarmAction",
                f"{name} has no action because deployline.yaml names nobody to notify (no "
                "notifications.emails, https_endpoint or sns_topic_arn; deployline validate "
                "warns): its state shows on the dashboard and in the console",
            )
        self.alarms.append(alarm)
        return alarm

    @staticmethod
    def _dora(
        namespace: str, name: str, service: str, env: str, statistic: str, period: Duration
    ) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace=namespace,
            metric_name=name,
            dimensions_map={"Service": service, "Environment": env},
            statistic=statistic,
            period=period,
        )

    def _dora_widgets(
        self, namespace: str, service: str, environments: Sequence[str]
    ) -> list[cloudwatch.IWidget]:
        def per_env(
            expression: str, metrics: dict[str, tuple[str, str]]
        ) -> list[cloudwatch.IMetric]:
            out: list[cloudwatch.IMetric] = []
            for env in environments:
                ids = {key: f"{key}_{_metric_id(env)}" for key in metrics}
                out.append(
                    cloudwatch.MathExpression(
                        expression=expression.format(**ids),
                        using_metrics={
                            ids[key]: self._dora(namespace, name, service, env, stat, _DAY)
                            for key, (name, stat) in metrics.items()
                        },
                        label=env,
                        period=_DAY,
                    )
                )
            return out

        axis = cloudwatch.YAxisProps(min=0, show_units=False)
        return [
            cloudwatch.GraphWidget(
                title="Deployments per day",
                left=[
                    self._dora(namespace, "DeploymentCount", service, env, "Sum", _DAY).with_(
                        label=env
                    )
                    for env in environments
                ],
                left_y_axis=axis,
                width=6,
            ),
            cloudwatch.GraphWidget(
                title="Lead time, commit to deployed (hours)",
                left=per_env("{lead} / 3600", {"lead": ("LeadTimeSeconds", "Average")}),
                left_y_axis=axis,
                width=6,
            ),
            cloudwatch.GraphWidget(
                title="Change failure rate (%)",
                left=per_env(
                    "IF({count} > 0, 100 * FILL({failed}, 0) / {count})",
                    {"failed": ("DeploymentFailed", "Sum"), "count": ("DeploymentCount", "Sum")},
                ),
                left_y_axis=cloudwatch.YAxisProps(min=0, max=100, show_units=False),
                width=6,
            ),
            cloudwatch.GraphWidget(
                title="Time to restore (hours)",
                left=per_env("{restore} / 3600", {"restore": ("TimeToRestoreSeconds", "Average")}),
                left_y_axis=axis,
                width=6,
            ),
        ]
