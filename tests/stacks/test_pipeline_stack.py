"""PipelineStack: the delivery pipeline, its projects, roles, store, alerts and records.

One app is synthesized once for the module, with cdk-nag's AwsSolutions, NIST 800-53 R5, PCI DSS
3.2.1 and HIPAA Security packs. It holds the pipeline's own stacks
(`deployline.app.pipeline_stacks`, as `build_app` makes them) of eight configs written in code
from the example deployline.yaml:

- example:    the example as it is (staging rolling; production blue/green after an approval);
- three:      dev and staging rolling, production blue/green with an approval;
- single:     one rolling environment, no approval;
- s3, codecommit, monorepo: the three other sources (S3 bucket, CodeCommit, GitHub with path
  filters and exclusions);
- accounts:   a tooling account and three environment accounts, one region;
- multi:      examples/multi-account (three accounts, production in another region, so an
  artifact store of that region).

Peers check every template: cfn-lint, cdk-nag, checkov and `deployline check` on the cloud
assembly.
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from aws_cdk import App
from aws_cdk.assertions import Match, Template
from cfnlint.api import lint_file

from deployline import __version__, assets
from deployline.app import APP_CONTEXT, feature_flags, pipeline_stacks
from deployline.checks.api import check_assembly
from deployline.config import DeploylineConfig, load_config, parse_config_text
from deployline.stacks.pipeline_stack import PipelineStack
from deployline.stacks.regional_artifacts import RegionalArtifactsStack
from nag_reports import (  # tests/nag_reports.py
    COMPLIANCE_PACKS,
    Assembly,
    Entry,
    acknowledgements,
    add_packs,
    ran,
    unnamed_resources,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "deployline.yaml"
MULTI = ROOT / "examples" / "multi-account" / "deployline.yaml"
CHECKOV = Path(sys.executable).with_name("checkov")
PSEUDO = ("Ref", "AWS::AccountId")

# Actions AWS authorizes only on "*" (IAM service authorization reference); any other action on
# "*" in a pipeline template is a bug.
STAR_ONLY = {
    "ecr:GetAuthorizationToken",
    "codepipeline:PutJobSuccessResult",
    "codepipeline:PutJobFailureResult",
    "cloudwatch:PutMetricData",
}


def example_data() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    return data


def config_from(data: dict[str, Any]) -> DeploylineConfig:
    return parse_config_text(yaml.safe_dump(data, sort_keys=False))


def variant(service: str, **changes: Any) -> DeploylineConfig:
    data = example_data()
    data["service"] = service
    data.update(changes)
    return config_from(data)


def _env(name: str, deployment: str = "rolling", approval: bool = False) -> dict[str, Any]:
    env: dict[str, Any] = {
        "name": name,
        "deployment": deployment,
        "approval": approval,
        "container_port": 8080,
        "health_check_path": "/health",
        "plain_http": True,  # the pipeline does not care how the service is served
    }
    if deployment == "blue_green":
        env["test_listener_port"] = 8080
    return env


def configs() -> dict[str, DeploylineConfig]:
    return {
        "example": config_from(example_data()),
        "three": variant(
            "three-envs",
            environments=[
                _env("dev"),
                _env("staging"),
                _env("production", "blue_green", approval=True),
            ],
        ),
        # ... and nobody named to read alerts (deployline init without --email)
        "single": variant("single-env", environments=[_env("live")], notifications={}),
        "s3": variant("s3-source", source={"type": "s3", "key": "app/source.zip"}),
        "codecommit": variant(
            "codecommit-source",
            source={"type": "codecommit", "repository": "payments-app", "branch": "release"},
            build={**example_data()["build"], "dockerhub_secret": "ci/dockerhub"},
        ),
        "monorepo": variant(
            "monorepo-source",
            source={
                "type": "github",
                "repository": "acme/monorepo",
                "branch": "trunk",
                "connection_parameter": "/deployline/monorepo/connection-arn",
                "paths": ["services/pay/**", "libs/common/**"],
                "exclude_paths": ["services/pay/docs/**"],
            },
        ),
        "accounts": variant(
            "accounts",
            pipeline={"account": "111111111111", "region": "us-east-1"},
            environments=[
                {**_env("dev"), "account": "444444444444"},
                {**_env("staging"), "account": "222222222222"},
                {**_env("production", "blue_green", approval=True), "account": "333333333333"},
            ],
        ),
        "multi": load_config(MULTI),
    }


#: The CodeBuild projects of every pipeline, by the type in their name `{service}-{type}-shared`.
PROJECTS = ("build", "synth", "unit-tests", "security-scan")

#: The configs whose templates name no account or region.
AGNOSTIC = ("example", "three", "single", "s3", "codecommit", "monorepo")


@dataclass
class Synth:
    outdir: Path
    stacks: dict[str, PipelineStack]
    regional: dict[str, RegionalArtifactsStack]
    raw: dict[str, dict[str, Any]]
    templates: dict[str, Template]
    paths: dict[str, Path]
    report: dict[str, Any]


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    outdir = tmp_path_factory.mktemp("pipeline-stack")
    app = App(
        outdir=str(outdir),
        context={**feature_flags(), **APP_CONTEXT},
        builtin_cloud_formation_validation=False,
    )
    stacks: dict[str, PipelineStack] = {}
    regional: dict[str, RegionalArtifactsStack] = {}
    for label, config in configs().items():
        stacks[label], by_region = pipeline_stacks(app, config)
        regional.update({f"{label}:{region}": stack for region, stack in by_region.items()})
    add_packs(app)
    # cdk-nag findings fail the synth; the report read below says which.
    with contextlib.suppress(RuntimeError):
        app.synth()
    report_path = outdir / "validation-report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    every = {**stacks, **regional}
    paths = {label: outdir / s.template_file for label, s in every.items()}
    raw = {label: json.loads(p.read_text()) for label, p in paths.items()}
    return Synth(
        outdir=outdir,
        stacks=stacks,
        regional=regional,
        raw=raw,
        templates={label: Template.from_json(t) for label, t in raw.items()},
        paths=paths,
        report=report,
    )


# ---- helpers --------------------------------------------------------------------------------


def resources(raw: dict[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in raw["Resources"].items() if v["Type"] == type_}


def pipeline_props(raw: dict[str, Any]) -> dict[str, Any]:
    (pipeline,) = resources(raw, "AWS::CodePipeline::Pipeline").values()
    props: dict[str, Any] = pipeline["Properties"]
    return props


def stage(raw: dict[str, Any], name: str) -> dict[str, Any]:
    found = [s for s in pipeline_props(raw)["Stages"] if s["Name"] == name]
    assert found, f"no stage {name}"
    result: dict[str, Any] = found[0]
    return result


def action(raw: dict[str, Any], stage_name: str, action_name: str) -> dict[str, Any]:
    found = [a for a in stage(raw, stage_name)["Actions"] if a["Name"] == action_name]
    assert found, f"no action {action_name} in {stage_name}"
    result: dict[str, Any] = found[0]
    return result


def project(raw: dict[str, Any], suffix: str) -> dict[str, Any]:
    """The CodeBuild project named `{service}-{suffix}-shared`."""
    for res in resources(raw, "AWS::CodeBuild::Project").values():
        if res["Properties"]["Name"].endswith(f"-{suffix}-shared"):
            props: dict[str, Any] = res["Properties"]
            return props
    raise AssertionError(f"no project {suffix}")


def project_id(raw: dict[str, Any], suffix: str) -> str:
    for logical_id, res in resources(raw, "AWS::CodeBuild::Project").items():
        if res["Properties"]["Name"].endswith(f"-{suffix}-shared"):
            return logical_id
    raise AssertionError(f"no project {suffix}")


def buildspec(raw: dict[str, Any], suffix: str) -> dict[str, Any]:
    spec = project(raw, suffix)["Source"]["BuildSpec"]
    if isinstance(spec, dict):  # Fn::Join around report group ARNs: parse with markers
        parts = spec["Fn::Join"][1]
        spec = "".join(p if isinstance(p, str) else f"ARN{i}" for i, p in enumerate(parts))
    parsed: dict[str, Any] = json.loads(spec)
    return parsed


def commands(spec: dict[str, Any]) -> list[str]:
    return [c for phase in spec["phases"].values() for c in phase.get("commands", [])]


def role_named(raw: dict[str, Any], suffix: str) -> tuple[str, dict[str, Any]]:
    """(logical ID, properties) of the role `{service}-{suffix}-shared` (names may be cut)."""
    for logical_id, res in resources(raw, "AWS::IAM::Role").items():
        name = res["Properties"].get("RoleName", "")
        if isinstance(name, str) and re.search(rf"-{re.escape(suffix)}(-shared)?$", name):
            return logical_id, res["Properties"]
    raise AssertionError(f"no role named like *-{suffix}-shared")


def inline_statements(role: dict[str, Any]) -> list[dict[str, Any]]:
    return [st for p in role.get("Policies", []) for st in p["PolicyDocument"]["Statement"]]


def statements_of(raw: dict[str, Any], role_id: str) -> list[dict[str, Any]]:
    """Inline statements of the role plus those of every AWS::IAM::Policy attached to it."""
    found = inline_statements(raw["Resources"][role_id]["Properties"])
    for res in resources(raw, "AWS::IAM::Policy").values():
        if {"Ref": role_id} in res["Properties"]["Roles"]:
            found.extend(res["Properties"]["PolicyDocument"]["Statement"])
    return found


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def by_sid(statements: list[dict[str, Any]], sid: str) -> dict[str, Any]:
    found = [st for st in statements if st.get("Sid") == sid]
    assert len(found) == 1, f"expected one statement {sid}, got {len(found)}"
    return found[0]


def get_att(logical_id: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [logical_id, "Arn"]}


def the_id(raw: dict[str, Any], type_: str) -> str:
    (logical_id,) = resources(raw, type_)
    return logical_id


def walk(node: Any) -> Iterator[Any]:
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


# ---- pipeline, trigger and stages ----------------------------------------------------------


def test_pipeline_is_v2_queued_with_the_cmk_artifact_store(synth: Synth) -> None:
    raw = synth.raw["example"]
    synth.templates["example"].has_resource_properties(
        "AWS::CodePipeline::Pipeline",
        {
            "Name": "payment-processor-pipeline-shared",
            "PipelineType": "V2",
            "ExecutionMode": "QUEUED",
            # A self-update cancels the running execution; CodePipeline then starts one on the
            # new structure.
            "RestartExecutionOnUpdate": True,
            "ArtifactStore": {
                "Type": "S3",
                "Location": {"Ref": the_id_prefixed(raw, "AWS::S3::Bucket", "ArtifactStoreBucket")},
                "EncryptionKey": {"Type": "KMS", "Id": get_att(key_id(raw))},
            },
        },
    )


def the_id_prefixed(raw: dict[str, Any], type_: str, prefix: str) -> str:
    (logical_id,) = [k for k in resources(raw, type_) if k.startswith(prefix)]
    return logical_id


def key_id(raw: dict[str, Any]) -> str:
    return the_id_prefixed(raw, "AWS::KMS::Key", "PipelineKey")


def test_github_trigger_fires_on_pushes_to_the_branch_under_the_configured_paths(
    synth: Synth,
) -> None:
    assert pipeline_props(synth.raw["example"])["Triggers"] == [
        {
            "ProviderType": "CodeStarSourceConnection",
            "GitConfiguration": {
                "SourceActionName": "Source",
                "Push": [
                    {
                        "Branches": {"Includes": ["main"]},
                        "FilePaths": {"Includes": ["examples/payment-processor/**"]},
                    }
                ],
            },
        }
    ]


def test_monorepo_trigger_includes_and_excludes_file_paths(synth: Synth) -> None:
    (trigger,) = pipeline_props(synth.raw["monorepo"])["Triggers"]
    (push,) = trigger["GitConfiguration"]["Push"]
    assert push["Branches"] == {"Includes": ["trunk"]}
    assert push["FilePaths"] == {
        "Includes": ["services/pay/**", "libs/common/**"],
        "Excludes": ["services/pay/docs/**"],
    }


def test_connection_source_reads_the_connection_arn_from_ssm_and_never_polls(
    synth: Synth,
) -> None:
    raw = synth.raw["monorepo"]
    source = action(raw, "Source", "Source")
    assert source["ActionTypeId"]["Provider"] == "CodeStarSourceConnection"
    assert source["Configuration"]["ConnectionArn"] == {"Ref": "SourceConnectionArn"}
    assert source["Configuration"]["FullRepositoryId"] == "acme/monorepo"
    assert source["Configuration"]["BranchName"] == "trunk"
    assert source["Configuration"].get("DetectChanges") in (None, False, "false")
    parameter = raw["Parameters"]["SourceConnectionArn"]
    assert parameter["Type"] == "AWS::SSM::Parameter::Value<String>"
    assert parameter["Default"] == "/deployline/monorepo/connection-arn"
    text = json.dumps(raw)
    assert "OAuthToken" not in text and '"Provider": "GitHub"' not in text


def test_s3_source_is_a_versioned_encrypted_bucket_that_triggers_by_event(synth: Synth) -> None:
    raw = synth.raw["s3"]
    source = action(raw, "Source", "Source")
    assert source["ActionTypeId"] == {
        "Category": "Source",
        "Owner": "AWS",
        "Provider": "S3",
        "Version": "1",
    }
    assert source["Configuration"]["S3ObjectKey"] == "app/source.zip"
    assert source["Configuration"]["PollForSourceChanges"] is False
    bucket_ref = source["Configuration"]["S3Bucket"]
    bucket = raw["Resources"][bucket_ref["Ref"]]["Properties"]
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    (rule,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    # An EventBridge rule on the object's upload starts the pipeline.
    rules = [
        r["Properties"]
        for r in resources(raw, "AWS::Events::Rule").values()
        if r["Properties"].get("EventPattern", {}).get("source") == ["aws.s3"]
    ]
    assert len(rules) == 1
    assert rules[0]["EventPattern"]["detail"]["object"]["key"] == ["app/source.zip"]
    (target,) = rules[0]["Targets"]
    assert "RoleArn" in target
    assert synth.raw["s3"]["Outputs"]["SourceBucketName"]["Value"] == bucket_ref


def test_codecommit_source_uses_the_existing_repository_and_branch(synth: Synth) -> None:
    source = action(synth.raw["codecommit"], "Source", "Source")
    assert source["ActionTypeId"]["Provider"] == "CodeCommit"
    assert source["Configuration"]["RepositoryName"] == "payments-app"
    assert source["Configuration"]["BranchName"] == "release"
    assert source["Configuration"]["PollForSourceChanges"] is False
    assert not resources(synth.raw["codecommit"], "AWS::CodeCommit::Repository")


def stage_names(raw: dict[str, Any]) -> list[str]:
    return [s["Name"] for s in pipeline_props(raw)["Stages"]]


BEFORE_DEPLOYS = ["Source", "Build", "Test", "UpdatePipeline"]


def test_example_stages_build_test_update_itself_then_staging_approval_production(
    synth: Synth,
) -> None:
    for label in ("example", "s3", "codecommit", "monorepo", "multi"):
        assert stage_names(synth.raw[label]) == [
            *BEFORE_DEPLOYS,
            "Deploy-staging",
            "Approve-production",
            "Deploy-production",
        ], label


def test_three_environments_deploy_in_config_order_with_approval_before_production(
    synth: Synth,
) -> None:
    for label in ("three", "accounts"):
        assert stage_names(synth.raw[label]) == [
            *BEFORE_DEPLOYS,
            "Deploy-dev",
            "Deploy-staging",
            "Approve-production",
            "Deploy-production",
        ], label


def test_single_rolling_environment_deploys_without_approval(synth: Synth) -> None:
    raw = synth.raw["single"]
    assert stage_names(raw) == [*BEFORE_DEPLOYS, "Deploy-live"]
    categories = {
        a["ActionTypeId"]["Category"] for s in pipeline_props(raw)["Stages"] for a in s["Actions"]
    }
    assert "Approval" not in categories
    assert action(raw, "Deploy-live", "Deploy")["ActionTypeId"]["Provider"] == "CloudFormation"


def test_no_deploy_action_registers_task_definitions_or_uses_codedeploy(synth: Synth) -> None:
    for label, raw in synth.raw.items():
        providers = (
            {
                a["ActionTypeId"]["Provider"]
                for s in pipeline_props(raw).get("Stages", [])
                for a in s["Actions"]
            }
            if label in synth.stacks
            else set()
        )
        assert not providers & {"ECS", "CodeDeployToECS", "CodeDeploy"}, label
        assert label not in synth.stacks or "CloudFormation" in providers, (label, providers)
        assert not [r for r in raw["Resources"].values() if r["Type"].startswith("AWS::CodeDeploy")]


def test_image_build_and_synth_run_in_parallel_from_the_same_source(synth: Synth) -> None:
    raw = synth.raw["example"]
    build = action(raw, "Build", "BuildImage")
    synth_action = action(raw, "Build", "Synth")
    assert build["RunOrder"] == synth_action["RunOrder"] == 1
    assert synth_action["InputArtifacts"] == build["InputArtifacts"] == [{"Name": "Source"}]
    assert synth_action["OutputArtifacts"] == [{"Name": "SynthOutput"}]
    assert synth_action["ActionTypeId"]["Provider"] == "CodeBuild"


def test_synth_installs_the_pinned_deployline_synthesizes_and_publishes_assets(
    synth: Synth,
) -> None:
    spec = buildspec(synth.raw["example"], "synth")
    cmds = commands(spec)
    assert cmds[0].endswith(f"deployline=={__version__}")
    assert any(c.startswith("npm install") and "cdk-assets@" in c for c in cmds)
    (synthesize,) = [c for c in cmds if "deployline synth" in c]
    assert "--config deployline.yaml --out cdk.out" in synthesize
    (publish,) = [c for c in cmds if "deployline.assets" in c]
    assert publish.startswith("python3 -m deployline.assets cdk.out --cdk-assets ")
    assert cmds.index(synthesize) < cmds.index(publish)
    assert spec["artifacts"] == {"files": ["**/*"], "base-directory": "cdk.out"}
    assert project(synth.raw["example"], "synth")["Environment"]["PrivilegedMode"] is False


def _arn_text(value: Any) -> str:
    """An ARN with Fn::Join/Ref flattened: `arn:<AWS::Partition>:iam::<AWS::AccountId>:...`."""
    if isinstance(value, str):
        return value
    if "Fn::Sub" in value:
        return re.sub(r"\$\{([^}]+)\}", r"<\1>", value["Fn::Sub"])
    if "Fn::Join" in value:
        return "".join(_arn_text(v) for v in value["Fn::Join"][1])
    if "Ref" in value:
        return f"<{value['Ref']}>"
    return json.dumps(value)


def bootstrap_role(kind: str, account: str | None = None, region: str | None = None) -> str:
    acct = account or "<AWS::AccountId>"
    where = f"{acct}-{region or '<AWS::Region>'}"
    return f"arn:<AWS::Partition>:iam::{acct}:role/cdk-hnb659fds-{kind}-role-{where}"


@pytest.mark.parametrize(
    ("label", "where"),
    [
        ("example", [(None, None)]),
        (
            "accounts",
            [
                (a, "us-east-1")
                for a in ("111111111111", "222222222222", "333333333333", "444444444444")
            ],
        ),
        (
            "multi",
            [
                ("111111111111", "us-east-1"),
                ("222222222222", "us-east-1"),
                ("333333333333", "eu-west-1"),
            ],
        ),
    ],
)
def test_synth_may_assume_exactly_the_file_publishing_roles_of_where_it_deploys(
    synth: Synth, label: str, where: list[tuple[str | None, str | None]]
) -> None:
    raw = synth.raw[label]
    role_id = project(raw, "synth")["ServiceRole"]["Fn::GetAtt"][0]
    publish = by_sid(statements_of(raw, role_id), "PublishAssets")
    assert sorted(publish["Action"]) == ["sts:AssumeRole", "sts:TagSession"]
    assert sorted(_arn_text(r) for r in as_list(publish["Resource"])) == sorted(
        bootstrap_role("file-publishing", a, r) for a, r in where
    )


def test_the_apps_assets_are_published_once_per_account_and_region(synth: Synth) -> None:
    """The runtime functions' code, once in each account and region a stack with functions
    deploys to (the regional artifact stores have none; templates are not published)."""
    plan = assets.plan(synth.outdir)
    assert sorted(p.destination.role for p in plan) == sorted(
        [
            "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/"
            "cdk-hnb659fds-file-publishing-role-${AWS::AccountId}-${AWS::Region}",
            "arn:${AWS::Partition}:iam::111111111111:role/"
            "cdk-hnb659fds-file-publishing-role-111111111111-us-east-1",
        ]
    )
    # One runtime asset, the same for every pipeline stack: asked for once per destination.
    assert all(p.count == 1 for p in plan)


def test_self_update_deploys_the_pipeline_stack_from_the_synth_output(synth: Synth) -> None:
    raw = synth.raw["example"]
    (update,) = stage(raw, "UpdatePipeline")["Actions"]
    assert update["Name"] == "SelfUpdate"
    assert update["ActionTypeId"] == {
        "Category": "Deploy",
        "Owner": "AWS",
        "Provider": "CloudFormation",
        "Version": "1",
    }
    config = update["Configuration"]
    assert config["ActionMode"] == "CREATE_UPDATE"
    assert config["StackName"] == "payment-processor-pipeline-shared"
    assert config["TemplatePath"] == "SynthOutput::payment-processor-pipeline-shared.template.json"
    assert "ParameterOverrides" not in config
    assert _arn_text(update["RoleArn"]) == bootstrap_role("deploy")
    assert _arn_text(config["RoleArn"]) == bootstrap_role("cfn-exec")
    assert "Region" not in update


def test_self_update_updates_the_other_regions_artifact_stores_first(synth: Synth) -> None:
    raw = synth.raw["multi"]
    regional, own = stage(raw, "UpdatePipeline")["Actions"]
    assert (regional["Name"], regional["RunOrder"], regional["Region"]) == (
        "SelfUpdate-eu-west-1",
        1,
        "eu-west-1",
    )
    assert regional["Configuration"]["StackName"] == "orders-api-artifacts-eu-west-1-shared"
    assert _arn_text(regional["RoleArn"]) == bootstrap_role("deploy", "111111111111", "eu-west-1")
    assert (own["Name"], own["RunOrder"]) == ("SelfUpdate", 2)
    assert _arn_text(own["RoleArn"]) == bootstrap_role("deploy", "111111111111", "us-east-1")


def test_unit_tests_and_scan_run_in_parallel_and_the_gate_runs_after_both(synth: Synth) -> None:
    actions = {a["Name"]: a for a in stage(synth.raw["example"], "Test")["Actions"]}
    assert set(actions) == {"UnitTests", "SecurityScan", "SecurityGate"}
    assert actions["UnitTests"]["RunOrder"] == actions["SecurityScan"]["RunOrder"] == 1
    assert actions["SecurityGate"]["RunOrder"] == 2
    assert actions["UnitTests"]["ActionTypeId"]["Category"] == "Test"
    assert actions["SecurityScan"]["ActionTypeId"]["Category"] == "Test"
    gate = actions["SecurityGate"]
    assert gate["ActionTypeId"] == {
        "Category": "Invoke",
        "Owner": "AWS",
        "Provider": "Lambda",
        "Version": "1",
    }
    assert gate["InputArtifacts"] == [{"Name": "ScanReports"}]
    assert actions["SecurityScan"]["OutputArtifacts"] == [{"Name": "ScanReports"}]
    params = json.loads(gate["Configuration"]["UserParameters"])
    assert params["threshold"] == "high"
    assert params["scanners"] == ["bandit", "pip-audit", "trivy"]
    assert params["allow_unverified"] is False


def test_build_action_tags_the_image_with_the_commit_and_exports_it(synth: Synth) -> None:
    build = action(synth.raw["example"], "Build", "BuildImage")
    assert build["Namespace"] == "BuildVariables"
    assert build["InputArtifacts"] == [{"Name": "Source"}]
    assert build["OutputArtifacts"] == [{"Name": "BuildOutput"}]
    env = json.loads(build["Configuration"]["EnvironmentVariables"])
    assert env == [
        {"name": "IMAGE_TAG", "type": "PLAINTEXT", "value": "#{SourceVariables.CommitId}"}
    ]
    # The scan looks at the image the build pushed, by that tag.
    scan = action(synth.raw["example"], "Test", "SecurityScan")
    assert json.loads(scan["Configuration"]["EnvironmentVariables"]) == [
        {"name": "IMAGE_TAG", "type": "PLAINTEXT", "value": "#{BuildVariables.IMAGE_TAG}"}
    ]


# ---- deploy stages -------------------------------------------------------------------------


IMAGE_OVERRIDE = '{"ImageTag":"#{BuildVariables.IMAGE_TAG}"}'


def test_an_environment_without_approval_is_deployed_by_cloudformation_with_the_image_tag(
    synth: Synth,
) -> None:
    deploy = action(synth.raw["example"], "Deploy-staging", "Deploy")
    assert deploy["ActionTypeId"] == {
        "Category": "Deploy",
        "Owner": "AWS",
        "Provider": "CloudFormation",
        "Version": "1",
    }
    config = deploy["Configuration"]
    assert config["ActionMode"] == "CREATE_UPDATE"
    assert config["StackName"] == "payment-processor-service-staging"
    assert config["TemplatePath"] == "SynthOutput::payment-processor-service-staging.template.json"
    assert config["ParameterOverrides"] == IMAGE_OVERRIDE
    assert config["Capabilities"] == "CAPABILITY_NAMED_IAM,CAPABILITY_AUTO_EXPAND"
    assert _arn_text(deploy["RoleArn"]) == bootstrap_role("deploy")
    assert _arn_text(config["RoleArn"]) == bootstrap_role("cfn-exec")
    assert deploy["InputArtifacts"] == [{"Name": "SynthOutput"}]
    assert deploy["RunOrder"] == 1


def test_an_approved_environment_executes_exactly_the_change_set_it_planned(
    synth: Synth,
) -> None:
    raw = synth.raw["example"]
    plan = action(raw, "Approve-production", "Plan")
    assert plan["RunOrder"] == 1
    planned = plan["Configuration"]
    assert planned["ActionMode"] == "CHANGE_SET_REPLACE"
    assert planned["StackName"] == "payment-processor-service-production"
    assert planned["ChangeSetName"] == "deployline-pipeline"
    assert planned["ParameterOverrides"] == IMAGE_OVERRIDE
    assert (
        planned["TemplatePath"] == "SynthOutput::payment-processor-service-production.template.json"
    )
    assert _arn_text(planned["RoleArn"]) == bootstrap_role("cfn-exec")
    deploy = action(raw, "Deploy-production", "Deploy")
    executed = deploy["Configuration"]
    assert executed == {
        "ActionMode": "CHANGE_SET_EXECUTE",
        "StackName": "payment-processor-service-production",
        "ChangeSetName": "deployline-pipeline",
    }
    assert deploy["RoleArn"] == plan["RoleArn"]


def test_the_approver_sees_the_change_summary_beside_tests_and_scans(synth: Synth) -> None:
    raw = synth.raw["example"]
    summary = action(raw, "Approve-production", "ChangeSummary")
    assert summary["RunOrder"] == 2
    assert summary["Namespace"] == "Changes-production"
    assert summary["ActionTypeId"]["Provider"] == "Lambda"
    params = json.loads(_arn_text(summary["Configuration"]["UserParameters"]))
    assert params["stack_name"] == "payment-processor-service-production"
    assert params["change_set_name"] == "deployline-pipeline"
    assert params["role_arn"] == bootstrap_role("lookup")
    approve = action(raw, "Approve-production", "Approve")
    assert approve["RunOrder"] == 3
    data = approve["Configuration"]["CustomData"]
    assert "Changes: #{Changes-production.SUMMARY}" in data
    assert "#{SecurityGate.SECURITY_SUMMARY}" in data and "Unit tests: passed" in data


def test_every_deploy_is_validated_after_it_in_the_same_stage(synth: Synth) -> None:
    for label in ("example", "three", "single", "accounts", "multi"):
        raw = synth.raw[label]
        deploy_stages = [
            s for s in pipeline_props(raw)["Stages"] if s["Name"].startswith("Deploy-")
        ]
        assert deploy_stages, label
        for s in deploy_stages:
            by_name = {a["Name"]: a for a in s["Actions"]}
            assert set(by_name) == {"Deploy", "Validate"}, (label, s["Name"])
            assert by_name["Validate"]["RunOrder"] > by_name["Deploy"]["RunOrder"]
            validate = by_name["Validate"]
            assert validate["ActionTypeId"]["Category"] == "Invoke"
            assert validate["ActionTypeId"]["Provider"] == "Lambda"
            params = json.loads(_arn_text(validate["Configuration"]["UserParameters"]))
            assert params["stack_name"] == by_name["Deploy"]["Configuration"]["StackName"]
            assert params["expected_image"] == "#{BuildVariables.IMAGE_URI}"
            assert params["role_arn"].endswith(
                _arn_text(by_name["Deploy"]["RoleArn"]).split("role/cdk-hnb659fds-deploy-role-")[1]
            )
            assert "lookup-role" in params["role_arn"]


def test_stages_that_create_or_update_roll_back_on_failure(synth: Synth) -> None:
    for label in ("example", "three", "single"):
        for s in pipeline_props(synth.raw[label])["Stages"]:
            modes = {a["Configuration"].get("ActionMode") for a in s["Actions"]}
            if s["Name"].startswith("Deploy-") and "CREATE_UPDATE" in modes:
                assert s["OnFailure"] == {"Result": "ROLLBACK"}, (label, s["Name"])
            else:
                # An executed change set is rolled back by CloudFormation itself; a stage
                # rollback would re-run an execute of a change set that no longer exists.
                assert "OnFailure" not in s, (label, s["Name"])


def test_approval_announces_on_the_topic_with_a_summary_and_a_link(synth: Synth) -> None:
    raw = synth.raw["example"]
    approve = action(raw, "Approve-production", "Approve")
    assert approve["ActionTypeId"] == {
        "Category": "Approval",
        "Owner": "AWS",
        "Provider": "Manual",
        "Version": "1",
    }
    topic_id = the_id(raw, "AWS::SNS::Topic")
    config = approve["Configuration"]
    assert config["NotificationArn"] == {"Ref": topic_id}
    data = config["CustomData"]
    assert "#{SourceVariables.CommitId}" in data
    assert "#{BuildVariables.IMAGE_TAG}" in data
    assert len(data) <= 500
    link = json.dumps(config["ExternalEntityLink"])
    assert "#{codepipeline.PipelineExecutionId}" in link
    assert "payment-processor-pipeline-shared/executions/" in link


def test_environments_in_other_accounts_and_regions_deploy_through_their_bootstrap_roles(
    synth: Synth,
) -> None:
    raw = synth.raw["multi"]
    staging = action(raw, "Deploy-staging", "Deploy")
    assert _arn_text(staging["RoleArn"]) == bootstrap_role("deploy", "222222222222", "us-east-1")
    assert _arn_text(staging["Configuration"]["RoleArn"]) == bootstrap_role(
        "cfn-exec", "222222222222", "us-east-1"
    )
    assert "Region" not in staging
    for stage_name, name in (("Approve-production", "Plan"), ("Deploy-production", "Deploy")):
        production = action(raw, stage_name, name)
        assert production["Region"] == "eu-west-1"
        assert _arn_text(production["RoleArn"]) == bootstrap_role(
            "deploy", "333333333333", "eu-west-1"
        )
    stores = {s["Region"]: s["ArtifactStore"] for s in pipeline_props(raw)["ArtifactStores"]}
    assert set(stores) == {"us-east-1", "eu-west-1"}
    assert stores["eu-west-1"]["Location"] == ("orders-api-artifacts-111111111111-eu-west-1-shared")
    assert stores["eu-west-1"]["EncryptionKey"] == {
        "Type": "KMS",
        "Id": "arn:aws:kms:eu-west-1:111111111111:alias/orders-api-artifacts-eu-west-1-shared",
    }


# ---- CodeBuild projects --------------------------------------------------------------------


def image_version(image: str) -> float:
    match = re.fullmatch(
        r"aws/codebuild/(?:amazonlinux2-(?:x86_64|aarch64)-)?standard:(\d+\.\d+)", image
    )
    assert match, image
    return float(match.group(1))


@pytest.mark.parametrize(
    ("suffix", "privileged", "timeout", "cache_modes"),
    [
        ("build", True, 15, ["LOCAL_DOCKER_LAYER_CACHE", "LOCAL_SOURCE_CACHE"]),
        ("synth", False, 20, ["LOCAL_CUSTOM_CACHE", "LOCAL_SOURCE_CACHE"]),
        ("unit-tests", False, 20, ["LOCAL_CUSTOM_CACHE", "LOCAL_SOURCE_CACHE"]),
        ("security-scan", False, 20, ["LOCAL_CUSTOM_CACHE", "LOCAL_SOURCE_CACHE"]),
    ],
)
def test_project_image_privilege_timeout_cache_and_logs(
    synth: Synth, suffix: str, privileged: bool, timeout: int, cache_modes: list[str]
) -> None:
    raw = synth.raw["example"]
    props = project(raw, suffix)
    env = props["Environment"]
    assert env["Type"] == "LINUX_CONTAINER"
    assert image_version(env["Image"]) >= 7.0
    assert env["PrivilegedMode"] is privileged
    assert props["TimeoutInMinutes"] == timeout
    assert props["Cache"] == {"Type": "LOCAL", "Modes": cache_modes}
    assert props["EncryptionKey"] == get_att(key_id(raw))
    logs = props["LogsConfig"]["CloudWatchLogs"]
    assert logs["Status"] == "ENABLED"
    group = raw["Resources"][logs["GroupName"]["Ref"]]
    assert group["Type"] == "AWS::Logs::LogGroup"
    assert group["Properties"]["LogGroupName"] == f"/aws/codebuild/{props['Name']}"
    assert group["Properties"]["RetentionInDays"] == 30
    assert group["Properties"]["KmsKeyId"] == get_att(key_id(raw))
    assert group["DeletionPolicy"] == "Retain"


def test_only_the_projects_that_run_docker_are_privileged(synth: Synth) -> None:
    privileged: dict[bool, set[str]] = {True: set(), False: set()}
    for label, raw in synth.raw.items():
        for res in resources(raw, "AWS::CodeBuild::Project").values():
            props = res["Properties"]
            spec = props["Source"]["BuildSpec"]
            text = spec if isinstance(spec, str) else json.dumps(spec)
            runs_docker = bool(re.search(r"\bdocker (build|push|login|buildx)\b", text))
            assert props["Environment"]["PrivilegedMode"] is runs_docker, (label, props["Name"])
            name = props["Name"]
            privileged[runs_docker].add(
                next((k for k in PROJECTS if name.endswith(f"-{k}-shared")), name)
            )
    # the image build runs docker; unit tests, the scan (of the pushed image) and synth do not
    assert privileged == {True: {"build"}, False: {"unit-tests", "security-scan", "synth"}}


def test_build_timeout_follows_the_config(synth: Synth) -> None:
    config = configs()["example"]
    assert project(synth.raw["example"], "build")["TimeoutInMinutes"] == (
        config.build.timeout_minutes
    )


def test_build_buildspec_logs_in_builds_with_the_commit_tag_and_pushes(synth: Synth) -> None:
    spec = buildspec(synth.raw["example"], "build")
    cmds = commands(spec)
    text = "\n".join(cmds)
    assert spec["env"]["exported-variables"] == ["IMAGE_TAG", "IMAGE_URI"]
    login = [c for c in cmds if "docker login" in c]
    assert login and "aws ecr get-login-password" in login[0]
    assert 'IMAGE_URI="$REPOSITORY_URI:$IMAGE_TAG"' in text
    build = [c for c in cmds if "docker build" in c]
    assert build and '--tag "$IMAGE_URI"' in build[0]
    assert "--file examples/payment-processor/Dockerfile" in build[0]
    push = [c for c in cmds if "docker push" in c]
    assert push and 'docker push "$IMAGE_URI"' in push[0]
    assert cmds.index(login[0]) < cmds.index(build[0]) < cmds.index(push[0])
    # No literal account or region: the repository URI is a variable set from the template.
    env = project(synth.raw["example"], "build")["Environment"]["EnvironmentVariables"]
    uri = {v["Name"]: v for v in env}["REPOSITORY_URI"]
    assert "Fn::Join" in uri["Value"]
    assert not re.search(r"\b\d{12}\b", text)


def test_build_writes_the_image_record_and_no_deployment_files(synth: Synth) -> None:
    for label in ("example", "single"):
        spec = buildspec(synth.raw[label], "build")
        assert spec["artifacts"] == {
            "files": ["imagedefinitions.json", "imageDetail.json"],
            "base-directory": "image-artifacts",
        }
        text = "\n".join(commands(spec))
        assert "describe-task-definition" not in text and "appspec" not in text


def test_unit_tests_publish_junit_and_coverage_to_report_groups(synth: Synth) -> None:
    raw = synth.raw["example"]
    groups = resources(raw, "AWS::CodeBuild::ReportGroup")
    types = sorted(g["Properties"]["Type"] for g in groups.values())
    assert types == ["CODE_COVERAGE", "TEST"]
    spec_join = project(raw, "unit-tests")["Source"]["BuildSpec"]["Fn::Join"][1]
    arns = [p for p in spec_join if not isinstance(p, str)]
    assert sorted(a["Fn::GetAtt"][0] for a in arns) == sorted(groups)
    spec = buildspec(raw, "unit-tests")
    formats = sorted(r["file-format"] for r in spec["reports"].values())
    assert formats == ["COBERTURAXML", "JUNITXML"]
    assert commands(spec) == [
        "cd examples/payment-processor",
        "pip install -r requirements.txt -r requirements-dev.txt",
        "pytest --junitxml=reports/junit.xml --cov=app --cov-report=xml:reports/coverage.xml",
    ]
    for group in groups.values():
        export = group["Properties"]["ExportConfig"]
        assert export["ExportConfigType"] == "S3"
        assert export["S3Destination"]["EncryptionDisabled"] is False


def test_scan_runs_bandit_pip_audit_and_trivy_and_outputs_their_reports(synth: Synth) -> None:
    spec = buildspec(synth.raw["example"], "security-scan")
    text = "\n".join(commands(spec))
    assert "python3 -m bandit --recursive examples/payment-processor --format json" in text
    assert "python3 -m pip_audit" in text and "--format json" in text
    assert "trivy fs " in text and "trivy image " in text
    assert "sha256sum --check" in text  # the Trivy download is pinned and verified
    assert spec["artifacts"] == {
        "files": ["bandit.json", "pip-audit.json", "trivy-fs.json", "trivy-image.json"],
        "base-directory": "security-reports",
    }


# ---- IAM -----------------------------------------------------------------------------------


def principals(role: dict[str, Any]) -> list[Any]:
    statements = role["AssumeRolePolicyDocument"]["Statement"]
    assert all(st["Action"] == "sts:AssumeRole" and st["Effect"] == "Allow" for st in statements)
    return [st["Principal"] for st in statements]


def test_every_role_trusts_exactly_one_service_or_the_pipeline_role(synth: Synth) -> None:
    raw = synth.raw["example"]
    pipeline_role_id = role_named(raw, "pipeline")[0]
    trusted: dict[str, int] = {"Service": 0, "AWS": 0}
    for logical_id, res in resources(raw, "AWS::IAM::Role").items():
        (principal,) = principals(res["Properties"])
        assert list(principal) in (["Service"], ["AWS"]), logical_id
        trusted[next(iter(principal))] += 1
        if "AWS" in principal:
            assert principal["AWS"] == get_att(pipeline_role_id), logical_id
    # the projects, functions and pipeline trust their service; the action roles the pipeline
    assert trusted["Service"] >= 5 and trusted["AWS"] >= 5, trusted


def test_projects_functions_and_pipeline_trust_only_their_service(synth: Synth) -> None:
    raw = synth.raw["example"]
    for res in resources(raw, "AWS::CodeBuild::Project").values():
        role_id = res["Properties"]["ServiceRole"]["Fn::GetAtt"][0]
        role = raw["Resources"][role_id]["Properties"]
        assert principals(role) == [{"Service": "codebuild.amazonaws.com"}]
    for res in resources(raw, "AWS::Lambda::Function").values():
        role = raw["Resources"][res["Properties"]["Role"]["Fn::GetAtt"][0]]["Properties"]
        assert principals(role) == [{"Service": "lambda.amazonaws.com"}]
    pipeline_role = raw["Resources"][pipeline_props(raw)["RoleArn"]["Fn::GetAtt"][0]]
    assert principals(pipeline_role["Properties"]) == [{"Service": "codepipeline.amazonaws.com"}]


def test_every_action_deployline_owns_has_its_own_role(synth: Synth) -> None:
    raw = synth.raw["example"]
    owned = [
        json.dumps(a["RoleArn"])
        for s in pipeline_props(raw)["Stages"]
        for a in s["Actions"]
        if a["ActionTypeId"]["Provider"] != "CloudFormation"
    ]
    # Source, BuildImage, Synth, UnitTests, SecurityScan, SecurityGate, Validate x2,
    # ChangeSummary, Approve
    assert len(owned) == len(set(owned)) == 10
    # CloudFormation actions run as the target's bootstrap deploy role, nothing else.
    deployers = {
        _arn_text(a["RoleArn"])
        for s in pipeline_props(raw)["Stages"]
        for a in s["Actions"]
        if a["ActionTypeId"]["Provider"] == "CloudFormation"
    }
    assert deployers == {bootstrap_role("deploy")}


def test_build_role_pushes_only_to_the_repository(synth: Synth) -> None:
    raw = synth.raw["example"]
    repo_id = the_id(raw, "AWS::ECR::Repository")
    role_id = project(raw, "build")["ServiceRole"]["Fn::GetAtt"][0]
    statements = statements_of(raw, role_id)
    login = by_sid(statements, "LogInToEcr")
    assert login["Action"] == "ecr:GetAuthorizationToken" and login["Resource"] == "*"
    push = by_sid(statements, "PushImages")
    assert push["Resource"] == get_att(repo_id)
    assert {
        "ecr:PutImage",
        "ecr:InitiateLayerUpload",
        "ecr:UploadLayerPart",
        "ecr:CompleteLayerUpload",
        "ecr:BatchCheckLayerAvailability",
    } <= set(push["Action"])
    star = sorted(a for st in statements if st["Resource"] == "*" for a in as_list(st["Action"]))
    assert star == ["ecr:GetAuthorizationToken"]


def test_docker_hub_credentials_come_from_the_named_secret_and_only_it(synth: Synth) -> None:
    """build.dockerhub_secret: the buildspec reads username and password from Secrets Manager
    (never plain environment values) and the build role may read that secret alone."""
    raw = synth.raw["codecommit"]
    spec = buildspec(raw, "build")
    assert spec["env"]["secrets-manager"] == {
        "DOCKERHUB_USERNAME": "ci/dockerhub:username",
        "DOCKERHUB_PASSWORD": "ci/dockerhub:password",
    }
    assert any("docker login" in c and "DOCKERHUB_PASSWORD" in c for c in commands(spec))
    assert "DOCKERHUB_PASSWORD" not in json.dumps(project(raw, "build")["Environment"])
    role_id = project(raw, "build")["ServiceRole"]["Fn::GetAtt"][0]
    read = by_sid(statements_of(raw, role_id), "ReadDockerHubSecret")
    assert read["Action"] == "secretsmanager:GetSecretValue"
    resource = json.dumps(read["Resource"])
    assert "secret:ci/dockerhub-??????" in resource and "*" not in resource.replace("??????", "")
    # without the setting there is no such grant and no login
    example = synth.raw["example"]
    example_role = project(example, "build")["ServiceRole"]["Fn::GetAtt"][0]
    assert not [st for st in statements_of(example, example_role) if "secretsmanager" in str(st)]
    assert "secrets-manager" not in buildspec(example, "build").get("env", {})


def test_scan_role_may_pull_but_not_push_images(synth: Synth) -> None:
    raw = synth.raw["example"]
    role_id = project(raw, "security-scan")["ServiceRole"]["Fn::GetAtt"][0]
    actions = {a for st in statements_of(raw, role_id) for a in as_list(st["Action"])}
    assert "ecr:BatchGetImage" in actions
    assert not actions & {"ecr:PutImage", "ecr:UploadLayerPart", "ecr:CompleteLayerUpload"}


def test_only_star_only_actions_are_allowed_on_star(synth: Synth) -> None:
    on_star: set[str] = set()
    for label, raw in synth.raw.items():
        docs = [
            st
            for node in walk(raw["Resources"])
            if isinstance(node, dict) and "Statement" in node and "Version" in node
            for st in node["Statement"]
        ]
        for st in docs:
            if st.get("Effect") == "Allow" and "*" in as_list(st.get("Resource", [])):
                if "Principal" in st:  # resource policies (key policies) are not identity grants
                    continue
                actions = set(as_list(st["Action"]))
                assert actions <= STAR_ONLY, (label, st)
                on_star |= actions
    # the walk found the identity policies: each star-only action is granted somewhere
    assert on_star == STAR_ONLY


def test_pipeline_role_s3_and_kms_are_scoped_to_the_bucket_and_key(synth: Synth) -> None:
    raw = synth.raw["example"]
    role_id = pipeline_props(raw)["RoleArn"]["Fn::GetAtt"][0]
    bucket_id = the_id_prefixed(raw, "AWS::S3::Bucket", "ArtifactStoreBucket")
    bucket_arn = get_att(bucket_id)
    objects = {"Fn::Join": ["", [bucket_arn, "/*"]]}
    kinds: set[str] = set()
    for st in statements_of(raw, role_id):
        actions = as_list(st["Action"])
        services = {a.split(":")[0] for a in actions}
        assert len(services) == 1, st
        kinds |= services
        res = as_list(st["Resource"])
        if services == {"s3"}:
            assert all(r in (bucket_arn, objects) for r in res), st
        elif services == {"kms"}:
            assert res == [get_att(key_id(raw))], st
        else:
            assert services == {"sts"} and actions == ["sts:AssumeRole"], st
            for r in res:
                if "Fn::GetAtt" in r:  # the action roles of this pipeline ...
                    target = raw["Resources"][r["Fn::GetAtt"][0]]["Properties"]
                    assert principals(target) == [{"AWS": get_att(role_id)}]
                else:  # ... and the bootstrap deploy role the CloudFormation actions use
                    assert _arn_text(r) == bootstrap_role("deploy"), r
    assert kinds == {"s3", "kms", "sts"}


def test_the_pipeline_role_uses_another_regions_key_only_by_its_alias(synth: Synth) -> None:
    raw = synth.raw["multi"]
    role_id = pipeline_props(raw)["RoleArn"]["Fn::GetAtt"][0]
    (scoped,) = [st for st in statements_of(raw, role_id) if "Condition" in st]
    assert scoped["Resource"] == "arn:aws:kms:eu-west-1:111111111111:key/*"
    assert scoped["Condition"] == {
        "ForAnyValue:StringEquals": {
            "kms:ResourceAliases": "alias/orders-api-artifacts-eu-west-1-shared"
        }
    }


def _policy_principals(raw: dict[str, Any], type_: str, sid: str) -> list[str]:
    found = []
    for res in resources(raw, type_).values():
        props = res["Properties"]
        doc = props.get("PolicyDocument") or props.get("KeyPolicy") or {}
        doc = doc or props.get("RepositoryPolicyText") or {}
        for st in doc.get("Statement", []):
            if st.get("Sid") == sid:
                found.extend(_arn_text(p) for p in as_list(st["Principal"]["AWS"]))
    return sorted(found)


def test_artifacts_admit_exactly_the_deploy_roles_of_the_target_accounts(synth: Synth) -> None:
    raw = synth.raw["accounts"]
    accounts = ("111111111111", "222222222222", "333333333333", "444444444444")
    assert _policy_principals(raw, "AWS::S3::BucketPolicy", "DeployRolesReadArtifacts") == [
        bootstrap_role("deploy", a, "us-east-1") for a in accounts
    ]
    # The key policy names the other accounts' roles; the pipeline's own account uses IAM.
    assert _policy_principals(raw, "AWS::KMS::Key", "DeployRolesDecryptArtifacts") == [
        bootstrap_role("deploy", a, "us-east-1") for a in accounts[1:]
    ]


def test_the_image_repository_admits_exactly_the_target_accounts_to_pull(synth: Synth) -> None:
    for label, accounts in (
        ("accounts", ["222222222222", "333333333333", "444444444444"]),
        ("multi", ["222222222222", "333333333333"]),
    ):
        raw = synth.raw[label]
        (repo,) = resources(raw, "AWS::ECR::Repository").values()
        (statement,) = repo["Properties"]["RepositoryPolicyText"]["Statement"]
        assert statement["Sid"] == "TargetAccountsPullImages"
        assert sorted(as_list(statement["Principal"]["AWS"])) == [
            f"arn:aws:iam::{a}:root" for a in accounts
        ]
        assert sorted(statement["Action"]) == [
            "ecr:BatchCheckLayerAvailability",
            "ecr:BatchGetImage",
            "ecr:GetDownloadUrlForLayer",
        ]
    (repo,) = resources(synth.raw["example"], "AWS::ECR::Repository").values()
    assert "RepositoryPolicyText" not in repo["Properties"]


def test_another_regions_artifact_store_admits_the_deploy_roles_of_that_region(
    synth: Synth,
) -> None:
    raw = synth.raw["multi:eu-west-1"]
    production = bootstrap_role("deploy", "333333333333", "eu-west-1")
    assert _policy_principals(raw, "AWS::S3::BucketPolicy", "DeployRolesReadArtifacts") == [
        production
    ]
    assert _policy_principals(raw, "AWS::KMS::Key", "DeployRolesDecryptArtifacts") == [production]
    (bucket,) = [
        r["Properties"]
        for k, r in resources(raw, "AWS::S3::Bucket").items()
        if k.startswith("Bucket")
    ]
    assert bucket["BucketName"] == "orders-api-artifacts-111111111111-eu-west-1-shared"
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    (alias,) = resources(raw, "AWS::KMS::Alias").values()
    assert alias["Properties"]["AliasName"] == "alias/orders-api-artifacts-eu-west-1-shared"


def test_job_functions_read_target_accounts_only_through_their_lookup_roles(
    synth: Synth,
) -> None:
    raw = synth.raw["multi"]
    functions = {
        a["Name"]: a["Configuration"]["FunctionName"]["Ref"]
        for s in pipeline_props(raw)["Stages"]
        for a in s["Actions"]
        if a["Name"] in ("Validate", "ChangeSummary")
    }
    expected = {
        "Validate": [
            bootstrap_role("lookup", "222222222222", "us-east-1"),
            bootstrap_role("lookup", "333333333333", "eu-west-1"),
        ],
        "ChangeSummary": [bootstrap_role("lookup", "333333333333", "eu-west-1")],
    }
    assert set(functions) == set(expected)
    for name, function_id in functions.items():
        role_id = raw["Resources"][function_id]["Properties"]["Role"]["Fn::GetAtt"][0]
        read = by_sid(statements_of(raw, role_id), "ReadTargetAccounts")
        assert read["Action"] == "sts:AssumeRole"
        assert sorted(_arn_text(r) for r in as_list(read["Resource"])) == sorted(expected[name])


def test_invoked_functions_may_report_job_results_and_actions_may_invoke_only_them(
    synth: Synth,
) -> None:
    raw = synth.raw["example"]
    invoked = {
        a["Configuration"]["FunctionName"]["Ref"]: a
        for s in pipeline_props(raw)["Stages"]
        for a in s["Actions"]
        if a["ActionTypeId"]["Provider"] == "Lambda"
    }
    # the gate, the validation (shared by all deploy stages) and the change summary
    assert len(invoked) == 3
    for function_id in invoked:
        role_id = raw["Resources"][function_id]["Properties"]["Role"]["Fn::GetAtt"][0]
        report = by_sid(statements_of(raw, role_id), "ReportJobResult")
        assert sorted(report["Action"]) == [
            "codepipeline:PutJobFailureResult",
            "codepipeline:PutJobSuccessResult",
        ]
    for s in pipeline_props(raw)["Stages"]:
        for a in s["Actions"]:
            if a["ActionTypeId"]["Provider"] != "Lambda":
                continue
            role = raw["Resources"][a["RoleArn"]["Fn::GetAtt"][0]]["Properties"]
            invoke = by_sid(inline_statements(role), "InvokeFunction")
            assert invoke["Action"] == "lambda:InvokeFunction"
            assert invoke["Resource"] == get_att(a["Configuration"]["FunctionName"]["Ref"])


def test_gate_writes_its_verdict_to_the_history_table_only(synth: Synth) -> None:
    raw = synth.raw["example"]
    gate = action(raw, "Test", "SecurityGate")["Configuration"]["FunctionName"]["Ref"]
    role_id = raw["Resources"][gate]["Properties"]["Role"]["Fn::GetAtt"][0]
    record = by_sid(statements_of(raw, role_id), "RecordVerdict")
    assert record["Resource"] == get_att(the_id(raw, "AWS::DynamoDB::Table"))
    assert sorted(record["Action"]) == ["dynamodb:GetItem", "dynamodb:PutItem"]


# ---- encryption and storage ----------------------------------------------------------------


def test_kms_on_every_bucket_topic_log_group_repository_table_and_queue(synth: Synth) -> None:
    checked: set[str] = set()
    for label, raw in synth.raw.items():
        for logical_id, res in raw["Resources"].items():
            props = res.get("Properties", {})
            kind = res["Type"]
            checked.add(kind)
            if kind == "AWS::S3::Bucket":
                (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
                algo = rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"]
                # S3 delivers server access logs only to SSE-S3 buckets.
                is_log_bucket = "AccessLogs" in logical_id
                assert algo == ("AES256" if is_log_bucket else "aws:kms"), (label, logical_id)
            elif kind == "AWS::SNS::Topic":
                assert "KmsMasterKeyId" in props, (label, logical_id)
            elif kind == "AWS::Logs::LogGroup":
                assert "KmsKeyId" in props and "RetentionInDays" in props, (label, logical_id)
            elif kind == "AWS::ECR::Repository":
                assert props["EncryptionConfiguration"]["EncryptionType"] == "KMS"
            elif kind == "AWS::DynamoDB::Table":
                assert props["SSESpecification"]["SSEEnabled"] is True
                assert props["SSESpecification"]["SSEType"] == "KMS"
            elif kind == "AWS::SQS::Queue":
                assert "KmsMasterKeyId" in props, (label, logical_id)
            elif kind == "AWS::KMS::Key":
                assert props["EnableKeyRotation"] is True, (label, logical_id)
    # each kind the test names was in the templates, so each branch above asserted something
    assert checked >= {
        "AWS::S3::Bucket",
        "AWS::SNS::Topic",
        "AWS::Logs::LogGroup",
        "AWS::ECR::Repository",
        "AWS::DynamoDB::Table",
        "AWS::SQS::Queue",
        "AWS::KMS::Key",
    }


def test_repository_has_immutable_tags_scan_on_push_and_lifecycle(synth: Synth) -> None:
    raw = synth.raw["example"]
    (repo,) = resources(raw, "AWS::ECR::Repository").values()
    props = repo["Properties"]
    assert props["RepositoryName"] == "payment-processor-images-shared"
    assert props["ImageTagMutability"] == "IMMUTABLE"
    assert props["ImageScanningConfiguration"] == {"ScanOnPush": True}
    assert props["EncryptionConfiguration"]["KmsKey"] == get_att(key_id(raw))
    rules = json.loads(props["LifecyclePolicy"]["LifecyclePolicyText"])["rules"]
    untagged = [r for r in rules if r["selection"]["tagStatus"] == "untagged"]
    tagged = [r for r in rules if r["selection"]["tagStatus"] == "tagged"]
    assert untagged[0]["selection"]["countType"] == "sinceImagePushed"
    assert untagged[0]["selection"]["countNumber"] == 1
    assert tagged[0]["selection"]["countType"] == "imageCountMoreThan"
    assert tagged[0]["selection"]["countNumber"] == 20
    assert repo["DeletionPolicy"] == "Retain" and repo["UpdateReplacePolicy"] == "Retain"


def test_artifact_bucket_is_versioned_private_ssl_only_and_expires(synth: Synth) -> None:
    raw = synth.raw["example"]
    bucket_id = the_id_prefixed(raw, "AWS::S3::Bucket", "ArtifactStoreBucket")
    bucket = raw["Resources"][bucket_id]
    props = bucket["Properties"]
    assert bucket["DeletionPolicy"] == "Retain"
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    (enc,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert enc["ServerSideEncryptionByDefault"]["KMSMasterKeyID"] == get_att(key_id(raw))
    rules = [r for r in props["LifecycleConfiguration"]["Rules"] if r["Status"] == "Enabled"]
    current = [r["ExpirationInDays"] for r in rules if "ExpirationInDays" in r]
    noncurrent = [
        r["NoncurrentVersionExpiration"]["NoncurrentDays"]
        for r in rules
        if "NoncurrentVersionExpiration" in r
    ]
    assert current == [30] and noncurrent == [7]
    assert props["LoggingConfiguration"]["DestinationBucketName"] == {
        "Ref": the_id_prefixed(raw, "AWS::S3::Bucket", "ArtifactStoreAccessLogs")
    }
    synth.templates["example"].has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "Bucket": {"Ref": bucket_id},
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Deny",
                                "Action": "s3:*",
                                "Principal": {"AWS": "*"},
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        )
                    ]
                )
            },
        },
    )


def test_history_table_is_encrypted_with_pitr_and_deletion_protection(synth: Synth) -> None:
    raw = synth.raw["example"]
    (table,) = resources(raw, "AWS::DynamoDB::Table").values()
    props = table["Properties"]
    assert props["TableName"] == "payment-processor-deployments-shared"
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["SSESpecification"]["KMSMasterKeyId"] == get_att(key_id(raw))
    assert props["DeletionProtectionEnabled"] is True
    assert table["DeletionPolicy"] == "Retain"


# ---- monitoring and notifications ----------------------------------------------------------


def test_alarms_for_failed_and_stuck_executions_notify_the_topic(synth: Synth) -> None:
    raw = synth.raw["example"]
    topic = {"Ref": the_id(raw, "AWS::SNS::Topic")}
    alarms = {
        a["Properties"]["AlarmName"]: a["Properties"]
        for a in resources(raw, "AWS::CloudWatch::Alarm").values()
    }
    failed = alarms["payment-processor-pipeline-failures-shared"]
    stuck = alarms["payment-processor-pipeline-stuck-shared"]
    assert failed["AlarmActions"] == [topic] and stuck["AlarmActions"] == [topic]
    assert stuck["MetricName"] == "OldestExecutionAgeSeconds"
    assert stuck["Threshold"] == 60 * 60  # notifications.max_execution_minutes: 60
    assert {"Name": "Pipeline", "Value": {"Ref": the_id(raw, "AWS::CodePipeline::Pipeline")}} in (
        stuck["Dimensions"]
    )
    for suffix in ("build", "unit-tests", "security-scan"):
        build_failures = alarms[f"payment-processor-{suffix}-failures-shared"]
        assert build_failures["MetricName"] == "FailedBuilds"
        assert build_failures["Dimensions"] == [
            {"Name": "ProjectName", "Value": {"Ref": project_id(raw, suffix)}}
        ]
        assert alarms[f"payment-processor-{suffix}-slow-shared"]["MetricName"] == "Duration"


def test_without_anyone_to_notify_the_alarms_still_watch_builds_stuck_runs_and_deploys(
    synth: Synth,
) -> None:
    raw = synth.raw["single"]
    assert not resources(raw, "AWS::SNS::Topic")
    alarms = {
        a["Properties"]["AlarmName"]: a["Properties"]
        for a in resources(raw, "AWS::CloudWatch::Alarm").values()
    }
    # no failure rule to count, so no failed-execution alarm; everything else still alarms,
    # visible on the dashboard and in the console, with no action to take
    assert "single-env-pipeline-failures-shared" not in alarms
    for name in (
        "single-env-pipeline-stuck-shared",
        "single-env-build-failures-shared",
        "single-env-unit-tests-slow-shared",
        "single-env-live-deploy-failures-shared",
        "single-env-recorder-dead-letters-shared",
    ):
        assert name in alarms, name
    assert all(not a.get("AlarmActions") and not a.get("OKActions") for a in alarms.values())
    # (the checker passes it, DL505 included: test_deployline_check_finds_nothing_at_any_severity)


def test_eventbridge_rules_send_failures_approvals_and_rollbacks_to_the_topic(
    synth: Synth,
) -> None:
    raw = synth.raw["example"]
    topic = {"Ref": the_id(raw, "AWS::SNS::Topic")}
    rules = {
        r["Properties"]["Name"]: r["Properties"]
        for r in resources(raw, "AWS::Events::Rule").values()
        if "Name" in r["Properties"]
    }
    for name in (
        "payment-processor-pipeline-failed-shared",
        "payment-processor-build-failed-shared",
        "payment-processor-approval-waiting-shared",
        "payment-processor-staging-deploy-failed-shared",
        "payment-processor-production-deploy-failed-shared",
    ):
        targets = rules[name]["Targets"]
        assert [t["Arn"] for t in targets] == [topic], name
        assert "InputTransformer" in targets[0], name
    failed = rules["payment-processor-pipeline-failed-shared"]["EventPattern"]
    assert failed["source"] == ["aws.codepipeline"]
    assert failed["detail"] == {
        "pipeline": ["payment-processor-pipeline-shared"],
        "state": ["FAILED"],
    }


def test_outputs_name_the_pipeline_console_repository_bucket_and_topic(synth: Synth) -> None:
    raw = synth.raw["example"]
    outputs = raw["Outputs"]
    assert outputs["PipelineName"]["Value"] == {"Ref": the_id(raw, "AWS::CodePipeline::Pipeline")}
    url = json.dumps(outputs["PipelineConsoleUrl"]["Value"])
    assert "console.aws.amazon.com/codesuite/codepipeline/pipelines/" in url
    assert "payment-processor-pipeline-shared/view" in url
    repo_id = the_id(raw, "AWS::ECR::Repository")
    assert {"Ref": repo_id} in outputs["RepositoryUri"]["Value"]["Fn::Join"][1]
    assert outputs["ArtifactBucketName"]["Value"] == {
        "Ref": the_id_prefixed(raw, "AWS::S3::Bucket", "ArtifactStoreBucket")
    }
    assert outputs["NotificationTopicArn"]["Value"] == {"Ref": the_id(raw, "AWS::SNS::Topic")}


def test_no_literal_account_id_or_region_in_any_agnostic_pipeline_template(synth: Synth) -> None:
    for label in AGNOSTIC:
        raw = synth.raw[label]
        text = json.dumps(raw["Resources"])
        assert not re.search(r"(?<![\d.])\d{12}(?![\d.])", text), label
        assert not re.search(r"\b(us|eu|ap|sa|ca|me|af)-(east|west|north|south|central)-\d\b", text)


# ---- peers ---------------------------------------------------------------------------------


def test_cfn_lint_reports_no_error_or_warning(synth: Synth) -> None:
    matches = [
        f"{label}: {match}" for label, path in synth.paths.items() for match in lint_file(path)
    ]
    assert not matches, "\n".join(matches)


def pipeline_paths(synth: Synth) -> set[str]:
    return {s.stack_name for s in [*synth.stacks.values(), *synth.regional.values()]}


def nag_entries(synth: Synth, key: str) -> list[dict[str, Any]]:
    """cdk-nag findings (key "violations") or acknowledged ones ("suppressedViolations") on
    the pipeline stacks, one entry per construct: rule, path, reason."""
    names = pipeline_paths(synth)
    entries = []
    for report in synth.report.get("pluginReports", []):
        for v in report.get(key, []):
            for c in v.get("violatingConstructs", []):
                path = c.get("constructPath", "")
                if path.split("/")[0] in names:
                    entries.append({"rule": v["ruleName"], "path": path, **v})
    return entries


def test_cdk_nag_reports_no_unacknowledged_finding_in_any_pack(synth: Synth) -> None:
    assert synth.report, "cdk-nag wrote no validation report"
    assert all(ran(synth.report, pack) for pack in COMPLIANCE_PACKS)
    violations = nag_entries(synth, "violations")
    assert not violations, "\n".join(f"{v['rule']} {v['path']}" for v in violations)


def test_every_nag_acknowledgement_has_a_reason_naming_its_resource(synth: Synth) -> None:
    acknowledged = nag_entries(synth, "suppressedViolations")
    assert len(acknowledged) >= 20
    services = [config.service for config in configs().values()]
    for entry in acknowledged:
        reason = entry["reason"]
        assert len(reason) >= 40, entry
        # Resource-specific: the reason names the function, project, role, pipeline, queue
        # or log group it is about (all carry the service's name), or the only-'*' action.
        assert any(service in reason for service in services) or "'*'" in reason, entry
    # The compliance packs' reasons name the very resource (or its owner) they are about.
    names = pipeline_paths(synth)
    entries = [
        e
        for pack in COMPLIANCE_PACKS
        for e in acknowledgements(synth.report, pack)
        if e.stack in names
    ]
    missing: list[Entry] = unnamed_resources(entries, Assembly(synth.outdir), services)
    assert [(e.rule, e.path, e.reason) for e in missing] == []


def test_compliance_findings_accepted_in_the_example_pipeline_are_the_decided_ones(
    synth: Synth,
) -> None:
    """What the example's pipeline stack accepts, rule by rule (each with its reason in code);
    anything else is fixed or a new decision to make."""
    stack = synth.stacks["example"].stack_name
    rules = {
        e.rule.split("-", 1)[1]
        for pack in COMPLIANCE_PACKS
        for e in acknowledgements(synth.report, pack)
        if e.stack == stack
    }
    assert rules == {
        "CodeBuildProjectSourceRepoUrl",  # CODEPIPELINE source: no URL to hold a credential
        "DynamoDBInBackupPlan",  # point-in-time recovery, deletion protection, retained
        "IAMNoInlinePolicy",  # one policy per role, scoped to ARNs
        "LambdaConcurrency",  # reserved concurrency would drain small accounts' pool
        "LambdaDLQ",  # synchronous callers, an on-failure destination, or a schedule
        "LambdaInsideVPC",  # AWS APIs only
        "S3BucketReplicationEnabled",  # artifacts are rebuilt; logs go to your log archive
        "S3DefaultEncryptionKMS",  # S3 server access logs accept SSE-S3 only
    }


def test_checkov_fails_nothing_and_every_skip_has_a_reason(synth: Synth) -> None:
    args = [str(CHECKOV), "--framework", "cloudformation", "--skip-download", "--quiet"]
    for path in synth.paths.values():
        args += ["-f", str(path)]
    result = subprocess.run(
        [*args, "-o", "json"], capture_output=True, text=True, timeout=600, check=False
    )
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    failed = [
        (c["check_id"], c["resource"], c["file_path"])
        for r in reports
        for c in r.get("results", {}).get("failed_checks", [])
    ]
    assert not failed, failed
    for raw in synth.raw.values():
        for logical_id, res in raw["Resources"].items():
            for skip in res.get("Metadata", {}).get("checkov", {}).get("skip", []):
                assert len(skip["comment"]) >= 40, (logical_id, skip)


def test_deployline_check_finds_nothing_at_any_severity(synth: Synth) -> None:
    """DL130 learns the accounts and regions a deployment names from the stacks of the whole
    cloud assembly; this module synthesizes the pipeline's stacks only, so the multi-account
    configs are checked for DL130 with their environment stacks in tests/test_synth.py."""
    result = check_assembly(synth.outdir, threshold="LOW")
    findings = [
        f
        for f in result.findings
        if not (f.rule_id == "DL130" and any(n in f.file for n in ("accounts-", "orders-api-")))
    ]
    assert not findings, [(f.rule_id, f.file, f.resource, f.message) for f in findings]
    # No rule is left unable to decide on our own templates.
    assert not result.unknown, [(f.rule_id, f.file, f.resource, f.message) for f in result.unknown]
