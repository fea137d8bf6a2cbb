"""The pipeline's own stack: key, artifact store, image repository, alerts, records, pipeline.

`PipelineStack` maps a `DeploylineConfig` onto `ContainerPipeline`: the source section becomes a
`ConnectionSource`, `BucketSource` or `CodeCommitRepositorySource`; build, test and security
become the projects' settings with buildspecs from `deployline.stages`; each environment stack
becomes a rolling or blue/green deploy target, in the order of `environments:`. The stack
depends on the environment stacks (it reads their services, task definitions and deployment
groups); they never reference it: they find the image repository by name.

No account ID appears in the template: a CodeStar connection ARN given in the config becomes the
default of a CloudFormation parameter, and `connection_parameter` becomes an SSM-typed parameter
resolved at deploy time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from aws_cdk import Aws, CfnOutput, CfnParameter, Duration, Stack
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_codecommit as codecommit
from aws_cdk import aws_codedeploy as codedeploy
from aws_cdk import aws_codepipeline as codepipeline
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from constructs import Construct

from deployline import defaults, stages
from deployline.config import (
    CodeCommitSource,
    DeploylineConfig,
    EnvironmentConfig,
    GitHubSource,
    S3Source,
)
from deployline.constructs.artifact_store import ArtifactStore
from deployline.constructs.build_projects import TestReportGroupNames
from deployline.constructs.container_pipeline import (
    BlueGreenTarget,
    BuildSettings,
    ContainerPipeline,
    DeployTarget,
    RollingTarget,
    ScanSettings,
    TestSettings,
    default_pipeline_name,
    deploy_stage_name,
    project_name,
)
from deployline.constructs.deployment_history import (
    CodeDeployTarget,
    DeployedEnvironment,
    DeploymentHistory,
)
from deployline.constructs.notifications import Notifications
from deployline.constructs.pipeline_monitoring import MonitoredBuild, PipelineMonitoring
from deployline.constructs.pipeline_source import (
    BucketSource,
    CodeCommitRepositorySource,
    ConnectionSource,
    PipelineSource,
)
from deployline.naming import Kind, Namer


class DeployedStack(Protocol):
    """What the pipeline reads from an environment stack (`EnvironmentStack` provides it)."""

    environment_name: str
    is_blue_green: bool
    service: ecs.FargateService
    task_definition: ecs.FargateTaskDefinition
    service_url: str
    deployment_group: codedeploy.IEcsDeploymentGroup | None
    hook_function: lambda_.IFunction | None


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
        monitoring: alarms and dashboard (None without notifications).
        container_pipeline: the `ContainerPipeline`.
        pipeline: the CodePipeline.
        repository: the ECR repository.
        environments: the environment stacks deployed, in order.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: DeploylineConfig,
        namer: Namer,
        environments: Sequence[DeployedStack] = (),
        **kwargs: Any,
    ) -> None:
        """
        Args:
            config: the validated deployline.yaml.
            namer: names with env = `naming.pipeline_environment`.
            environments: the environment stacks, one per `environments:` entry, in that order.
                Default: none (the pipeline then ends after the security gate).
            kwargs: Stack properties (stack_name, description, synthesizer, ...).
        """
        super().__init__(scope, id, **kwargs)
        self.namer = namer
        self.config = config
        self.environments = tuple(environments)
        env_configs = self._match_environments(config, self.environments)
        removal = defaults.removal_policy(destroy=False)
        retention_days = config.pipeline.log_retention_days

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

        # Alerts and the deployment record watch the pipeline by name: they are built first so
        # the approvals can announce on the topic and the gate can write to the table.
        name = default_pipeline_name(namer)
        pipeline_ref = codepipeline.Pipeline.from_pipeline_arn(
            self, "PipelineRef", self.format_arn(service="codepipeline", resource=name)
        )
        deployed = [
            DeployedEnvironment(
                name=env.environment_name,
                stage=deploy_stage_name(env.environment_name),
                codedeploy=(
                    CodeDeployTarget(
                        application=env.deployment_group.application.application_name,
                        deployment_group=env.deployment_group.deployment_group_name,
                    )
                    if env.deployment_group is not None
                    else None
                ),
            )
            for env in self.environments
        ]
        alerts = config.notifications
        self.notifications: Notifications | None = None
        if alerts.emails or alerts.https_endpoint:
            self.notifications = Notifications(
                self,
                "Notifications",
                namer=namer,
                pipeline=pipeline_ref,
                projects=[
                    codebuild.Project.from_project_name(
                        self, f"{label}Ref", project_name(namer, label)
                    )
                    for label in ("build", "unit-tests", "security-scan")
                ],
                environments=deployed,
                emails=list(alerts.emails),
                https_endpoint=alerts.https_endpoint,
                forward_topic_arn=alerts.sns_topic_arn,
                removal=removal,
            )
        self.history: DeploymentHistory | None = None
        if deployed:
            production = [e.name for e in env_configs if config.is_production(e)]
            self.history = DeploymentHistory(
                self,
                "DeploymentHistory",
                namer=namer,
                key=self.key,
                pipeline=pipeline_ref,
                environments=deployed,
                production_environment=production[-1] if production else None,
                removal=removal,
                log_retention_days=retention_days,
            )

        suppressed = {s.id for s in config.checks.suppress if s.resource is None}
        self.container_pipeline = ContainerPipeline(
            self,
            "Delivery",
            namer=namer,
            source=self._source(config),
            build=BuildSettings(
                buildspec=stages.build_buildspec(
                    config,
                    blue_green_envs=[
                        e.environment_name for e in self.environments if e.is_blue_green
                    ],
                ),
                timeout=Duration.minutes(config.build.timeout_minutes),
                platform=config.build.platform,
                cache=config.build.cache,
                docker_hub_secret_name=config.build.dockerhub_secret,
            ),
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
            targets=[
                self._target(env, cfg)
                for env, cfg in zip(self.environments, env_configs, strict=True)
            ],
            key=self.key,
            artifact_bucket=self.artifact_store.bucket,
            repository_name=namer.name("images", Kind.ECR_REPOSITORY),
            keep_images=config.pipeline.ecr_keep_images,
            approval_topic=self.notifications.topic if self.notifications else None,
            deployment_table=self.history.table if self.history else None,
            pipeline_name=name,
            execution_mode=(
                codepipeline.ExecutionMode.SUPERSEDED
                if config.pipeline.execution_mode == "superseded"
                else codepipeline.ExecutionMode.QUEUED
            ),
            require_approval_before_last="DL405" not in suppressed,
            access_logs_bucket=self.artifact_store.access_logs,
            log_retention_days=retention_days,
            removal=removal,
        )
        self.pipeline = self.container_pipeline.pipeline
        self.repository = self.container_pipeline.repository

        self.monitoring: PipelineMonitoring | None = None
        if self.notifications is not None:
            cp = self.container_pipeline
            self.monitoring = PipelineMonitoring(
                self,
                "Monitoring",
                namer=namer,
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
                max_execution_duration=_minutes(alerts.max_execution_minutes),
                log_retention_days=retention_days,
                removal=removal,
            )
        self._outputs()

    # ---- mapping ----------------------------------------------------------------------------

    @staticmethod
    def _match_environments(
        config: DeploylineConfig, environments: Sequence[DeployedStack]
    ) -> list[EnvironmentConfig]:
        if not environments:
            return []
        given = [e.environment_name for e in environments]
        expected = [e.name for e in config.environments]
        if given != expected:
            raise ValueError(
                f"environments must be the stacks of {expected}, in that order, got {given}"
            )
        return [config.environment(n) for n in given]

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

    def _target(self, env: DeployedStack, cfg: EnvironmentConfig) -> DeployTarget:
        if env.is_blue_green:
            if env.deployment_group is None:
                raise ValueError(
                    f"environment {cfg.name} deploys blue/green but its stack has no "
                    "CodeDeploy deployment group"
                )
            return BlueGreenTarget(
                name=cfg.name,
                service=env.service,
                deployment_group=env.deployment_group,
                task_definition=env.task_definition,
                url=env.service_url,
                hook_function=env.hook_function,
                health_path=cfg.health_check_path,
                approval=cfg.approval,
            )
        return RollingTarget(
            name=cfg.name,
            service=env.service,
            task_definition=env.task_definition,
            url=env.service_url,
            health_path=cfg.health_check_path,
            approval=cfg.approval,
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
