"""Alerts: an encrypted SNS topic (or the team's own), its subscribers, and the EventBridge rules
that feed it.

Four things reach a person, each as a readable message (pipeline, stage, action, source version
where the event carries one, and a console link built from the event's own region):

- a pipeline execution FAILED;
- a CodeBuild build of the pipeline's projects FAILED (or timed out, or faulted);
- a manual approval is waiting (an Approval action STARTED);
- a deployment failed or was rolled back: ECS failed or rolled back a service deployment of an
  environment (the circuit breaker, a deployment alarm, a lifecycle hook; events from other
  accounts and regions arrive on the deployment event bus), or the pipeline started a stage
  rollback (V2 pipelines report it as an execution triggered by `AutomatedRollback` or
  `ManualRollback`).

With e-mail addresses or an HTTPS endpoint, the alerts go to a topic of this construct,
encrypted with its own customer-managed key; the key policy lets EventBridge, CodeStar
Notifications and CloudWatch alarms (this account only) use the key, and the topic policy lets
the same three publish and refuses plain HTTP: without both, SNS drops the notifications
silently (failure catalog DL503, DL504). An existing topic (`topic_arn`) receives every alert and
alarm too, or alone; its policies are its owner's (the README says what they must allow).
Events that cannot be delivered after retries go to an encrypted dead-letter queue.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import jsii
from aws_cdk import Arn, ArnFormat, Aws, CfnParameter, Duration, RemovalPolicy, Stack, Token
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_codepipeline as codepipeline
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk.interfaces import aws_events as events_refs
from constructs import Construct

from deployline import defaults
from deployline.constructs.deployment_history import (
    MAX_EVENT_AGE,
    MAX_RETRIES,
    DeployedEnvironment,
    accept_named_accounts,
    acknowledge_dead_letter_queue,
    dead_letter_queue,
    ecs_deployment_pattern,
    event_age_seconds,
    require_event_bus,
    split_by_bus,
    validate_delivery,
    validate_environments,
    where,
)
from deployline.history_names import SQS_QUEUE
from deployline.naming import Kind, Namer

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_HTTPS = re.compile(r"^https://[^\s/$.?#][^\s]*$")
_SNS_ARN_PATTERN = r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}$"
_SNS_ARN = re.compile(_SNS_ARN_PATTERN)

#: The AWS services allowed to publish to the topic (and to use its key), this account only.
PUBLISHERS = (
    "events.amazonaws.com",
    "codestar-notifications.amazonaws.com",
    "cloudwatch.amazonaws.com",
)

_KEY_SIDS = {
    "events.amazonaws.com": "AllowEventBridge",
    "codestar-notifications.amazonaws.com": "AllowCodeStarNotifications",
    "cloudwatch.amazonaws.com": "AllowCloudWatchAlarms",
}

_CONSOLE = "https://{region}.console.aws.amazon.com"
_EXECUTION = "CodePipeline Pipeline Execution State Change"
_ACTION = "CodePipeline Action Execution State Change"
#: An ECS deployment event that tells of a failure or a rollback, whatever its exact name.
_FAILED_OR_ROLLED_BACK: dict[str, object] = {
    "$or": [
        {"eventName": [{"wildcard": "*FAIL*"}]},
        {"eventName": [{"wildcard": "*ROLLBACK*"}]},
        {
            "reason": [
                {"wildcard": "*olling back*"},
                {"wildcard": "*olled back*"},
                {"wildcard": "*ollback*"},
            ]
        },
    ]
}


def _field(path: str) -> str:
    return events.EventField.from_path(path)


def _console(region: str, path: str) -> str:
    """A console URL in the event's region: `path` must carry its own `?region=`."""
    return _CONSOLE.format(region=region) + path


