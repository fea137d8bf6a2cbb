"""`ContainerPipeline`: the whole delivery of a container service, as one construct.

Stages, in order (the names are public: alarms, the deployment record and `deployline diagram`
use them; `deployline.contract` spells them):

    Source          the source action (CodeStar connection, S3 or CodeCommit)
    Build           BuildImage (docker build, push to ECR, tag = commit) and Synth (the app's
                    cloud assembly from the same commit, its assets published), in parallel
    Test            UnitTests and SecurityScan in parallel, then SecurityGate, which fails on
                    findings at the threshold
    UpdatePipeline  SelfUpdate: CloudFormation updates the pipeline's own stack from the synth
                    output (seconds when nothing changed; when it changed, CodePipeline cancels
                    this execution and starts one on the new structure)
    Approve-<env>   for a target with approval: Plan, ChangeSummary, Approve
    Deploy-<env>    Deploy (CloudFormation, with the image tag), then Validate

Every deploy goes through CloudFormation, into the target's account and region, as the roles
`cdk bootstrap --trust <pipeline account>` created there (see `stack_delivery`). Nothing registers
task definitions behind CloudFormation's back: the image reaches a service as its stack's
`ImageTag` parameter.

Execution mode: QUEUED. Every execution that starts runs to its end, in order: each commit that
reaches staging is validated there, each approval decides on exactly the commit and change set it
shows, and the deployment record lists every change. SUPERSEDED would let a newer execution skip
an older one waiting between stages.

Example, from plain CDK (no deployline.yaml):

    from deployline import ContainerPipeline
    from deployline.constructs.pipeline_settings import (
        BuildSettings, ScanSettings, StackTarget, SynthSettings, TestSettings,
    )
    from deployline.constructs.bootstrap import BootstrapEnvironment
    from deployline.constructs.pipeline_source import ConnectionSource
    from deployline.naming import Namer

    pipeline = ContainerPipeline(
        stack, "Pipeline",
        namer=Namer("orders", "shared"),
        source=ConnectionSource(connection_arn=arn, repository="acme/orders", branch="main"),
        build=BuildSettings(buildspec=build_spec),      # exports IMAGE_TAG and IMAGE_URI
        synth=SynthSettings(buildspec=synth_spec),      # artifact: the cloud assembly
        test=TestSettings(buildspec=test_spec),
        scan=ScanSettings(buildspec=scan_spec, threshold="high"),
        targets=[
            StackTarget(name="staging", stack_name="orders-staging",
                        template_file="orders-staging.template.json"),
            StackTarget(name="production", stack_name="orders-production",
                        template_file="orders-production.template.json",
                        environment=BootstrapEnvironment(account="333333333333",
                                                         region="eu-west-1"),
                        approval=True),
        ],
    )
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from aws_cdk import Arn, ArnFormat, Aws, CfnResource, Duration, RemovalPolicy, Stack, Token
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_codepipeline as codepipeline
from aws_cdk import aws_codepipeline_actions as actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from constructs import Construct

from deployline import contract, defaults, stages
from deployline.constructs.artifact_store import ArtifactStore
from deployline.constructs.bootstrap import BootstrapEnvironment
from deployline.constructs.build_projects import (
    BuildProject,
    TestReportGroups,
    default_build_image,
    plaintext,
)
from deployline.constructs.ecr_repository import DEFAULT_KEEP_IMAGES, ImageRepository
from deployline.constructs.pipeline_roles import (
    ActionRole,
    acknowledge_iam5,
    nag_resource,
    read_artifacts,
)
from deployline.constructs.pipeline_settings import (
    BuildSettings,
    ScanSettings,
    SelfUpdateTarget,
    StackTarget,
    SynthSettings,
    TestSettings,
    validate_settings,
)
from deployline.constructs.pipeline_source import PipelineSource, PipelineSourceAction
from deployline.constructs.runtime_function import (
    RuntimeFunction,
    accept_function_design,
    acknowledge_function_findings,
)
from deployline.constructs.stack_delivery import CAPABILITIES, StackDelivery, invoke_statement
from deployline.naming import Kind, Namer

BUILD_ARTIFACT = "BuildOutput"
SYNTH_ARTIFACT = "SynthOutput"
SCAN_ARTIFACT = "ScanReports"
GATE_NAMESPACE = "SecurityGate"
_ECR_PULL = ("ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage")
_ECR_PUSH = (
    "ecr:PutImage",
    "ecr:InitiateLayerUpload",
    "ecr:UploadLayerPart",
    "ecr:CompleteLayerUpload",
)


def project_name(namer: Namer, label: str) -> str:
    """The physical name of one of the pipeline's CodeBuild projects (build, unit-tests, ...)."""
    return namer.name(label, Kind.CODEBUILD_PROJECT)


