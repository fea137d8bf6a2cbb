"""`ContainerPipeline`: the whole delivery pipeline of a container service, as one construct.

Stages, in order (the names are public: alarms, the deployment record and `deployline diagram`
use them):

    Source                  the source action (CodeStar connection, S3 or CodeCommit)
    Build                   BuildImage: docker build, push to ECR, write the deployment files
    Test                    UnitTests and SecurityScan in parallel (run order 1), then
                            SecurityGate (run order 2), which fails on findings at the threshold
    Approve-<env>           a manual approval, for each target with approval=True
    Deploy-<env>            Deploy (ECS rolling, or CodeDeploy blue/green), then Validate
                            (run order 2); the stage rolls back on failure

Execution mode: QUEUED. Every execution that starts runs to its end, in order: each commit that
reaches staging is validated there, each approval decides on exactly the commit it shows, and the
deployment record lists every change. SUPERSEDED would let a newer execution skip an older one
waiting between stages, which is faster at the head of a busy branch but lets a change reach
production without its own staging validation being the one that was approved.

Example, from plain CDK (no deployline.yaml):

    from aws_cdk import Duration, Stack, aws_codedeploy as codedeploy, aws_ecs as ecs
    from deployline import ContainerPipeline
    from deployline.constructs.container_pipeline import (
        BlueGreenTarget, BuildSettings, RollingTarget, ScanSettings, TestSettings,
    )
    from deployline.constructs.pipeline_source import ConnectionSource
    from deployline.naming import Namer

    pipeline = ContainerPipeline(
        stack, "Pipeline",
        namer=Namer("orders", "shared"),
        source=ConnectionSource(
            connection_arn=connection_arn, repository="acme/orders", branch="main",
        ),
        build=BuildSettings(buildspec=build_spec_dict),
        test=TestSettings(buildspec=lambda reports: test_spec_dict(reports.junit)),
        scan=ScanSettings(buildspec=scan_spec_dict, threshold="high"),
        targets=[
            RollingTarget(
                name="staging", service=staging_service,
                task_definition=staging_task_definition, url=staging_url,
            ),
            BlueGreenTarget(
                name="production", service=prod_service, deployment_group=prod_group,
                task_definition=prod_task_definition, url=prod_url, approval=True,
            ),
        ],
        approval_topic=alerts_topic,
    )
    pipeline.pipeline        # codepipeline.Pipeline
    pipeline.repository      # ecr.IRepository the build pushes to

The build runs the given buildspec with `REPOSITORY_URI`, `IMAGE_TAG` (the source revision) and,
per blue/green target, `TASK_FAMILY_<ENV>` and `HOOK_FUNCTION_<ENV>` (see `deployline.stages`);
it must export `IMAGE_TAG` and `IMAGE_URI` and write `imagedefinitions.json`,
`imageDetail.json`, `taskdef-<env>.json` and `appspec-<env>.yaml` into its artifact.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aws_cdk import ArnFormat, Aws, CfnResource, Duration, RemovalPolicy, Stack, Token
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_codedeploy as codedeploy
from aws_cdk import aws_codepipeline as codepipeline
from aws_cdk import aws_codepipeline_actions as actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from constructs import Construct

from deployline import defaults, stages
from deployline.constructs.artifact_store import ArtifactStore
from deployline.constructs.build_projects import (
    BuildProject,
    TestReportGroupNames,
    TestReportGroups,
    check_timeout,
    default_build_image,
    plaintext,
)
from deployline.constructs.ecr_repository import DEFAULT_KEEP_IMAGES, ImageRepository
from deployline.constructs.pipeline_roles import (
    ActionRole,
    acknowledge_iam5,
    ecs_arn,
    nag_resource,
    pass_roles,
    read_artifacts,
)
from deployline.constructs.pipeline_source import PipelineSource, PipelineSourceAction
from deployline.constructs.runtime_function import RuntimeFunction, acknowledge_function_findings
from deployline.naming import Kind, Namer

# Public names: stages, actions, namespaces and artifacts.
BUILD_STAGE = "Build"
TEST_STAGE = "Test"
BUILD_ACTION = "BuildImage"
UNIT_TESTS_ACTION = "UnitTests"
SCAN_ACTION = "SecurityScan"
GATE_ACTION = "SecurityGate"
APPROVE_ACTION = "Approve"
DEPLOY_ACTION = "Deploy"
VALIDATE_ACTION = "Validate"
BUILD_NAMESPACE = "BuildVariables"
GATE_NAMESPACE = "SecurityGate"
BUILD_ARTIFACT = "BuildOutput"
SCAN_ARTIFACT = "ScanReports"

#: Default: the scan may run 20 minutes (Trivy's database download included).
DEFAULT_SCAN_TIMEOUT = Duration.minutes(stages.SCAN_TIMEOUT_MINUTES)
#: Default: unit tests may run 20 minutes.
DEFAULT_TEST_TIMEOUT = Duration.minutes(20)
#: Default: validation waits up to 15 minutes for the service to be healthy on the new image.
DEFAULT_VALIDATION_TIMEOUT = Duration.minutes(15)
#: Default: an ECS rolling deploy may take 30 minutes to reach a steady state.
DEFAULT_DEPLOYMENT_TIMEOUT = Duration.minutes(30)
SEVERITIES = ("critical", "high", "medium", "low")
SCANNERS = ("bandit", "pip-audit", "trivy")
_TARGET_NAME = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")
_CUSTOM_DATA_LIMIT = 500


def deploy_stage_name(target_name: str) -> str:
    """The stage that deploys `target_name`: `Deploy-<name>`."""
    return f"Deploy-{target_name}"


def approve_stage_name(target_name: str) -> str:
    """The stage that waits for approval before `target_name`: `Approve-<name>`."""
    return f"Approve-{target_name}"


def project_name(namer: Namer, label: str) -> str:
    """The physical name of one of the pipeline's CodeBuild projects (build, unit-tests, ...)."""
    return namer.name(label, Kind.CODEBUILD_PROJECT)


