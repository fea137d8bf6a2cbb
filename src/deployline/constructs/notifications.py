"""Alerts: an encrypted SNS topic, its subscribers, and the EventBridge rules that feed it.

Four things reach a person, each as a readable message (pipeline, stage, action, source version
where the event carries one, and a console link built from the event's own region):

- a pipeline execution FAILED;
- a CodeBuild build of the pipeline's projects FAILED (or timed out, or faulted);
- a manual approval is waiting (an Approval action STARTED);
- a deployment was rolled back: a CodeDeploy deployment of this service failed or was stopped
  (CodeDeploy shifts traffic back), or the pipeline started a stage rollback (V2 pipelines report
  it as an execution triggered by `AutomatedRollback` or `ManualRollback`).

The topic is encrypted with its own customer-managed key. Its key policy lets EventBridge,
CodeStar Notifications and CloudWatch alarms (this account only) use the key, and its topic
policy lets the same three publish and refuses plain HTTP: without both, SNS drops the
notifications silently (failure catalog DL503, DL504). Events that cannot be delivered after
retries go to an encrypted dead-letter queue.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import jsii
from aws_cdk import Aws, Duration, RemovalPolicy, Token
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_codepipeline as codepipeline
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from deployline import defaults
from deployline.constructs.deployment_history import (
    MAX_EVENT_AGE,
    MAX_RETRIES,
    SQS_QUEUE,
    DeployedEnvironment,
    acknowledge_dead_letter_queue,
    codedeploy_targets,
    dead_letter_queue,
    validate_delivery,
    validate_environments,
)
from deployline.naming import Kind, Namer

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_HTTPS = re.compile(r"^https://[^\s/$.?#][^\s]*$")
_SNS_ARN = re.compile(r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$")

#: The AWS services allowed to publish to the topic (and to use its key), this account only.
PUBLISHERS = (
    "events.amazonaws.com",
    "codestar-notifications.amazonaws.com",
    "cloudwatch.amazonaws.com",
)

_CONSOLE = "https://{region}.console.aws.amazon.com"
_EXECUTION = "CodePipeline Pipeline Execution State Change"
_ACTION = "CodePipeline Action Execution State Change"


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

    def bind(self, _rule: events.IRule, _id: str | None = None) -> events.RuleTargetConfig:
        return events.RuleTargetConfig(
            arn=self._topic_arn,
            input=self._message,
            dead_letter_config=events.CfnRule.DeadLetterConfigProperty(
                arn=self._dead_letter_queue.queue_arn
            ),
            retry_policy=events.CfnRule.RetryPolicyProperty(
                maximum_event_age_in_seconds=int(self._max_event_age.to_seconds()),
                maximum_retry_attempts=self._retry_attempts,
            ),
        )


class Notifications(Construct):
    """The alert topic, its key, its subscribers and the rules that feed it.

    Attributes:
        topic: the SNS topic (KMS-encrypted, SSL only).
        key: the topic's customer-managed key.
        forward_topic: the existing topic that also receives every alert, or None.
        alarm_topics: every topic an alarm should notify: `topic`, then `forward_topic`.
        dead_letter_queue: alerts EventBridge could not deliver after its retries.
        pipeline_failed_rule: pipeline execution FAILED.
        build_failed_rule: a build of the pipeline's projects failed; None without projects.
        approval_rule: a manual approval is waiting.
        rollback_rule: the pipeline started a stage rollback.
        deployment_failed_rule: a CodeDeploy deployment failed or stopped; None without
            blue/green environments.
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
        emails: Sequence[str] = (),
        https_endpoint: str | None = None,
        forward_topic_arn: str | None = None,
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
            environments: the environments the pipeline deploys to; the CodeDeploy groups
                among them are watched for failed deployments. Default: none.
            emails: addresses subscribed to the topic (each confirms by e-mail). Default: none.
            https_endpoint: an HTTPS URL subscribed to the topic (a chat webhook relay, an
                incident tool). Default: None.
            forward_topic_arn: an existing SNS topic in the same account and region that also
                receives every alert and alarm; its own policy must let events.amazonaws.com
                and cloudwatch.amazonaws.com publish. Default: None.
            removal: the key's and the dead-letter queue's removal policy. Default: RETAIN.
            max_event_age: how long EventBridge keeps retrying a delivery. Default: 24 hours.
            retry_attempts: EventBridge delivery retries. Default: 185.

        At least one e-mail or the HTTPS endpoint is required: a topic nobody reads hides every
        failure (failure catalog DL502).
        """
        super().__init__(scope, id)
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
        if (
            forward_topic_arn is not None
            and not Token.is_unresolved(forward_topic_arn)
            and not _SNS_ARN.match(forward_topic_arn)
        ):
            raise ValueError(
                "forward_topic_arn must be an SNS topic ARN like "
                f"arn:aws:sns:<region>:<account>:<name>, got {forward_topic_arn!r}"
            )
        if not emails and https_endpoint is None:
            raise ValueError(
                "alerts need a reader: give at least one of emails or https_endpoint "
                "(got neither); a topic without subscribers drops every alert"
            )
        validate_environments(environments)
        validate_delivery(max_event_age=max_event_age, retry_attempts=retry_attempts)

        self.key = defaults.secure_key(
            self,
            "Key",
            alias=namer.name("alerts-key"),
            description=f"deployline: encrypts {namer.service}'s alert topic and its "
            "dead-letter queue",
            removal=removal,
        )
        for sid, service in (
            ("AllowEventBridge", "events.amazonaws.com"),
            ("AllowCodeStarNotifications", "codestar-notifications.amazonaws.com"),
            ("AllowCloudWatchAlarms", "cloudwatch.amazonaws.com"),
        ):
            self.key.add_to_resource_policy(
                iam.PolicyStatement(
                    sid=sid,
                    principals=[iam.ServicePrincipal(service)],
                    actions=["kms:GenerateDataKey*", "kms:Decrypt"],
                    resources=["*"],  # a key policy's resource is always the key itself
                    conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
                )
            )

        self.topic = sns.Topic(
            self,
            "Topic",
            topic_name=namer.name("alerts", Kind.SNS_TOPIC),
            display_name=f"deployline {namer.service}"[:100],
            master_key=self.key,
            enforce_ssl=True,
            signature_version="2",
        )
        for email in emails:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))
        if https_endpoint is not None:
            self.topic.add_subscription(
                subscriptions.UrlSubscription(
                    https_endpoint, protocol=sns.SubscriptionProtocol.HTTPS
                )
            )
        self.forward_topic: sns.ITopic | None = (
            sns.Topic.from_topic_arn(self, "ForwardTopic", forward_topic_arn)
            if forward_topic_arn is not None
            else None
        )
        self.alarm_topics: tuple[sns.ITopic, ...] = (
            (self.topic, self.forward_topic) if self.forward_topic else (self.topic,)
        )

        self.dead_letter_queue: sqs.Queue = dead_letter_queue(
            self,
            "DeadLetterQueue",
            name=namer.name("alerts-dlq", SQS_QUEUE),
            key=self.key,
            removal=removal,
        )

        acknowledge_dead_letter_queue(self.dead_letter_queue, feeds="the alert rules' targets")
        destinations = [t.topic_arn for t in self.alarm_topics]

        def rule(
            id_: str, type_: str, description: str, pattern: events.EventPattern, lines: list[str]
        ) -> events.Rule:
            message = events.RuleTargetInput.from_multiline_text("\n".join(lines))
            return events.Rule(
                self,
                id_,
                rule_name=namer.name(type_, Kind.EVENT_RULE),
                description=f"deployline: {description}",
                event_pattern=pattern,
                targets=[
                    _PublishTo(
                        destination,
                        message=message,
                        dead_letter_queue=self.dead_letter_queue,
                        max_event_age=max_event_age,
                        retry_attempts=retry_attempts,
                    )
                    for destination in destinations
                ],
            )

        region = _field("$.region")
        pipeline_name = _field("$.detail.pipeline")
        execution = _field("$.detail.execution-id")
        execution_link = _console(
            region,
            f"/codesuite/codepipeline/pipelines/{pipeline_name}/executions/{execution}"
            f"/timeline?region={region}",
        )
        self.rules: dict[str, events.Rule] = {}

        self.pipeline_failed_rule = rule(
            "PipelineFailed",
            "pipeline-failed",
            f"announces failed executions of {namer.service}'s pipeline",
            events.EventPattern(
                source=["aws.codepipeline"],
                detail_type=[_EXECUTION],
                detail={"pipeline": [pipeline.pipeline_name], "state": ["FAILED"]},
            ),
            [
                f"deployline: pipeline {pipeline_name} FAILED.",
                f"Execution: {execution}",
                "Started by: "
                f"{_field('$.detail.execution-trigger.trigger-type')} "
                f"{_field('$.detail.execution-trigger.trigger-detail')}",
                f"At: {_field('$.time')}",
                f"Failed stage, action and commit: {execution_link}",
            ],
        )
        self.rules["pipeline-failed"] = self.pipeline_failed_rule

        self.build_failed_rule: events.Rule | None = None
        if projects:
            project = _field("$.detail.project-name")
            self.build_failed_rule = rule(
                "BuildFailed",
                "build-failed",
                f"announces failed builds of {namer.service}'s pipeline projects",
                events.EventPattern(
                    source=["aws.codebuild"],
                    detail_type=["CodeBuild Build State Change"],
                    detail={
                        "build-status": ["FAILED", "FAULT", "TIMED_OUT"],
                        "project-name": [p.project_name for p in projects],
                    },
                ),
                [
                    f"deployline: build {project} {_field('$.detail.build-status')}.",
                    f"Build: {_field('$.detail.build-id')}",
                    f"Started by: {_field('$.detail.additional-information.initiator')}",
                    "Source version (commit): "
                    f"{_field('$.detail.additional-information.source-version')}",
                    f"Logs: {_field('$.detail.additional-information.logs.deep-link')}",
                    "Build history: "
                    + _console(
                        region,
                        f"/codesuite/codebuild/projects/{project}/history?region={region}",
                    ),
                ],
            )
            self.rules["build-failed"] = self.build_failed_rule

        stage = _field("$.detail.stage")
        action = _field("$.detail.action")
        self.approval_rule = rule(
            "ApprovalWaiting",
            "approval-waiting",
            f"announces manual approvals waiting in {namer.service}'s pipeline",
            events.EventPattern(
                source=["aws.codepipeline"],
                detail_type=[_ACTION],
                detail={
                    "pipeline": [pipeline.pipeline_name],
                    "state": ["STARTED"],
                    "type": {"category": ["Approval"]},
                },
            ),
            [
                f"deployline: pipeline {pipeline_name} is waiting for a manual approval.",
                f"Stage: {stage}, action: {action}",
                f"Execution: {execution}",
                "Review the change and approve or reject: "
                + _console(
                    region,
                    f"/codesuite/codepipeline/pipelines/{pipeline_name}/view?region={region}",
                ),
            ],
        )
        self.rules["approval-waiting"] = self.approval_rule

        trigger = _field("$.detail.execution-trigger.trigger-type")
        self.rollback_rule = rule(
            "PipelineRollback",
            "pipeline-rollback",
            f"announces stage rollbacks of {namer.service}'s pipeline",
            events.EventPattern(
                source=["aws.codepipeline"],
                detail_type=[_EXECUTION],
                detail={
                    "pipeline": [pipeline.pipeline_name],
                    "state": ["STARTED"],
                    "execution-trigger": {"trigger-type": ["AutomatedRollback", "ManualRollback"]},
                },
            ),
            [
                f"deployline: pipeline {pipeline_name} is ROLLING BACK ({trigger}).",
                f"Rollback execution: {execution}",
                f"Rolled back from: {_field('$.detail.execution-trigger.trigger-detail')}",
                f"Stages and actions: {execution_link}",
            ],
        )
        self.rules["pipeline-rollback"] = self.rollback_rule

        groups = codedeploy_targets(environments)
        self.deployment_failed_rule: events.Rule | None = None
        if groups:
            deployment = _field("$.detail.deploymentId")
            self.deployment_failed_rule = rule(
                "DeploymentRolledBack",
                "deploy-rolled-back",
                f"announces failed or stopped CodeDeploy deployments of {namer.service}",
                events.EventPattern(
                    source=["aws.codedeploy"],
                    detail_type=["CodeDeploy Deployment State-change Notification"],
                    detail={
                        "application": sorted({g.application for g in groups}),
                        "deploymentGroup": sorted({g.deployment_group for g in groups}),
                        "state": ["FAILURE", "STOP"],
                    },
                ),
                [
                    f"deployline: CodeDeploy deployment {deployment} ended in "
                    f"{_field('$.detail.state')}; traffic returns to the previous version.",
                    f"Application: {_field('$.detail.application')}, deployment group: "
                    f"{_field('$.detail.deploymentGroup')}",
                    "Details: "
                    + _console(
                        region, f"/codesuite/codedeploy/deployments/{deployment}?region={region}"
                    ),
                ],
            )
            self.rules["deploy-rolled-back"] = self.deployment_failed_rule

        partition, account, region_ = Aws.PARTITION, Aws.ACCOUNT_ID, Aws.REGION
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowEventBridgeRules",
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": account},
                    "ArnEquals": {"aws:SourceArn": [r.rule_arn for r in self.rules.values()]},
                },
            )
        )
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCodeStarNotifications",
                principals=[iam.ServicePrincipal("codestar-notifications.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={"StringEquals": {"aws:SourceAccount": account}},
            )
        )
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarms",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": account},
                    "ArnLike": {
                        "aws:SourceArn": f"arn:{partition}:cloudwatch:{region_}:{account}:alarm:*"
                    },
                },
            )
        )
        self.dead_letter_queue.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowEventBridgeRuleDeadLetters",
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                actions=["sqs:SendMessage"],
                resources=[self.dead_letter_queue.queue_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": account},
                    "ArnEquals": {"aws:SourceArn": [r.rule_arn for r in self.rules.values()]},
                },
            )
        )
