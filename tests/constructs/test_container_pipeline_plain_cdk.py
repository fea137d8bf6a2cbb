"""ContainerPipeline as a CDK user meets it: imported from the package root into a plain CDK app,
with their own stacks and buildspecs, no deployline.yaml anywhere."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk.assertions import Match, Template

import deployline._jsii_env  # noqa: F401  (quiet jsii's Node banner before aws_cdk loads)

BUILD_SPEC: dict[str, Any] = {
    "version": "0.2",
    "phases": {
        "build": {
            "commands": [
                "docker build -t $REPOSITORY_URI:$IMAGE_TAG .",
                "docker push $REPOSITORY_URI:$IMAGE_TAG",
                'printf \'[{"name":"web","imageUri":"%s"}]\' $REPOSITORY_URI:$IMAGE_TAG'
                " > imagedefinitions.json",
            ]
        }
    },
    "env": {"exported-variables": ["IMAGE_TAG", "IMAGE_URI"]},
    "artifacts": {"files": ["imagedefinitions.json"]},
}
TEST_SPEC: dict[str, Any] = {
    "version": "0.2",
    "phases": {"build": {"commands": ["make test"]}},
}
SYNTH_SPEC: dict[str, Any] = {
    "version": "0.2",
    "phases": {"build": {"commands": ["npm ci", "npx cdk synth", "npx cdk-assets publish"]}},
    "artifacts": {"files": ["**/*"], "base-directory": "cdk.out"},
}
SCAN_SPEC: dict[str, Any] = {
    "version": "0.2",
    "phases": {"build": {"commands": ["bandit -r . -f json -o bandit.json || true"]}},
    "artifacts": {"files": ["bandit.json"]},
}


@pytest.fixture(scope="module")
def template() -> Template:
    from deployline import ContainerPipeline
    from deployline.constructs.pipeline_settings import (
        BuildSettings,
        ScanSettings,
        StackTarget,
        SynthSettings,
        TestSettings,
    )
    from deployline.constructs.pipeline_source import ConnectionSource
    from deployline.naming import Namer

    app = App()
    stack = Stack(app, "OrdersPipeline")
    ContainerPipeline(
        stack,
        "Pipeline",
        namer=Namer("orders", "shared"),
        source=ConnectionSource(
            connection_arn="arn:aws:codeconnections:eu-west-1:111111111111:connection/abc",
            repository="acme/orders",
            branch="main",
        ),
        build=BuildSettings(buildspec=BUILD_SPEC),
        synth=SynthSettings(buildspec=SYNTH_SPEC),
        test=TestSettings(buildspec=TEST_SPEC),
        scan=ScanSettings(buildspec=SCAN_SPEC, threshold="high", scanners=("bandit",)),
        targets=[
            StackTarget(
                name="staging",
                stack_name="OrdersStaging",
                template_file="OrdersStaging.template.json",
                image_parameter="WebImageTag",
            )
        ],
    )
    return Template.from_stack(stack)


def test_the_pipeline_runs_source_build_tests_and_scan_then_deploys_and_validates(
    template: Template,
) -> None:
    (pipeline,) = template.find_resources("AWS::CodePipeline::Pipeline").values()
    props = pipeline["Properties"]
    assert props["PipelineType"] == "V2" and props["Name"] == "orders-pipeline-shared"
    stages = {s["Name"]: s["Actions"] for s in props["Stages"]}
    assert list(stages) == ["Source", "Build", "Test", "UpdatePipeline", "Deploy-staging"]
    assert {a["Name"] for a in stages["Build"]} == {"BuildImage", "Synth"}
    test_actions = {a["Name"]: a["RunOrder"] for a in stages["Test"]}
    assert test_actions["UnitTests"] == test_actions["SecurityScan"] == 1
    assert test_actions["SecurityGate"] == 2
    (update,) = stages["UpdatePipeline"]
    assert update["Configuration"]["StackName"] == "OrdersPipeline"
    assert update["Configuration"]["TemplatePath"] == "SynthOutput::OrdersPipeline.template.json"
    deploy = {a["Name"]: a for a in stages["Deploy-staging"]}
    assert deploy["Deploy"]["ActionTypeId"]["Provider"] == "CloudFormation"
    assert deploy["Deploy"]["Configuration"]["StackName"] == "OrdersStaging"
    assert deploy["Deploy"]["Configuration"]["ParameterOverrides"] == (
        '{"WebImageTag":"#{BuildVariables.IMAGE_TAG}"}'
    )
    assert deploy["Validate"]["RunOrder"] == 2


def test_the_users_buildspec_runs_in_a_privileged_project_with_encrypted_logs(
    template: Template,
) -> None:
    template.has_resource_properties(
        "AWS::CodeBuild::Project",
        {
            "Name": "orders-build-shared",
            "Environment": Match.object_like({"PrivilegedMode": True}),
            "Source": Match.object_like(
                {"BuildSpec": Match.string_like_regexp(r"docker push \$REPOSITORY_URI")}
            ),
            "LogsConfig": {"CloudWatchLogs": Match.object_like({"Status": "ENABLED"})},
        },
    )
    for group in template.find_resources("AWS::Logs::LogGroup").values():
        assert "KmsKeyId" in group["Properties"]


def test_the_construct_brings_its_own_encrypted_repository_and_artifact_store(
    template: Template,
) -> None:
    template.has_resource_properties(
        "AWS::ECR::Repository",
        {
            "RepositoryName": "orders-images-shared",
            "ImageTagMutability": "IMMUTABLE",
            "EncryptionConfiguration": Match.object_like({"EncryptionType": "KMS"}),
        },
    )
    buckets = template.find_resources("AWS::S3::Bucket")
    assert buckets
    for bucket in buckets.values():
        rules = bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert rules[0]["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("aws:kms", "AES256")