def default_pipeline_name(namer: Namer) -> str:
    """The pipeline's physical name, `{service}-pipeline-{env}`."""
    return namer.name("pipeline", Kind.CODEPIPELINE)


# --------------------------------------------------------------------------------------------
# Settings and targets
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class BuildSettings:
    """The image build.

    Attributes:
        buildspec: the buildspec dict (e.g. `deployline.stages.build_buildspec(config)`).
        timeout: Default: 15 minutes; 5 to 60.
        platform: `linux/amd64` or `linux/arm64`; the build runs natively on it.
            Default: linux/amd64.
        compute_type: Default: BUILD_GENERAL1_MEDIUM (4 vCPU, 7 GB: Docker builds are CPU-bound).
        cache: local Docker layer and source cache. Default: on.
        docker_hub_secret_name: a Secrets Manager secret (JSON `username`, `password`) the
            buildspec reads to log in to Docker Hub; the build role may read that secret only.
            Default: none.
    """

    buildspec: Mapping[str, Any]
    timeout: Duration = field(default_factory=lambda: Duration.minutes(15))
    platform: str = "linux/amd64"
    compute_type: codebuild.ComputeType = codebuild.ComputeType.MEDIUM
    cache: bool = True
    docker_hub_secret_name: str | None = None


@dataclass(frozen=True, kw_only=True)
class TestSettings:
    """The unit tests.

    Attributes:
        buildspec: the buildspec dict, or a function of the report groups' ARNs that returns it
            (the groups are created by the pipeline).
        timeout: Default: 20 minutes; 5 to 60.
        compute_type: Default: BUILD_GENERAL1_SMALL.
    """

    __test__ = False  # not a pytest class

    buildspec: Mapping[str, Any] | Callable[[TestReportGroupNames], Mapping[str, Any]]
    timeout: Duration = field(default_factory=lambda: DEFAULT_TEST_TIMEOUT)
    compute_type: codebuild.ComputeType = codebuild.ComputeType.SMALL


@dataclass(frozen=True, kw_only=True)
class ScanSettings:
    """The security scan and the gate that judges its reports.

    Attributes:
        buildspec: the buildspec dict (e.g. `deployline.stages.scan_buildspec(config)`); its
            artifact holds the scanners' JSON reports.
        threshold: the gate fails on findings of this severity or worse. Default: high.
        scanners: the scanners whose reports the gate requires. Default: all three.
        allow_unverified: accept dependencies a scanner could not audit. Default: false.
        scan_image: give the scan `REPOSITORY_URI` and the built `IMAGE_TAG`, and pull access,
            so Trivy scans the pushed image too. Default: true.
        timeout: Default: 20 minutes; 5 to 60.
        compute_type: Default: BUILD_GENERAL1_SMALL.
    """

    buildspec: Mapping[str, Any]
    threshold: str = "high"
    scanners: Sequence[str] = SCANNERS
    allow_unverified: bool = False
    scan_image: bool = True
    timeout: Duration = field(default_factory=lambda: DEFAULT_SCAN_TIMEOUT)
    compute_type: codebuild.ComputeType = codebuild.ComputeType.SMALL


@dataclass(frozen=True, kw_only=True)
class RollingTarget:
    """An ECS service updated in place by the ECS deploy action (rolling, circuit breaker).

    Attributes:
        name: the environment, lowercase kebab-case, e.g. "staging".
        service: the ECS service.
        task_definition: its task definition (the deploy registers a revision of it, so the
            action may pass exactly its task and execution roles).
        url: the service's base URL, checked after the deploy.
        health_path: Default: /health.
        expected_status: Default: 200.
        approval: a manual approval before this deploy. Default: false.
        validation_timeout: Default: 15 minutes.
        deployment_timeout: Default: 30 minutes; 1 to 60.
    """

    name: str
    service: ecs.IBaseService
    task_definition: ecs.TaskDefinition
    url: str
    health_path: str = "/health"
    expected_status: int = 200
    approval: bool = False
    validation_timeout: Duration = field(default_factory=lambda: DEFAULT_VALIDATION_TIMEOUT)
    deployment_timeout: Duration = field(default_factory=lambda: DEFAULT_DEPLOYMENT_TIMEOUT)


@dataclass(frozen=True, kw_only=True)
class BlueGreenTarget:
    """An ECS service deployed blue/green through CodeDeploy (CodeDeployToECS).

    Attributes:
        name: the environment, lowercase kebab-case, e.g. "production".
        service: the ECS service (CODE_DEPLOY controller), for validation.
        deployment_group: its CodeDeploy ECS deployment group.
        task_definition: its task definition (the build renders `taskdef-<env>.json` from its
            family; the action may pass exactly its task and execution roles).
        url: the production URL, checked after traffic has shifted.
        hook_function: the AfterAllowTestTraffic hook the appspec names. Default: none.
        health_path: Default: /health.
        expected_status: Default: 200.
        approval: a manual approval before this deploy. Default: false.
        validation_timeout: Default: 15 minutes.
    """

    name: str
    service: ecs.IBaseService
    deployment_group: codedeploy.IEcsDeploymentGroup
    task_definition: ecs.TaskDefinition
    url: str
    hook_function: lambda_.IFunction | None = None
    health_path: str = "/health"
    expected_status: int = 200
    approval: bool = False
    validation_timeout: Duration = field(default_factory=lambda: DEFAULT_VALIDATION_TIMEOUT)


