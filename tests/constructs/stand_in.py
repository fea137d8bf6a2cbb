"""A stand-in pipeline for construct tests: a minimal V2 pipeline (S3 source, one CodeBuild
action) with deployline's key, artifact store and encrypted build logs, whose aws-cdk grants are
acknowledged as a test fixture. The real pipeline is tested in tests/stacks/."""

from __future__ import annotations

from typing import Any

from aws_cdk import Acknowledgment, Aws, Duration, RemovalPolicy, Stack, Validations
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_codepipeline as codepipeline
from aws_cdk import aws_codepipeline_actions as actions
from aws_cdk import aws_kms as kms

from deployline import defaults
from deployline.constructs.artifact_store import ArtifactStore
from deployline.naming import Namer

NAMER = Namer("payment-processor", "shared")


def fixture_pipeline(
    stack: Stack,
) -> tuple[kms.Key, codepipeline.Pipeline, codebuild.PipelineProject]:
    """A minimal V2 pipeline (S3 source, one CodeBuild action) standing in for the real one."""
    key = defaults.secure_key(
        stack,
        "PipelineKey",
        alias="payment-processor-pipeline-key-shared",
        description="test pipeline key",
        removal=RemovalPolicy.DESTROY,
    )
    defaults.allow_logs_to_use_key(
        key, f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:*"
    )
    store = ArtifactStore(
        stack,
        "Artifacts",
        bucket_prefix=NAMER.bucket_prefix("artifacts"),
        access_logs_prefix=NAMER.bucket_prefix("access-logs"),
        key=key,
        removal=RemovalPolicy.DESTROY,
    )
    logs = defaults.encrypted_log_group(
        stack,
        "BuildLogs",
        name="/aws/codebuild/payment-processor-build-shared",
        key=key,
        removal=RemovalPolicy.DESTROY,
    )
    project = codebuild.PipelineProject(
        stack,
        "Build",
        project_name="payment-processor-build-shared",
        encryption_key=key,
        build_spec=codebuild.BuildSpec.from_object(
            {"version": "0.2", "phases": {"build": {"commands": ["make test"]}}}
        ),
        environment=codebuild.BuildEnvironment(build_image=codebuild.LinuxBuildImage.STANDARD_7_0),
        timeout=Duration.minutes(15),
        logging=codebuild.LoggingOptions(
            cloud_watch=codebuild.CloudWatchLoggingOptions(log_group=logs)
        ),
    )
    source = codepipeline.Artifact("Source")
    pipeline = codepipeline.Pipeline(
        stack,
        "Pipeline",
        pipeline_name="payment-processor-pipeline-shared",
        pipeline_type=codepipeline.PipelineType.V2,
        artifact_bucket=store.bucket,
        stages=[
            codepipeline.StageProps(
                stage_name="Source",
                actions=[
                    actions.S3SourceAction(
                        action_name="Source",
                        bucket=store.bucket,
                        bucket_key="source.zip",
                        output=source,
                        trigger=actions.S3Trigger.NONE,
                    )
                ],
            ),
            codepipeline.StageProps(
                stage_name="Build",
                actions=[
                    actions.CodeBuildAction(
                        action_name="Build",
                        project=project,
                        input=source,
                    )
                ],
            ),
        ],
    )
    fixture_reason = (
        "test fixture: aws-cdk's own grants for the stand-in pipeline and build project; "
        "the real pipeline's roles are checked by the pipeline stack's tests"
    )
    for construct in (pipeline, project):
        Validations.of(construct).acknowledge(
            *[
                Acknowledgment(
                    id=f"AwsSolutions::AwsSolutions-IAM5[{finding}]", reason=fixture_reason
                )
                for finding in (
                    "Action::kms:GenerateDataKey*",
                    "Action::kms:ReEncrypt*",
                    "Action::s3:GetBucket*",
                    "Action::s3:GetObject*",
                    "Action::s3:List*",
                    "Action::s3:Abort*",
                    "Action::s3:DeleteObject*",
                    "Resource::<ArtifactsBucket88671897.Arn>/*",
                    "Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:"
                    "log-group:/aws/codebuild/<Build45A36621>:*",
                    "Resource::arn:<AWS::Partition>:codebuild:<AWS::Region>:<AWS::AccountId>:"
                    "report-group/<Build45A36621>-*",
                )
            ]
        )
    cfn_pipeline = pipeline.node.default_child
    assert cfn_pipeline is not None
    cfn_pipeline.add_metadata("cfn-lint", {"config": {"ignore_checks": ["W3005"]}})  # type: ignore[attr-defined]
    return key, pipeline, project


def nag_violations(report: dict[str, Any]) -> list[tuple[str, str]]:
    """(rule, construct path) of every finding in a CDK validation report (cdk-nag's)."""
    return [
        (v["ruleName"], c["constructPath"])
        for plugin in report.get("pluginReports", [])
        for v in plugin["violations"]
        for c in v["violatingConstructs"]
    ]
