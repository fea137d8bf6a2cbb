"""ContainerPipeline as a CDK user meets it: imported from the package root into a plain CDK app,
with their own ECS service and buildspecs, no deployline.yaml anywhere."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
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
SCAN_SPEC: dict[str, Any] = {
    "version": "0.2",
    "phases": {"build": {"commands": ["bandit -r . -f json -o bandit.json || true"]}},
    "artifacts": {"files": ["bandit.json"]},
}


@pytest.fixture(scope="module")
def template() -> Template:
    from deployline import ContainerPipeline
    from deployline.constructs.container_pipeline import (
        BuildSettings,
        RollingTarget,
        ScanSettings,
        TestSettings,
    )
    from deployline.constructs.pipeline_source import ConnectionSource
    from deployline.naming import Namer

    app = App()
    stack = Stack(app, "OrdersPipeline")
    vpc = ec2.Vpc(stack, "Vpc", max_azs=2, nat_gateways=0)
    cluster = ecs.Cluster(stack, "Cluster", vpc=vpc)
    task = ecs.FargateTaskDefinition(stack, "Task", cpu=256, memory_limit_mib=512)
    task.add_container(
        "web",
        image=ecs.ContainerImage.from_registry("public.ecr.aws/docker/library/caddy:2-alpine"),
        port_mappings=[ecs.PortMapping(container_port=8080)],
    )
    service = ecs.FargateService(
        stack,
        "Service",
        cluster=cluster,
        task_definition=task,
        assign_public_ip=True,
        vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC),
    )
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
        test=TestSettings(buildspec=TEST_SPEC),
        scan=ScanSettings(buildspec=SCAN_SPEC, threshold="high", scanners=("bandit",)),
        targets=[
            RollingTarget(
                name="staging",
                service=service,
                task_definition=task,
                url="https://staging.orders.example.com",
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
    assert list(stages) == ["Source", "Build", "Test", "Deploy-staging"]
    test_actions = {a["Name"]: a["RunOrder"] for a in stages["Test"]}
    assert test_actions["UnitTests"] == test_actions["SecurityScan"] == 1
    assert test_actions["SecurityGate"] == 2
    deploy = {a["Name"]: a for a in stages["Deploy-staging"]}
    assert deploy["Deploy"]["ActionTypeId"]["Provider"] == "ECS"
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