@jsii.implements(events.IRuleTarget)
class _PublishTo:
    """An SNS topic as a rule target, with retries and a dead-letter queue, and no side effects.

    aws-cdk's `targets.SnsTopic` adds an unconditioned grant to the topic policy and, for an
    imported topic, warns about cross-environment targets. Here the topic and queue policies are
    written out in full by `Notifications`, with `aws:SourceAccount` and `aws:SourceArn`.
    """

    def __init__(
        self,
        topic_arn: str,
        *,
        message: events.RuleTargetInput,
        dead_letter_queue: sqs.IQueue,
        max_event_age: Duration,
        retry_attempts: int,
    ) -> None:
        self._topic_arn = topic_arn
        self._message = message
        self._dead_letter_queue = dead_letter_queue
        self._max_event_age = max_event_age
        self._retry_attempts = retry_attempts

    def bind(self, rule: events_refs.IRuleRef, id: str | None = None) -> events.RuleTargetConfig:
        return events.RuleTargetConfig(
            arn=self._topic_arn,
            input=self._message,
            dead_letter_config=events.CfnRule.DeadLetterConfigProperty(
                arn=self._dead_letter_queue.queue_arn
            ),
            retry_policy=events.CfnRule.RetryPolicyProperty(
                maximum_event_age_in_seconds=event_age_seconds(self._max_event_age),
                maximum_retry_attempts=self._retry_attempts,
            ),
        )


