"""CodeBuild projects for the pipeline: one construct, used for the build, the tests and the scans.

Every project gets its own role (trusting only CodeBuild), its own log group created before the
first build (KMS-encrypted, with retention, named `/aws/codebuild/<project>`), its own timeout, the
pipeline CMK for its artifacts, and an AWS managed image. The buildspec is inline (a dict, rendered
into the template), so a reviewer and `deployline check` see exactly what runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aws_cdk import Duration, RemovalPolicy, Token
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from deployline import defaults
from deployline.constructs import compliance
from deployline.constructs.pipeline_roles import acknowledge_iam5, nag_resource

#: Default: a build may run 15 minutes before CodeBuild stops it.
DEFAULT_TIMEOUT = Duration.minutes(15)
#: Default: a build may wait an hour in CodeBuild's queue.
DEFAULT_QUEUED_TIMEOUT = Duration.hours(1)
#: House limit: CodeBuild allows 8 hours; a pipeline step longer than an hour is stuck.
MAX_TIMEOUT_MINUTES = 60
MIN_TIMEOUT_MINUTES = 5


def default_build_image(platform: str = "linux/amd64") -> codebuild.IBuildImage:
    """The newest AWS managed image for the platform, so images build natively (no emulation).

    linux/amd64: `aws/codebuild/standard:8.0` (Ubuntu 24.04).
    linux/arm64: `aws/codebuild/amazonlinux-aarch64-standard:4.0` (Amazon Linux 2023).
    """
    if platform == "linux/amd64":
        return codebuild.LinuxBuildImage.STANDARD_8_0
    if platform == "linux/arm64":
        return codebuild.LinuxArmBuildImage.AMAZON_LINUX_2023_STANDARD_4_0
    raise ValueError(f"platform must be linux/amd64 or linux/arm64, got {platform!r}")


def check_timeout(what: str, timeout: Duration) -> None:
    """Raise when `timeout` is outside 5..60 minutes (skipped for tokens)."""
    if Token.is_unresolved(timeout.to_string()):
        return
    minutes = timeout.to_minutes(integral=False)
    if not MIN_TIMEOUT_MINUTES <= minutes <= MAX_TIMEOUT_MINUTES or minutes != int(minutes):
        raise ValueError(
            f"{what} timeout must be a whole number of minutes from {MIN_TIMEOUT_MINUTES} to "
            f"{MAX_TIMEOUT_MINUTES}, got {minutes:g}; a step that needs longer is stuck or "
            "should be split"
        )


def plaintext(value: str) -> codebuild.BuildEnvironmentVariable:
    """A plain-text environment variable (never a secret: use `secret_variable` for those)."""
    return codebuild.BuildEnvironmentVariable(
        value=value, type=codebuild.BuildEnvironmentVariableType.PLAINTEXT
    )


def _validate(project_name: str, buildspec: Mapping[str, Any], timeout: Duration) -> None:
    check_timeout(f"project {project_name}", timeout)
    if not isinstance(buildspec, Mapping) or "phases" not in buildspec:
        raise ValueError(
            f"buildspec of {project_name} must be a mapping with 'version' and 'phases', "
            f"got {type(buildspec).__name__} with keys "
            f"{sorted(buildspec) if isinstance(buildspec, Mapping) else '-'}"
        )


class BuildProject(Construct):
    """One CodeBuild project that runs inside the pipeline (source type CODEPIPELINE).

    IAM: the role's only policy is inline and complete when the project is created: its log
    group, the pipeline artifacts (read; write when `writes_artifacts`), the CMK, the report
    groups, and `statements`. The project sees an immutable view of the role, so the grants CDK
    adds on its own (some reference the project itself) cannot widen it, and there is no separate
    `AWS::IAM::Policy` the project could be created before (DL706).

    Attributes:
        project: the CodeBuild project.
        role: its service role (trusts codebuild.amazonaws.com only).
        log_group: the project's log group.
        project_name: the physical name.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        project_name: str,
        role_name: str,
        description: str,
        buildspec: Mapping[str, Any],
        key: kms.IKey,
        artifact_bucket: s3.IBucket,
        writes_artifacts: bool = False,
        report_groups: Sequence[codebuild.IReportGroup] = (),
        build_image: codebuild.IBuildImage | None = None,
        compute_type: codebuild.ComputeType = codebuild.ComputeType.SMALL,
        privileged: bool = False,
        timeout: Duration = DEFAULT_TIMEOUT,
        queued_timeout: Duration = DEFAULT_QUEUED_TIMEOUT,
        cache: codebuild.Cache | None = None,
        environment_variables: Mapping[str, codebuild.BuildEnvironmentVariable] | None = None,
        log_retention_days: int = defaults.LOG_RETENTION_DAYS,
        removal: RemovalPolicy = RemovalPolicy.RETAIN,
        statements: Sequence[iam.PolicyStatement] = (),
    ) -> None:
        """
        Args:
            project_name: the physical name, e.g. `payment-processor-build-shared`.
            role_name: the service role's name.
            description: shown in the CodeBuild console.
            buildspec: the buildspec as a dict (rendered inline into the template).
            key: CMK for the build's artifacts and its log group. The key must allow
                CloudWatch Logs (`defaults.allow_logs_to_use_key`).
            artifact_bucket: the pipeline's artifact bucket (encrypted with `key`).
            writes_artifacts: the project has an output artifact. Default: false.
            report_groups: report groups the buildspec writes to. Default: none.
            build_image: Default: `aws/codebuild/standard:8.0`.
            compute_type: Default: BUILD_GENERAL1_SMALL (2 vCPU, 3 GB).
            privileged: Docker-in-Docker, needed to build images. Default: false.
            timeout: Default: 15 minutes; 5 to 60.
            queued_timeout: Default: 1 hour.
            cache: Default: no cache.
            environment_variables: Default: none. Never put secrets in plain-text variables.
            log_retention_days: Default: 30.
            removal: the log group's removal policy. Default: RETAIN.
            statements: what else the build may do, scoped to ARNs.
        """
        super().__init__(scope, id)
        _validate(project_name, buildspec, timeout)
        self.project_name = project_name
        self.log_group = self._log_group(key, log_retention_days, removal)
        policy = self._policy(key, artifact_bucket, writes_artifacts, report_groups, statements)
        self.role = self._role(role_name, policy)
        self._acknowledge(policy, artifact_bucket)
        self.project = codebuild.PipelineProject(
            self,
            "Project",
            project_name=project_name,
            description=description,
            role=self.role.without_policy_updates(),
            build_spec=codebuild.BuildSpec.from_object(dict(buildspec)),
            environment=codebuild.BuildEnvironment(
                build_image=build_image or default_build_image(),
                compute_type=compute_type,
                privileged=privileged,
            ),
            environment_variables=dict(environment_variables or {}),
            timeout=timeout,
            queued_timeout=queued_timeout,
            cache=cache,
            encryption_key=key,
            logging=codebuild.LoggingOptions(
                cloud_watch=codebuild.CloudWatchLoggingOptions(
                    log_group=self.log_group, enabled=True
                ),
            ),
        )
        self._accept_source_design()

    def _log_group(
        self, key: kms.IKey, retention_days: int, removal: RemovalPolicy
    ) -> logs.LogGroup:
        """`/aws/codebuild/<project>`, created before the first build."""
        return defaults.encrypted_log_group(
            self,
            "Logs",
            name=f"/aws/codebuild/{self.project_name}",
            key=key,
            retention_days=retention_days,
            removal=removal,
        )

    def _policy(
        self,
        key: kms.IKey,
        artifact_bucket: s3.IBucket,
        writes_artifacts: bool,
        report_groups: Sequence[codebuild.IReportGroup],
        statements: Sequence[iam.PolicyStatement],
    ) -> list[iam.PolicyStatement]:
        """The service role's whole policy: own logs, artifacts, key, reports, `statements`."""
        policy = [
            iam.PolicyStatement(
                sid="WriteOwnLogs",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.log_group.log_group_arn, f"{self.log_group.log_group_arn}:*"],
            ),
            iam.PolicyStatement(
                sid="ReadWriteArtifacts" if writes_artifacts else "ReadArtifacts",
                actions=[
                    "s3:GetObject",
                    "s3:GetObjectVersion",
                    *(["s3:PutObject"] if writes_artifacts else []),
                ],
                resources=[artifact_bucket.arn_for_objects("*")],
            ),
            iam.PolicyStatement(
                sid="UseArtifactKey",
                actions=["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
                resources=[key.key_arn],
            ),
        ]
        if report_groups:
            policy.append(
                iam.PolicyStatement(
                    sid="WriteReports",
                    actions=[
                        "codebuild:CreateReport",
                        "codebuild:UpdateReport",
                        "codebuild:BatchPutTestCases",
                        "codebuild:BatchPutCodeCoverages",
                    ],
                    resources=[g.report_group_arn for g in report_groups],
                )
            )
        policy.extend(statements)
        sids = [st.sid for st in policy if st.sid]
        dupes = sorted({sid for sid in sids if sids.count(sid) > 1})
        if dupes:
            raise ValueError(
                f"statement IDs must be unique in {self.project_name}'s policy: {dupes}"
            )
        return policy

    def _role(self, role_name: str, policy: Sequence[iam.PolicyStatement]) -> iam.Role:
        """The service role, trusting CodeBuild for this project only, its policy inline."""
        return iam.Role(
            self,
            "Role",
            role_name=role_name,
            assumed_by=defaults.guarded_service_principal(
                "codebuild.amazonaws.com",
                source_arn=defaults.own_arn("codebuild", f"project/{self.project_name}"),
            ),
            description=f"deployline: service role of the CodeBuild project {self.project_name}",
            inline_policies={"Build": iam.PolicyDocument(statements=list(policy))},
        )

    def _accept_source_design(self) -> None:
        compliance.accept(
            self.project,
            "CodeBuildProjectSourceRepoUrl",
            f"{self.project_name} takes its source from CodePipeline (source type CODEPIPELINE): "
            "it has no repository URL, so no credential can sit in one; the pipeline's source "
            "action fetches the code (a CodeStar connection, S3 or CodeCommit, never a token)",
        )

    def _acknowledge(self, policy: Sequence[iam.PolicyStatement], bucket: s3.IBucket) -> None:
        """Record, with reasons, the wildcard resources of the service role (cdk-nag IAM5)."""
        name = self.project_name
        findings = {
            f"Resource::{nag_resource(self, self.log_group.log_group_arn)}:*": f"CodeBuild names "
            f"the log streams of {name} per build, only inside its own log group",
            f"Resource::{nag_resource(self, bucket.arn_for_objects('*'))}": f"{name} reads (and "
            "writes) the artifacts CodePipeline names per execution, only in the pipeline's "
            "artifact bucket",
        }
        star_only = sorted({a for st in policy if "*" in st.resources for a in st.actions})
        if star_only:
            findings["Resource::*"] = (
                f"{name}: {', '.join(star_only)} allow only '*'; everything else is scoped to ARNs"
            )
        acknowledge_iam5(self.role, findings)


