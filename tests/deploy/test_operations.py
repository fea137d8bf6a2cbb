"""What deploy and diff hand the CLI, read from a cloud assembly's manifest (written here by
hand, in the shape aws-cdk-lib 2.275 writes it: no synth needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deployline.config import parse_config_text
from deployline.deploy.assembly import AssemblyError, Placement, parse_environment, read_assembly
from deployline.deploy.operations import DeployError, choose, deploy_arguments

from .conftest import ROOT

CONFIG = parse_config_text((ROOT / "deployline.yaml").read_text())
ROLE = (
    "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/"
    "cdk-hnb659fds-%s-role-${AWS::AccountId}-${AWS::Region}"
)
BUCKET = "cdk-hnb659fds-assets-${AWS::AccountId}-${AWS::Region}"


def stack_artifact(name: str, environment: str) -> dict[str, object]:
    return {
        "type": "aws:cloudformation:stack",
        "environment": environment,
        "properties": {
            "templateFile": f"{name}.template.json",
            "assumeRoleArn": ROLE % "deploy",
            "requiresBootstrapStackVersion": 6,
            "bootstrapStackVersionSsmParameter": "/cdk-bootstrap/hnb659fds/version",
            "lookupRole": {"arn": ROLE % "lookup", "requiresBootstrapStackVersion": 8},
        },
        "dependencies": [f"{name}.assets"],
        "displayName": name,
    }


@pytest.fixture(scope="module")
def assembly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cdk.out")
    places = {
        "payment-processor-service-staging": "aws://unknown-account/unknown-region",
        "payment-processor-service-production": "aws://222222222222/eu-central-1",
        "payment-processor-pipeline-shared": "aws://111111111111/eu-west-1",
    }
    artifacts: dict[str, object] = {}
    for name, environment in places.items():
        artifacts[f"{name}.assets"] = {
            "type": "cdk:asset-manifest",
            "properties": {"file": f"{name}.assets.json"},
        }
        artifacts[name] = stack_artifact(name, environment)
        (out / f"{name}.assets.json").write_text(
            json.dumps({"files": {"a": {"destinations": {"d": {"bucketName": BUCKET}}}}})
        )
        (out / f"{name}.template.json").write_text(json.dumps({"Resources": {}}))
    (out / "manifest.json").write_text(json.dumps({"version": "55.0.0", "artifacts": artifacts}))
    return out


def test_the_manifest_says_where_each_stack_goes_and_what_it_needs(assembly: Path) -> None:
    stacks = {s.stack_name: s for s in read_assembly(assembly)}
    staging = stacks["payment-processor-service-staging"]
    assert staging.placement == Placement(None, None)
    assert stacks["payment-processor-service-production"].placement == Placement(
        "222222222222", "eu-central-1"
    )
    assert (staging.requires_bootstrap_version, staging.bootstrap_version_parameter) == (
        6,
        "/cdk-bootstrap/hnb659fds/version",
    )
    assert staging.asset_buckets == (BUCKET,)
    where = Placement("333333333333", "us-east-1")
    assert staging.role("lookup", where, "aws") == (
        "arn:aws:iam::333333333333:role/cdk-hnb659fds-lookup-role-333333333333-us-east-1"
    )


def test_every_environment_then_the_pipeline_by_default(assembly: Path) -> None:
    plan = choose(CONFIG, assembly)
    assert [s.stack_name for s in plan.stacks] == [
        "payment-processor-service-staging",
        "payment-processor-service-production",
        "payment-processor-pipeline-shared",
    ]
    only = choose(CONFIG, assembly, environments=["production"])
    assert [s.stack_name for s in only.stacks] == ["payment-processor-service-production"]


def test_an_unknown_environment_names_the_known_ones(assembly: Path) -> None:
    with pytest.raises(DeployError) as caught:
        choose(CONFIG, assembly, environments=["prod"])
    assert str(caught.value) == (
        "--env 'prod' is not an environment of payment-processor; choose from "
        "['staging', 'production']"
    )


def test_deploy_passes_parameters_and_keeps_every_other_one(assembly: Path) -> None:
    plan = choose(CONFIG, assembly, environments=["staging", "production"])
    args = deploy_arguments(
        assembly,
        plan.stacks,
        parameters={"payment-processor-service-staging": {"ImageTag": "c0ffee1"}},
    )
    assert args == [
        "deploy",
        "--app",
        str(assembly),
        "--no-color",
        "--no-notices",
        "--require-approval",
        "never",
        "--progress",
        "events",
        "--previous-parameters",
        "--outputs-file",
        str(assembly / "deployline-outputs.json"),
        "--concurrency",
        "2",
        "--exclusively",
        "--parameters",
        "payment-processor-service-staging:ImageTag=c0ffee1",
        "payment-processor-service-staging",
        "payment-processor-service-production",
    ]


def test_a_directory_that_is_no_assembly_says_to_synthesize(tmp_path: Path) -> None:
    with pytest.raises(AssemblyError, match=r"manifest.json: cannot read the cloud assembly"):
        read_assembly(tmp_path)
    with pytest.raises(AssemblyError, match=r"^a stack environment must look like"):
        parse_environment("123456789012/eu-west-1")
