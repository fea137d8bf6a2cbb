"""The deploy commands end to end: the real CDK CLI and boto3 against one moto server.

One story, in order (each test builds on the state the ones before it left): preflight before
bootstrap, `cdk bootstrap`, preflight after it; the first `deployline deploy` of the staging
environment; the pipeline's deploy of an image tag (a CloudFormation update with the `ImageTag`
parameter, as its deploy action does); a laptop deploy of a changed config, which must keep that
image; `deployline diff`; `deployline rollback` from the history table; `deployline destroy` and its
verification.

What moto's CloudFormation leaves out of the environment stack (and so what is not asserted):
AWS::S3::BucketPolicy, AWS::EC2::SecurityGroupEgress, AWS::CloudWatch::Alarm and Application Auto
Scaling (it skips them with a warning); the Lambda-backed custom resource that locks the default
security group does not run (no Docker). The pipeline stack cannot be deployed at all
(AWS::CodeBuild::Project is unsupported and a Fn::GetAtt on it fails the change set), and moto has
no CodeConnections: the connection check reads a stubbed client.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from botocore.stub import Stubber
from typer.testing import CliRunner

from deployline.cli import app, register_commands
from deployline.config import DeploylineConfig, load_config, parse_config_text
from deployline.contract import IMAGE_TAG_PARAMETER
from deployline.deploy.assembly import Placement
from deployline.deploy.aws import Aws
from deployline.deploy.cdk import CDK_CLI_VERSION, CdkCli
from deployline.deploy.operations import Plan, choose
from deployline.deploy.preflight import check_account, check_bootstrap, run_preflight
from deployline.deploy.rollback import history_table, image_repository
from deployline.runtime import records
from deployline.synth import synthesize
from runtime.conftest import create_deployments_table

from .conftest import ACCOUNT, REGION, ROOT, Moto

STACK = "payment-processor-service-staging"
PIPELINE = "payment-processor-pipeline-shared"
CONNECTION_PARAMETER = "/deployline/payment-processor/connection-arn"
CONNECTION_ARN = (
    "arn:aws:codestar-connections:eu-west-1:123456789012:connection/"
    "0f1e2d3c-4b5a-6978-8091-a2b3c4d5e6f7"
)
PLACEHOLDER = "public.ecr.aws/docker/library/caddy:2-alpine"
REGISTRY = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/payment-processor-images-shared"
OTHER_ACCOUNT = "222222222222"

runner = CliRunner()
register_commands(["deploy", "diff", "rollback", "destroy"])


def invoke(command: str, project: Project, config: Path, *args: str) -> Any:
    """`deployline COMMAND --config CONFIG --out <project>/cdk.out ARGS...`, in process."""
    return runner.invoke(app, [command, "--config", str(config), "--out", str(project.out), *args])


def config_data(**staging: Any) -> dict[str, Any]:
    """The example deployline.yaml with one environment, staging, which keeps its data on delete
    (so destroy has something to keep), changed by `staging`."""
    data: dict[str, Any] = yaml.safe_load((ROOT / "deployline.yaml").read_text())
    data["environments"] = [
        {
            "name": "staging",
            "desired_count": 1,
            "min_capacity": 1,
            "max_capacity": 2,
            "cpu": 256,
            "memory": 512,
            "destroy_on_delete": False,
            "plain_http": True,  # no certificate: moto issues none, and none is needed here
            **staging,
        }
    ]
    return data


@dataclasses.dataclass(frozen=True)
class Project:
    root: Path
    config: Path  #: cpu 256
    changed: Path  #: the same with cpu 512 and memory 1024

    @property
    def out(self) -> Path:
        return self.root / "cdk.out"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    root = tmp_path_factory.mktemp("project")
    config, changed = root / "deployline.yaml", root / "changed.yaml"
    config.write_text(yaml.safe_dump(config_data()))
    changed.write_text(yaml.safe_dump(config_data(cpu=512, memory=1024)))
    return Project(root, config, changed)


@pytest.fixture(scope="module")
def plan(project: Project, moto: Moto) -> Plan:
    """The one synth of the module's config (the commands synthesize for themselves)."""
    out = project.root / "assembly"
    synthesize(project.config, out, check=False)
    return choose(load_config(project.config), out)