@dataclass(frozen=True)
class TestReportGroupNames:
    """The names a test buildspec puts under `reports:` (CodeBuild also accepts ARNs)."""

    junit: str
    coverage: str


class TestReportGroups(Construct):
    """A JUnit and a coverage report group, exported encrypted into the artifact bucket.

    Attributes:
        junit: the JUnit (TEST) report group.
        coverage: the code coverage report group.
        names: their ARNs, for the buildspec's `reports:` section.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        junit_name: str,
        coverage_name: str,
        export_bucket: s3.IBucket | None,
        removal: RemovalPolicy = RemovalPolicy.RETAIN,
    ) -> None:
        """
        Args:
            junit_name: the JUnit report group's physical name.
            coverage_name: the coverage report group's physical name.
            export_bucket: where raw reports are exported (zipped, encrypted with the bucket's
                KMS key); None keeps them in CodeBuild only.
            removal: Default: RETAIN.
        """
        super().__init__(scope, id)
        self.junit = codebuild.ReportGroup(
            self,
            "JUnit",
            report_group_name=junit_name,
            type=codebuild.ReportGroupType.TEST,
            export_bucket=export_bucket,
            zip_export=True,
            removal_policy=removal,
        )
        self.coverage = codebuild.ReportGroup(
            self,
            "Coverage",
            report_group_name=coverage_name,
            type=codebuild.ReportGroupType.CODE_COVERAGE,
            export_bucket=export_bucket,
            zip_export=True,
            removal_policy=removal,
        )
        self.names = TestReportGroupNames(
            junit=self.junit.report_group_arn, coverage=self.coverage.report_group_arn
        )
