"""The deployment record: a DynamoDB table that the recorder function fills from pipeline and ECS
deployment events.

Every pipeline execution, stage and action state change of this pipeline (the CloudFormation
deploy of each environment among them), and every ECS service deployment state change of the
environments' services, reaches `runtime/recorder.py` through EventBridge: on the default bus
for services in the pipeline's account and region, on the pipeline's deployment event bus
(`DeploymentEventBus`, fed by a `DeploymentEventForwarder` in each environment stack) for the
others. The recorder writes one item per deployment (the table) and publishes the DORA metrics
(`DeploymentCount`, `DeploymentFailed`, `LeadTimeSeconds`, `TimeToRestoreSeconds`, dimensions
`Service` and `Environment`) that `PipelineMonitoring` alarms on and charts.

Events that cannot be delivered (after the rule's retries) or processed (after Lambda's async
retries) land in an encrypted SQS dead-letter queue, so a record is never lost silently;
`deployline history redrive` replays it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import (
    Acknowledgment,
    Aws,
    CfnResource,
    Duration,
    RemovalPolicy,
    Stack,
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
from constructs import Construct, IConstruct

from deployline import contract, defaults
from deployline.constructs import compliance
from deployline.constructs.runtime_function import (
    RuntimeFunction,
    accept_function_design,
    acknowledge_function_findings,
    publish_metrics_statement,
)
from deployline.history_names import HistoryNames
from deployline.naming import Kind, Namer, kebab

#: The table's key schema. Fixed: the runtime (recorder, security gate, `deployline history`)
#: reads and writes these attribute names.
PARTITION_KEY = "pk"
SORT_KEY = "sk"
ENVIRONMENT_INDEX = "by-environment"
ENVIRONMENT_INDEX_PARTITION_KEY = "environment"
ENVIRONMENT_INDEX_SORT_KEY = "started_at"

#: Default CloudWatch namespace of the metrics the recorder publishes.
METRICS_NAMESPACE = "deployline"

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
#: What ECS sends for every service deployment state change (runtime/ecs_events.py reads it).
ECS_DEPLOYMENT_DETAIL_TYPE = "ECS Deployment State Change"
_STAGE_NAME = re.compile(r"^[A-Za-z0-9.@\-_]{1,100}$")
_ECS_NAME = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
_ACCOUNT = re.compile(r"^[0-9]{12}$")
_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-[0-9]$")


@dataclass(frozen=True)
class DeployedEnvironment:
    """An environment the pipeline deploys to, as the recorder and the alerts need to know it.

    Names, not constructs: the environment stacks may live in other accounts and regions, so the
    pipeline stack must not reference them.

    Attributes:
        name: the environment name, e.g. "production" (lowercase kebab-case).
        stage: the pipeline stage that deploys it, e.g. "Deploy-production".
        cluster: the physical name of its ECS cluster.
        service: the physical name of its ECS service.
        account: its account. Default: None (the pipeline's).
        region: its region. Default: None (the pipeline's).
    """

    name: str
    stage: str
    cluster: str
    service: str
    account: str | None = None
    region: str | None = None

    @classmethod
    def named(
        cls, namer: Namer, *, account: str | None = None, region: str | None = None
    ) -> DeployedEnvironment:
        """The environment of `namer` (the environment's own namer, env = its name), with the
        stage and the cluster and service names deployline gives it."""
        return cls(
            name=namer.env,
            stage=contract.deploy_stage_name(namer.env),
            cluster=namer.name("cluster", Kind.ECS),
            service=namer.name("service", Kind.ECS),
            account=account,
            region=region,
        )

    @property
    def approve_stage(self) -> str:
        """The stage that plans and approves its change (when it has one)."""
        return contract.approve_stage_name(self.name)

    def validate(self) -> None:
        """Raise ValueError, naming the field, the value and the fix, if a value is malformed."""
        if not self.name or kebab(self.name) != self.name:
            raise ValueError(
                f"DeployedEnvironment.name must be lowercase kebab-case like 'production', "
                f"got {self.name!r}"
            )
        checks = (
            (
                "stage",
                self.stage,
                _STAGE_NAME,
                "a CodePipeline stage name (1-100 of A-Za-z0-9.@-_)",
            ),
            ("cluster", self.cluster, _ECS_NAME, "an ECS cluster name (1-255 of A-Za-z0-9-_)"),
            ("service", self.service, _ECS_NAME, "an ECS service name (1-255 of A-Za-z0-9-_)"),
            ("account", self.account, _ACCOUNT, "a 12-digit account ID, or None (the pipeline's)"),
            ("region", self.region, _REGION, "a region like eu-west-1, or None (the pipeline's)"),
        )
        for field, value, pattern, what in checks:
            if value is None and field in ("account", "region"):
                continue
            if not isinstance(value, str) or (
                not Token.is_unresolved(value) and not pattern.match(value)
            ):
                raise ValueError(
                    f"DeployedEnvironment.{field} must be {what}, got {value!r} for environment "
                    f"{self.name!r}"
                )

    def service_arn(self) -> str:
        """The ARN of its ECS service (the pipeline's account and region where none is given)."""
        return (
            f"arn:{Aws.PARTITION}:ecs:{self.region or Aws.REGION}:"
            f"{self.account or Aws.ACCOUNT_ID}:service/{self.cluster}/{self.service}"
        )

    def is_elsewhere(self, scope: Construct) -> bool:
        """Does it live in another account or region than `scope`'s stack? (Its ECS events then
        reach the pipeline through the deployment event bus.) An account or region given while
        the stack's is unresolved counts as elsewhere."""
        stack = Stack.of(scope)
        return any(
            given is not None and (Token.is_unresolved(own) or given != own)
            for given, own in ((self.account, stack.account), (self.region, stack.region))
        )

    def to_runtime(self) -> dict[str, str | None]:
        """The shape `runtime/recorder.py` reads from ENVIRONMENTS."""
        return {
            "name": self.name,
            "stage": self.stage,
            "approve_stage": self.approve_stage,
            "cluster": self.cluster,
            "service": self.service,
            "account": self.account,
            "region": self.region,
        }


def validate_environments(environments: Sequence[DeployedEnvironment]) -> None:
    """Each environment well-formed; names, stages and services unique."""
    for env in environments:
        env.validate()
    for what, values in (
        ("name", [e.name for e in environments]),
        ("stage", [e.stage for e in environments]),
        ("service", [f"{e.account}/{e.region}/{e.cluster}/{e.service}" for e in environments]),
    ):
        dupes = sorted({v for v in values if values.count(v) > 1})
        if dupes:
            raise ValueError(
                f"each DeployedEnvironment needs its own {what}; {dupes} appear more than once"
            )


def split_by_bus(
    scope: Construct, environments: Sequence[DeployedEnvironment]
) -> tuple[list[DeployedEnvironment], list[DeployedEnvironment]]:
    """(environments whose ECS events reach the default bus, those forwarded to the
    deployment event bus)."""
    elsewhere = [e for e in environments if e.is_elsewhere(scope)]
    return [e for e in environments if e not in elsewhere], elsewhere


def ecs_deployment_pattern(
    environments: Sequence[DeployedEnvironment], detail: dict[str, object] | None = None
) -> events.EventPattern:
    """ECS service deployment events of the environments' services (and `detail`, if given)."""
    return events.EventPattern(
        source=["aws.ecs"],
        detail_type=[ECS_DEPLOYMENT_DETAIL_TYPE],
        resources=[e.service_arn() for e in environments],
        detail=detail,
    )


def require_event_bus(
    elsewhere: Sequence[DeployedEnvironment], event_bus: events.IEventBus | None
) -> None:
    if elsewhere and event_bus is None:
        raise ValueError(
            f"environments {[e.name for e in elsewhere]} live in another account or region: "
            "their ECS events reach the pipeline only through its deployment event bus; pass "
            "event_bus (DeploymentEventBus(...).bus)"
        )


def accept_named_accounts(construct: IConstruct, reason: str) -> None:
    """Record in `construct`'s Metadata that it names accounts or regions on purpose, and why
    (a `deployline` suppression of DL130, "literal account ID or region"): a pipeline that
    deploys to other accounts and regions must name them somewhere."""
    resource = construct if isinstance(construct, CfnResource) else construct.node.default_child
    if not isinstance(resource, CfnResource):
        raise ValueError(f"{construct.node.path} has no CloudFormation resource to annotate")
    existing = resource.get_metadata("deployline") or {}
    kept = [s for s in existing.get("suppress", []) if s.get("id") != "DL130"]
    resource.add_metadata(
        "deployline", {**existing, "suppress": [*kept, {"id": "DL130", "reason": reason}]}
    )


def where(environments: Sequence[DeployedEnvironment]) -> str:
    """`production in 210987654321/us-east-1, ...` for messages and reasons."""
    return ", ".join(
        f"{e.name} in {e.account or 'the pipeline account'}/{e.region or 'its region'}"
        for e in environments
    )


def event_age_seconds(max_event_age: Duration) -> float:
    """An EventBridge retry policy's MaximumEventAgeInSeconds (a token passes through)."""
    if max_event_age.is_unresolved():
        return max_event_age.to_seconds()
    return int(max_event_age.to_seconds())


def validate_delivery(*, max_event_age: Duration, retry_attempts: int) -> None:
    """EventBridge target limits: event age 1 minute..24 hours, 0..185 retries."""
    if not max_event_age.is_unresolved() and not (
        60 <= max_event_age.to_seconds() <= MAX_EVENT_AGE.to_seconds()
    ):
        raise ValueError(
            f"max_event_age must lie between 1 minute and 24 hours, got "
            f"{max_event_age.to_human_string()}"
        )
    if not Token.is_unresolved(retry_attempts) and not 0 <= retry_attempts <= MAX_RETRIES:
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
        deployment_rule: the rule on ECS deployments of the services in the pipeline's account
            and region; None when every environment is elsewhere.
        forwarded_deployment_rule: the rule on the deployment event bus for the other
            environments' services; None when there are none.
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
        event_bus: events.IEventBus | None = None,
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
            event_bus: the deployment event bus that environments in other accounts or regions
                forward their ECS events to; required when there are such environments.
                Default: None.
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
        local, elsewhere = self._validate(
            environments, production_environment, event_bus, metrics_namespace
        )
        validate_delivery(max_event_age=max_event_age, retry_attempts=retry_attempts)
        # First, so that an imported key fails before anything is built.
        allow_eventbridge_to_use_key(key, sid="AllowEventBridgeRecorderDeadLetters")
        self.environments = tuple(environments)
        self.metrics_namespace = metrics_namespace
        self._key = key
        names = HistoryNames.of(namer)

        self.table = self._table(names.table, key, deletion_protection, removal)
        self.dead_letter_queue = dead_letter_queue(
            self, "DeadLetterQueue", name=names.dead_letter_queue, key=key, removal=removal
        )
        acknowledge_dead_letter_queue(
            self.dead_letter_queue,
            feeds="the recorder rules' targets and of the recorder's asynchronous invocations",
        )
        self.recorder = self._recorder(
            namer, names, key, pipeline, production_environment, log_retention_days, removal
        )
        if elsewhere:
            self._name_other_accounts(elsewhere)
        self._send_failures_to_queue(max_event_age)
        target = targets.LambdaFunction(
            self.recorder.function,
            dead_letter_queue=self.dead_letter_queue,
            max_event_age=max_event_age,
            retry_attempts=retry_attempts,
        )
        self._rules(namer, pipeline, local, elsewhere, event_bus, target)

    # ---- the parts -----------------------------------------------------------------------------

    def _validate(
        self,
        environments: Sequence[DeployedEnvironment],
        production_environment: str | None,
        event_bus: events.IEventBus | None,
        metrics_namespace: str,
    ) -> tuple[list[DeployedEnvironment], list[DeployedEnvironment]]:
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
        local, elsewhere = split_by_bus(self, environments)
        require_event_bus(elsewhere, event_bus)
        return local, elsewhere

    def _table(
        self, name: str, key: kms.IKey, deletion_protection: bool, removal: RemovalPolicy
    ) -> dynamodb.Table:
        table = dynamodb.Table(
            self,
            "Table",
            table_name=name,
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
        table.add_global_secondary_index(
            index_name=ENVIRONMENT_INDEX,
            partition_key=dynamodb.Attribute(
                name=ENVIRONMENT_INDEX_PARTITION_KEY, type=dynamodb.AttributeType.STRING
            ),
            sort_key=dynamodb.Attribute(
                name=ENVIRONMENT_INDEX_SORT_KEY, type=dynamodb.AttributeType.STRING
            ),
            projection_type=dynamodb.ProjectionType.ALL,
        )
        guards = ["point-in-time recovery (restore to any second of the last 35 days)"]
        if deletion_protection:
            guards.append("deletion protection")
        if removal is RemovalPolicy.RETAIN:
            guards.append("a retain policy (deleting the stack keeps it)")
        compliance.accept(
            table,
            "DynamoDBInBackupPlan",
            f"the history table {name} is in no AWS Backup plan: it has "
            f"{', '.join(guards)}: DynamoDB's continuous backup, which also keeps the table "
            "for 35 days after a delete; a backup plan would add copies in a vault for longer, "
            "which an organisation's AWS Backup policy adds by tag where it asks for them",
        )
        return table

    def _recorder(
        self,
        namer: Namer,
        names: HistoryNames,
        key: kms.IKey,
        pipeline: codepipeline.IPipeline,
        production_environment: str | None,
        log_retention_days: int,
        removal: RemovalPolicy,
    ) -> RuntimeFunction:
        recorder = RuntimeFunction(
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
                "METRICS_NAMESPACE": self.metrics_namespace,
                "SERVICE_NAME": namer.service,
                "PIPELINE_NAME": pipeline.pipeline_name,
                "PIPELINE_ACCOUNT": Aws.ACCOUNT_ID,
                "PIPELINE_REGION": Aws.REGION,
                "ENVIRONMENTS": json.dumps(
                    [e.to_runtime() for e in self.environments], separators=(",", ":")
                ),
                "PRODUCTION_ENVIRONMENT": production_environment or "",
                "SELF_UPDATE_STAGE": contract.UPDATE_PIPELINE_STAGE,
                "GATE_ACTION": contract.GATE_ACTION,
            },
            log_retention_days=log_retention_days,
            removal=removal,
            statements=self._recorder_statements(key, pipeline),
        )
        acknowledge_function_findings(recorder, metrics_namespace=self.metrics_namespace)
        name, queue = recorder.function_name, names.dead_letter_queue
        accept_function_design(
            recorder,
            dead_letters=f"{name}'s failed asynchronous invocations go to the queue {queue} "
            "through an on-failure destination, which keeps the request and the error (a "
            "DeadLetterConfig keeps only the request)",
            concurrency=f"{name} handles one event per pipeline or ECS deployment state change, "
            "and its conditional writes make concurrent runs safe; reserved concurrency would "
            "take from the account's unreserved pool",
            network=f"{name} calls only DynamoDB, CloudWatch and CodePipeline APIs: no VPC "
            "resource",
        )
        return recorder

    def _name_other_accounts(self, elsewhere: Sequence[DeployedEnvironment]) -> None:
        name = self.recorder.function_name
        accept_named_accounts(
            self.recorder.function,
            f"{name}'s ENVIRONMENTS says where each environment's service runs "
            f"({where(elsewhere)}): the recorder tells ECS events apart by account and region",
        )
        defaults.skip_checkov(
            self.recorder.function,
            "CKV_AWS_45",
            f"{name}'s ENVIRONMENTS holds the account IDs, regions and service names of "
            f"{[e.name for e in elsewhere]}: identifiers, not secrets",
        )

    def _recorder_statements(
        self, key: kms.IKey, pipeline: codepipeline.IPipeline
    ) -> list[iam.PolicyStatement]:
        region = Aws.REGION
        return [
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
                actions=["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
                resources=[key.key_arn],
                conditions={"StringEquals": {"kms:ViaService": f"dynamodb.{region}.amazonaws.com"}},
            ),
            iam.PolicyStatement(
                sid="ReadPipelineExecutions",
                actions=[
                    "codepipeline:GetPipelineExecution",
                    "codepipeline:ListActionExecutions",
                    "codepipeline:ListPipelineExecutions",
                ],
                resources=[pipeline.pipeline_arn],
            ),
            publish_metrics_statement("PublishDeploymentMetrics", self.metrics_namespace),
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
        ]

    def _send_failures_to_queue(self, max_event_age: Duration) -> None:
        """Events the function fails on (after Lambda's two async retries, within at most 6
        hours) go to the same DLQ."""
        invoke_config = lambda_.CfnEventInvokeConfig(
            self,
            "RecorderInvokeConfig",
            function_name=self.recorder.function.function_name,
            qualifier="$LATEST",
            maximum_retry_attempts=2,
            # Lambda keeps events at most 6 hours; a token cannot be capped, so it gets the cap.
            maximum_event_age_in_seconds=(
                _LAMBDA_MAX_EVENT_AGE
                if max_event_age.is_unresolved()
                else min(int(max_event_age.to_seconds()), _LAMBDA_MAX_EVENT_AGE)
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

    def _rules(
        self,
        namer: Namer,
        pipeline: codepipeline.IPipeline,
        local: Sequence[DeployedEnvironment],
        elsewhere: Sequence[DeployedEnvironment],
        event_bus: events.IEventBus | None,
        target: events.IRuleTarget,
    ) -> None:
        service = namer.service
        self.pipeline_rule = events.Rule(
            self,
            "PipelineEvents",
            rule_name=namer.name("record-pipeline", Kind.EVENT_RULE),
            description=f"deployline: records every state change of {service}'s pipeline",
            event_pattern=events.EventPattern(
                source=["aws.codepipeline"],
                detail_type=_PIPELINE_DETAIL_TYPES,
                detail={"pipeline": [pipeline.pipeline_name]},
            ),
            targets=[target],
        )
        self.deployment_rule: events.Rule | None = None
        if local:
            self.deployment_rule = events.Rule(
                self,
                "DeploymentEvents",
                rule_name=namer.name("record-deploy", Kind.EVENT_RULE),
                description=f"deployline: records {service}'s ECS service deployments",
                event_pattern=ecs_deployment_pattern(local),
                targets=[target],
            )
        self.forwarded_deployment_rule: events.Rule | None = None
        if elsewhere:
            self.forwarded_deployment_rule = rule = events.Rule(
                self,
                "ForwardedDeploymentEvents",
                rule_name=namer.name("record-fwd-deploy", Kind.EVENT_RULE),
                description=f"deployline: records {service}'s ECS service deployments in other "
                "accounts and regions",
                event_bus=event_bus,
                event_pattern=ecs_deployment_pattern(elsewhere),
                targets=[target],
            )
            accept_named_accounts(
                rule,
                f"the rule matches the ECS services of {where(elsewhere)} by their ARNs",
            )

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