@pytest.fixture(scope="module")
def has_image_tag(plan: Plan) -> bool:
    return IMAGE_TAG_PARAMETER in plan.environments["staging"].parameters()


def needs_image_tag(has_image_tag: bool) -> None:
    """The tests of the image path need the environment stack's ImageTag parameter."""
    assert has_image_tag, "the synthesized environment stack has no ImageTag parameter"


def stubbed_connection(status: str) -> Any:
    """A CodeConnections client that answers GetConnection with `status` (moto has none)."""
    import boto3

    client = boto3.client("codestar-connections", region_name=REGION)
    stubber = Stubber(client)
    stubber.add_response(
        "get_connection",
        {
            "Connection": {
                "ConnectionName": "github-acme",
                "ConnectionArn": CONNECTION_ARN,
                "ProviderType": "GitHub",
                "ConnectionStatus": status,
            }
        },
        {"ConnectionArn": CONNECTION_ARN},
    )
    stubber.activate()
    return lambda service, region: client


def stack(moto: Moto) -> dict[str, Any]:
    answer: dict[str, Any] = moto.client("cloudformation").describe_stacks(StackName=STACK)
    return answer["Stacks"][0]  # type: ignore[no-any-return]


def parameter(moto: Moto, name: str) -> str | None:
    values = {p["ParameterKey"]: p.get("ParameterValue") for p in stack(moto)["Parameters"]}
    return values.get(name)


def service_image(moto: Moto) -> str:
    """The image of the task definition the staging service runs (moto's ECS service, created by
    its CloudFormation)."""
    ecs = moto.client("ecs")
    cluster = next(a for a in ecs.list_clusters()["clusterArns"] if "staging" in a)
    (service,) = ecs.describe_services(
        cluster=cluster, services=ecs.list_services(cluster=cluster)["serviceArns"]
    )["services"]
    definition = ecs.describe_task_definition(taskDefinition=service["taskDefinition"])
    return str(definition["taskDefinition"]["containerDefinitions"][0]["image"])


def stack_image(moto: Moto) -> str:
    """The image of the task definition the stack holds (its AWS::ECS::TaskDefinition resource).

    On a stack update moto registers a new task definition but neither points the service at it
    nor converts its container definitions to the API's camelCase, so this reads the stack's
    resource, and the container's image under either spelling."""
    summaries = moto.client("cloudformation").list_stack_resources(StackName=STACK)
    (arn,) = (
        r["PhysicalResourceId"]
        for r in summaries["StackResourceSummaries"]
        if r["ResourceType"] == "AWS::ECS::TaskDefinition"
    )
    definition = moto.client("ecs").describe_task_definition(taskDefinition=arn)
    container = definition["taskDefinition"]["containerDefinitions"][0]
    return str(container.get("image") or container["Image"])