DeployTarget = RollingTarget | BlueGreenTarget


def _seconds(d: Duration) -> int:
    return int(d.to_seconds())


def validate_targets(
    targets: Sequence[DeployTarget], *, require_approval_before_last: bool
) -> None:
    """Raise ValueError naming the target, the field, the value and the fix."""
    seen: set[str] = set()
    for target in targets:
        if not isinstance(target, RollingTarget | BlueGreenTarget):
            raise ValueError(
                f"targets must be RollingTarget or BlueGreenTarget, got {type(target).__name__}"
            )
        if not _TARGET_NAME.match(target.name) or len(target.name) > 40:
            raise ValueError(
                "target name must be lowercase kebab-case of at most 40 characters, like "
                f"'staging', got {target.name!r}"
            )
        if target.name in seen:
            raise ValueError(f"target names must be unique; {target.name!r} appears twice")
        seen.add(target.name)
        if not target.health_path.startswith("/"):
            raise ValueError(
                f"target {target.name}: health_path must start with '/', got {target.health_path!r}"
            )
        if not 100 <= target.expected_status <= 599:
            raise ValueError(
                f"target {target.name}: expected_status must be an HTTP status 100-599, "
                f"got {target.expected_status}"
            )
        if not Token.is_unresolved(target.url) and not re.match(r"^https?://", target.url):
            raise ValueError(
                f"target {target.name}: url must start with http:// or https://, got {target.url!r}"
            )
        validation = _seconds(target.validation_timeout)
        if not 30 <= validation <= 3600:
            raise ValueError(
                f"target {target.name}: validation_timeout must be 30 seconds to 60 minutes, "
                f"got {validation} seconds"
            )
        if isinstance(target, RollingTarget):
            deployment = target.deployment_timeout.to_minutes(integral=False)
            if not 1 <= deployment <= 60 or deployment != int(deployment):
                raise ValueError(
                    f"target {target.name}: deployment_timeout must be a whole number of "
                    f"minutes from 1 to 60 (the ECS action's limit), got {deployment:g}"
                )
    if require_approval_before_last and len(targets) > 1 and not targets[-1].approval:
        raise ValueError(
            f"the last target {targets[-1].name!r} is production and needs approval=True: a "
            "pipeline with several deploy stages must wait for a person before the last one "
            "(failure catalog DL405); set approval: true on it, or suppress DL405 with a reason"
        )


def _validate_scan(scan: ScanSettings) -> None:
    if scan.threshold not in SEVERITIES:
        raise ValueError(
            f"scan threshold must be one of {list(SEVERITIES)}, got {scan.threshold!r}"
        )
    if not scan.scanners or isinstance(scan.scanners, str):
        raise ValueError(f"scan scanners must be a non-empty list, got {scan.scanners!r}")
    unknown = sorted(set(scan.scanners) - set(SCANNERS))
    if unknown:
        raise ValueError(f"scan scanners {unknown} are unknown; choose from {list(SCANNERS)}")


# --------------------------------------------------------------------------------------------
# The construct
# --------------------------------------------------------------------------------------------


