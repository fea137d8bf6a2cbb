"""The deployment record: a DynamoDB table that the recorder function fills from pipeline events.

Every pipeline execution, stage and action state change of this pipeline, and every CodeDeploy
deployment state change of this service's deployment groups, reaches `runtime/recorder.py` through
EventBridge. The recorder writes one item per deployment (the table) and publishes the DORA metrics
(`DeploymentCount`, `DeploymentFailed`, `LeadTimeSeconds`, `TimeToRestoreSeconds`, dimensions
`Service` and `Environment`) that `PipelineMonitoring` alarms on and charts.

Events that cannot be delivered (after the rule's retries) or processed (after Lambda's async
retries) land in an encrypted SQS dead-letter queue, so a record is never lost silently.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import (
    Acknowledgment,
    Aws,
    Duration,
    RemovalPolicy,
    Token,
    Validations,
)
from aws_cdk import aws_codepipeline as codepipeline
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from deployline import defaults
from deployline.constructs.runtime_function import (
    RuntimeFunction,
    acknowledge_function_findings,
    publish_metrics_statement,
)
from deployline.naming import Kind, Limit, Namer, kebab

#: The table's key schema. Fixed: the runtime (recorder, security gate, `deployline history`)
#: reads and writes these attribute names.
PARTITION_KEY = "pk"
SORT_KEY = "sk"
ENVIRONMENT_INDEX = "by-environment"
ENVIRONMENT_INDEX_PARTITION_KEY = "environment"
ENVIRONMENT_INDEX_SORT_KEY = "started_at"

#: Default CloudWatch namespace of the metrics the recorder publishes.
METRICS_NAMESPACE = "deployline"

#: SQS queue names are at most 80 characters.
SQS_QUEUE = Limit("SQS queue", 80)

#: Longest event age and most retries EventBridge accepts for a target.
MAX_EVENT_AGE = Duration.hours(24)
MAX_RETRIES = 185
#: Longest event age Lambda keeps an asynchronous invocation (6 hours).
_LAMBDA_MAX_EVENT_AGE = 21600

_PIPELINE_DETAIL_TYPES = [
    "CodePipeline Pipeline Execution State Change",
    "CodePipeline Stage Execution State Change",
    "CodePipeline Action Execution State Change",
]
_CODEDEPLOY_DETAIL_TYPE = "CodeDeploy Deployment State-change Notification"
_STAGE_NAME = re.compile(r"^[A-Za-z0-9.@\-_]{1,100}$")
_CODEDEPLOY_NAME = re.compile(r"^[\w.+\-@]{1,100}$")


@dataclass(frozen=True)
class CodeDeployTarget:
    """A CodeDeploy deployment group (ECS blue/green) by name.

    Names, not constructs: the groups live in the per-environment stacks, which deploy after the
    pipeline stack, so the pipeline stack must not reference them.
    """

    application: str
    deployment_group: str


@dataclass(frozen=True)
class DeployedEnvironment:
    """An environment the pipeline deploys to, as the recorder and the alerts need to know it.

    Attributes:
        name: the environment name, e.g. "production" (lowercase kebab-case).
        stage: the pipeline stage that deploys it, e.g. "Deploy-production".
        codedeploy: its CodeDeploy deployment group for blue/green deploys. Default: None (a
            rolling ECS deploy, recorded from the pipeline's events alone).
    """

    name: str
    stage: str
    codedeploy: CodeDeployTarget | None = None

    def validate(self) -> None:
        """Raise ValueError, naming the field, the value and the fix, if a value is malformed."""
        if not self.name or kebab(self.name) != self.name:
            raise ValueError(
                f"DeployedEnvironment.name must be lowercase kebab-case like 'production', "
                f"got {self.name!r}"
            )
        if not Token.is_unresolved(self.stage) and not _STAGE_NAME.match(self.stage):
            raise ValueError(
                f"DeployedEnvironment.stage must be a CodePipeline stage name (1-100 of "
                f"A-Z a-z 0-9 . @ - _), got {self.stage!r} for environment {self.name!r}"
            )
        if self.codedeploy is not None:
            for field, value in (
                ("application", self.codedeploy.application),
                ("deployment_group", self.codedeploy.deployment_group),
            ):
                if not Token.is_unresolved(value) and not _CODEDEPLOY_NAME.match(value):
                    raise ValueError(
                        f"CodeDeployTarget.{field} must be a CodeDeploy name (1-100 of letters, "
                        f"digits, . _ + - @), got {value!r} for environment {self.name!r}"
                    )

    def to_runtime(self) -> dict[str, str | None]:
        """The shape `runtime/recorder.py` reads from ENVIRONMENTS."""
        return {
            "name": self.name,
            "stage": self.stage,
            "deployment_group": self.codedeploy.deployment_group if self.codedeploy else None,
        }


def validate_environments(environments: Sequence[DeployedEnvironment]) -> None:
    """Each environment well-formed, names and stages unique."""
    for env in environments:
        env.validate()
    for what, values in (
        ("name", [e.name for e in environments]),
        ("stage", [e.stage for e in environments]),
    ):
        dupes = sorted({v for v in values if values.count(v) > 1})
        if dupes:
            raise ValueError(
                f"each DeployedEnvironment needs its own {what}; {dupes} appear more than once"
            )


def codedeploy_targets(environments: Sequence[DeployedEnvironment]) -> list[CodeDeployTarget]:
    """The CodeDeploy deployment groups among `environments`, in order."""
    return [e.codedeploy for e in environments if e.codedeploy is not None]


def validate_delivery(*, max_event_age: Duration, retry_attempts: int) -> None:
    """EventBridge target limits: event age 1 minute..24 hours, 0..185 retries."""
    if not Token.is_unresolved(max_event_age.to_seconds()) and not (
        60 <= max_event_age.to_seconds() <= MAX_EVENT_AGE.to_seconds()
    ):
        raise ValueError(
            f"max_event_age must lie between 1 minute and 24 hours, got "
            f"{max_event_age.to_human_string()}"
        )
    if not 0 <= retry_attempts <= MAX_RETRIES:
        raise ValueError(f"retry_attempts must lie between 0 and 185, got {retry_attempts}")


def dead_letter_queue(
    scope: Construct, id: str, *, name: str, key: kms.IKey, removal: RemovalPolicy
) -> sqs.Queue:
    """An SQS queue for events that could not be delivered: KMS-encrypted, SSL only, 14 days."""
    return sqs.Queue(
        scope,
        id,
        queue_name=name,
        encryption=sqs.QueueEncryption.KMS,
        encryption_master_key=key,
        enforce_ssl=True,
        retention_period=Duration.days(14),
        removal_policy=removal,
    )


def acknowledge_dead_letter_queue(queue: sqs.Queue, *, feeds: str) -> None:
    """A DLQ has no DLQ of its own; cdk-nag cannot see EventBridge use it as one."""
    cfn_queue = queue.node.default_child
    name = cfn_queue.queue_name if isinstance(cfn_queue, sqs.CfnQueue) else None
    label = name if isinstance(name, str) and not Token.is_unresolved(name) else queue.node.path
    Validations.of(queue).acknowledge(
        Acknowledgment(
            id="AwsSolutions::AwsSolutions-SQS3",
            reason=f"{label} is itself the dead-letter queue of {feeds}",
        )
    )


def allow_eventbridge_to_use_key(key: kms.IKey, *, sid: str) -> None:
    """Let EventBridge (in this account only) encrypt messages for SQS/SNS targets with `key`.

    Raises ValueError when the key is imported: its policy cannot be changed here, and events
    would be dropped at delivery time.
    """
    result = key.add_to_resource_policy(
        iam.PolicyStatement(
            sid=sid,
            principals=[iam.ServicePrincipal("events.amazonaws.com")],
            actions=["kms:GenerateDataKey", "kms:Decrypt"],
            resources=["*"],  # a key policy's resource is always the key itself
            conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
        )
    )
    if not result.statement_added:
        raise ValueError(
            "key must be a kms.Key defined in this app (its key policy must let EventBridge "
            "encrypt dead-letter messages); got an imported key. Pass the stack's own key."
        )


class DeploymentHistory(Construct):
    """The deployment record: table, recorder function, the rules that feed it, a DLQ.

    Attributes:
        table: the DynamoDB table (keys `pk`/`sk`, index `by-environment`).
        recorder: the recorder `RuntimeFunction` (its `.function`, `.role`, `.log_group`).
        dead_letter_queue: undeliverable or unprocessable events.
        pipeline_rule: the rule on this pipeline's execution, stage and action state changes.
        codedeploy_rule: the rule on this service's CodeDeploy deployments; None without
            blue/green environments.
        environments: the environments recorded, as given.
        metrics_namespace: where the recorder publishes its metrics.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        namer: Namer,
        key: kms.IKey,
        pipeline: codepipeline.IPipeline,
        environments: Sequence[DeployedEnvironment],
        production_environment: str | None = None,
        deletion_protection: bool = True,
        removal: RemovalPolicy = RemovalPolicy.RETAIN,
        metrics_namespace: str = METRICS_NAMESPACE,
        log_retention_days: int = defaults.LOG_RETENTION_DAYS,
        max_event_age: Duration = MAX_EVENT_AGE,
        retry_attempts: int = MAX_RETRIES,
    ) -> None:
        """
        Args:
            namer: names everything `{service}-{type}-{env}` (env "shared" for the pipeline).
            key: the pipeline CMK: encrypts the table, the DLQ, the function's log group and
                environment. Must be a `kms.Key` of this app (its policy gains a statement that
                lets EventBridge use it for the DLQ) that allows CloudWatch Logs
                (`defaults.allow_logs_to_use_key`).
            pipeline: the pipeline whose events are recorded.
            environments: the environments it deploys to, in pipeline order (at least one).
            production_environment: the name of the production environment, if any; the
                recorder measures lead time and time to restore there. Default: None.
            deletion_protection: refuse DeleteTable. Default: True (pass False for pipelines
                that never reach production).
            removal: the table's and DLQ's removal policy. Default: RETAIN.
            metrics_namespace: CloudWatch namespace of the recorder's metrics.
                Default: "deployline".
            log_retention_days: the recorder's logs. Default: 30.
            max_event_age: how long EventBridge keeps retrying delivery. Default: 24 hours.
            retry_attempts: EventBridge delivery retries. Default: 185.
        """
        super().__init__(scope, id)
        if not environments:
            raise ValueError(
                "environments must name at least one environment the pipeline deploys to, got []"
            )
        validate_environments(environments)
        names = [e.name for e in environments]
        if production_environment is not None and production_environment not in names:
            raise ValueError(
                f"production_environment must be one of the environments {names}, got "
                f"{production_environment!r}"
            )
        if not re.fullmatch(r"[A-Za-z0-9._/#:\-]{1,255}", metrics_namespace) or (
            metrics_namespace.startswith("AWS/")
        ):
            raise ValueError(
                f"metrics_namespace must be 1-255 of letters, digits, . _ / # : - and must not "
                f"start with 'AWS/', got {metrics_namespace!r}"
            )
        validate_delivery(max_event_age=max_event_age, retry_attempts=retry_attempts)
        # First, so that an imported key fails before anything is built.
        allow_eventbridge_to_use_key(key, sid="AllowEventBridgeRecorderDeadLetters")
        self.environments = tuple(environments)
        self.metrics_namespace = metrics_namespace
        self._key = key

        self.table = dynamodb.Table(
            self,
            "Table",
            table_name=namer.name("deployments", Kind.DYNAMODB_TABLE),
            partition_key=dynamodb.Attribute(
                name=PARTITION_KEY, type=dynamodb.AttributeType.STRING
            ),
            sort_key=dynamodb.Attribute(name=SORT_KEY, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=key,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            deletion_protection=deletion_protection,
            removal_policy=removal,
        )
        self.table.add_global_secondary_index(
            index_name=ENVIRONMENT_INDEX,
            partition_key=dynamodb.Attribute(
                name=ENVIRONMENT_INDEX_PARTITION_KEY, type=dynamodb.AttributeType.STRING
            ),
            sort_key=dynamodb.Attribute(
                name=ENVIRONMENT_INDEX_SORT_KEY, type=dynamodb.AttributeType.STRING
            ),
            projection_type=dynamodb.ProjectionType.ALL,
        )

        self.dead_letter_queue = dead_letter_queue(
            self,
            "DeadLetterQueue",
            name=namer.name("recorder-dlq", SQS_QUEUE),
            key=key,
            removal=removal,
        )

        region = Aws.REGION
        self.recorder = RuntimeFunction(
            self,
            "Recorder",
            namer=namer,
            name="recorder",
            handler="recorder.handler",
            description=f"deployline: records deployments of {namer.service} and publishes "
            "DORA metrics",
            key=key,
            environment={
                "TABLE_NAME": self.table.table_name,
                "METRICS_NAMESPACE": metrics_namespace,
                "SERVICE_NAME": namer.service,
                "PIPELINE_NAME": pipeline.pipeline_name,
                "ENVIRONMENTS": json.dumps(
                    [e.to_runtime() for e in environments], separators=(",", ":")
                ),
                "PRODUCTION_ENVIRONMENT": production_environment or "",
            },
            log_retention_days=log_retention_days,
            removal=removal,
            statements=[
                *self._codedeploy_statements(environments),
                iam.PolicyStatement(
                    sid="RecordDeployments",
                    actions=[
                        "dynamodb:GetItem",
                        "dynamodb:PutItem",
                        "dynamodb:UpdateItem",
                        "dynamodb:Query",
                    ],
                    resources=[
                        self.table.table_arn,
                        f"{self.table.table_arn}/index/{ENVIRONMENT_INDEX}",
                    ],
                ),
                iam.PolicyStatement(
                    sid="UseTableKeyThroughDynamoDB",
                    actions=[
                        "kms:Decrypt",
                        "kms:Encrypt",
                        "kms:GenerateDataKey",
                        "kms:DescribeKey",
                    ],
                    resources=[key.key_arn],
                    conditions={
                        "StringEquals": {"kms:ViaService": f"dynamodb.{region}.amazonaws.com"}
                    },
                ),
                iam.PolicyStatement(
                    sid="ReadPipelineExecutions",
                    actions=[
                        "codepipeline:GetPipelineExecution",
                        "codepipeline:ListActionExecutions",
                    ],
                    resources=[pipeline.pipeline_arn],
                ),
                publish_metrics_statement("PublishDeploymentMetrics", metrics_namespace),
                iam.PolicyStatement(
                    sid="SendFailedEventsToDeadLetterQueue",
                    actions=["sqs:SendMessage"],
                    resources=[self.dead_letter_queue.queue_arn],
                ),
                iam.PolicyStatement(
                    sid="EncryptDeadLettersThroughSQS",
                    actions=["kms:GenerateDataKey", "kms:Decrypt"],
                    resources=[key.key_arn],
                    conditions={"StringEquals": {"kms:ViaService": f"sqs.{region}.amazonaws.com"}},
                ),
            ],
        )
        acknowledge_function_findings(self.recorder, metrics_namespace=metrics_namespace)
        recorder = self.recorder.function_name
        defaults.skip_checkov(
            self.recorder.function,
            "CKV_AWS_116",
            f"{recorder}'s failed asynchronous invocations go to the queue "
            f"{namer.name('recorder-dlq', SQS_QUEUE)} through an on-failure destination, which "
            "keeps the request and the error (a DeadLetterConfig keeps only the request)",
        )
        defaults.skip_checkov(
            self.recorder.function,
            "CKV_AWS_115",
            f"{recorder} handles one event per pipeline state change, and its conditional writes "
            "make concurrent runs safe; reserved concurrency would take from the account's "
            "unreserved pool",
        )
        defaults.skip_checkov(
            self.recorder.function,
            "CKV_AWS_117",
            f"{recorder} calls only DynamoDB, CloudWatch and CodePipeline APIs: no VPC resource",
        )
        acknowledge_dead_letter_queue(
            self.dead_letter_queue,
            feeds="the recorder rules' targets and of the recorder's asynchronous invocations",
        )
        function = self.recorder.function
        # Events the function fails on (after Lambda's two async retries, within at most 6 hours)
        # go to the same DLQ.
        invoke_config = lambda_.CfnEventInvokeConfig(
            self,
            "RecorderInvokeConfig",
            function_name=function.function_name,
            qualifier="$LATEST",
            maximum_retry_attempts=2,
            maximum_event_age_in_seconds=min(
                int(max_event_age.to_seconds()), _LAMBDA_MAX_EVENT_AGE
            ),
            destination_config=lambda_.CfnEventInvokeConfig.DestinationConfigProperty(
                on_failure=lambda_.CfnEventInvokeConfig.OnFailureProperty(
                    destination=self.dead_letter_queue.queue_arn
                )
            ),
        )
        # Lambda checks the role may send to the destination when the config is created.
        default_policy = self.recorder.role.node.try_find_child("DefaultPolicy")
        if default_policy is not None:
            invoke_config.node.add_dependency(default_policy)

        target = targets.LambdaFunction(
            function,
            dead_letter_queue=self.dead_letter_queue,
            max_event_age=max_event_age,
            retry_attempts=retry_attempts,
        )
        self.pipeline_rule = events.Rule(
            self,
            "PipelineEvents",
            rule_name=namer.name("record-pipeline", Kind.EVENT_RULE),
            description=f"deployline: records every state change of {namer.service}'s pipeline",
            event_pattern=events.EventPattern(
                source=["aws.codepipeline"],
                detail_type=_PIPELINE_DETAIL_TYPES,
                detail={"pipeline": [pipeline.pipeline_name]},
            ),
            targets=[target],
        )
        groups = codedeploy_targets(environments)
        self.codedeploy_rule: events.Rule | None = None
        if groups:
            self.codedeploy_rule = events.Rule(
                self,
                "CodeDeployEvents",
                rule_name=namer.name("record-deploy", Kind.EVENT_RULE),
                description=f"deployline: records {namer.service}'s CodeDeploy deployments",
                event_pattern=events.EventPattern(
                    source=["aws.codedeploy"],
                    detail_type=[_CODEDEPLOY_DETAIL_TYPE],
                    detail={
                        "application": sorted({g.application for g in groups}),
                        "deploymentGroup": sorted({g.deployment_group for g in groups}),
                    },
                ),
                targets=[target],
            )

    @staticmethod
    def _codedeploy_statements(
        environments: Sequence[DeployedEnvironment],
    ) -> list[iam.PolicyStatement]:
        """GetDeployment on this service's deployment groups (rollback facts), if it has any."""
        groups = codedeploy_targets(environments)
        if not groups:
            return []
        prefix = f"arn:{Aws.PARTITION}:codedeploy:{Aws.REGION}:{Aws.ACCOUNT_ID}:deploymentgroup:"
        return [
            iam.PolicyStatement(
                sid="ReadCodeDeployDeployments",
                actions=["codedeploy:GetDeployment"],
                resources=[f"{prefix}{g.application}/{g.deployment_group}" for g in groups],
            )
        ]

    def grant_record(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let `grantee` (e.g. the security gate) read and write deployment records.

        Grants GetItem, PutItem, UpdateItem and Query on the table and its index, and the use of
        the table's key through DynamoDB only.
        """
        grant = iam.Grant.add_to_principal(
            grantee=grantee,
            actions=[
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
                "dynamodb:Query",
            ],
            resource_arns=[
                self.table.table_arn,
                f"{self.table.table_arn}/index/{ENVIRONMENT_INDEX}",
            ],
        )
        iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
            resource_arns=[self._key.key_arn],
            conditions={"StringEquals": {"kms:ViaService": f"dynamodb.{Aws.REGION}.amazonaws.com"}},
        )
        return grant