def deployed_cpu(moto: Moto) -> str:
    """The task definition's Cpu in the template CloudFormation holds (moto's ECS drops it)."""
    body = moto.client("cloudformation").get_template(StackName=STACK)["TemplateBody"]
    template = json.loads(body) if isinstance(body, str) else body
    (cpu,) = (
        r["Properties"]["Cpu"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::ECS::TaskDefinition"
    )
    return str(cpu)


# ---- preflight and bootstrap --------------------------------------------------------------


def test_preflight_before_bootstrap_names_the_bootstrap_command(plan: Plan, moto: Moto) -> None:
    result = run_preflight(plan.config, plan.stacks, Aws(), pipeline_stack=PIPELINE)
    failures = {c.name: (c.detail, c.fix) for c in result.failures}
    assert failures == {
        f"bootstrap aws://{ACCOUNT}/{REGION}": (
            "not bootstrapped (no SSM parameter /cdk-bootstrap/hnb659fds/version)",
            f"npx aws-cdk@{CDK_CLI_VERSION} bootstrap aws://{ACCOUNT}/{REGION}",
        ),
        "source connection": (
            f"SSM parameter {CONNECTION_PARAMETER} (source.connection_parameter) does not exist "
            f"in {REGION}",
            "create a connection to GitHub (https://console.aws.amazon.com/codesuite/settings/"
            f"connections?region={REGION} → Create connection), finish its handshake, then `aws "
            f"ssm put-parameter --region {REGION} --type String --name {CONNECTION_PARAMETER} "
            "--value <the connection's ARN>`",
        ),
    }
    assert [c.name for c in result.checks if c.ok] == [
        "credentials",
        "account",
        "e-mail subscriptions",
    ]


def test_cdk_bootstrap_with_the_pinned_cli(cdk_cli: CdkCli, moto: Moto, tmp_path: Path) -> None:
    lines: list[str] = []
    code = cdk_cli.run(
        ["bootstrap", f"aws://{ACCOUNT}/{REGION}", "--no-notices", "--no-color"],
        cwd=tmp_path,
        on_line=lines.append,
    )
    assert code == 0, "\n".join(lines)
    assert f"Environment aws://{ACCOUNT}/{REGION} bootstrapped." in "\n".join(lines)
    version = moto.client("ssm").get_parameter(Name="/cdk-bootstrap/hnb659fds/version")
    assert int(version["Parameter"]["Value"]) >= 6


def test_preflight_passes_once_bootstrapped_and_the_connection_is_available(
    plan: Plan, moto: Moto
) -> None:
    moto.client("ssm").put_parameter(Name=CONNECTION_PARAMETER, Type="String", Value=CONNECTION_ARN)
    result = run_preflight(
        plan.config,
        plan.stacks,
        Aws(),
        pipeline_stack=PIPELINE,
        connection_client=stubbed_connection("AVAILABLE"),
    )
    assert result.passed, result.failures
    assert [(c.name, c.ok) for c in result.checks] == [
        ("credentials", True),
        ("account", True),
        (f"bootstrap aws://{ACCOUNT}/{REGION}", True),
        (f"bootstrap bucket cdk-hnb659fds-assets-{ACCOUNT}-{REGION}", True),
        # staging's alarm topic (the plan deploys staging; its config serves plain HTTP, so
        # there is no hosted zone to check)
        ("e-mail subscriptions (staging alarms)", True),
        ("source connection", True),
        ("e-mail subscriptions", True),
    ]
    assert (
        result.checks[0].detail == f"arn:aws:sts::{ACCOUNT}:user/moto (account {ACCOUNT}, {REGION})"
    )


def test_a_pending_connection_fails_with_the_handshake_fix(plan: Plan, moto: Moto) -> None:
    result = run_preflight(
        plan.config,
        plan.stacks,
        Aws(),
        pipeline_stack=PIPELINE,
        connection_client=stubbed_connection("PENDING"),
    )
    (failure,) = result.failures
    assert failure.name == "source connection"
    assert failure.detail == "connection github-acme is PENDING, not AVAILABLE"
    assert failure.fix is not None
    assert failure.fix.startswith(
        f"open https://console.aws.amazon.com/codesuite/settings/connections?region={REGION}, "
        "choose the connection and finish its handshake"
    )


def test_an_old_bootstrap_stack_fails_with_the_command_that_upgrades_it(
    plan: Plan, moto: Moto
) -> None:
    ssm = moto.client("ssm")
    name = "/cdk-bootstrap/hnb659fds/version"
    current = ssm.get_parameter(Name=name)["Parameter"]["Value"]
    ssm.put_parameter(Name=name, Type="String", Value="5", Overwrite=True)
    try:
        checks = check_bootstrap(plan.config, Placement(ACCOUNT, REGION), plan.stacks, Aws())
    finally:
        ssm.put_parameter(Name=name, Type="String", Value=current, Overwrite=True)
    assert [(c.ok, c.detail, c.fix) for c in checks] == [
        (
            False,
            "bootstrap version 5 is older than the 6 these templates need",
            f"npx aws-cdk@{CDK_CLI_VERSION} bootstrap aws://{ACCOUNT}/{REGION}",
        )
    ]


def test_a_deleted_bootstrap_bucket_fails_with_how_to_recreate_it(plan: Plan, moto: Moto) -> None:
    s3 = moto.client("s3")
    bucket = f"cdk-hnb659fds-assets-{ACCOUNT}-{REGION}"
    s3.delete_bucket(Bucket=bucket)
    try:
        checks = check_bootstrap(plan.config, Placement(ACCOUNT, REGION), plan.stacks, Aws())
    finally:
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    assert [(c.name, c.ok) for c in checks] == [
        (f"bootstrap aws://{ACCOUNT}/{REGION}", True),
        (f"bootstrap bucket {bucket}", False),
    ]
    assert checks[1].fix == (
        "delete the bootstrap stack, then bootstrap again: `aws cloudformation delete-stack "
        f"--stack-name CDKToolkit --region {REGION}`, then `npx aws-cdk@{CDK_CLI_VERSION} "
        f"bootstrap aws://{ACCOUNT}/{REGION}`"
    )


def test_credentials_of_another_account_than_the_pipelines_fail(plan: Plan, moto: Moto) -> None:
    data = config_data()
    data["pipeline"] = {"account": "111111111111", "region": REGION}
    config = parse_config_text(yaml.safe_dump(data))
    check = check_account(config, plan.stacks, Aws())
    assert not check.ok
    assert check.detail == (
        f"the credentials are for account {ACCOUNT} (arn:aws:sts::{ACCOUNT}:user/moto), but "
        "deployline.yaml's pipeline.account is 111111111111: the other accounts trust that one"
    )
    assert check.fix == (
        "use credentials for account 111111111111: `aws sso login --profile <a profile for "
        "111111111111>` and pass --profile with it"
    )


def test_another_account_is_checked_through_its_bootstrap_deploy_role(
    plan: Plan, moto: Moto
) -> None:
    """An environment in another account: the bootstrap there is read as the CLI reads it, by
    assuming cdk-<qualifier>-deploy-role-<account>-<region> (moto lets any role be assumed and
    switches to that role's account)."""
    data = config_data(account=OTHER_ACCOUNT)
    data["pipeline"] = {"account": ACCOUNT, "region": REGION}
    config = parse_config_text(yaml.safe_dump(data))
    where = Placement(OTHER_ACCOUNT, REGION)
    staging = dataclasses.replace(plan.environments["staging"], placement=where)
    bootstrap = (
        f"npx aws-cdk@{CDK_CLI_VERSION} bootstrap aws://{OTHER_ACCOUNT}/{REGION} --trust "
        f"{ACCOUNT} --trust-for-lookup {ACCOUNT} --cloudformation-execution-policies "
        f"arn:aws:iam::aws:policy/AdministratorAccess (with credentials for account "
        f"{OTHER_ACCOUNT})"
    )
    (before,) = check_bootstrap(config, where, [staging], Aws())
    assert (before.ok, before.fix) == (False, bootstrap)

    role = f"arn:aws:iam::{OTHER_ACCOUNT}:role/cdk-hnb659fds-deploy-role-{OTHER_ACCOUNT}-{REGION}"
    credentials = moto.client("sts").assume_role(RoleArn=role, RoleSessionName="test")[
        "Credentials"
    ]
    as_other = {
        "aws_access_key_id": credentials["AccessKeyId"],
        "aws_secret_access_key": credentials["SecretAccessKey"],
        "aws_session_token": credentials["SessionToken"],
    }
    moto.client("ssm", **as_other).put_parameter(
        Name="/cdk-bootstrap/hnb659fds/version", Type="String", Value="30"
    )
    moto.client("s3", **as_other).create_bucket(
        Bucket=f"cdk-hnb659fds-assets-{OTHER_ACCOUNT}-{REGION}",
        CreateBucketConfiguration={"LocationConstraint": REGION},
    )
    after = check_bootstrap(config, where, [staging], Aws())
    assert [(c.name, c.ok, c.detail) for c in after] == [
        (f"bootstrap aws://{OTHER_ACCOUNT}/{REGION}", True, "version 30 (qualifier hnb659fds)"),
        (f"bootstrap bucket cdk-hnb659fds-assets-{OTHER_ACCOUNT}-{REGION}", True, "exists"),
    ]


# ---- deploy, the pipeline's deploy, a laptop deploy ---------------------------------------


def test_the_first_deploy_starts_the_environment_on_the_placeholder_image(
    project: Project, moto: Moto, has_image_tag: bool
) -> None:
    result = invoke("deploy", project, project.config, "--env", "staging", "--yes")
    assert result.exit_code == 0, result.output
    assert f"ok  bootstrap aws://{ACCOUNT}/{REGION}: version" in result.output
    assert re.search(rf"{STACK} \d+/\d+ CREATE_COMPLETE AWS::CloudFormation::Stack", result.output)
    assert f"staging: {STACK} deployed" in result.output
    assert stack(moto)["StackStatus"] in {"CREATE_COMPLETE", "UPDATE_COMPLETE"}
    assert service_image(moto) == PLACEHOLDER
    assert stack_image(moto) == PLACEHOLDER
    assert deployed_cpu(moto) == "256"
    needs_image_tag(has_image_tag)
    assert parameter(moto, IMAGE_TAG_PARAMETER) == ""


def pipeline_deploy(moto: Moto, plan: Plan, tag: str) -> None:
    """What the pipeline's Deploy action does: a CloudFormation update of the stack from the
    template its synth step published, with ParameterOverrides {"ImageTag": tag}."""
    staging = plan.environments["staging"]
    bucket = f"cdk-hnb659fds-assets-{ACCOUNT}-{REGION}"
    key = f"pipeline/{STACK}.template.json"
    moto.client("s3").put_object(Bucket=bucket, Key=key, Body=staging.template_file.read_bytes())
    cloudformation = moto.client("cloudformation")
    cloudformation.update_stack(
        StackName=STACK,
        TemplateURL=f"{moto.url}/{bucket}/{key}",
        Parameters=[{"ParameterKey": IMAGE_TAG_PARAMETER, "ParameterValue": tag}],
        Capabilities=["CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
    )


def test_the_pipeline_deploys_an_image_through_the_image_tag_parameter(
    plan: Plan, moto: Moto, has_image_tag: bool
) -> None:
    needs_image_tag(has_image_tag)
    pipeline_deploy(moto, plan, "c0ffee1")
    assert parameter(moto, IMAGE_TAG_PARAMETER) == "c0ffee1"
    assert stack_image(moto) == f"{REGISTRY}:c0ffee1"


def test_a_laptop_deploy_of_a_changed_config_keeps_the_pipelines_image(
    project: Project, moto: Moto, has_image_tag: bool
) -> None:
    needs_image_tag(has_image_tag)
    result = invoke("deploy", project, project.changed, "--env", "staging", "--yes")
    assert result.exit_code == 0, result.output
    assert stack(moto)["StackStatus"] == "UPDATE_COMPLETE"
    assert parameter(moto, IMAGE_TAG_PARAMETER) == "c0ffee1"
    assert deployed_cpu(moto) == "512"
    assert stack_image(moto) == f"{REGISTRY}:c0ffee1"


def test_diff_of_the_deployed_config_finds_no_difference(
    project: Project, moto: Moto, has_image_tag: bool
) -> None:
    needs_image_tag(has_image_tag)
    result = invoke("diff", project, project.changed, "--env", "staging", "--fail")
    assert result.exit_code == 0, result.output
    assert f"Stack {STACK} (aws://{ACCOUNT}/{REGION})" in result.output
    assert "There were no differences" in result.output


def test_diff_of_another_config_shows_the_replaced_task_definition_and_fails(
    project: Project, moto: Moto, has_image_tag: bool
) -> None:
    needs_image_tag(has_image_tag)
    result = invoke("diff", project, project.config, "--env", "staging", "--fail")
    assert result.exit_code == 1, result.output
    assert (
        "[~] AWS::ECS::TaskDefinition Service/TaskDefinition ServiceTaskDefinition55FA0F15 "
        "replace\n"
        " ├─ [~] Cpu (requires replacement)\n"
        " │   ├─ [-] 512\n"
        " │   └─ [+] 256\n"
    ) in result.output
    assert "Number of stacks with differences: 1" in result.output


# ---- rollback -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def history(plan: Plan, moto: Moto) -> Iterator[None]:
    """The history table (the recorder's layout, deployline.runtime.records) with two successful
    deployments of staging, and the image repository holding both images."""
    config: DeploylineConfig = plan.config
    dynamodb = moto.client("dynamodb")
    create_deployments_table(dynamodb, history_table(config))
    start = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    for n, (execution, tag) in enumerate([("exec-1", "beef001"), ("exec-2", "c0ffee1")]):
        started = start + timedelta(hours=n)
        item = {
            **records.record_key(execution, "staging"),
            "execution_id": execution,
            records.GSI_PK: "staging",
            records.GSI_SK: records.iso(started),
            "status": "succeeded",
            "image_tag": tag,
            "commit_sha": f"{tag}{'0' * 33}",
        }
        dynamodb.put_item(TableName=history_table(config), Item=records.serialize(item))
    ecr = moto.client("ecr")
    repository = image_repository(config)
    ecr.create_repository(repositoryName=repository)
    for tag in ("beef001", "c0ffee1"):
        manifest = (
            '{"schemaVersion": 2, "mediaType": '
            '"application/vnd.docker.distribution.manifest.v2+json", "config": {"digest": '
            f'"sha256:{tag}"}}, "layers": []}}'
        )
        ecr.put_image(repositoryName=repository, imageManifest=manifest, imageTag=tag)
    yield


def test_rollback_refuses_when_the_local_config_differs_from_the_deployed_stack(
    project: Project, moto: Moto, has_image_tag: bool, history: None
) -> None:
    needs_image_tag(has_image_tag)
    result = invoke("rollback", project, project.config, "--env", "staging", "--yes")
    assert result.exit_code == 2, result.output
    assert "Resources.ServiceTaskDefinition" in result.output
    assert "a rollback changes only the image" in result.output
    assert parameter(moto, IMAGE_TAG_PARAMETER) == "c0ffee1"


def test_rollback_to_an_unrecorded_commit_names_the_recorded_ones(
    project: Project, moto: Moto, has_image_tag: bool, history: None
) -> None:
    needs_image_tag(has_image_tag)
    result = invoke(
        "rollback", project, project.changed, "--env", "staging", "--to", "deadbeef", "--yes"
    )
    assert result.exit_code == 2, result.output
    assert "no successful deployment of staging ran commit or image 'deadbeef'" in result.output
    assert "c0ffee1 (commit c0ffee100000" in result.output


def test_rollback_redeploys_the_previous_image_through_the_image_tag_parameter(
    project: Project, moto: Moto, has_image_tag: bool, history: None
) -> None:
    needs_image_tag(has_image_tag)
    result = invoke("rollback", project, project.changed, "--env", "staging", "--yes")
    assert result.exit_code == 0, result.output
    assert "staging runs image beef001 again." in result.output
    assert parameter(moto, IMAGE_TAG_PARAMETER) == "beef001"
    assert stack_image(moto) == f"{REGISTRY}:beef001"
    assert deployed_cpu(moto) == "512"


# ---- destroy ------------------------------------------------------------------------------


def listed(output: str, state: str) -> set[str]:
    """The ARNs destroy reported in `state` (left, kept, ...)."""
    return set(re.findall(rf"^{state}: (\S+) \(", output, re.M))


def test_destroy_keeps_what_staging_retains_and_names_every_leftover(
    project: Project, moto: Moto
) -> None:
    """moto's CloudFormation cannot delete the stack's VPC ("has dependencies") and leaves its
    flow log; with a log group tagged for staging by hand, the verification must name all three
    and fail, and list what the stack keeps on delete as kept."""
    logs = moto.client("logs")
    stray = "/deployline/payment-processor/staging/left-by-hand"
    logs.create_log_group(
        logGroupName=stray, tags={"Service": "payment-processor", "Environment": "staging"}
    )
    result = invoke("destroy", project, project.changed, "--env", "staging", "--yes")
    assert result.exit_code == 1, result.output
    assert f"{STACK}: deleted" in result.output
    left = listed(result.output, "left")
    vpc = next(a for a in left if ":vpc/" in a)
    flow_log = next(a for a in left if ":flow-logs/" in a)
    assert left == {f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{stray}", vpc, flow_log}
    kept = listed(result.output, "kept")
    key = next(a for a in kept if a.startswith(f"arn:aws:kms:{REGION}:{ACCOUNT}:key/"))
    assert kept == {
        key,
        f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/deployline/payment-processor/staging/app",
        f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/deployline/payment-processor/staging/"
        "vpc-flow-logs",
        f"arn:aws:s3:::payment-processor-alb-logs-{ACCOUNT}-{REGION}-staging",
    }
    assert (
        "error: the AWS CDK CLI failed (exit 1; its lines are above); 3 resource(s) of the "
        "environment are left (listed above)" in result.output
    )

    logs.delete_log_group(logGroupName=stray)
    delete_vpc_by_hand(moto.client("ec2"), vpc.rsplit("/", 1)[1], flow_log.rsplit("/", 1)[1])


def delete_vpc_by_hand(ec2: Any, vpc: str, flow_log: str) -> None:
    """What is left of the VPC moto's CloudFormation could not delete: its flow log, and the
    subnets and route tables that moto's tagging API does not list."""
    ec2.delete_flow_logs(FlowLogIds=[flow_log])
    where = [{"Name": "vpc-id", "Values": [vpc]}]
    for table in ec2.describe_route_tables(Filters=where)["RouteTables"]:
        for association in table.get("Associations", []):
            if not association.get("Main"):
                ec2.disassociate_route_table(AssociationId=association["RouteTableAssociationId"])
        if not any(a.get("Main") for a in table.get("Associations", [])):
            ec2.delete_route_table(RouteTableId=table["RouteTableId"])
    for subnet in ec2.describe_subnets(Filters=where)["Subnets"]:
        ec2.delete_subnet(SubnetId=subnet["SubnetId"])
    attached = [{"Name": "attachment.vpc-id", "Values": [vpc]}]
    for gateway in ec2.describe_internet_gateways(Filters=attached)["InternetGateways"]:
        ec2.detach_internet_gateway(InternetGatewayId=gateway["InternetGatewayId"], VpcId=vpc)
        ec2.delete_internet_gateway(InternetGatewayId=gateway["InternetGatewayId"])
    ec2.delete_vpc(VpcId=vpc)


def test_destroy_with_delete_retained_deletes_what_was_kept_and_verifies(
    project: Project, moto: Moto
) -> None:
    result = invoke(
        "destroy", project, project.changed, "--env", "staging", "--yes", "--delete-retained"
    )
    assert result.exit_code == 0, result.output
    assert f"{STACK} does not exist in aws://{ACCOUNT}/{REGION}" in result.output
    assert re.findall(r"^deleted(?: \(emptied first\))?: (\S+)$", result.output, re.M) == [
        f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/deployline/payment-processor/staging/app",
        f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/deployline/payment-processor/staging/"
        "vpc-flow-logs",
        f"arn:aws:s3:::payment-processor-alb-logs-{ACCOUNT}-{REGION}-staging",
    ]
    scheduled = r"^scheduled for deletion on \d{4}-\d\d-\d\d: arn:aws:kms:"
    assert re.search(scheduled, result.output, re.M)
    assert listed(result.output, "left") == set()
    assert "Verified: nothing of the environment is left." in result.output
