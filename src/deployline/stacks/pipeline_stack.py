"""The pipeline's own stack: key, artifact store, image repository, alerts, records, pipeline.

`PipelineStack` maps a `DeploylineConfig` onto `ContainerPipeline`: the source section becomes a
`ConnectionSource`, `BucketSource` or `CodeCommitRepositorySource`; build, synth, test and
security become the projects' settings with buildspecs from `deployline.stages`; each
environment becomes a `StackTarget` (its stack, by name; its account and region, through their
`cdk bootstrap` roles), in the order of `environments:`. The stack references no environment
stack: environments deploy after it, possibly in other accounts and regions.

No account ID appears in the template of an environment-agnostic config: a CodeStar connection
ARN given in the config becomes the default of a CloudFormation parameter, and
`connection_parameter` becomes an SSM-typed parameter resolved at deploy time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_cdk import Aws, CfnOutput, CfnParameter, Duration, Stack
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_codecommit as codecommit
from aws_cdk import aws_codepipeline as codepipeline
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from deployline import contract, defaults, stages
from deployline.config import (
    CodeCommitSource,
    DeploylineConfig,
    EnvironmentConfig,
    GitHubSource,
    S3Source,
)
from deployline.constructs import compliance
from deployline.constructs.artifact_store import ArtifactStore
from deployline.constructs.bootstrap import BootstrapEnvironment
from deployline.constructs.build_projects import TestReportGroupNames
from deployline.constructs.container_pipeline import (
    ContainerPipeline,
    default_pipeline_name,
    project_name,
)
from deployline.constructs.deployment_event_bus import DeploymentEventBus
from deployline.constructs.deployment_history import DeployedEnvironment, DeploymentHistory
from deployline.constructs.notifications import Notifications
from deployline.constructs.pipeline_monitoring import MonitoredBuild, PipelineMonitoring
from deployline.constructs.pipeline_settings import (
    BuildSettings,
    ScanSettings,
    SelfUpdateTarget,
    StackTarget,
    SynthSettings,
    TestSettings,
)
from deployline.constructs.pipeline_source import (
    BucketSource,
    CodeCommitRepositorySource,
    ConnectionSource,
    PipelineSource,
)
from deployline.naming import Kind, Namer
from deployline.stacks.regional_artifacts import RegionalArtifacts


def bootstrap_environment(
    config: DeploylineConfig, environment: EnvironmentConfig | None = None
) -> BootstrapEnvironment:
    """Where `environment` (the pipeline itself with None) deploys, as its bootstrap roles see
    it: None account and region for an environment-agnostic config."""
    qualifier = config.pipeline.bootstrap_qualifier
    if config.is_environment_agnostic:
        return BootstrapEnvironment(qualifier=qualifier)
    if environment is None:
        return BootstrapEnvironment(
            account=config.pipeline.account, region=config.pipeline.region, qualifier=qualifier
        )
    return BootstrapEnvironment(
        account=config.account_of(environment),
        region=config.region_of(environment),
        qualifier=qualifier,
    )


def environment_stack_name(config: DeploylineConfig, environment: EnvironmentConfig) -> str:
    """The environment's stack name (also its construct ID, so its template file's name)."""
    return Namer(config.service, environment.name, config.naming.prefix).stack_name()


def connection_parameter(scope: Construct, source: GitHubSource) -> CfnParameter:
    """The CloudFormation parameter that carries the CodeStar connection ARN.

    `connection_parameter` (an SSM parameter name) becomes an `AWS::SSM::Parameter::Value<String>`
    parameter, resolved when the stack deploys; `connection_arn` becomes the default of a String
    parameter. Either way no account ID sits in a resource property.
    """
    if source.connection_parameter is not None:
        return CfnParameter(
            scope,
            "SourceConnectionArn",
            type="AWS::SSM::Parameter::Value<String>",
            default=source.connection_parameter,
            description=f"SSM parameter holding the CodeStar connection ARN of {source.repository}",
        )
    return CfnParameter(
        scope,
        "SourceConnectionArn",
        type="String",
        default=source.connection_arn,
        allowed_pattern=r"^arn:aws[a-z-]*:(codestar-connections|codeconnections):"
        r"[a-z0-9-]+:\d{12}:connection/[0-9a-f-]{36}$",
        description=f"CodeStar connection ARN for {source.repository}",
    )


class PipelineStack(Stack):
    """Everything the pipeline owns, in the pipeline environment (`shared`).

    Attributes:
        namer: names for the pipeline's resources (`{service}-{type}-shared`).
        config: the configuration it was built from.
        key: the pipeline CMK (artifacts, images, logs, records).
        artifact_store: the encrypted artifact bucket and its access-log bucket.
        notifications: the alert topic and rules (None when no one is configured to read them).
        history: the deployment record (None without environments).
        monitoring: alarms and dashboard (alarms without actions when no one reads alerts).
        container_pipeline: the `ContainerPipeline`.
        pipeline: the CodePipeline.
        repository: the ECR repository.
        targets: the environments deployed, in order, as `StackTarget`s.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: DeploylineConfig,
        namer: Namer,
        regional_artifacts: Sequence[RegionalArtifacts] = (),
        regional_stacks: Sequence[SelfUpdateTarget] = (),
        **kwargs: Any,
    ) -> None:
        """
        Args:
            config: the validated deployline.yaml.
            namer: names with env = `naming.pipeline_environment`.
            regional_artifacts: the artifact store of each other region an environment runs
                in (`RegionalArtifactsStack.artifacts`). Default: none.
            regional_stacks: the stacks holding them, updated before this one by the
                pipeline's self-update. Default: none.
            kwargs: Stack properties (stack_name, description, env, synthesizer, ...).
        """
        super().__init__(scope, id, **kwargs)
        self.namer = namer
        self.config = config
        removal = defaults.removal_policy(destroy=False)
        self.key = defaults.secure_key(
            self,
            "PipelineKey",
            alias=namer.name("pipeline-key"),
            description=f"deployline: encrypts the {config.service} pipeline's artifacts, "
            "logs, topics and records",
            removal=removal,
        )
        defaults.allow_logs_to_use_key(
            self.key,
            f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:*{namer.base}*",
        )
        self.artifact_store = ArtifactStore(
            self,
            "ArtifactStore",
            bucket_prefix=namer.bucket_prefix("artifacts"),
            access_logs_prefix=namer.bucket_prefix("access-logs"),
            key=self.key,
            removal=removal,
            expiry_days=config.pipeline.artifact_expiry_days,
            noncurrent_expiry_days=config.pipeline.noncurrent_expiry_days,
        )
        self.targets = [self._target(env) for env in config.environments]
        self._alerts_and_records(removal)
        self.container_pipeline = self._container_pipeline(
            self._regional_buckets(regional_artifacts), regional_stacks, removal
        )
        self.pipeline = self.container_pipeline.pipeline
        self.repository = self.container_pipeline.repository
        self._monitoring(removal)
        self._outputs()
        compliance.accept_inline_policies(self)

    def _regional_buckets(self, stores: Sequence[RegionalArtifacts]) -> dict[str, s3.IBucket]:
        """The other regions' artifact buckets, by name (they live in stacks of their own
        regions, which this stack cannot reference)."""
        buckets: dict[str, s3.IBucket] = {}
        for store in stores:
            key = kms.Key.from_key_arn(self, f"ArtifactsKey-{store.region}", store.key_alias_arn)
            buckets[store.region] = s3.Bucket.from_bucket_attributes(
                self,
                f"Artifacts-{store.region}",
                bucket_name=store.bucket_name,
                encryption_key=key,
                region=store.region,
            )
        return buckets

    def _alerts_and_records(self, removal: Any) -> None:
        """Alerts and the deployment record watch the pipeline by name: they are built first so
        the approvals can announce on the topic and the gate can write to the table."""
        config, namer = self.config, self.namer
        pipeline_ref = codepipeline.Pipeline.from_pipeline_arn(
            self,
            "PipelineRef",
            self.format_arn(service="codepipeline", resource=default_pipeline_name(namer)),
        )
        deployed = [self._deployed(env) for env in config.environments]
        self.event_bus: DeploymentEventBus | None = None
        if any(e.account or e.region for e in deployed):
            self.event_bus = DeploymentEventBus(
                self,
                "DeploymentEvents",
                namer=namer,
                source_accounts=sorted({e.account for e in deployed if e.account}),
            )
        bus = self.event_bus.bus if self.event_bus else None
        alerts = config.notifications
        self.notifications: Notifications | None = None
        if alerts.emails or alerts.https_endpoint or alerts.sns_topic_arn:
            self.notifications = Notifications(
                self,
                "Notifications",
                namer=namer,
                pipeline=pipeline_ref,
                projects=[
                    codebuild.Project.from_project_name(
                        self, f"{label}Ref", project_name(namer, label)
                    )
                    for label in ("build", "synth", "unit-tests", "security-scan")
                ],
                environments=deployed,
                event_bus=bus,
                emails=list(alerts.emails),
                https_endpoint=alerts.https_endpoint,
                topic_arn=alerts.sns_topic_arn,
                removal=removal,
            )
        self.history: DeploymentHistory | None = None
        if deployed:
            production = [e.name for e in config.environments if config.is_production(e)]
            self.history = DeploymentHistory(
                self,
                "DeploymentHistory",
                namer=namer,
                key=self.key,
                pipeline=pipeline_ref,
                environments=deployed,
                production_environment=production[-1] if production else None,
                event_bus=bus,
                removal=removal,
                log_retention_days=config.pipeline.log_retention_days,
            )

    def _container_pipeline(
        self,
        regional_artifacts: dict[str, s3.IBucket],
        regional_stacks: Sequence[SelfUpdateTarget],
        removal: Any,
    ) -> ContainerPipeline:
        config, namer = self.config, self.namer
        suppressed = {s.id for s in config.checks.suppress if s.resource is None}
        return ContainerPipeline(
            self,
            "Delivery",
            namer=namer,
            source=self._source(config),
            build=BuildSettings(
                buildspec=stages.build_buildspec(config),
                timeout=Duration.minutes(config.build.timeout_minutes),
                platform=config.build.platform,
                cache=config.build.cache,
                docker_hub_secret_name=config.build.dockerhub_secret,
            ),
            synth=SynthSettings(buildspec=stages.synth_buildspec(config)),
            test=TestSettings(
                buildspec=lambda groups: _test_buildspec(config, groups),
                timeout=Duration.minutes(config.test.timeout_minutes),
            ),
            scan=ScanSettings(
                buildspec=stages.scan_buildspec(config),
                threshold=config.security.threshold.value,
                scanners=list(config.security.scanners),
                allow_unverified=config.security.allow_unverified,
                scan_image="trivy" in config.security.scanners,
            ),
            targets=self.targets,
            self_update_first=regional_stacks,
            environment=bootstrap_environment(config),
            key=self.key,
            artifact_bucket=self.artifact_store.bucket,
            cross_region_artifact_buckets=regional_artifacts,
            repository_name=namer.name("images", Kind.ECR_REPOSITORY),
            keep_images=config.pipeline.ecr_keep_images,
            approval_topic=self.notifications.topic if self.notifications else None,
            deployment_table=self.history.table if self.history else None,
            pipeline_name=default_pipeline_name(namer),
            execution_mode=(
                codepipeline.ExecutionMode.SUPERSEDED
                if config.pipeline.execution_mode == "superseded"
                else codepipeline.ExecutionMode.QUEUED
            ),
            require_approval_before_last="DL405" not in suppressed,
            access_logs_bucket=self.artifact_store.access_logs,
            log_retention_days=config.pipeline.log_retention_days,
            removal=removal,
        )

    def _monitoring(self, removal: Any) -> None:
        config, cp = self.config, self.container_pipeline
        self.monitoring = PipelineMonitoring(
            self,
            "Monitoring",
            namer=self.namer,
            key=self.key,
            pipeline=self.pipeline,
            notifications=self.notifications,
            builds=[
                MonitoredBuild(
                    label="build",
                    project=cp.build_project,
                    timeout=_minutes(config.build.timeout_minutes),
                ),
                MonitoredBuild(
                    label="synth",
                    project=cp.synth_project,
                    timeout=_minutes(stages.SYNTH_TIMEOUT_MINUTES),
                ),
                MonitoredBuild(
                    label="unit-tests",
                    project=cp.test_project,
                    timeout=_minutes(config.test.timeout_minutes),
                ),
                MonitoredBuild(
                    label="security-scan",
                    project=cp.scan_project,
                    timeout=_minutes(stages.SCAN_TIMEOUT_MINUTES),
                ),
            ],
            history=self.history,
            max_execution_duration=_minutes(config.notifications.max_execution_minutes),
            log_retention_days=config.pipeline.log_retention_days,
            removal=removal,
        )

    # ---- mapping ----------------------------------------------------------------------------

    def _source(self, config: DeploylineConfig) -> PipelineSource:
        src = config.source
        if isinstance(src, GitHubSource):
            return ConnectionSource(
                connection_arn=connection_parameter(self, src).value_as_string,
                repository=src.repository,
                branch=src.branch,
                file_paths=tuple(src.paths),
                exclude_file_paths=tuple(src.exclude_paths),
                full_clone=src.full_clone,
            )
        if isinstance(src, S3Source):
            bucket = (
                s3.Bucket.from_bucket_name(self, "SourceBucketRef", src.bucket)
                if src.bucket
                else None
            )
            return BucketSource(bucket=bucket, object_key=src.key)
        if isinstance(src, CodeCommitSource):
            return CodeCommitRepositorySource(
                repository=codecommit.Repository.from_repository_name(
                    self, "SourceRepositoryRef", src.repository
                ),
                branch=src.branch,
                full_clone=src.full_clone,
            )
        raise ValueError(f"source.type {type(src).__name__} is not supported")

    def _deployed(self, environment: EnvironmentConfig) -> DeployedEnvironment:
        """The environment as the records and alerts know it: its account and region only
        when they are not the pipeline's (its ECS events then arrive on the event bus)."""
        config = self.config
        account = config.account_of(environment)
        region = config.region_of(environment)
        return DeployedEnvironment.named(
            Namer(config.service, environment.name, config.naming.prefix),
            account=account if account != config.pipeline.account else None,
            region=region if region != config.pipeline.region else None,
        )

    def _target(self, environment: EnvironmentConfig) -> StackTarget:
        stack_name = environment_stack_name(self.config, environment)
        return StackTarget(
            name=environment.name,
            stack_name=stack_name,
            template_file=f"{stack_name}.template.json",
            environment=bootstrap_environment(self.config, environment),
            approval=environment.approval,
            image_parameter=contract.IMAGE_TAG_PARAMETER,
            health_path=environment.health_check_path,
        )

    def _outputs(self) -> None:
        cp = self.container_pipeline
        CfnOutput(
            self,
            "PipelineName",
            value=cp.pipeline.pipeline_name,
            description="The CodePipeline that builds, tests, scans and deploys the service.",
        )
        CfnOutput(
            self,
            "PipelineConsoleUrl",
            value=cp.console_url,
            description="The pipeline in the AWS console.",
        )
        CfnOutput(
            self,
            "RepositoryUri",
            value=cp.repository.repository_uri,
            description="ECR repository the build pushes images to (tags are immutable).",
        )
        CfnOutput(
            self,
            "ArtifactBucketName",
            value=self.artifact_store.bucket.bucket_name,
            description="S3 bucket that holds the pipeline's artifacts (KMS-encrypted).",
        )
        CfnOutput(
            self,
            "PipelineKeyArn",
            value=self.key.key_arn,
            description="KMS key that encrypts the pipeline's artifacts, logs and topics.",
        )
        if self.notifications is not None:
            CfnOutput(
                self,
                "NotificationTopicArn",
                value=self.notifications.topic.topic_arn,
                description="SNS topic for pipeline alerts and approval requests.",
            )
        if cp.source.bucket is not None:
            CfnOutput(
                self,
                "SourceBucketName",
                value=cp.source.bucket.bucket_name,
                description="Upload the source zip here to start the pipeline.",
            )


def _minutes(n: int) -> Duration:
    return Duration.minutes(n)


def _test_buildspec(config: DeploylineConfig, groups: TestReportGroupNames) -> dict[str, Any]:
    return stages.test_buildspec(
        config, junit_report_group=groups.junit, coverage_report_group=groups.coverage
    )