def default_pipeline_name(namer: Namer) -> str:
    """The pipeline's physical name, `{service}-pipeline-{env}`."""
    return namer.name("pipeline", Kind.CODEPIPELINE)


class ContainerPipeline(Construct):
    """Source -> build ∥ synth -> tests ∥ scans -> gate -> self-update -> each stack, validated.

    Attributes:
        pipeline: the CodePipeline (V2, QUEUED by default).
        pipeline_role: its service role (trusts codepipeline.amazonaws.com only).
        pipeline_name: its physical name.
        console_url: the pipeline in the AWS console (a token).
        key: the CMK for artifacts, logs and the repository.
        artifact_bucket: the artifact store of the pipeline's region.
        repository: the ECR repository the build pushes to.
        source: the source action and its trigger (`PipelineSourceAction`).
        build, synth, tests, scan: the `BuildProject`s; `build_project`, `synth_project`,
            `test_project`, `scan_project` are their CodeBuild projects.
        report_groups: the JUnit and coverage report groups.
        security_gate: the gate's `RuntimeFunction`.
        validation: the post-deploy validation's `RuntimeFunction` (None without targets).
        change_summary: the change-set summary's `RuntimeFunction` (None without approvals).
        deliveries: the `StackDelivery` of each target, in order.
        action_roles: the roles of the actions deployline owns, by "<stage>/<action>".
        stage_names: the stages in order.
        targets: the targets, as given.
        image_tag, image_uri: the build action's exported variables.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        namer: Namer,
        source: PipelineSource,
        build: BuildSettings,
        synth: SynthSettings,
        test: TestSettings,
        scan: ScanSettings,
        targets: Sequence[StackTarget],
        self_update: bool = True,
        self_update_first: Sequence[SelfUpdateTarget] = (),
        environment: BootstrapEnvironment | None = None,
        key: kms.IKey | None = None,
        artifact_bucket: s3.IBucket | None = None,
        cross_region_artifact_buckets: Mapping[str, s3.IBucket] | None = None,
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
            synth: the synth of the app the targets belong to.
            test: the unit tests.
            scan: the security scan and its gate.
            targets: the environments' stacks, in deploy order; the last one is production.
                With none, the pipeline ends after the self-update (continuous integration).
            self_update: update the pipeline's own stack from the synth output before any
                target. Default: true.
            self_update_first: other stacks of the pipeline's own, updated before it (the
                artifact stores of other regions). Default: none.
            environment: the pipeline's own account and region (its bootstrap roles). Default:
                the stack's, as pseudo parameters when the stack is environment-agnostic.
            key: the CMK for artifacts, logs and images; it must allow CloudWatch Logs
                (`defaults.allow_logs_to_use_key`). Default: a new key with rotation.
            artifact_bucket: encrypted with `key`. Default: a new `ArtifactStore`.
            cross_region_artifact_buckets: an artifact bucket (KMS-encrypted) in each other
                region a target deploys to, by region. Default: none.
            repository: the ECR repository. Default: an `ImageRepository` named `repository_name`.
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
        self.targets = tuple(targets)
        _validate(
            build, synth, test, scan, self.targets, require_approval_before_last, execution_mode
        )
        self.namer, self._removal, self._log_retention_days = namer, removal, log_retention_days
        self.environment = environment or _stack_environment(self)
        self._storage(key, artifact_bucket, access_logs_bucket, repository, repository_name)
        self._create_pipeline(
            pipeline_name, execution_mode, cross_region_artifact_buckets or {}, keep_images
        )
        self._add_source(source)
        build_action = self._add_build_stage(build, synth)
        self._add_test_stage(test, scan, build_action, deployment_table)
        if self_update:
            self._add_update_stage(self_update_first)
        self._add_deliveries(approval_topic)
        self._admit_deployers()

    # ---- storage and the pipeline ---------------------------------------------------------

    def _storage(
        self,
        key: kms.IKey | None,
        artifact_bucket: s3.IBucket | None,
        access_logs_bucket: s3.IBucket | None,
        repository: ecr.IRepository | None,
        repository_name: str | None,
    ) -> None:
        namer = self.namer
        if key is None:
            key = defaults.secure_key(
                self,
                "Key",
                alias=namer.name("pipeline-key"),
                description=f"deployline: encrypts the {namer.service} pipeline",
                removal=self._removal,
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
                removal=self._removal,
            )
            artifact_bucket = store.bucket
            access_logs_bucket = access_logs_bucket or store.access_logs
        elif artifact_bucket.encryption_key is None:
            raise ValueError(
                "artifact_bucket must be encrypted with a KMS key (SSE-KMS) the pipeline can "
                "use; create it with defaults.secure_bucket(key=...)"
            )
        self.artifact_bucket = artifact_bucket
        self._access_logs_bucket = access_logs_bucket
        self._repository = repository
        self._repository_name = repository_name or namer.name("images", Kind.ECR_REPOSITORY)

    def _create_pipeline(
        self,
        pipeline_name: str | None,
        execution_mode: codepipeline.ExecutionMode,
        cross_region: Mapping[str, s3.IBucket],
        keep_images: int,
    ) -> None:
        """The image repository (unless given), the pipeline's role and the pipeline, with no
        stage yet."""
        namer = self.namer
        self.action_roles: dict[str, ActionRole] = {}
        self.stage_names: list[str] = []
        self._self_updated: list[BootstrapEnvironment] = []
        if self._repository is None:
            self._repository = ImageRepository(
                self,
                "Images",
                repository_name=self._repository_name,
                key=self.key,
                keep_images=keep_images,
                removal=self._removal,
            ).repository
        self.repository: ecr.IRepository = self._repository
        self.pipeline_name = pipeline_name or default_pipeline_name(namer)
        self.pipeline_role = iam.Role(
            self,
            "PipelineRole",
            role_name=namer.name("pipeline", Kind.IAM_ROLE),
            assumed_by=defaults.guarded_service_principal(
                "codepipeline.amazonaws.com",
                source_arn=defaults.own_arn("codepipeline", self.pipeline_name),
            ),
            description=f"deployline: service role of the pipeline {self.pipeline_name}",
        )
        buckets = self._artifact_buckets(cross_region)
        self.pipeline = codepipeline.Pipeline(
            self,
            "Pipeline",
            pipeline_name=self.pipeline_name,
            pipeline_type=codepipeline.PipelineType.V2,
            execution_mode=execution_mode,
            artifact_bucket=None if buckets else self.artifact_bucket,
            cross_region_replication_buckets=buckets or None,
            role=self.pipeline_role,
            cross_account_keys=False,
            # A self-update cancels the running execution; this starts one on the new structure.
            restart_execution_on_update=True,
        )
        self._explain_pipeline_role()
        self.console_url = (
            f"https://{Aws.REGION}.console.aws.amazon.com/codesuite/codepipeline/pipelines/"
            f"{self.pipeline_name}/view?region={Aws.REGION}"
        )

    def _artifact_buckets(self, cross_region: Mapping[str, s3.IBucket]) -> dict[str, s3.IBucket]:
        """Every region's artifact bucket (the pipeline's own included), or {} in one region."""
        if not cross_region:
            return {}
        home = Stack.of(self).region
        if Token.is_unresolved(home):
            raise ValueError(
                "cross_region_artifact_buckets need a pipeline stack with a concrete region "
                "(pipeline.region in deployline.yaml)"
            )
        for region, bucket in cross_region.items():
            if bucket.encryption_key is None:
                raise ValueError(
                    f"the artifact bucket for {region} must be encrypted with a KMS key, so "
                    "other accounts' deploy roles can read it"
                )
            self._use_key_by_alias(bucket.encryption_key.key_arn)
            store = f"the artifact bucket of {self.pipeline_name} in {region}"
            acknowledge_iam5(
                self.pipeline_role,
                {
                    f"Resource::{nag_resource(self, bucket.arn_for_objects('*'))}": (
                        f"{self.pipeline_name} copies artifacts under keys it generates per "
                        f"execution, only into {store}"
                    )
                },
            )
        return {**cross_region, home: self.artifact_bucket}

    def _use_key_by_alias(self, key_arn: str) -> None:
        """A key named by its alias ARN (a key of another region, whose own ARN this stack
        cannot know): the pipeline role may use the key of that account and region that
        carries the alias, and no other."""
        if ":alias/" not in key_arn:
            return
        parts = Arn.split(key_arn, ArnFormat.SLASH_RESOURCE_NAME)
        keys = f"arn:{parts.partition}:kms:{parts.region}:{parts.account}:key/*"
        acknowledge_iam5(
            self.pipeline_role,
            {
                f"Resource::{nag_resource(self, keys)}": f"{self.pipeline_name} uses the key of "
                f"its artifact store in {parts.region} by its alias (kms:ResourceAliases "
                f"alias/{parts.resource_name}): the key's own ARN is not known in this region"
            },
        )
        self.pipeline_role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "kms:Decrypt",
                    "kms:DescribeKey",
                    "kms:Encrypt",
                    "kms:GenerateDataKey*",
                    "kms:ReEncrypt*",
                ],
                resources=[f"arn:{parts.partition}:kms:{parts.region}:{parts.account}:key/*"],
                conditions={
                    "ForAnyValue:StringEquals": {
                        "kms:ResourceAliases": f"alias/{parts.resource_name}"
                    }
                },
            )
        )

    def _add_source(self, source: PipelineSource) -> None:
        self.source = PipelineSourceAction(
            self,
            "Source",
            source=source,
            pipeline=self.pipeline,
            artifact_bucket=self.artifact_bucket,
            key=self.key,
            namer=self.namer,
            removal=self._removal,
            access_logs_bucket=self._access_logs_bucket,
        )
        self.action_roles[f"{contract.SOURCE_STAGE}/Source"] = self.source.role
        self.stage_names.append(contract.SOURCE_STAGE)

    # ---- Build: image ∥ synth ----------------------------------------------------------------

    def _add_build_stage(
        self, build: BuildSettings, synth: SynthSettings
    ) -> actions.CodeBuildAction:
        build_action = self._image_build(build)
        synth_action = self._synth(synth)
        self.pipeline.add_stage(
            stage_name=contract.BUILD_STAGE, actions=[build_action, synth_action]
        )
        self.stage_names.append(contract.BUILD_STAGE)
        self.image_tag = build_action.variable(stages.IMAGE_TAG)
        self.image_uri = build_action.variable(stages.IMAGE_URI)
        return build_action

    def _image_build(self, build: BuildSettings) -> actions.CodeBuildAction:
        namer = self.namer
        statements = [
            _ecr_login_statement(),
            iam.PolicyStatement(
                sid="PushImages",
                actions=[*_ECR_PULL, *_ECR_PUSH, "ecr:DescribeImages"],
                resources=[self.repository.repository_arn],
            ),
            *self.source.clone_statements,
        ]
        if build.docker_hub_secret_name:
            statements.append(_read_secret_statement(self, build.docker_hub_secret_name))
        self.build = self._project(
            "Build",
            "build",
            description=f"deployline: builds and pushes the {namer.service} image",
            buildspec=build.buildspec,
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
            environment_variables={
                stages.REPOSITORY_URI: plaintext(self.repository.repository_uri)
            },
            statements=statements,
        )
        self.build_project = self.build.project
        return actions.CodeBuildAction(
            action_name=contract.BUILD_ACTION,
            project=self.build_project,
            input=self.source.output,
            outputs=[codepipeline.Artifact(BUILD_ARTIFACT)],
            variables_namespace=contract.BUILD_NAMESPACE,
            environment_variables={stages.IMAGE_TAG: plaintext(self.source.revision)},
            run_order=1,
            role=self._project_action_role(
                contract.BUILD_STAGE, contract.BUILD_ACTION, self.build_project
            ),
        )

    def _project(self, id: str, label: str, **options: Any) -> BuildProject:
        """One of the pipeline's CodeBuild projects: `{service}-{label}`, its role
        `{label}-project`, encrypted with the pipeline's key, reading and writing the artifact
        bucket, with the pipeline's log retention and removal policy. `options` are
        BuildProject's other arguments (Default: the standard build image; a local custom and
        source cache)."""
        options.setdefault("build_image", default_build_image())
        options.setdefault(
            "cache",
            codebuild.Cache.local(codebuild.LocalCacheMode.CUSTOM, codebuild.LocalCacheMode.SOURCE),
        )
        return BuildProject(
            self,
            id,
            project_name=project_name(self.namer, label),
            role_name=self.namer.name(f"{label}-project", Kind.IAM_ROLE),
            key=self.key,
            artifact_bucket=self.artifact_bucket,
            log_retention_days=self._log_retention_days,
            removal=self._removal,
            **options,
        )

    def _synth(self, synth: SynthSettings) -> actions.CodeBuildAction:
        namer = self.namer
        publishing = _unique(
            self, [e.role_arn("file-publishing") for e in self._deployed_environments()]
        )
        self.synth = self._project(
            "Synth",
            "synth",
            description=f"deployline: synthesizes {namer.service}'s app and publishes its assets",
            buildspec=synth.buildspec,
            writes_artifacts=True,
            compute_type=synth.compute_type,
            timeout=synth.timeout,
            statements=[
                *self.source.clone_statements,
                iam.PolicyStatement(
                    sid="PublishAssets",
                    # cdk-assets assumes the file-publishing role each asset manifest names.
                    actions=["sts:AssumeRole", "sts:TagSession"],
                    resources=publishing,
                ),
            ],
        )
        self.synth_project = self.synth.project
        self.synth_output = codepipeline.Artifact(SYNTH_ARTIFACT)
        return actions.CodeBuildAction(
            action_name=contract.SYNTH_ACTION,
            project=self.synth_project,
            input=self.source.output,
            outputs=[self.synth_output],
            run_order=1,
            role=self._project_action_role(
                contract.BUILD_STAGE, contract.SYNTH_ACTION, self.synth_project
            ),
        )

    def _deployed_environments(self) -> list[BootstrapEnvironment]:
        """Every account and region the synth publishes assets to: the pipeline's and the
        targets', each once."""
        seen: dict[tuple[str | None, str | None], BootstrapEnvironment] = {}
        for env in [self.environment, *(t.environment for t in self.targets)]:
            seen.setdefault((env.account, env.region), env)
        return list(seen.values())

    # ---- Test: unit tests ∥ scan, then the gate ----------------------------------------------

    def _add_test_stage(
        self,
        test: TestSettings,
        scan: ScanSettings,
        build_action: actions.CodeBuildAction,
        deployment_table: dynamodb.ITable | None,
    ) -> None:
        test_action = self._unit_tests(test)
        scan_action, scan_output = self._scan(scan, build_action)
        gate_action = self._gate(scan, scan_output, deployment_table)
        self.pipeline.add_stage(
            stage_name=contract.TEST_STAGE, actions=[test_action, scan_action, gate_action]
        )
        self.stage_names.append(contract.TEST_STAGE)

    def _unit_tests(self, test: TestSettings) -> actions.CodeBuildAction:
        namer = self.namer
        self.report_groups = TestReportGroups(
            self,
            "Reports",
            junit_name=namer.name("unit-tests-junit", Kind.CODEBUILD_PROJECT),
            coverage_name=namer.name("unit-tests-coverage", Kind.CODEBUILD_PROJECT),
            export_bucket=self.artifact_bucket,
            removal=self._removal,
        )
        spec = (
            test.buildspec(self.report_groups.names) if callable(test.buildspec) else test.buildspec
        )
        self.tests = self._project(
            "UnitTests",
            "unit-tests",
            description=f"deployline: runs the {namer.service} unit tests",
            buildspec=spec,
            report_groups=[self.report_groups.junit, self.report_groups.coverage],
            compute_type=test.compute_type,
            timeout=test.timeout,
            statements=self.source.clone_statements,
        )
        self.test_project = self.tests.project
        return actions.CodeBuildAction(
            action_name=contract.UNIT_TESTS_ACTION,
            project=self.test_project,
            input=self.source.output,
            type=actions.CodeBuildActionType.TEST,
            run_order=1,
            role=self._project_action_role(
                contract.TEST_STAGE, contract.UNIT_TESTS_ACTION, self.test_project
            ),
        )

    def _scan(
        self, scan: ScanSettings, build_action: actions.CodeBuildAction
    ) -> tuple[actions.CodeBuildAction, codepipeline.Artifact]:
        namer = self.namer
        pull = (
            [
                _ecr_login_statement(),
                iam.PolicyStatement(
                    sid="PullImages",
                    actions=list(_ECR_PULL),
                    resources=[self.repository.repository_arn],
                ),
            ]
            if scan.scan_image
            else []
        )
        self.scan = self._project(
            "SecurityScan",
            "security-scan",
            description=f"deployline: scans the {namer.service} code, dependencies and image",
            buildspec=scan.buildspec,
            writes_artifacts=True,
            compute_type=scan.compute_type,
            timeout=scan.timeout,
            environment_variables=(
                {stages.REPOSITORY_URI: plaintext(self.repository.repository_uri)}
                if scan.scan_image
                else {}
            ),
            statements=[*self.source.clone_statements, *pull],
        )
        self.scan_project = self.scan.project
        output = codepipeline.Artifact(SCAN_ARTIFACT)
        action = actions.CodeBuildAction(
            action_name=contract.SCAN_ACTION,
            project=self.scan_project,
            input=self.source.output,
            outputs=[output],
            type=actions.CodeBuildActionType.TEST,
            run_order=1,
            environment_variables=(
                {stages.IMAGE_TAG: plaintext(build_action.variable(stages.IMAGE_TAG))}
                if scan.scan_image
                else None
            ),
            role=self._project_action_role(
                contract.TEST_STAGE, contract.SCAN_ACTION, self.scan_project
            ),
        )
        return action, output

    def _gate(
        self,
        scan: ScanSettings,
        scan_output: codepipeline.Artifact,
        deployment_table: dynamodb.ITable | None,
    ) -> actions.LambdaInvokeAction:
        namer = self.namer
        self.security_gate = RuntimeFunction(
            self,
            "SecurityGateFunction",
            namer=namer,
            name="security-gate",
            handler="security_gate.handler",
            description=f"deployline: fails {namer.service}'s pipeline on security findings",
            key=self.key,
            environment=({"TABLE_NAME": deployment_table.table_name} if deployment_table else None),
            timeout=Duration.minutes(2),
            memory_size=512,
            log_retention_days=self._log_retention_days,
            removal=self._removal,
            statements=[_put_job_result_statement()],
        )
        if deployment_table is not None:
            self._let_gate_record(deployment_table)
        self._explain_function(
            self.security_gate,
            "CodePipeline invokes the security gate once per execution and waits for its job "
            "result",
            wildcard="codepipeline:PutJobSuccessResult/PutJobFailureResult allow only '*'",
        )
        return actions.LambdaInvokeAction(
            action_name=contract.GATE_ACTION,
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
            role=self._action_role(
                contract.TEST_STAGE,
                contract.GATE_ACTION,
                "security-gate-action",
                [
                    invoke_statement(self.security_gate.function),
                    # The gate reads the scan reports with the job's artifact credentials.
                    *read_artifacts(self.artifact_bucket, self.key),
                ],
            ),
        )

    def _let_gate_record(self, table: dynamodb.ITable) -> None:
        """The gate reads and writes one execution's record: the table itself, no index."""
        self.security_gate.role.add_to_policy(
            iam.PolicyStatement(
                sid="RecordVerdict",
                actions=["dynamodb:GetItem", "dynamodb:PutItem"],
                resources=[table.table_arn],
            )
        )
        if table.encryption_key is not None:
            self.security_gate.role.add_to_policy(
                iam.PolicyStatement(
                    sid="UseTableKey",
                    actions=["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"],
                    resources=[table.encryption_key.key_arn],
                )
            )

    # ---- UpdatePipeline ------------------------------------------------------------------------

    def _add_update_stage(self, first: Sequence[SelfUpdateTarget]) -> None:
        stack = Stack.of(self)
        own = SelfUpdateTarget(
            stack_name=stack.stack_name,
            template_file=stack.template_file,
            environment=self.environment,
        )
        update_actions = [
            self._self_update_action(t, f"{contract.SELF_UPDATE_ACTION}-{t.environment.region}", 1)
            for t in first
        ]
        update_actions.append(
            self._self_update_action(own, contract.SELF_UPDATE_ACTION, 2 if first else 1)
        )
        self.pipeline.add_stage(stage_name=contract.UPDATE_PIPELINE_STAGE, actions=update_actions)
        self.stage_names.append(contract.UPDATE_PIPELINE_STAGE)

    def _self_update_action(
        self, target: SelfUpdateTarget, name: str, run_order: int
    ) -> actions.CloudFormationCreateUpdateStackAction:
        environment = target.environment
        scope = Construct(self, f"{name}Roles".replace("-", ""))
        self._self_updated.append(environment)
        return actions.CloudFormationCreateUpdateStackAction(
            action_name=name,
            stack_name=target.stack_name,
            template_path=self.synth_output.at_path(target.template_file),
            admin_permissions=False,
            role=environment.role(scope, "DeployRole", "deploy"),
            deployment_role=environment.role(scope, "ExecutionRole", "cfn-exec"),
            cfn_capabilities=CAPABILITIES,
            region=self._region_if_other(environment),
            run_order=run_order,
        )

    # ---- the environments ----------------------------------------------------------------------

    def _add_deliveries(self, approval_topic: sns.ITopic | None) -> None:
        self.validation: RuntimeFunction | None = None
        self.change_summary: RuntimeFunction | None = None
        self.deliveries: list[StackDelivery] = []
        if not self.targets:
            return
        lookups = [t.environment.role_arn("lookup") for t in self.targets]
        self.validation = self._reader_function(
            "ValidationFunction",
            name="validate",
            handler="validation.handler",
            description=f"deployline: checks {self.namer.service} after each deploy",
            lookups=lookups,
            invoked="CodePipeline invokes the validation once per deploy (again with a "
            "continuation token while it waits) and waits for its job result",
        )
        if any(t.approval for t in self.targets):
            self.change_summary = self._reader_function(
                "ChangeSummaryFunction",
                name="change-summary",
                handler="change_summary.handler",
                description=f"deployline: summarizes {self.namer.service}'s change sets for "
                "the approver",
                lookups=[t.environment.role_arn("lookup") for t in self.targets if t.approval],
                invoked="CodePipeline invokes the change summary once per approval and waits "
                "for its job result",
            )
        for target in self.targets:
            delivery = StackDelivery(
                self,
                f"Deliver-{target.name}",
                pipeline=self.pipeline,
                pipeline_role=self.pipeline_role,
                pipeline_name=self.pipeline_name,
                namer=self.namer,
                target=target,
                synth_output=self.synth_output,
                image_tag=self.image_tag,
                image_uri=self.image_uri,
                validation=self.validation.function,
                change_summary=self.change_summary.function if self.change_summary else None,
                approval_topic=approval_topic,
                approval_message=self._approval_message(target),
                same_region=self._region_if_other(target.environment) is None,
            )
            self.deliveries.append(delivery)
            self.stage_names.extend(delivery.stage_names)
            self.action_roles.update(delivery.action_roles)

    def _reader_function(
        self,
        id: str,
        *,
        name: str,
        handler: str,
        description: str,
        lookups: Sequence[str],
        invoked: str,
    ) -> RuntimeFunction:
        """A job function that reads the targets' accounts through their lookup roles."""
        roles = _unique(self, lookups)
        function = RuntimeFunction(
            self,
            id,
            namer=self.namer,
            name=name,
            handler=handler,
            description=description,
            key=self.key,
            timeout=Duration.minutes(2),
            log_retention_days=self._log_retention_days,
            removal=self._removal,
            statements=[
                _put_job_result_statement(),
                iam.PolicyStatement(
                    sid="ReadTargetAccounts",
                    # the read-only lookup roles `cdk bootstrap` made in each target account
                    actions=["sts:AssumeRole"],
                    resources=roles,
                ),
            ],
        )
        self._explain_function(
            function,
            invoked,
            wildcard="codepipeline:PutJobSuccessResult/PutJobFailureResult allow only '*'",
        )
        return function

    def _approval_message(self, target: StackTarget) -> str:
        """The approval's custom data before the change summary."""
        revision = self.source.revision
        branch = getattr(self.source, "branch", None)
        on_branch = f" on {branch}" if branch and not Token.is_unresolved(branch) else ""
        return (
            f"Deploy {self.namer.service} to {target.name}: commit {revision}{on_branch}, image "
            f"{self.image_tag}. Unit tests: passed. Security: "
            f"#{{{GATE_NAMESPACE}.SECURITY_SUMMARY}}."
        )

    # ---- who may read what ------------------------------------------------------------------

    def _admit_deployers(self) -> None:
        """The artifact bucket and key admit exactly the deploy roles of the targets (and of the
        pipeline's own stacks); the repository admits exactly the targets' accounts (pull)."""
        environments = [*self._self_updated, *(t.environment for t in self.targets)]
        home = [e for e in environments if self._region_if_other(e) is None]
        readers = _unique(self, [e.role_arn("deploy") for e in home])
        if readers:
            self.artifact_bucket.add_to_resource_policy(
                iam.PolicyStatement(
                    sid="DeployRolesReadArtifacts",
                    principals=[iam.ArnPrincipal(arn) for arn in readers],
                    actions=["s3:GetObject", "s3:GetObjectVersion", "s3:GetBucketLocation"],
                    resources=[
                        self.artifact_bucket.bucket_arn,
                        self.artifact_bucket.arn_for_objects("*"),
                    ],
                )
            )
        decrypters = _unique(
            self, [e.role_arn("deploy") for e in home if self._is_other_account(e)]
        )
        if decrypters and isinstance(self.key, kms.Key):
            self.key.add_to_resource_policy(
                iam.PolicyStatement(
                    sid="DeployRolesDecryptArtifacts",
                    principals=[iam.ArnPrincipal(arn) for arn in decrypters],
                    actions=["kms:Decrypt", "kms:DescribeKey"],
                    resources=["*"],  # a key policy's resource is always the key itself
                )
            )
        pullers = sorted(
            {
                e.account
                for e in self.targets_environments()
                if e.account is not None and self._is_other_account(e)
            }
        )
        if pullers:
            self.repository.add_to_resource_policy(
                iam.PolicyStatement(
                    sid="TargetAccountsPullImages",
                    principals=[iam.AccountPrincipal(account) for account in pullers],
                    actions=list(_ECR_PULL),
                )
            )

    def targets_environments(self) -> list[BootstrapEnvironment]:
        """The accounts and regions the targets deploy to, in target order."""
        return [t.environment for t in self.targets]

    def _is_other_account(self, environment: BootstrapEnvironment) -> bool:
        home = Stack.of(self).account
        return environment.account is not None and (
            Token.is_unresolved(home) or environment.account != home
        )

    def _region_if_other(self, environment: BootstrapEnvironment) -> str | None:
        """The environment's region when it is not the pipeline's, else None."""
        home = Stack.of(self).region
        region = environment.region
        if region is None or (not Token.is_unresolved(home) and region == home):
            return None
        return region

    # ---- helpers ---------------------------------------------------------------------------

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
        name = function.function_name
        accept_function_design(
            function,
            dead_letters=f"{name}: {invoked}: a DLQ adds nothing",
            concurrency=f"{name}: {invoked}; at most one call per running action, and reserved "
            "concurrency would take from the account's unreserved pool",
            network=f"{name} calls only AWS APIs and the service's public URL; it needs no VPC "
            "access",
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
            f"{_label(action)}-action",
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


def _unique(scope: Construct, values: Sequence[str]) -> list[str]:
    """`values` (strings that may hold tokens) without repeats, in a stable order."""
    stack = Stack.of(scope)
    found: dict[str, str] = {}
    for value in values:
        found.setdefault(json.dumps(stack.resolve(value), sort_keys=True), value)
    return [found[k] for k in sorted(found)]


def _label(action: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", action).lower()


def _validate(
    build: BuildSettings,
    synth: SynthSettings,
    test: TestSettings,
    scan: ScanSettings,
    targets: Sequence[StackTarget],
    require_approval_before_last: bool,
    execution_mode: codepipeline.ExecutionMode,
) -> None:
    validate_settings(
        build=build,
        synth=synth,
        test=test,
        scan=scan,
        targets=targets,
        require_approval_before_last=require_approval_before_last,
    )
    _check_execution_mode(execution_mode)


def _check_execution_mode(mode: codepipeline.ExecutionMode) -> None:
    if mode == codepipeline.ExecutionMode.PARALLEL:
        raise ValueError(
            "execution_mode PARALLEL is not supported: parallel executions race each other "
            "to the same environments and stage rollback is unavailable; use QUEUED or "
            "SUPERSEDED"
        )


def _stack_environment(scope: Construct) -> BootstrapEnvironment:
    """The stack's own account and region; pseudo parameters when it is agnostic."""
    stack = Stack.of(scope)
    account = None if Token.is_unresolved(stack.account) else stack.account
    region = None if Token.is_unresolved(stack.region) else stack.region
    return BootstrapEnvironment(account=account, region=region)


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


def _read_secret_statement(scope: Construct, secret_name: str) -> iam.PolicyStatement:
    return iam.PolicyStatement(
        sid="ReadDockerHubSecret",
        actions=["secretsmanager:GetSecretValue"],
        # Secrets Manager appends 6 random characters to a secret's ARN.
        resources=[
            Stack.of(scope).format_arn(
                service="secretsmanager",
                resource="secret",
                resource_name=f"{secret_name}-??????",
                arn_format=ArnFormat.COLON_RESOURCE_NAME,
            )
        ],
    )