class Notifications(Construct):
    """The alert topic, its key, its subscribers and the rules that feed it.

    Attributes:
        topic: where alerts go first: the topic of this construct, or the existing one alone.
        own_topic: the topic of this construct (KMS-encrypted, SSL only); None when only
            `topic_arn` was given.
        existing_topic: the existing topic of `topic_arn` (a literal ARN becomes the default of
            the stack parameter `ExistingTopicArn`), or None.
        alarm_topics: every topic an alert or alarm goes to: `own_topic`, then `existing_topic`.
        key: the customer-managed key of the dead-letter queue (and of `own_topic`).
        dead_letter_queue: alerts EventBridge could not deliver after its retries.
        pipeline_failed_rule: pipeline execution FAILED.
        build_failed_rule: a build of the pipeline's projects failed; None without projects.
        approval_rule: a manual approval is waiting.
        rollback_rule: the pipeline started a stage rollback.
        deployment_failed_rules: per environment, ECS failed or rolled back a deployment of its
            service.
        rules: every rule above that exists, by short name.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        namer: Namer,
        pipeline: codepipeline.IPipeline,
        projects: Sequence[codebuild.IProject] = (),
        environments: Sequence[DeployedEnvironment] = (),
        event_bus: events.IEventBus | None = None,
        emails: Sequence[str] = (),
        https_endpoint: str | None = None,
        topic_arn: str | None = None,
        removal: RemovalPolicy = RemovalPolicy.RETAIN,
        max_event_age: Duration = MAX_EVENT_AGE,
        retry_attempts: int = MAX_RETRIES,
    ) -> None:
        """
        Args:
            namer: names everything `{service}-{type}-{env}` (env "shared" for the pipeline).
            pipeline: the pipeline whose failures, approvals and rollbacks are announced.
            projects: the pipeline's CodeBuild projects; their failed builds are announced.
                Default: none.
            environments: the environments the pipeline deploys to; ECS deployments of their
                services that fail or roll back are announced. Default: none.
            event_bus: the deployment event bus that environments in other accounts or regions
                forward their ECS events to; required when there are such environments.
                Default: None.
            emails: addresses subscribed to a topic of this construct (each confirms by
                e-mail). Default: none.
            https_endpoint: an HTTPS URL subscribed to a topic of this construct (a chat webhook
                relay, an incident tool). Default: None.
            topic_arn: an existing SNS topic in the pipeline's region that receives every alert
                and alarm: besides this construct's topic when emails or https_endpoint are
                given, instead of it otherwise. Its topic policy (and key policy, if it is
                encrypted) must let events.amazonaws.com and cloudwatch.amazonaws.com publish.
                Default: None.
            removal: the key's and the dead-letter queue's removal policy. Default: RETAIN.
            max_event_age: how long EventBridge keeps retrying a delivery. Default: 24 hours.
            retry_attempts: EventBridge delivery retries. Default: 185.

        At least one of emails, https_endpoint and topic_arn is required: alerts nobody reads
        hide every failure (failure catalog DL502).
        """
        super().__init__(scope, id)
        self._validate(emails, https_endpoint, topic_arn)
        validate_environments(environments)
        local, elsewhere = split_by_bus(self, environments)
        require_event_bus(elsewhere, event_bus)
        validate_delivery(max_event_age=max_event_age, retry_attempts=retry_attempts)
        subscribed = bool(emails) or https_endpoint is not None

        self.key = self._key(namer, removal, subscribed=subscribed)
        self.own_topic = self._own_topic(namer, emails, https_endpoint) if subscribed else None
        self.existing_topic = self._existing_topic(topic_arn) if topic_arn else None
        self.alarm_topics: tuple[sns.ITopic, ...] = tuple(
            t for t in (self.own_topic, self.existing_topic) if t is not None
        )
        self.topic = self.alarm_topics[0]
        self.dead_letter_queue = self._dead_letter_queue(namer, removal)
        self._max_event_age, self._retry_attempts = max_event_age, retry_attempts
        self.rules: dict[str, events.Rule] = {}

        self._pipeline_rules(namer, pipeline)
        self.build_failed_rule = self._build_rule(namer, projects) if projects else None
        self.deployment_failed_rules = {
            env.name: self._deployment_rule(namer, env, None if env in local else event_bus)
            for env in environments
        }
        for env in elsewhere:
            accept_named_accounts(
                self.deployment_failed_rules[env.name],
                f"the rule matches the ECS service of {where([env])} by its ARN",
            )
        self._allow_rules_to_deliver()

    # ---- validation, key, topic ----------------------------------------------------------------

    def _validate(
        self, emails: Sequence[str], https_endpoint: str | None, topic_arn: str | None
    ) -> None:
        for email in emails:
            if not Token.is_unresolved(email) and not _EMAIL.match(email):
                raise ValueError(
                    f"emails must be e-mail addresses like team@example.com, got {email!r}"
                )
        if len(set(emails)) != len(emails):
            raise ValueError(f"emails must be unique, got {list(emails)}")
        if (
            https_endpoint is not None
            and not Token.is_unresolved(https_endpoint)
            and not _HTTPS.match(https_endpoint)
        ):
            raise ValueError(
                f"https_endpoint must be an https:// URL, got {https_endpoint!r}; SNS sends "
                "alerts only over TLS"
            )
        if topic_arn is not None and not Token.is_unresolved(topic_arn):
            if not _SNS_ARN.match(topic_arn):
                raise ValueError(
                    "topic_arn must be an SNS topic ARN like "
                    f"arn:aws:sns:<region>:<account>:<name>, got {topic_arn!r}"
                )
            region = Arn.split(topic_arn, ArnFormat.NO_RESOURCE_NAME).region
            own = Stack.of(self).region
            if not Token.is_unresolved(own) and region != own:
                raise ValueError(
                    f"topic_arn must be a topic in the pipeline's region {own}, got one in "
                    f"{region} ({topic_arn}); CloudWatch alarms notify topics of their own "
                    "region only"
                )
        if not emails and https_endpoint is None and topic_arn is None:
            raise ValueError(
                "alerts need a reader: give emails, https_endpoint or topic_arn (got none); a "
                "topic without subscribers drops every alert"
            )

    def _dead_letter_queue(self, namer: Namer, removal: RemovalPolicy) -> sqs.Queue:
        queue = dead_letter_queue(
            self,
            "DeadLetterQueue",
            name=namer.name("alerts-dlq", SQS_QUEUE),
            key=self.key,
            removal=removal,
        )
        acknowledge_dead_letter_queue(queue, feeds="the alert rules' targets")
        return queue

    def _key(self, namer: Namer, removal: RemovalPolicy, *, subscribed: bool) -> kms.Key:
        key = defaults.secure_key(
            self,
            "Key",
            alias=namer.name("alerts-key"),
            description=f"deployline: encrypts {namer.service}'s alert topic and its "
            "dead-letter queue",
            removal=removal,
        )
        publishers = PUBLISHERS if subscribed else ("events.amazonaws.com",)
        for service in publishers:
            allow_publisher_to_use_key(key, service)
        return key

    def _own_topic(
        self, namer: Namer, emails: Sequence[str], https_endpoint: str | None
    ) -> sns.Topic:
        return subscribed_topic(
            self,
            "Topic",
            name=namer.name("alerts", Kind.SNS_TOPIC),
            display_name=f"deployline {namer.service}",
            key=self.key,
            emails=emails,
            https_endpoint=https_endpoint,
        )

    def _existing_topic(self, topic_arn: str) -> sns.ITopic:
        """The existing topic, its ARN given as the default of a CloudFormation parameter (as
        the connection ARN is): no account ID sits in the rules, alarms and policies that name
        it, and the ARN can change at deploy time."""
        arn = topic_arn
        if not Token.is_unresolved(topic_arn):
            arn = CfnParameter(
                self,
                "ExistingTopicArn",
                type="String",
                default=topic_arn,
                allowed_pattern=_SNS_ARN_PATTERN,
                description="The existing SNS topic that receives deployline's alerts and alarms "
                "(notifications.sns_topic_arn)",
            ).value_as_string
        return sns.Topic.from_topic_arn(self, "ExistingTopic", arn)

    # ---- rules ---------------------------------------------------------------------------------

    def _rule(
        self,
        id_: str,
        type_: str,
        *,
        namer: Namer,
        description: str,
        pattern: events.EventPattern,
        lines: list[str],
        event_bus: events.IEventBus | None = None,
    ) -> events.Rule:
        message = events.RuleTargetInput.from_multiline_text("\n".join(lines))
        rule = events.Rule(
            self,
            id_,
            rule_name=namer.name(type_, Kind.EVENT_RULE),
            description=f"deployline: {description}",
            event_bus=event_bus,
            event_pattern=pattern,
            targets=[
                _PublishTo(
                    topic.topic_arn,
                    message=message,
                    dead_letter_queue=self.dead_letter_queue,
                    max_event_age=self._max_event_age,
                    retry_attempts=self._retry_attempts,
                )
                for topic in self.alarm_topics
            ],
        )
        self.rules[type_] = rule
        return rule

    def _pipeline_rules(self, namer: Namer, pipeline: codepipeline.IPipeline) -> None:
        service = namer.service
        region = _field("$.region")
        pipeline_name = _field("$.detail.pipeline")
        execution = _field("$.detail.execution-id")
        execution_link = _console(
            region,
            f"/codesuite/codepipeline/pipelines/{pipeline_name}/executions/{execution}"
            f"/timeline?region={region}",
        )
        ours = {"pipeline": [pipeline.pipeline_name]}
        self.pipeline_failed_rule = self._rule(
            "PipelineFailed",
            "pipeline-failed",
            namer=namer,
            description=f"announces failed executions of {service}'s pipeline",
            pattern=events.EventPattern(
                source=["aws.codepipeline"],
                detail_type=[_EXECUTION],
                detail={**ours, "state": ["FAILED"]},
            ),
            lines=[
                f"deployline: pipeline {pipeline_name} FAILED.",
                f"Execution: {execution}",
                "Started by: "
                f"{_field('$.detail.execution-trigger.trigger-type')} "
                f"{_field('$.detail.execution-trigger.trigger-detail')}",
                f"At: {_field('$.time')}",
                f"Failed stage, action and commit: {execution_link}",
            ],
        )
        self.approval_rule = self._rule(
            "ApprovalWaiting",
            "approval-waiting",
            namer=namer,
            description=f"announces manual approvals waiting in {service}'s pipeline",
            pattern=events.EventPattern(
                source=["aws.codepipeline"],
                detail_type=[_ACTION],
                detail={**ours, "state": ["STARTED"], "type": {"category": ["Approval"]}},
            ),
            lines=[
                f"deployline: pipeline {pipeline_name} is waiting for a manual approval.",
                f"Stage: {_field('$.detail.stage')}, action: {_field('$.detail.action')}",
                f"Execution: {execution}",
                "Review the change and approve or reject: "
                + _console(
                    region,
                    f"/codesuite/codepipeline/pipelines/{pipeline_name}/view?region={region}",
                ),
            ],
        )
        trigger = _field("$.detail.execution-trigger.trigger-type")
        self.rollback_rule = self._rule(
            "PipelineRollback",
            "pipeline-rollback",
            namer=namer,
            description=f"announces stage rollbacks of {service}'s pipeline",
            pattern=events.EventPattern(
                source=["aws.codepipeline"],
                detail_type=[_EXECUTION],
                detail={
                    **ours,
                    "state": ["STARTED"],
                    "execution-trigger": {"trigger-type": ["AutomatedRollback", "ManualRollback"]},
                },
            ),
            lines=[
                f"deployline: pipeline {pipeline_name} is ROLLING BACK ({trigger}).",
                f"Rollback execution: {execution}",
                f"Rolled back from: {_field('$.detail.execution-trigger.trigger-detail')}",
                f"Stages and actions: {execution_link}",
            ],
        )

    def _build_rule(self, namer: Namer, projects: Sequence[codebuild.IProject]) -> events.Rule:
        region = _field("$.region")
        project = _field("$.detail.project-name")
        return self._rule(
            "BuildFailed",
            "build-failed",
            namer=namer,
            description=f"announces failed builds of {namer.service}'s pipeline projects",
            pattern=events.EventPattern(
                source=["aws.codebuild"],
                detail_type=["CodeBuild Build State Change"],
                detail={
                    "build-status": ["FAILED", "FAULT", "TIMED_OUT"],
                    "project-name": [p.project_name for p in projects],
                },
            ),
            lines=[
                f"deployline: build {project} {_field('$.detail.build-status')}.",
                f"Build: {_field('$.detail.build-id')}",
                f"Started by: {_field('$.detail.additional-information.initiator')}",
                "Source version (commit): "
                f"{_field('$.detail.additional-information.source-version')}",
                f"Logs: {_field('$.detail.additional-information.logs.deep-link')}",
                "Build history: "
                + _console(
                    region, f"/codesuite/codebuild/projects/{project}/history?region={region}"
                ),
            ],
        )

    def _deployment_rule(
        self, namer: Namer, env: DeployedEnvironment, event_bus: events.IEventBus | None
    ) -> events.Rule:
        """ECS failed or rolled back a deployment of `env`'s service (any event whose name says
        FAIL or ROLLBACK, or whose reason speaks of rolling back: runtime/ecs_events.py reads
        them the same way)."""
        region = _field("$.region")
        return self._rule(
            f"DeploymentFailed-{env.name}",
            f"{env.name}-deploy-failed",
            namer=namer,
            description=f"announces failed or rolled-back ECS deployments of {namer.service} in "
            f"{env.name}",
            event_bus=event_bus,
            pattern=ecs_deployment_pattern([env], detail=_FAILED_OR_ROLLED_BACK),
            lines=[
                f"deployline: a deployment of {namer.service} to {env.name} FAILED or was "
                "ROLLED BACK by ECS.",
                f"ECS says: {_field('$.detail.eventName')}: {_field('$.detail.reason')}",
                f"Deployment: {_field('$.detail.deploymentId')} of service {env.service} in "
                f"cluster {env.cluster}, account {_field('$.account')}",
                f"At: {_field('$.time')}",
                "Service deployments: "
                + _console(
                    region,
                    f"/ecs/v2/clusters/{env.cluster}/services/{env.service}/deployments"
                    f"?region={region}",
                ),
            ],
        )

    # ---- policies ------------------------------------------------------------------------------

    def _allow_rules_to_deliver(self) -> None:
        """The own topic's policy (the existing topic's is its owner's) and the DLQ's."""
        account = Aws.ACCOUNT_ID
        rule_arns = [r.rule_arn for r in self.rules.values()]
        from_rules = {
            "StringEquals": {"aws:SourceAccount": account},
            "ArnEquals": {"aws:SourceArn": rule_arns},
        }
        if self.own_topic is not None:
            self._allow_publishers(self.own_topic, from_rules)
        self.dead_letter_queue.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowEventBridgeRuleDeadLetters",
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                actions=["sqs:SendMessage"],
                resources=[self.dead_letter_queue.queue_arn],
                conditions=from_rules,
            )
        )

    @staticmethod
    def _allow_publishers(topic: sns.Topic, from_rules: dict[str, object]) -> None:
        account = Aws.ACCOUNT_ID
        for sid, service, conditions in (
            ("AllowEventBridgeRules", "events.amazonaws.com", from_rules),
            (
                "AllowCodeStarNotifications",
                "codestar-notifications.amazonaws.com",
                {"StringEquals": {"aws:SourceAccount": account}},
            ),
        ):
            topic.add_to_resource_policy(
                iam.PolicyStatement(
                    sid=sid,
                    principals=[iam.ServicePrincipal(service)],
                    actions=["sns:Publish"],
                    resources=[topic.topic_arn],
                    conditions=conditions,
                )
            )
        allow_alarms_to_publish(topic)


# ---- topics other constructs share ---------------------------------------------------------------


def subscribed_topic(
    scope: Construct,
    id: str,
    *,
    name: str,
    display_name: str,
    key: kms.IKey,
    emails: Sequence[str] = (),
    https_endpoint: str | None = None,
) -> sns.Topic:
    """An SNS topic encrypted with `key`, refusing plain HTTP, with `emails` (each confirms by
    e-mail) and `https_endpoint` subscribed. The key must let the topic's publishers use it
    (`allow_publisher_to_use_key`)."""
    topic = sns.Topic(
        scope,
        id,
        topic_name=name,
        display_name=display_name[:100],
        master_key=key,
        enforce_ssl=True,
        signature_version="2",
    )
    for email in emails:
        topic.add_subscription(subscriptions.EmailSubscription(email))
    if https_endpoint is not None:
        topic.add_subscription(
            subscriptions.UrlSubscription(https_endpoint, protocol=sns.SubscriptionProtocol.HTTPS)
        )
    return topic


def allow_publisher_to_use_key(key: kms.IKey, service: str) -> None:
    """Let AWS service `service` (one of PUBLISHERS), in this account only, encrypt messages for
    a topic with `key`."""
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid=_KEY_SIDS[service],
            principals=[iam.ServicePrincipal(service)],
            actions=["kms:GenerateDataKey*", "kms:Decrypt"],
            resources=["*"],  # a key policy's resource is always the key itself
            conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
        )
    )


def allow_alarms_to_publish(topic: sns.Topic) -> None:
    """Let the CloudWatch alarms of this account and region publish to `topic`."""
    partition, account, region = Aws.PARTITION, Aws.ACCOUNT_ID, Aws.REGION
    topic.add_to_resource_policy(
        iam.PolicyStatement(
            sid="AllowCloudWatchAlarms",
            principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
            actions=["sns:Publish"],
            resources=[topic.topic_arn],
            conditions={
                "StringEquals": {"aws:SourceAccount": account},
                "ArnLike": {
                    "aws:SourceArn": f"arn:{partition}:cloudwatch:{region}:{account}:alarm:*"
                },
            },
        )
    )