class ContainerPipeline(Construct):
    """Source -> build -> tests || scans -> gate -> deploy targets, each validated.

    Attributes:
        pipeline: the CodePipeline (V2, QUEUED by default).
        pipeline_role: its service role (trusts codepipeline.amazonaws.com only).
        pipeline_name: its physical name.
        console_url: the pipeline in the AWS console (a token).
        key: the CMK for artifacts, logs and the repository.
        artifact_bucket: the artifact store.
        repository: the ECR repository the build pushes to.
        source: the source action and its trigger (`PipelineSourceAction`).
        build: `BuildProject` of the image build; `build_project` is its CodeBuild project.
        tests: `BuildProject` of the unit tests; `test_project` is its CodeBuild project.
        scan: `BuildProject` of the security scan; `scan_project` is its CodeBuild project.
        report_groups: the JUnit and coverage report groups.
        security_gate: the gate's `RuntimeFunction`.
        validation: the post-deploy validation's `RuntimeFunction` (None without targets).
        action_roles: every action's `ActionRole`, by "<stage>/<action>".
        stage_names: the stages in order.
        targets: the deploy targets, as given.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        namer: Namer,
        source: PipelineSource,
        build: BuildSettings,
        test: TestSettings,
        scan: ScanSettings,
        targets: Sequence[DeployTarget],
        key: kms.IKey | None = None,
        artifact_bucket: s3.IBucket | None = None,
        repository: ecr.IRepository | None = None,
        repository_name: str | None = None,
        keep_images: int = DEFAULT_KEEP_IMAGES,
        approval_topic: sns.ITopic | None = None,
        deployment_table: dynamodb.ITable | None = None,
        pipeline_name: str | None = None,
        execution_mode: codepipeline.ExecutionMode = codepipeline.ExecutionMode.QUEUED,
        require_approval_before_last: bool = True,
        access_logs_bucket: s3.IBucket | None = None,
        log_retention_days: int = defaults.LOG_RETENTION_DAYS,
        removal: RemovalPolicy = RemovalPolicy.RETAIN,
    ) -> None:
        """
        Args:
            namer: physical names, `{service}-{type}-{env}` (env "shared" for the pipeline).
            source: where the code comes from (`pipeline_source`).
            build: the image build.
            test: the unit tests.
            scan: the security scan and its gate.
            targets: the environments, in deploy order; the last one is production. With none,
                the pipeline ends after the security gate (continuous integration only).
            key: the CMK for artifacts, logs and images; it must allow CloudWatch Logs
                (`defaults.allow_logs_to_use_key`). Default: a new key with rotation.
            artifact_bucket: encrypted with `key`. Default: a new `ArtifactStore`.
            repository: the ECR repository. Default: a new `ImageRepository` named
                `repository_name`.
            repository_name: Default: `{service}-images-{env}`.
            keep_images: tagged images the new repository keeps. Default: 20.
            approval_topic: the topic approvals are announced on. Default: none.
            deployment_table: the deployment record the gate writes its verdict to
                (`DeploymentHistory.table`). Default: none.
            pipeline_name: Default: `{service}-pipeline-{env}`.
            execution_mode: Default: QUEUED (see the module docstring).
            require_approval_before_last: refuse several targets without an approval before
                the last. Default: true.
            access_logs_bucket: server access logs of buckets this construct creates.
                Default: none (a new ArtifactStore brings its own).
            log_retention_days: Default: 30.
            removal: for the key, buckets, repository and log groups. Default: RETAIN.
        """
        super().__init__(scope, id)
        targets = list(targets)
        validate_targets(targets, require_approval_before_last=require_approval_before_last)
        _validate_scan(scan)
        check_timeout("build", build.timeout)
        check_timeout("test", test.timeout)
        check_timeout("scan", scan.timeout)
        default_build_image(build.platform)  # validates the platform
        if execution_mode == codepipeline.ExecutionMode.PARALLEL:
            raise ValueError(
                "execution_mode PARALLEL is not supported: parallel executions race each other "
                "to the same environments and stage rollback is unavailable; use QUEUED or "
                "SUPERSEDED"
            )
        self.targets = tuple(targets)
        self.namer = namer

        # ---- key, artifact store, repository ----------------------------------------------
        if key is None:
            key = defaults.secure_key(
                self,
                "Key",
                alias=namer.name("pipeline-key"),
                description=f"deployline: encrypts the {namer.service} pipeline",
                removal=removal,
            )
            defaults.allow_logs_to_use_key(
                key,
                f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:*{namer.base}*",
            )
        self.key = key
        if artifact_bucket is None:
            store = ArtifactStore(
                self,
                "ArtifactStore",
                bucket_prefix=namer.bucket_prefix("artifacts"),
                access_logs_prefix=namer.bucket_prefix("access-logs"),
                key=key,
                removal=removal,
            )
            artifact_bucket = store.bucket
            access_logs_bucket = access_logs_bucket or store.access_logs
        elif artifact_bucket.encryption_key is None:
            raise ValueError(
                "artifact_bucket must be encrypted with a KMS key (SSE-KMS) the pipeline can "
                "use; create it with defaults.secure_bucket(key=...)"
            )
        self.artifact_bucket = artifact_bucket
        if repository is None:
            repository = ImageRepository(
                self,
                "Images",
                repository_name=repository_name or namer.name("images", Kind.ECR_REPOSITORY),
                key=key,
                keep_images=keep_images,
                removal=removal,
            ).repository
        self.repository = repository

        # ---- the pipeline -----------------------------------------------------------------
        self.pipeline_name = pipeline_name or default_pipeline_name(namer)
        self.pipeline_role = iam.Role(
            self,
            "PipelineRole",
            role_name=namer.name("pipeline", Kind.IAM_ROLE),
            assumed_by=iam.ServicePrincipal("codepipeline.amazonaws.com"),
            description=f"deployline: service role of the pipeline {self.pipeline_name}",
        )
        self.pipeline = codepipeline.Pipeline(
            self,
            "Pipeline",
            pipeline_name=self.pipeline_name,
            pipeline_type=codepipeline.PipelineType.V2,
            execution_mode=execution_mode,
            artifact_bucket=artifact_bucket,
            role=self.pipeline_role,
            cross_account_keys=False,
            restart_execution_on_update=False,
        )
        self._explain_pipeline_role()
        self.console_url = (
            f"https://{Aws.REGION}.console.aws.amazon.com/codesuite/codepipeline/pipelines/"
            f"{self.pipeline_name}/view?region={Aws.REGION}"
        )
        self.action_roles: dict[str, ActionRole] = {}
        self.stage_names: list[str] = []

        # ---- Source -----------------------------------------------------------------------
        self.source = PipelineSourceAction(
            self,
            "Source",
            source=source,
            pipeline=self.pipeline,
            artifact_bucket=artifact_bucket,
            key=key,
            namer=namer,
            removal=removal,
            access_logs_bucket=access_logs_bucket,
        )
        self.action_roles["Source/Source"] = self.source.role
        self.stage_names.append("Source")

        # ---- Build ------------------------------------------------------------------------
        blue_green = [t for t in targets if isinstance(t, BlueGreenTarget)]
        build_env: dict[str, codebuild.BuildEnvironmentVariable] = {
            stages.REPOSITORY_URI: plaintext(repository.repository_uri)
        }
        for bg in blue_green:
            build_env[stages.env_var(stages.TASK_FAMILY, bg.name)] = plaintext(
                bg.task_definition.family
            )
            if bg.hook_function is not None:
                build_env[stages.env_var(stages.HOOK_FUNCTION, bg.name)] = plaintext(
                    bg.hook_function.function_name
                )
        build_statements = [
            _ecr_login_statement(),
            iam.PolicyStatement(
                sid="PushImages",
                actions=[*_ECR_PULL, *_ECR_PUSH, "ecr:DescribeImages"],
                resources=[repository.repository_arn],
            ),
            *self.source.clone_statements,
        ]
        if blue_green:
            build_statements.append(
                iam.PolicyStatement(
                    sid="ReadTaskDefinitions",
                    actions=["ecs:DescribeTaskDefinition"],
                    resources=["*"],  # DescribeTaskDefinition allows only "*"
                )
            )
        if build.docker_hub_secret_name:
            build_statements.append(
                iam.PolicyStatement(
                    sid="ReadDockerHubSecret",
                    actions=["secretsmanager:GetSecretValue"],
                    # Secrets Manager appends 6 random characters to a secret's ARN.
                    resources=[
                        Stack.of(self).format_arn(
                            service="secretsmanager",
                            resource="secret",
                            resource_name=f"{build.docker_hub_secret_name}-??????",
                            arn_format=ArnFormat.COLON_RESOURCE_NAME,
                        )
                    ],
                )
            )
        self.build = BuildProject(
            self,
            "Build",
            project_name=project_name(namer, "build"),
            role_name=namer.name("build-project", Kind.IAM_ROLE),
            description=f"deployline: builds and pushes the {namer.service} image",
            buildspec=build.buildspec,
            key=key,
            artifact_bucket=artifact_bucket,
            writes_artifacts=True,
            build_image=default_build_image(build.platform),
            compute_type=build.compute_type,
            privileged=True,  # docker build needs the Docker daemon
            timeout=build.timeout,
            cache=(
                codebuild.Cache.local(
                    codebuild.LocalCacheMode.DOCKER_LAYER, codebuild.LocalCacheMode.SOURCE
                )
                if build.cache
                else None
            ),
            environment_variables=build_env,
            log_retention_days=log_retention_days,
            removal=removal,
            statements=build_statements,
        )
        self.build_project = self.build.project
        build_output = codepipeline.Artifact(BUILD_ARTIFACT)
        build_action = actions.CodeBuildAction(
            action_name=BUILD_ACTION,
            project=self.build_project,
            input=self.source.output,
            outputs=[build_output],
            variables_namespace=BUILD_NAMESPACE,
            environment_variables={stages.IMAGE_TAG: plaintext(self.source.revision)},
            role=self._project_action_role(BUILD_STAGE, BUILD_ACTION, self.build_project),
        )
        self.pipeline.add_stage(stage_name=BUILD_STAGE, actions=[build_action])
        self.stage_names.append(BUILD_STAGE)

        # ---- Test: unit tests || scan, then the gate -------------------------------------
        self.report_groups = TestReportGroups(
            self,
            "Reports",
            junit_name=namer.name("unit-tests-junit", Kind.CODEBUILD_PROJECT),
            coverage_name=namer.name("unit-tests-coverage", Kind.CODEBUILD_PROJECT),
            export_bucket=artifact_bucket,
            removal=removal,
        )
        test_spec = (
            test.buildspec(self.report_groups.names) if callable(test.buildspec) else test.buildspec
        )
        self.tests = BuildProject(
            self,
            "UnitTests",
            project_name=project_name(namer, "unit-tests"),
            role_name=namer.name("unit-tests-project", Kind.IAM_ROLE),
            description=f"deployline: runs the {namer.service} unit tests",
            buildspec=test_spec,
            key=key,
            artifact_bucket=artifact_bucket,
            report_groups=[self.report_groups.junit, self.report_groups.coverage],
            build_image=default_build_image(),
            compute_type=test.compute_type,
            timeout=test.timeout,
            cache=codebuild.Cache.local(
                codebuild.LocalCacheMode.CUSTOM, codebuild.LocalCacheMode.SOURCE
            ),
            log_retention_days=log_retention_days,
            removal=removal,
            statements=self.source.clone_statements,
        )
        self.test_project = self.tests.project

        scan_env: dict[str, codebuild.BuildEnvironmentVariable] = {}
        if scan.scan_image:
            scan_env[stages.REPOSITORY_URI] = plaintext(repository.repository_uri)
        self.scan = BuildProject(
            self,
            "SecurityScan",
            project_name=project_name(namer, "security-scan"),
            role_name=namer.name("security-scan-project", Kind.IAM_ROLE),
            description=f"deployline: scans the {namer.service} code, dependencies and image",
            buildspec=scan.buildspec,
            key=key,
            artifact_bucket=artifact_bucket,
            writes_artifacts=True,
            build_image=default_build_image(),
            compute_type=scan.compute_type,
            timeout=scan.timeout,
            cache=codebuild.Cache.local(
                codebuild.LocalCacheMode.CUSTOM, codebuild.LocalCacheMode.SOURCE
            ),
            environment_variables=scan_env,
            log_retention_days=log_retention_days,
            removal=removal,
            statements=[
                *self.source.clone_statements,
                *(
                    [
                        _ecr_login_statement(),
                        iam.PolicyStatement(
                            sid="PullImages",
                            actions=list(_ECR_PULL),
                            resources=[repository.repository_arn],
                        ),
                    ]
                    if scan.scan_image
                    else []
                ),
            ],
        )
        self.scan_project = self.scan.project
        scan_output = codepipeline.Artifact(SCAN_ARTIFACT)

        self.security_gate = RuntimeFunction(
            self,
            "SecurityGateFunction",
            namer=namer,
            name="security-gate",
            handler="security_gate.handler",
            description=f"deployline: fails {namer.service}'s pipeline on security findings",
            key=key,
            environment=({"TABLE_NAME": deployment_table.table_name} if deployment_table else None),
            timeout=Duration.minutes(2),
            memory_size=512,
            log_retention_days=log_retention_days,
            removal=removal,
            statements=[_put_job_result_statement()],
        )
        if deployment_table is not None:
            # The gate reads and writes one execution's record: the table itself, no index.
            self.security_gate.role.add_to_policy(
                iam.PolicyStatement(
                    sid="RecordVerdict",
                    actions=["dynamodb:GetItem", "dynamodb:PutItem"],
                    resources=[deployment_table.table_arn],
                )
            )
            if deployment_table.encryption_key is not None:
                self.security_gate.role.add_to_policy(
                    iam.PolicyStatement(
                        sid="UseTableKey",
                        actions=["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"],
                        resources=[deployment_table.encryption_key.key_arn],
                    )
                )
        self._explain_function(
            self.security_gate,
            "CodePipeline invokes the security gate once per execution and waits for its job "
            "result",
            wildcard="codepipeline:PutJobSuccessResult/PutJobFailureResult allow only '*'",
        )

        test_action = actions.CodeBuildAction(
            action_name=UNIT_TESTS_ACTION,
            project=self.test_project,
            input=self.source.output,
            type=actions.CodeBuildActionType.TEST,
            run_order=1,
            role=self._project_action_role(TEST_STAGE, UNIT_TESTS_ACTION, self.test_project),
        )
        scan_action = actions.CodeBuildAction(
            action_name=SCAN_ACTION,
            project=self.scan_project,
            input=self.source.output,
            outputs=[scan_output],
            type=actions.CodeBuildActionType.TEST,
            run_order=1,
            environment_variables=(
                {stages.IMAGE_TAG: plaintext(build_action.variable(stages.IMAGE_TAG))}
                if scan.scan_image
                else None
            ),
            role=self._project_action_role(TEST_STAGE, SCAN_ACTION, self.scan_project),
        )
        gate_role = self._action_role(
            TEST_STAGE,
            GATE_ACTION,
            "security-gate-action",
            [
                _invoke_statement(self.security_gate.function),
                # The gate reads the scan reports with the job's artifact credentials.
                *read_artifacts(artifact_bucket, key),
            ],
        )
        gate_action = actions.LambdaInvokeAction(
            action_name=GATE_ACTION,
            lambda_=self.security_gate.function,
            inputs=[scan_output],
            user_parameters={
                "threshold": scan.threshold,
                "scanners": list(scan.scanners),
                "allow_unverified": scan.allow_unverified,
                "execution_id": "#{codepipeline.PipelineExecutionId}",
            },
            variables_namespace=GATE_NAMESPACE,
            run_order=2,
            role=gate_role,
        )
        self.pipeline.add_stage(
            stage_name=TEST_STAGE, actions=[test_action, scan_action, gate_action]
        )
        self.stage_names.append(TEST_STAGE)

        # ---- Deploy targets ---------------------------------------------------------------
        self.validation: RuntimeFunction | None = None
        if not targets:
            return
        validation = RuntimeFunction(
            self,
            "ValidationFunction",
            namer=namer,
            name="validate",
            handler="validation.handler",
            description=f"deployline: checks {namer.service} after each deploy",
            key=key,
            timeout=Duration.minutes(2),
            log_retention_days=log_retention_days,
            removal=removal,
            statements=[
                _put_job_result_statement(),
                iam.PolicyStatement(
                    sid="DescribeServices",
                    actions=["ecs:DescribeServices"],
                    resources=[t.service.service_arn for t in targets],
                ),
                iam.PolicyStatement(
                    sid="DescribeTaskDefinitions",
                    actions=["ecs:DescribeTaskDefinition"],
                    resources=["*"],  # DescribeTaskDefinition allows only "*"
                ),
            ],
        )
        self.validation = validation
        self._explain_function(
            validation,
            "CodePipeline invokes the validation once per deploy (again with a continuation "
            "token while it waits) and waits for its job result",
            wildcard="codepipeline:PutJob*Result and ecs:DescribeTaskDefinition allow only '*'",
        )
        branch = getattr(source, "branch", None)
        for target in targets:
            if target.approval:
                self._add_approval(
                    target,
                    approval_topic=approval_topic,
                    build_action=build_action,
                    branch=branch,
                )
            self._add_deploy(
                target, build_output=build_output, build_action=build_action, validation=validation
            )

    # ---- helpers --------------------------------------------------------------------------

    def _explain_pipeline_role(self) -> None:
        """Record why the pipeline role's grant (written by aws-cdk's Pipeline) has wildcards."""
        bucket = nag_resource(self, self.artifact_bucket.arn_for_objects("*"))
        store = f"the artifact bucket of {self.pipeline_name}"
        findings = {
            f"Resource::{bucket}": f"{self.pipeline_name} stores artifacts under keys it "
            f"generates per execution, only in {store}",
            "Action::kms:GenerateDataKey*": f"{self.pipeline_name} encrypts artifacts with the "
            "pipeline key only (resource: that key's ARN)",
            "Action::kms:ReEncrypt*": f"{self.pipeline_name} re-encrypts artifacts with the "
            "pipeline key only (resource: that key's ARN)",
        }
        for action in ("s3:Abort*", "s3:DeleteObject*", "s3:GetBucket*", "s3:GetObject*"):
            findings[f"Action::{action}"] = (
                f"aws-cdk's artifact grant of {self.pipeline_name}, limited to {store}"
            )
        findings["Action::s3:List*"] = (
            f"{self.pipeline_name} lists artifact versions, only in {store}"
        )
        acknowledge_iam5(self.pipeline_role, findings)
        cfn_pipeline = self.pipeline.node.default_child
        if isinstance(cfn_pipeline, CfnResource):
            # aws-cdk makes the pipeline depend on its role and the role's policy; the policy
            # is what matters (DL706), the role's DependsOn repeats the GetAtt of its ARN.
            cfn_pipeline.add_metadata("cfn-lint", {"config": {"ignore_checks": ["W3005"]}})

    def _explain_function(self, function: RuntimeFunction, invoked: str, *, wildcard: str) -> None:
        """Record, with reasons, the cdk-nag, cfn-lint and checkov findings a pipeline function
        has by design."""
        acknowledge_function_findings(function)
        acknowledge_iam5(
            function.role,
            {
                "Resource::*": f"{function.function_name}: {wildcard}; everything else it calls "
                "is scoped to ARNs"
            },
        )
        defaults.skip_checkov(function.function, "CKV_AWS_116", f"{invoked}: a DLQ adds nothing")
        defaults.skip_checkov(
            function.function,
            "CKV_AWS_115",
            f"{invoked}; at most one call per running action, and reserved concurrency would "
            "take from the account's unreserved pool",
        )
        defaults.skip_checkov(
            function.function,
            "CKV_AWS_117",
            f"{function.function_name} calls only AWS APIs and the service's public URL; it "
            "needs no VPC access",
        )

    def _action_role(
        self, stage: str, action: str, type_: str, statements: Sequence[iam.PolicyStatement]
    ) -> iam.IRole:
        role = ActionRole(
            self,
            f"{stage}{action}Role".replace("-", ""),
            role_name=self.namer.name(type_, Kind.IAM_ROLE),
            pipeline_role=self.pipeline_role,
            statements=statements,
            description=f"deployline: the {action} action of stage {stage}",
        )
        self.action_roles[f"{stage}/{action}"] = role
        return role.for_action

    def _project_action_role(
        self, stage: str, action: str, project: codebuild.IProject
    ) -> iam.IRole:
        return self._action_role(
            stage,
            action,
            f"{self._label(action)}-action",
            [
                iam.PolicyStatement(
                    sid="RunBuild",
                    actions=[
                        "codebuild:BatchGetBuilds",
                        "codebuild:StartBuild",
                        "codebuild:StopBuild",
                    ],
                    resources=[project.project_arn],
                )
            ],
        )

    @staticmethod
    def _label(action: str) -> str:
        return re.sub(r"(?<!^)(?=[A-Z])", "-", action).lower()

    def _add_approval(
        self,
        target: DeployTarget,
        *,
        approval_topic: sns.ITopic | None,
        build_action: actions.CodeBuildAction,
        branch: str | None,
    ) -> None:
        statements: list[iam.PolicyStatement] = []
        if approval_topic is not None:
            statements.append(
                iam.PolicyStatement(
                    sid="AnnounceApproval",
                    actions=["sns:Publish"],
                    resources=[approval_topic.topic_arn],
                )
            )
            if approval_topic.master_key is not None:
                statements.append(
                    iam.PolicyStatement(
                        sid="EncryptAnnouncement",
                        actions=["kms:GenerateDataKey", "kms:Decrypt"],
                        resources=[approval_topic.master_key.key_arn],
                    )
                )
        else:
            # Without a topic the action publishes nothing; the role still must allow something.
            statements.append(
                iam.PolicyStatement(
                    sid="ReadOwnPipeline",
                    actions=["codepipeline:GetPipelineState"],
                    resources=[self.pipeline.pipeline_arn],
                )
            )
        stage = approve_stage_name(target.name)
        revision = self.source.revision
        on_branch = f" on {branch}" if branch and not Token.is_unresolved(branch) else ""
        custom_data = (
            f"Deploy {self.namer.service} to {target.name}: commit {revision}{on_branch}, "
            f"image tag {build_action.variable(stages.IMAGE_TAG)}. "
            "Unit tests: passed. "
            f"Security: #{{{GATE_NAMESPACE}.SECURITY_SUMMARY}}"
        )
        if len(custom_data) > _CUSTOM_DATA_LIMIT:
            raise ValueError(
                f"the approval message for {target.name} is {len(custom_data)} characters; "
                f"CodePipeline allows {_CUSTOM_DATA_LIMIT}. Use a shorter service name"
            )
        approve = actions.ManualApprovalAction(
            action_name=APPROVE_ACTION,
            notification_topic=approval_topic,
            additional_information=custom_data,
            external_entity_link=(
                f"https://{Aws.REGION}.console.aws.amazon.com/codesuite/codepipeline/pipelines/"
                f"{self.pipeline_name}/executions/#{{codepipeline.PipelineExecutionId}}/timeline"
                f"?region={Aws.REGION}"
            ),
            run_order=1,
            role=self._action_role(
                stage, APPROVE_ACTION, f"approve-{target.name}-action", statements
            ),
        )
        self.pipeline.add_stage(stage_name=stage, actions=[approve])
        self.stage_names.append(stage)

    def _add_deploy(
        self,
        target: DeployTarget,
        *,
        build_output: codepipeline.Artifact,
        build_action: actions.CodeBuildAction,
        validation: RuntimeFunction,
    ) -> None:
        stage = deploy_stage_name(target.name)
        task_definition = target.task_definition
        roles: list[iam.IRole] = [task_definition.task_role]
        if task_definition.execution_role is not None:
            roles.append(task_definition.execution_role)
        family_arn = ecs_arn(f"task-definition/{task_definition.family}:*")
        common = [
            iam.PolicyStatement(
                sid="RegisterTaskDefinition",
                actions=["ecs:RegisterTaskDefinition", "ecs:DescribeTaskDefinition"],
                resources=["*"],  # these two allow only "*"
            ),
            iam.PolicyStatement(
                sid="TagTaskDefinition", actions=["ecs:TagResource"], resources=[family_arn]
            ),
            pass_roles(roles),
            *read_artifacts(self.artifact_bucket, self.key),
        ]
        deploy: codepipeline.IAction
        if isinstance(target, RollingTarget):
            service = target.service
            tasks_arn = ecs_arn("task/*")
            instances_arn = ecs_arn("container-instance/*")
            statements = [
                iam.PolicyStatement(
                    sid="UpdateService",
                    actions=["ecs:DescribeServices", "ecs:UpdateService"],
                    resources=[service.service_arn],
                ),
                iam.PolicyStatement(
                    sid="WatchTasks",
                    actions=["ecs:DescribeTasks"],
                    # Task IDs are random; the condition keeps the role to this one cluster.
                    resources=[tasks_arn],
                    conditions={"ArnEquals": {"ecs:cluster": service.cluster.cluster_arn}},
                ),
                iam.PolicyStatement(
                    sid="ListTasks",
                    actions=["ecs:ListTasks"],
                    # ListTasks is authorized on container instances (IAM's service reference);
                    # the ecs:cluster condition scopes it to this cluster.
                    resources=[instances_arn],
                    conditions={"ArnEquals": {"ecs:cluster": service.cluster.cluster_arn}},
                ),
                *common,
            ]
            deploy = actions.EcsDeployAction(
                action_name=DEPLOY_ACTION,
                service=service,
                image_file=build_output.at_path(stages.IMAGE_DEFINITIONS),
                deployment_timeout=target.deployment_timeout,
                run_order=1,
                role=self._action_role(
                    stage, DEPLOY_ACTION, f"deploy-{target.name}-action", statements
                ),
            )
        else:
            group = target.deployment_group
            statements = [
                iam.PolicyStatement(
                    sid="RegisterRevision",
                    actions=[
                        "codedeploy:GetApplication",
                        "codedeploy:GetApplicationRevision",
                        "codedeploy:RegisterApplicationRevision",
                    ],
                    resources=[group.application.application_arn],
                ),
                iam.PolicyStatement(
                    sid="CreateDeployment",
                    actions=["codedeploy:CreateDeployment", "codedeploy:GetDeployment"],
                    resources=[group.deployment_group_arn],
                ),
                iam.PolicyStatement(
                    sid="ReadDeploymentConfig",
                    actions=["codedeploy:GetDeploymentConfig"],
                    resources=[group.deployment_config.deployment_config_arn],
                ),
                *common,
            ]
            deploy = actions.CodeDeployEcsDeployAction(
                action_name=DEPLOY_ACTION,
                deployment_group=group,
                task_definition_template_file=build_output.at_path(
                    stages.taskdef_file(target.name)
                ),
                app_spec_template_file=build_output.at_path(stages.appspec_file(target.name)),
                container_image_inputs=[
                    actions.CodeDeployEcsContainerImageInput(
                        input=build_output, task_definition_placeholder="IMAGE1_NAME"
                    )
                ],
                run_order=1,
                role=self._action_role(
                    stage, DEPLOY_ACTION, f"deploy-{target.name}-action", statements
                ),
            )
        deploy_role = self.action_roles[f"{stage}/{DEPLOY_ACTION}"].role
        what = f"deploying {self.namer.service} to {target.name}"
        findings = {
            "Resource::*": f"{what}: ecs:RegisterTaskDefinition and "
            "ecs:DescribeTaskDefinition allow only '*'",
            f"Resource::{nag_resource(self, family_arn)}": f"{what} registers a "
            f"new revision of task family {task_definition.family} only; revision numbers are "
            "assigned by ECS",
        }
        if isinstance(target, RollingTarget):
            findings[f"Resource::{nag_resource(self, ecs_arn('task/*'))}"] = (
                f"{what} watches tasks whose IDs ECS assigns; the ecs:cluster "
                "condition limits it to the service's cluster"
            )
            findings[f"Resource::{nag_resource(self, ecs_arn('container-instance/*'))}"] = (
                f"{what} lists the tasks of the service's cluster only (ecs:cluster condition)"
            )
        acknowledge_iam5(deploy_role, findings)
        defaults.skip_checkov(
            deploy_role,
            "CKV_AWS_111",
            f"ecs:RegisterTaskDefinition allows only '*' ({what}); every other "
            "write is scoped to the service, the task family and the two task roles",
        )
        validate = actions.LambdaInvokeAction(
            action_name=VALIDATE_ACTION,
            lambda_=validation.function,
            user_parameters={
                "cluster": target.service.cluster.cluster_name,
                "service": target.service.service_name,
                "url": target.url,
                "health_path": target.health_path,
                "expected_image": build_action.variable(stages.IMAGE_URI),
                "timeout_seconds": _seconds(target.validation_timeout),
                "expected_status": target.expected_status,
            },
            run_order=2,
            role=self._action_role(
                stage,
                VALIDATE_ACTION,
                f"validate-{target.name}-action",
                [_invoke_statement(validation.function)],
            ),
        )
        self.pipeline.add_stage(
            stage_name=stage,
            actions=[deploy, validate],
            on_failure=codepipeline.FailureConditions(result=codepipeline.Result.ROLLBACK),
        )
        self.stage_names.append(stage)


_ECR_PULL = ("ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage")
_ECR_PUSH = (
    "ecr:PutImage",
    "ecr:InitiateLayerUpload",
    "ecr:UploadLayerPart",
    "ecr:CompleteLayerUpload",
)


def _ecr_login_statement() -> iam.PolicyStatement:
    return iam.PolicyStatement(
        sid="LogInToEcr",
        actions=["ecr:GetAuthorizationToken"],
        resources=["*"],  # GetAuthorizationToken allows only "*"
    )


def _put_job_result_statement() -> iam.PolicyStatement:
    return iam.PolicyStatement(
        sid="ReportJobResult",
        actions=["codepipeline:PutJobSuccessResult", "codepipeline:PutJobFailureResult"],
        resources=["*"],  # the job result APIs allow only "*"
    )


def _invoke_statement(function: lambda_.IFunction) -> iam.PolicyStatement:
    return iam.PolicyStatement(
        sid="InvokeFunction",
        actions=["lambda:InvokeFunction"],
        resources=[function.function_arn],
    )
