"""EnvironmentStack on synthesized templates: one synth of seven environments for the module.

The example's staging (rolling, public network, destroyable) and production (blue/green with a
canary, retained) environments, plus variations built in code from the example: private subnets
behind NAT (qa), isolated subnets with VPC endpoints and blue/green all at once (perf), an existing
VPC (dev), HTTPS with a certificate in a production blue/green environment shifting linearly
(live), and an environment in another account and region than the pipeline and its image
repository (edge). The example's environments serve HTTPS with a certificate created for their
domain and a web ACL; the variations serve plain HTTP by choice, without one (live: a certificate
given, a web ACL as production); qa and edge also name the team's existing alert topic. Each
template then goes through cfn-lint, cdk-nag (AwsSolutions and the NIST 800-53 R5, PCI DSS 3.2.1
and HIPAA Security packs), checkov and deployline's own checker.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from aws_cdk import App, Aws, Stack, Token
from aws_cdk.assertions import Match
from cfnlint.api import lint_file
from typer.testing import CliRunner

from deployline.checks.api import check_files
from deployline.checks.rules.security.hardcoded_account_region import literal_locations
from deployline.cli import app as cli_app
from deployline.config import ConfigError, DeploylineConfig, load_config
from deployline.constructs.load_balancer import access_log_bucket_name, certificate_in_this_stack
from deployline.constructs.service_image import IMAGE_TAG_PATTERN
from deployline.naming import Namer
from deployline.stacks.environment_stack import EnvironmentStack
from nag_reports import (  # tests/nag_reports.py
    COMPLIANCE_PACKS,
    PACKS,
    Assembly,
    acknowledgements,
    findings,
    ran,
    unnamed_resources,
)

from .conftest import (
    Synthesized,
    config_from,
    example_data,
    synth_environments,
    with_environments,
)

VENV_BIN = Path(sys.executable).parent
CERTIFICATE_ID = "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"
CERTIFICATE = f"arn:aws:acm:eu-west-1:123456789012:certificate/{CERTIFICATE_ID}"

PRIVATE_NAT = {
    "name": "qa",
    "deployment": "rolling",
    "desired_count": 2,
    "min_capacity": 2,
    "max_capacity": 5,
    "cpu": 1024,
    "memory": 2048,
    "container_port": 9000,
    "health_check_path": "/ready",
    "ingress_cidrs": ["203.0.113.0/24", "198.51.100.0/24"],
    "network": {"mode": "private", "nat_gateways": 2, "vpc_cidr": "10.20.0.0/16"},
    "log_retention_days": 90,
    "plain_http": True,
}
ENDPOINTS = {
    "name": "perf",
    "deployment": "blue_green",
    "desired_count": 1,
    "min_capacity": 1,
    "max_capacity": 3,
    "test_listener_port": 9443,
    "test_listener_cidrs": ["192.0.2.0/24"],
    "bake_minutes": 15,
    "network": {"mode": "endpoints", "extra_endpoints": ["secretsmanager"]},
    "plain_http": True,
}
EXISTING_VPC = {
    "name": "dev",
    "deployment": "rolling",
    "desired_count": 1,
    "min_capacity": 1,
    "max_capacity": 2,
    "network": {
        "mode": "private",
        "vpc_id": "vpc-0abc1234def567890",
        "vpc_cidr": "172.31.0.0/16",
        "availability_zones": ["eu-west-1a", "eu-west-1b"],
        "public_subnet_ids": ["subnet-0aaa1111bbb22222a", "subnet-0aaa1111bbb22222b"],
        "private_subnet_ids": ["subnet-0ccc3333ddd44444a", "subnet-0ccc3333ddd44444b"],
    },
    "plain_http": True,
}
HTTPS = {
    "name": "live",
    "deployment": "blue_green",
    "production": True,
    "desired_count": 2,
    "min_capacity": 2,
    "max_capacity": 4,
    "certificate_arn": CERTIFICATE,
    "domain_name": "pay.example.com",
    "test_listener_port": 8443,
    "traffic_shifting": "linear_10_percent_every_3_minutes",
}
#: The hosted zone of the example's domains.
ZONE = "Z0123456789ABCDEFGHIJ"
#: The team's existing alert topic (notifications.sns_topic_arn) of the qa and edge configs.
TEAM_TOPIC = "arn:aws:sns:eu-west-1:111111111111:ops-alerts"
PIPELINE_ACCOUNT = "111111111111"
PIPELINE_REGION = "eu-west-1"
EDGE_ACCOUNT = "222222222222"
EDGE_REGION = "us-east-1"
OTHER_ACCOUNT = {
    "name": "edge",
    "deployment": "rolling",
    "account": EDGE_ACCOUNT,
    "region": EDGE_REGION,
    "desired_count": 1,
    "min_capacity": 1,
    "max_capacity": 2,
    "plain_http": True,
}

STAGING = "payment-processor-service-staging"
PRODUCTION = "payment-processor-service-production"
QA = "payment-processor-service-qa"
PERF = "payment-processor-service-perf"
DEV = "payment-processor-service-dev"
LIVE = "payment-processor-service-live"
EDGE = "payment-processor-service-edge"
ALL = [STAGING, PRODUCTION, QA, PERF, DEV, LIVE, EDGE]
#: Stacks with no account or region: no literal one may appear in them.
AGNOSTIC = [STAGING, PRODUCTION, QA, PERF, DEV, LIVE]
ROLLING = [STAGING, QA, DEV, EDGE]
BLUE_GREEN = [PRODUCTION, PERF, LIVE]
RETAINED = [PRODUCTION, LIVE]
DESTROYABLE = [STAGING, QA, PERF, DEV, EDGE]
STATEFUL_TYPES = {"AWS::KMS::Key", "AWS::Logs::LogGroup", "AWS::S3::Bucket"}
#: Characters EC2 accepts in security group and rule descriptions.
EC2_DESCRIPTION = r"^[a-zA-Z0-9. _\-:/()#,@\[\]+=&;{}!$*]*$"


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    configs = [
        config_from(example_data()),
        with_team_topic(PRIVATE_NAT),
        with_environments(ENDPOINTS),
        with_environments(EXISTING_VPC),
        with_environments(HTTPS),
        in_other_account(),
    ]
    return synth_environments(configs, tmp_path_factory.mktemp("environments"))


def in_other_account() -> DeploylineConfig:
    """The edge environment in its own account and region; the pipeline (and its image
    repository, and the team's existing topic) in PIPELINE_ACCOUNT/PIPELINE_REGION."""
    data = example_data()
    data["pipeline"] = {
        **data.get("pipeline", {}),
        "account": PIPELINE_ACCOUNT,
        "region": PIPELINE_REGION,
    }
    data["environments"] = [OTHER_ACCOUNT]
    data["notifications"]["sns_topic_arn"] = TEAM_TOPIC
    return config_from(data)


def with_team_topic(environment: dict[str, Any]) -> DeploylineConfig:
    """The example with one environment, whose alerts also go to the team's existing topic."""
    data = example_data()
    data["environments"] = [environment]
    data["notifications"]["sns_topic_arn"] = TEAM_TOPIC
    return config_from(data)


# --- helpers ------------------------------------------------------------------------------------


def of_type(synth: Synthesized, stack: str, type_: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in synth.raw[stack]["Resources"].items() if v["Type"] == type_}


def one(synth: Synthesized, stack: str, type_: str, prefix: str = "") -> tuple[str, dict[str, Any]]:
    [(logical_id, resource)] = [
        (k, v) for k, v in of_type(synth, stack, type_).items() if k.startswith(prefix)
    ]
    return logical_id, resource


def props(synth: Synthesized, stack: str, type_: str, prefix: str = "") -> dict[str, Any]:
    props_: dict[str, Any] = one(synth, stack, type_, prefix)[1]["Properties"]
    return props_


def ref(synth: Synthesized, stack: str, type_: str, prefix: str = "") -> dict[str, str]:
    return {"Ref": one(synth, stack, type_, prefix)[0]}


def arn(synth: Synthesized, stack: str, type_: str, prefix: str = "") -> dict[str, list[str]]:
    return {"Fn::GetAtt": [one(synth, stack, type_, prefix)[0], "Arn"]}


def container(synth: Synthesized, stack: str) -> dict[str, Any]:
    [app] = props(synth, stack, "AWS::ECS::TaskDefinition")["ContainerDefinitions"]
    return dict(app)


def service_sg(synth: Synthesized, stack: str) -> str:
    return one(synth, stack, "AWS::EC2::SecurityGroup", "ServiceSecurityGroup")[0]


def alb_sg(synth: Synthesized, stack: str) -> str:
    return one(synth, stack, "AWS::EC2::SecurityGroup", "LoadBalancerSecurityGroup")[0]


def listener(synth: Synthesized, stack: str, port: int) -> dict[str, Any]:
    [found] = [
        r["Properties"]
        for r in of_type(synth, stack, "AWS::ElasticLoadBalancingV2::Listener").values()
        if r["Properties"]["Port"] == port
    ]
    return dict(found)


def https_listener(synth: Synthesized, stack: str) -> str:
    [logical_id] = [
        k
        for k, v in of_type(synth, stack, "AWS::ElasticLoadBalancingV2::Listener").items()
        if v["Properties"]["Port"] == 443
    ]
    return logical_id


def ingress(synth: Synthesized, stack: str) -> list[tuple[str, int, int]]:
    rules = props(synth, stack, "AWS::EC2::SecurityGroup", "LoadBalancerSecurityGroup")[
        "SecurityGroupIngress"
    ]
    return sorted((r["CidrIp"], r["FromPort"], r["ToPort"]) for r in rules)


def attributes(synth: Synthesized, stack: str) -> dict[str, Any]:
    lb = props(synth, stack, "AWS::ElasticLoadBalancingV2::LoadBalancer")
    return {a["Key"]: a["Value"] for a in lb["LoadBalancerAttributes"]}


def ecr_uri(path: str, *more: Any) -> dict[str, Any]:
    """`<this account>.dkr.ecr.<this region>.<url suffix><path>...` as CDK joins it."""
    return {
        "Fn::Join": [
            "",
            [
                {"Ref": "AWS::AccountId"},
                ".dkr.ecr.",
                {"Ref": "AWS::Region"},
                ".",
                {"Ref": "AWS::URLSuffix"},
                path,
                *more,
            ],
        ]
    }


def image_choice(placeholder: Any) -> dict[str, Any]:
    """The container image of a stack with no account or region: the placeholder while ImageTag
    is empty, else `<registry>/payment-processor-images-shared:<ImageTag>`."""
    tagged = ecr_uri("/payment-processor-images-shared:", {"Ref": "ImageTag"})
    return {"Fn::If": ["ImageTagIsEmpty", placeholder, tagged]}


def subnet_refs(synth: Synthesized, stack: str, kind: str) -> list[dict[str, str]]:
    return [
        {"Ref": k}
        for k in sorted(of_type(synth, stack, "AWS::EC2::Subnet"))
        if k.startswith(f"NetworkVpc{kind}Subnet")
    ]


# --- network ------------------------------------------------------------------------------------


def test_default_network_is_a_new_vpc_over_two_zones_with_public_subnets_only(
    synth: Synthesized,
) -> None:
    vpc = props(synth, STAGING, "AWS::EC2::VPC")
    assert vpc["CidrBlock"] == "10.0.0.0/16"
    assert vpc["EnableDnsHostnames"] is True and vpc["EnableDnsSupport"] is True
    subnets = of_type(synth, STAGING, "AWS::EC2::Subnet")
    assert sorted(
        s["Properties"]["AvailabilityZone"]["Fn::Select"][0] for s in subnets.values()
    ) == [
        0,
        1,
    ]
    assert all(
        s["Properties"]["AvailabilityZone"]["Fn::Select"][1] == {"Fn::GetAZs": ""}
        for s in subnets.values()
    )
    # Nothing launched there gets an address from the subnet: the tasks get theirs from the
    # service (AssignPublicIp, below), the load balancer's nodes their own.
    assert all(s["Properties"]["MapPublicIpOnLaunch"] is False for s in subnets.values())
    for type_ in ("AWS::EC2::NatGateway", "AWS::EC2::EIP", "AWS::EC2::VPCEndpoint"):
        assert of_type(synth, STAGING, type_) == {}


def test_public_mode_runs_tasks_in_public_subnets_with_a_public_ip(synth: Synthesized) -> None:
    network = props(synth, STAGING, "AWS::ECS::Service")["NetworkConfiguration"]
    assert network["AwsvpcConfiguration"] == {
        "AssignPublicIp": "ENABLED",
        "SecurityGroups": [{"Fn::GetAtt": [service_sg(synth, STAGING), "GroupId"]}],
        "Subnets": subnet_refs(synth, STAGING, "public"),
    }


@pytest.mark.parametrize("stack", ALL)
def test_tasks_admit_only_the_load_balancer_on_the_container_port(
    synth: Synthesized, stack: str
) -> None:
    port = {QA: 9000}.get(stack, 8080)
    tasks_sg = props(synth, stack, "AWS::EC2::SecurityGroup", "ServiceSecurityGroup")
    assert "SecurityGroupIngress" not in tasks_sg
    rules = [
        r["Properties"]
        for r in of_type(synth, stack, "AWS::EC2::SecurityGroupIngress").values()
        if r["Properties"]["GroupId"] == {"Fn::GetAtt": [service_sg(synth, stack), "GroupId"]}
    ]
    for rule in rules:
        rule.pop("Description")  # aws-cdk's own wording: the rule is deduplicated with ours
    assert rules == [
        {
            "FromPort": port,
            "GroupId": {"Fn::GetAtt": [service_sg(synth, stack), "GroupId"]},
            "IpProtocol": "tcp",
            "SourceSecurityGroupId": {"Fn::GetAtt": [alb_sg(synth, stack), "GroupId"]},
            "ToPort": port,
        }
    ]
    # The load balancer may only talk to the tasks, on that port.
    egress = [
        r["Properties"] for r in of_type(synth, stack, "AWS::EC2::SecurityGroupEgress").values()
    ]
    assert [
        (e["DestinationSecurityGroupId"], e["FromPort"], e["ToPort"])
        for e in egress
        if e["GroupId"] == {"Fn::GetAtt": [alb_sg(synth, stack), "GroupId"]}
    ] == [({"Fn::GetAtt": [service_sg(synth, stack), "GroupId"]}, port, port)]
    alb = props(synth, stack, "AWS::EC2::SecurityGroup", "LoadBalancerSecurityGroup")
    assert all(e.get("CidrIp") != "0.0.0.0/0" for e in alb.get("SecurityGroupEgress", []))


@pytest.mark.parametrize(
    ("stack", "expected"),
    [
        (STAGING, [("0.0.0.0/0", 80, 80), ("0.0.0.0/0", 443, 443)]),
        (PRODUCTION, [("0.0.0.0/0", 80, 80), ("0.0.0.0/0", 443, 443)]),
        (QA, [("198.51.100.0/24", 80, 80), ("203.0.113.0/24", 80, 80)]),
        (PERF, [("0.0.0.0/0", 80, 80), ("192.0.2.0/24", 9443, 9443)]),
        (LIVE, [("0.0.0.0/0", 80, 80), ("0.0.0.0/0", 443, 443)]),
    ],
)
def test_load_balancer_admits_exactly_the_configured_cidrs_on_its_listener_ports(
    synth: Synthesized, stack: str, expected: list[tuple[str, int, int]]
) -> None:
    assert ingress(synth, stack) == expected


@pytest.mark.parametrize("stack", ALL)
def test_security_group_descriptions_use_only_characters_ec2_accepts(
    synth: Synthesized, stack: str
) -> None:
    texts = []
    for resource in synth.raw[stack]["Resources"].values():
        p = resource.get("Properties", {})
        if resource["Type"] == "AWS::EC2::SecurityGroup":
            texts.append(p["GroupDescription"])
            texts += [r.get("Description", "") for r in p.get("SecurityGroupIngress", [])]
            texts += [r.get("Description", "") for r in p.get("SecurityGroupEgress", [])]
        if resource["Type"] in ("AWS::EC2::SecurityGroupIngress", "AWS::EC2::SecurityGroupEgress"):
            texts.append(p.get("Description", ""))
    assert texts
    assert [t for t in texts if not isinstance(t, str) or not re.match(EC2_DESCRIPTION, t)] == []


def test_private_mode_runs_tasks_in_private_subnets_behind_the_configured_nat_gateways(
    synth: Synthesized,
) -> None:
    assert props(synth, QA, "AWS::EC2::VPC")["CidrBlock"] == "10.20.0.0/16"
    nats = of_type(synth, QA, "AWS::EC2::NatGateway")
    assert len(nats) == 2
    assert len(of_type(synth, QA, "AWS::EC2::EIP")) == 2
    private = subnet_refs(synth, QA, "private")
    assert len(private) == 2
    network = props(synth, QA, "AWS::ECS::Service")["NetworkConfiguration"]["AwsvpcConfiguration"]
    assert network["AssignPublicIp"] == "DISABLED"
    assert network["Subnets"] == private
    default_routes = [
        r["Properties"]
        for k, r in of_type(synth, QA, "AWS::EC2::Route").items()
        if k.startswith("NetworkVpcprivateSubnet")
    ]
    assert sorted(r["NatGatewayId"]["Ref"] for r in default_routes) == sorted(nats)
    assert all(r["DestinationCidrBlock"] == "0.0.0.0/0" for r in default_routes)
    assert of_type(synth, QA, "AWS::EC2::VPCEndpoint") == {}


def test_endpoints_mode_reaches_ecr_s3_and_logs_through_vpc_endpoints_without_any_route_out(
    synth: Synthesized,
) -> None:
    endpoints = {
        e["Properties"]["ServiceName"]["Fn::Join"][1][2]: e["Properties"]
        for e in of_type(synth, PERF, "AWS::EC2::VPCEndpoint").values()
    }
    assert set(endpoints) == {".s3", ".ecr.api", ".ecr.dkr", ".logs", ".secretsmanager"}
    assert endpoints[".s3"]["VpcEndpointType"] == "Gateway"
    endpoint_sg = one(synth, PERF, "AWS::EC2::SecurityGroup", "NetworkEndpointSecurityGroup")[0]
    for name in (".ecr.api", ".ecr.dkr", ".logs", ".secretsmanager"):
        assert endpoints[name]["VpcEndpointType"] == "Interface"
        assert endpoints[name]["PrivateDnsEnabled"] is True
        assert endpoints[name]["SecurityGroupIds"] == [{"Fn::GetAtt": [endpoint_sg, "GroupId"]}]
        assert endpoints[name]["SubnetIds"] == subnet_refs(synth, PERF, "isolated")
    # HTTPS from the tasks only.
    rules = [
        r["Properties"]
        for r in of_type(synth, PERF, "AWS::EC2::SecurityGroupIngress").values()
        if r["Properties"]["GroupId"] == {"Fn::GetAtt": [endpoint_sg, "GroupId"]}
    ]
    assert [(r["SourceSecurityGroupId"], r["FromPort"], r["ToPort"]) for r in rules] == [
        ({"Fn::GetAtt": [service_sg(synth, PERF), "GroupId"]}, 443, 443)
    ]
    assert of_type(synth, PERF, "AWS::EC2::NatGateway") == {}
    isolated_routes = [
        k for k in of_type(synth, PERF, "AWS::EC2::Route") if k.startswith("NetworkVpcisolated")
    ]
    assert isolated_routes == []
    network = props(synth, PERF, "AWS::ECS::Service")["NetworkConfiguration"]["AwsvpcConfiguration"]
    assert network["AssignPublicIp"] == "DISABLED"
    assert network["Subnets"] == subnet_refs(synth, PERF, "isolated")


def test_endpoints_mode_pulls_the_placeholder_image_through_a_pull_through_cache(
    synth: Synthesized,
) -> None:
    rule = props(synth, PERF, "AWS::ECR::PullThroughCacheRule")
    prefix = rule["EcrRepositoryPrefix"]
    assert rule["UpstreamRegistryUrl"] == "public.ecr.aws"
    cached = ecr_uri(f"/{prefix}/docker/library/caddy:2-alpine")
    assert container(synth, PERF)["Image"] == image_choice(cached)
    synth.templates[PERF].has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Sid": "PullThroughCache",
                                "Action": Match.array_with(["ecr:BatchImportUpstreamImage"]),
                                "Resource": {
                                    "Fn::Join": [
                                        "",
                                        Match.array_with([f":repository/{prefix}/*"]),
                                    ]
                                },
                            }
                        )
                    ]
                )
            },
            "Roles": [ref(synth, PERF, "AWS::IAM::Role", "ServiceExecutionRole")],
        },
    )


def test_existing_vpc_is_referenced_by_its_ids_and_no_network_is_created(
    synth: Synthesized,
) -> None:
    for type_ in ("AWS::EC2::VPC", "AWS::EC2::Subnet", "AWS::EC2::NatGateway", "AWS::EC2::FlowLog"):
        assert of_type(synth, DEV, type_) == {}
    lb = props(synth, DEV, "AWS::ElasticLoadBalancingV2::LoadBalancer")
    assert lb["Subnets"] == ["subnet-0aaa1111bbb22222a", "subnet-0aaa1111bbb22222b"]
    network = props(synth, DEV, "AWS::ECS::Service")["NetworkConfiguration"]["AwsvpcConfiguration"]
    assert network["Subnets"] == ["subnet-0ccc3333ddd44444a", "subnet-0ccc3333ddd44444b"]
    assert network["AssignPublicIp"] == "DISABLED"
    for sg in of_type(synth, DEV, "AWS::EC2::SecurityGroup").values():
        assert sg["Properties"]["VpcId"] == "vpc-0abc1234def567890"


@pytest.mark.parametrize(("stack", "retention"), [(STAGING, 30), (QA, 90), (PERF, 30)])
def test_new_vpc_logs_all_traffic_to_a_kms_encrypted_log_group(
    synth: Synthesized, stack: str, retention: int
) -> None:
    flow = props(synth, stack, "AWS::EC2::FlowLog")
    assert flow["TrafficType"] == "ALL"
    assert flow["ResourceId"] == ref(synth, stack, "AWS::EC2::VPC")
    assert flow["LogGroupName"] == ref(synth, stack, "AWS::Logs::LogGroup", "NetworkFlowLogs")
    group = props(synth, stack, "AWS::Logs::LogGroup", "NetworkFlowLogs")
    assert group["KmsKeyId"] == arn(synth, stack, "AWS::KMS::Key")
    assert group["RetentionInDays"] == retention


# --- load balancer ------------------------------------------------------------------------------


@pytest.mark.parametrize(("stack", "protected"), [(STAGING, "false"), (PRODUCTION, "true")])
def test_load_balancer_drops_invalid_headers_and_writes_access_logs_to_its_bucket(
    synth: Synthesized, stack: str, protected: str
) -> None:
    lb = props(synth, stack, "AWS::ElasticLoadBalancingV2::LoadBalancer")
    assert lb["Scheme"] == "internet-facing"
    assert lb["Subnets"] == subnet_refs(synth, stack, "public")
    assert attributes(synth, stack) == {
        "deletion_protection.enabled": protected,
        "routing.http2.enabled": "true",
        "idle_timeout.timeout_seconds": "60",
        "routing.http.drop_invalid_header_fields.enabled": "true",
        "routing.http.desync_mitigation_mode": "defensive",
        "access_logs.s3.enabled": "true",
        "access_logs.s3.bucket": ref(synth, stack, "AWS::S3::Bucket", "LoadBalancerAccessLogs"),
        "access_logs.s3.prefix": "alb",
    }
    # ELB writes a test object when logging starts: the bucket policy must exist first.
    _, resource = one(synth, stack, "AWS::ElasticLoadBalancingV2::LoadBalancer")
    policy_id = one(synth, stack, "AWS::S3::BucketPolicy")[0]
    assert policy_id in resource["DependsOn"]


@pytest.mark.parametrize(("stack", "env"), [(STAGING, "staging"), (PRODUCTION, "production")])
def test_access_log_bucket_is_encrypted_private_versioned_expiring_and_named_for_its_environment(
    synth: Synthesized, stack: str, env: str
) -> None:
    bucket = props(synth, stack, "AWS::S3::Bucket")
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"] == [
        {"BucketKeyEnabled": False, "ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
    ]
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert bucket["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    # A deleted or overwritten log stays recoverable for 30 days (NIST AU-9, PCI 10.5).
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert bucket["LifecycleConfiguration"]["Rules"] == [
        {
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
            "ExpirationInDays": 90,
            "Id": "expire",
            "NoncurrentVersionExpiration": {"NoncurrentDays": 30},
            "Status": "Enabled",
        }
    ]
    parts = bucket["BucketName"]["Fn::Join"][1]
    assert parts[0].startswith("payment-processor-alb")
    assert parts[1:] == [{"Ref": "AWS::AccountId"}, "-", {"Ref": "AWS::Region"}, f"-{env}"]
    longest = len(parts[0]) + 12 + 1 + len("ap-southeast-5") + len(f"-{env}")
    assert longest <= 63


def test_access_log_bucket_admits_only_elb_log_delivery_over_tls(synth: Synthesized) -> None:
    bucket = one(synth, STAGING, "AWS::S3::Bucket")[0]
    objects = {
        "Fn::Join": [
            "",
            [{"Fn::GetAtt": [bucket, "Arn"]}, "/alb/AWSLogs/", {"Ref": "AWS::AccountId"}, "/*"],
        ]
    }
    statements = props(synth, STAGING, "AWS::S3::BucketPolicy")["PolicyDocument"]["Statement"]
    deny, delivery, legacy = statements
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert delivery == {
        "Action": "s3:PutObject",
        "Effect": "Allow",
        "Principal": {"Service": "logdelivery.elasticloadbalancing.amazonaws.com"},
        "Resource": objects,
        "Sid": "AlbLogDelivery",
    }
    assert legacy["Action"] == "s3:PutObject" and legacy["Resource"] == objects
    principal = json.dumps(legacy["Principal"])
    assert "DeploylineElbAccounts" in principal and "DeploylineIsLegacyElbRegion" in principal
    # The regional ELB accounts sit in a mapping, one per legacy region.
    mapping = synth.raw[STAGING]["Mappings"]["DeploylineElbAccounts"]
    assert mapping["us-east-1"] == {"account": "127311923021"}


def test_with_plain_http_chosen_the_http_listener_forwards_to_the_service(
    synth: Synthesized,
) -> None:
    listeners = of_type(synth, QA, "AWS::ElasticLoadBalancingV2::Listener")
    assert len(listeners) == 1
    http = listener(synth, QA, 80)
    assert http["Protocol"] == "HTTP"
    assert "Certificates" not in http
    assert http["DefaultActions"] == [
        {
            "TargetGroupArn": ref(synth, QA, "AWS::ElasticLoadBalancingV2::TargetGroup"),
            "Type": "forward",
        }
    ]
    assert of_type(synth, QA, "AWS::CertificateManager::Certificate") == {}
    assert of_type(synth, QA, "AWS::Route53::RecordSet") == {}


def test_with_certificate_https_serves_on_443_and_http_redirects_to_it(
    synth: Synthesized,
) -> None:
    certificate = {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                ":acm:",
                {"Ref": "AWS::Region"},
                ":",
                {"Ref": "AWS::AccountId"},
                f":certificate/{CERTIFICATE_ID}",
            ],
        ]
    }
    https = listener(synth, LIVE, 443)
    assert https["Protocol"] == "HTTPS"
    assert https["Certificates"] == [{"CertificateArn": certificate}]
    assert https["SslPolicy"] == "ELBSecurityPolicy-TLS13-1-2-Res-2021-06"
    blue = ref(synth, LIVE, "AWS::ElasticLoadBalancingV2::TargetGroup", "LoadBalancerBlue")
    assert https["DefaultActions"] == [{"TargetGroupArn": blue, "Type": "forward"}]
    redirect = listener(synth, LIVE, 80)
    assert redirect["Protocol"] == "HTTP"
    assert redirect["DefaultActions"] == [
        {
            "RedirectConfig": {"Port": "443", "Protocol": "HTTPS", "StatusCode": "HTTP_301"},
            "Type": "redirect",
        }
    ]
    test = listener(synth, LIVE, 8443)
    assert test["Protocol"] == "HTTPS"
    assert test["Certificates"] == [{"CertificateArn": certificate}]
    outputs = synth.raw[LIVE]["Outputs"]
    assert outputs["ServiceUrl"]["Value"] == "https://pay.example.com"
    assert outputs["TestUrl"]["Value"] == "https://pay.example.com:8443"


@pytest.mark.parametrize(
    ("stack", "domain"),
    [(STAGING, "payments-staging.example.com"), (PRODUCTION, "payments.example.com")],
)
def test_a_hosted_zone_gets_a_dns_validated_certificate_and_an_alias_to_the_load_balancer(
    synth: Synthesized, stack: str, domain: str
) -> None:
    certificate_id, certificate = one(synth, stack, "AWS::CertificateManager::Certificate")
    assert {k: v for k, v in certificate["Properties"].items() if k != "Tags"} == {
        "DomainName": domain,
        "DomainValidationOptions": [{"DomainName": domain, "HostedZoneId": ZONE}],
        "ValidationMethod": "DNS",
    }
    https = listener(synth, stack, 443)
    assert https["Protocol"] == "HTTPS"
    assert https["Certificates"] == [{"CertificateArn": {"Ref": certificate_id}}]
    assert https["SslPolicy"] == "ELBSecurityPolicy-TLS13-1-2-Res-2021-06"
    assert listener(synth, stack, 80)["DefaultActions"] == [
        {
            "RedirectConfig": {"Port": "443", "Protocol": "HTTPS", "StatusCode": "HTTP_301"},
            "Type": "redirect",
        }
    ]
    lb = one(synth, stack, "AWS::ElasticLoadBalancingV2::LoadBalancer")[0]
    assert props(synth, stack, "AWS::Route53::RecordSet") == {
        "Name": f"{domain}.",
        "Type": "A",
        "HostedZoneId": ZONE,
        "AliasTarget": {
            "DNSName": {"Fn::Join": ["", ["dualstack.", {"Fn::GetAtt": [lb, "DNSName"]}]]},
            "HostedZoneId": {"Fn::GetAtt": [lb, "CanonicalHostedZoneID"]},
        },
        "Comment": f"deployline: {domain} is served by this load balancer",
    }


def test_a_given_certificate_is_served_as_given_and_nothing_is_created_for_it(
    synth: Synthesized,
) -> None:
    assert of_type(synth, LIVE, "AWS::CertificateManager::Certificate") == {}
    assert of_type(synth, LIVE, "AWS::Route53::RecordSet") == {}  # no zone: the name is yours
    assert listener(synth, LIVE, 443)["Certificates"][0]["CertificateArn"]["Fn::Join"][1][-1] == (
        f":certificate/{CERTIFICATE_ID}"
    )


#: The environments with a web ACL: production (production, live) and where asked (staging).
GUARDED = [STAGING, PRODUCTION, LIVE]
WAF_TYPES = (
    "AWS::WAFv2::WebACL",
    "AWS::WAFv2::WebACLAssociation",
    "AWS::WAFv2::LoggingConfiguration",
)


@pytest.mark.parametrize("stack", GUARDED)
def test_a_web_acl_of_aws_managed_rules_guards_the_load_balancer_and_logs_every_request(
    synth: Synthesized, stack: str
) -> None:
    env = stack.rsplit("-", 1)[1]
    acl_id, acl = one(synth, stack, "AWS::WAFv2::WebACL")
    settings = acl["Properties"]
    assert settings["Name"] == f"payment-processor-waf-{env}"
    assert (settings["Scope"], settings["DefaultAction"]) == ("REGIONAL", {"Allow": {}})
    groups = [
        "AWSManagedRulesAmazonIpReputationList",
        "AWSManagedRulesCommonRuleSet",
        "AWSManagedRulesKnownBadInputsRuleSet",
    ]
    assert [
        (r["Priority"], r["Name"], r["Statement"], r["OverrideAction"]) for r in settings["Rules"]
    ] == [
        (i, g, {"ManagedRuleGroupStatement": {"Name": g, "VendorName": "AWS"}}, {"None": {}})
        for i, g in enumerate(groups)
    ]
    assert all(r["VisibilityConfig"]["CloudWatchMetricsEnabled"] for r in settings["Rules"])
    lb = one(synth, stack, "AWS::ElasticLoadBalancingV2::LoadBalancer")[0]
    assert props(synth, stack, "AWS::WAFv2::WebACLAssociation") == {
        "ResourceArn": {"Ref": lb},
        "WebACLArn": {"Fn::GetAtt": [acl_id, "Arn"]},
    }
    group_id, group = one(synth, stack, "AWS::Logs::LogGroup", "FirewallLogs")
    assert group["Properties"]["LogGroupName"] == f"aws-waf-logs-payment-processor-{env}"
    assert group["Properties"]["KmsKeyId"] == arn(synth, stack, "AWS::KMS::Key")
    assert props(synth, stack, "AWS::WAFv2::LoggingConfiguration") == {
        "ResourceArn": {"Fn::GetAtt": [acl_id, "Arn"]},
        "LogDestinationConfigs": [
            {
                "Fn::Join": [
                    "",
                    [
                        "arn:",
                        {"Ref": "AWS::Partition"},
                        ":logs:",
                        {"Ref": "AWS::Region"},
                        ":",
                        {"Ref": "AWS::AccountId"},
                        ":log-group:",
                        {"Ref": group_id},
                    ],
                ]
            }
        ],
        "RedactedFields": [
            {"SingleHeader": {"Name": "authorization"}},
            {"SingleHeader": {"Name": "cookie"}},
        ],
    }
    # CloudWatch Logs may encrypt that group with the environment's key.
    key = props(synth, stack, "AWS::KMS::Key")
    [logs] = [s for s in key["KeyPolicy"]["Statement"] if s.get("Sid") == "AllowCloudWatchLogs"]
    patterns = json.dumps(logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"])
    assert f":log-group:aws-waf-logs-payment-processor-{env}" in patterns


@pytest.mark.parametrize("stack", sorted(set(ALL) - set(GUARDED)))
def test_no_web_acl_outside_production_unless_asked(synth: Synthesized, stack: str) -> None:
    for type_ in WAF_TYPES:
        assert of_type(synth, stack, type_) == {}
    key = props(synth, stack, "AWS::KMS::Key")
    assert "aws-waf-logs" not in json.dumps(key["KeyPolicy"])


@pytest.mark.parametrize(
    ("stack", "port", "path"), [(STAGING, 8080, "/health"), (QA, 9000, "/ready")]
)
def test_target_group_checks_the_configured_health_path_on_the_container_port(
    synth: Synthesized, stack: str, port: int, path: str
) -> None:
    synth.templates[stack].has_resource_properties(
        "AWS::ElasticLoadBalancingV2::TargetGroup",
        {
            "Port": port,
            "Protocol": "HTTP",
            "TargetType": "ip",
            "HealthCheckPath": path,
            "Matcher": {"HttpCode": "200"},
            "HealthCheckIntervalSeconds": 15,
            "HealthyThresholdCount": 2,
            "UnhealthyThresholdCount": 3,
            "TargetGroupAttributes": Match.array_with(
                [{"Key": "deregistration_delay.timeout_seconds", "Value": "30"}]
            ),
        },
    )


# --- ECS ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", [STAGING, PRODUCTION])
def test_cluster_has_container_insights_with_enhanced_observability(
    synth: Synthesized, stack: str
) -> None:
    cluster = props(synth, stack, "AWS::ECS::Cluster")
    assert cluster["ClusterSettings"] == [{"Name": "containerInsights", "Value": "enhanced"}]
    assert cluster["ClusterName"] == stack.replace("-service-", "-cluster-")


@pytest.mark.parametrize(
    ("stack", "cpu", "memory", "port"),
    [(STAGING, "256", "512", 8080), (PRODUCTION, "512", "1024", 8080), (QA, "1024", "2048", 9000)],
)
def test_task_definition_takes_cpu_memory_and_port_from_config(
    synth: Synthesized, stack: str, cpu: str, memory: str, port: int
) -> None:
    task = props(synth, stack, "AWS::ECS::TaskDefinition")
    assert (task["Cpu"], task["Memory"]) == (cpu, memory)
    assert task["RequiresCompatibilities"] == ["FARGATE"]
    assert task["NetworkMode"] == "awsvpc"
    assert task["RuntimePlatform"] == {
        "CpuArchitecture": "X86_64",
        "OperatingSystemFamily": "LINUX",
    }
    app = container(synth, stack)
    assert app["Name"] == "app"
    assert app["PortMappings"] == [{"ContainerPort": port, "Name": "http", "Protocol": "tcp"}]
    assert app["Environment"] == [{"Name": "PORT", "Value": str(port)}]


@pytest.mark.parametrize("stack", ALL)
def test_container_runs_as_non_root_on_a_read_only_root_with_a_writable_tmp(
    synth: Synthesized, stack: str
) -> None:
    app = container(synth, stack)
    assert app["User"] == "1000:1000"
    assert app["ReadonlyRootFilesystem"] is True
    assert app["MountPoints"] == [
        {"ContainerPath": "/tmp", "ReadOnly": False, "SourceVolume": "scratch-0"}
    ]
    assert props(synth, stack, "AWS::ECS::TaskDefinition")["Volumes"] == [{"Name": "scratch-0"}]
    assert app["Essential"] is True
    assert app["LinuxParameters"]["InitProcessEnabled"] is True
    assert "Privileged" not in app


@pytest.mark.parametrize(("stack", "env", "retention"), [(STAGING, "staging", 30), (QA, "qa", 90)])
def test_container_logs_go_to_a_kms_encrypted_log_group_with_retention(
    synth: Synthesized, stack: str, env: str, retention: int
) -> None:
    logs = container(synth, stack)["LogConfiguration"]
    group = ref(synth, stack, "AWS::Logs::LogGroup", "ServiceLogs")
    assert logs == {
        "LogDriver": "awslogs",
        "Options": {
            "awslogs-group": group,
            "awslogs-stream-prefix": "app",
            "awslogs-region": {"Ref": "AWS::Region"},
            "mode": "non-blocking",
            "max-buffer-size": "26214400b",
        },
    }
    synth.templates[stack].has_resource_properties(
        "AWS::Logs::LogGroup",
        {
            "KmsKeyId": arn(synth, stack, "AWS::KMS::Key"),
            "LogGroupName": f"/deployline/payment-processor/{env}/app",
            "RetentionInDays": retention,
        },
    )


@pytest.mark.parametrize(
    ("stack", "port", "path"), [(STAGING, 8080, "/health"), (QA, 9000, "/ready")]
)
def test_container_health_check_requests_the_health_path_on_the_container_port(
    synth: Synthesized, stack: str, port: int, path: str
) -> None:
    check = container(synth, stack)["HealthCheck"]
    kind, command = check["Command"]
    assert kind == "CMD-SHELL"
    assert f"wget -q -O /dev/null -T 4 http://127.0.0.1:{port}{path}" in command
    assert f"curl -fsS -o /dev/null -m 4 http://127.0.0.1:{port}{path}" in command
    assert command.endswith("|| exit 1")
    assert (check["Interval"], check["Timeout"], check["Retries"], check["StartPeriod"]) == (
        15,
        5,
        3,
        60,
    )


@pytest.mark.parametrize(("stack", "count"), [(STAGING, 1), (PRODUCTION, 2), (QA, 2), (PERF, 1)])
def test_service_starts_with_the_configured_desired_count(
    synth: Synthesized, stack: str, count: int
) -> None:
    service = props(synth, stack, "AWS::ECS::Service")
    assert service["DesiredCount"] == count
    assert service["LaunchType"] == "FARGATE"
    assert service["EnableExecuteCommand"] is False
    assert service["PropagateTags"] == "SERVICE"
    assert service["DeploymentConfiguration"]["MinimumHealthyPercent"] == 100


@pytest.mark.parametrize(("stack", "low", "high"), [(STAGING, 1, 2), (QA, 2, 5)])
def test_rolling_service_scales_on_cpu_and_requests_per_target_between_min_and_max(
    synth: Synthesized, stack: str, low: int, high: int
) -> None:
    target = props(synth, stack, "AWS::ApplicationAutoScaling::ScalableTarget")
    assert (target["MinCapacity"], target["MaxCapacity"]) == (low, high)
    assert target["ScalableDimension"] == "ecs:service:DesiredCount"
    policies = {
        p["Properties"]["TargetTrackingScalingPolicyConfiguration"][
            "PredefinedMetricSpecification"
        ]["PredefinedMetricType"]: p["Properties"]
        for p in of_type(synth, stack, "AWS::ApplicationAutoScaling::ScalingPolicy").values()
    }
    assert set(policies) == {"ECSServiceAverageCPUUtilization", "ALBRequestCountPerTarget"}
    cpu = policies["ECSServiceAverageCPUUtilization"]["TargetTrackingScalingPolicyConfiguration"]
    assert cpu["TargetValue"] == 60
    requests = policies["ALBRequestCountPerTarget"]["TargetTrackingScalingPolicyConfiguration"]
    assert requests["TargetValue"] == 1000
    label = json.dumps(requests["PredefinedMetricSpecification"]["ResourceLabel"])
    assert one(synth, stack, "AWS::ElasticLoadBalancingV2::TargetGroup")[0] in label
    for policy in policies.values():
        assert policy["ScalingTargetId"] == ref(
            synth, stack, "AWS::ApplicationAutoScaling::ScalableTarget"
        )


def test_blue_green_service_scales_on_requests_across_both_target_groups(
    synth: Synthesized,
) -> None:
    target = props(synth, PRODUCTION, "AWS::ApplicationAutoScaling::ScalableTarget")
    assert (target["MinCapacity"], target["MaxCapacity"]) == (2, 6)
    policies = [
        p["Properties"]["TargetTrackingScalingPolicyConfiguration"]
        for p in of_type(synth, PRODUCTION, "AWS::ApplicationAutoScaling::ScalingPolicy").values()
    ]
    [cpu] = [p for p in policies if "PredefinedMetricSpecification" in p]
    assert cpu["PredefinedMetricSpecification"]["PredefinedMetricType"] == (
        "ECSServiceAverageCPUUtilization"
    )
    [requests] = [p for p in policies if "CustomizedMetricSpecification" in p]
    assert requests["TargetValue"] == 1000
    metrics = {m["Id"]: m for m in requests["CustomizedMetricSpecification"]["Metrics"]}
    assert set(metrics) == {"requests0", "requests1", "tasks", "perTask"}
    assert metrics["perTask"] == {
        "Expression": "(FILL(requests0, 0) + FILL(requests1, 0)) / MAX([tasks, 1])",
        "Id": "perTask",
        "Label": "Requests per task per minute",
        "ReturnData": True,
    }
    blue, green = (
        one(synth, PRODUCTION, "AWS::ElasticLoadBalancingV2::TargetGroup", f"LoadBalancer{c}")[0]
        for c in ("Blue", "Green")
    )
    assert blue in json.dumps(metrics["requests0"]) and green in json.dumps(metrics["requests1"])


@pytest.mark.parametrize(("stack", "env"), [(STAGING, "staging"), (PRODUCTION, "production")])
def test_each_environment_has_its_own_rotating_key_for_its_logs(
    synth: Synthesized, stack: str, env: str
) -> None:
    key = props(synth, stack, "AWS::KMS::Key")
    assert key["EnableKeyRotation"] is True
    assert key["PendingWindowInDays"] == (30 if stack == PRODUCTION else 7)
    alias = props(synth, stack, "AWS::KMS::Alias")
    assert alias["AliasName"] == f"alias/payment-processor-key-{env}"
    assert alias["TargetKeyId"] == arn(synth, stack, "AWS::KMS::Key")
    groups = of_type(synth, stack, "AWS::Logs::LogGroup")
    assert groups and all(
        g["Properties"]["KmsKeyId"] == arn(synth, stack, "AWS::KMS::Key") for g in groups.values()
    )
    [logs] = [s for s in key["KeyPolicy"]["Statement"] if s.get("Sid") == "AllowCloudWatchLogs"]
    assert logs["Principal"] == {
        "Service": {"Fn::Join": ["", ["logs.", {"Ref": "AWS::Region"}, ".amazonaws.com"]]}
    }
    patterns = json.dumps(logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"])
    assert f"/deployline/payment-processor/{env}/*" in patterns
    assert f"/aws/lambda/payment-processor-*-{env}" in patterns


# --- first start --------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", [STAGING, PRODUCTION])
def test_service_starts_on_a_placeholder_image_that_answers_its_health_check(
    synth: Synthesized, stack: str
) -> None:
    app = container(synth, stack)
    assert app["Image"] == image_choice("public.ecr.aws/docker/library/caddy:2-alpine")
    # `caddy respond` answers 200 on every path (so on /health) on the container port; the
    # pipeline's image runs its own command.
    assert app["Command"] == {
        "Fn::If": [
            "ImageTagIsEmpty",
            [
                "caddy",
                "respond",
                "--listen",
                ":8080",
                "--status",
                "200",
                "deployline: the service is waiting for its first pipeline run",
            ],
            {"Ref": "AWS::NoValue"},
        ]
    }
    synth.templates[stack].has_resource_properties(
        "AWS::ElasticLoadBalancingV2::TargetGroup",
        {"HealthCheckPath": "/health", "Matcher": {"HttpCode": "200"}, "Port": 8080},
    )
    service = props(synth, stack, "AWS::ECS::Service")
    assert service["HealthCheckGracePeriodSeconds"] == 60


@pytest.mark.parametrize("stack", ALL)
def test_service_creation_fails_fast_instead_of_hanging_on_unhealthy_tasks(
    synth: Synthesized, stack: str
) -> None:
    # Both modes run under the ECS controller, whose circuit breaker stops a first start that
    # cannot become healthy (CODE_DEPLOY services had none).
    service = props(synth, stack, "AWS::ECS::Service")
    assert service["DeploymentController"] == {"Type": "ECS"}
    assert service["DeploymentConfiguration"]["DeploymentCircuitBreaker"] == {
        "Enable": True,
        "Rollback": True,
    }


# --- rolling ------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", ROLLING)
def test_rolling_service_uses_the_ecs_controller_and_rolls_back_on_its_alarms(
    synth: Synthesized, stack: str
) -> None:
    service = props(synth, stack, "AWS::ECS::Service")
    assert service["DeploymentController"] == {"Type": "ECS"}
    deployment = service["DeploymentConfiguration"]
    assert "Strategy" not in deployment  # ROLLING, the ECS controller's default
    assert service["AvailabilityZoneRebalancing"] == "ENABLED"
    assert "AdvancedConfiguration" not in service["LoadBalancers"][0]
    assert deployment["DeploymentCircuitBreaker"] == {"Enable": True, "Rollback": True}
    alarms = [
        one(synth, stack, "AWS::CloudWatch::Alarm", f"AlarmsTg{metric}")[0]
        for metric in ("ErrorRate", "UnhealthyHosts", "Latency")
    ]
    assert deployment["Alarms"] == {
        "AlarmNames": [{"Ref": a} for a in alarms],
        "Enable": True,
        "Rollback": True,
    }


@pytest.mark.parametrize("stack", ALL)
def test_no_environment_holds_a_codedeploy_resource(synth: Synthesized, stack: str) -> None:
    types = {r["Type"] for r in synth.raw[stack]["Resources"].values()}
    assert [t for t in types if t.startswith("AWS::CodeDeploy::")] == []


def alarm(synth: Synthesized, stack: str, prefix: str) -> dict[str, Any]:
    return props(synth, stack, "AWS::CloudWatch::Alarm", prefix)


@pytest.mark.parametrize(
    ("stack", "label", "rate", "latency"),
    [(STAGING, "Tg", 5, 1.5), (PRODUCTION, "Blue", 2, 1.0), (PRODUCTION, "Green", 2, 1.0)],
)
def test_alarms_judge_each_target_group_on_5xx_rate_unhealthy_hosts_and_p99(
    synth: Synthesized, stack: str, label: str, rate: float, latency: float
) -> None:
    env = stack.rsplit("-", 1)[1]
    errors = alarm(synth, stack, f"Alarms{label}ErrorRate")
    assert errors["AlarmName"] == f"payment-processor-{label.lower()}-5xx-rate-{env}"
    assert errors["Threshold"] == rate
    assert errors["ComparisonOperator"] == "GreaterThanThreshold"
    assert (errors["EvaluationPeriods"], errors["DatapointsToAlarm"]) == (3, 3)
    assert errors["TreatMissingData"] == "notBreaching"
    expression = next(m for m in errors["Metrics"] if m.get("ReturnData", True))
    assert expression["Expression"] == "100 * FILL(errors, 0) / requests"
    names = {
        m["Id"]: m["MetricStat"]["Metric"]["MetricName"]
        for m in errors["Metrics"]
        if "MetricStat" in m
    }
    assert names == {"errors": "HTTPCode_Target_5XX_Count", "requests": "RequestCount"}
    unhealthy = alarm(synth, stack, f"Alarms{label}UnhealthyHosts")
    assert unhealthy["MetricName"] == "UnHealthyHostCount"
    assert unhealthy["Threshold"] == 1
    assert unhealthy["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    latency_alarm = alarm(synth, stack, f"Alarms{label}Latency")
    assert latency_alarm["MetricName"] == "TargetResponseTime"
    assert latency_alarm["ExtendedStatistic"] == "p99"
    assert latency_alarm["Threshold"] == latency


@pytest.mark.parametrize("stack", ALL)
def test_every_alarm_notifies_the_team_when_it_fires_and_when_it_recovers(
    synth: Synthesized, stack: str
) -> None:
    env = stack.rsplit("-", 1)[1]
    topic_id, topic = one(synth, stack, "AWS::SNS::Topic")
    assert topic["Properties"]["TopicName"] == f"payment-processor-alarms-{env}"
    assert topic["Properties"]["KmsMasterKeyId"] == arn(synth, stack, "AWS::KMS::Key")
    assert [
        (s["Properties"]["Protocol"], s["Properties"]["Endpoint"], s["Properties"]["TopicArn"])
        for s in of_type(synth, stack, "AWS::SNS::Subscription").values()
    ] == [("email", "payments-oncall@example.com", {"Ref": topic_id})]
    # qa runs where the team's existing topic is (the pipeline's account and region), so its
    # alarms notify that topic too; edge runs elsewhere, where no alarm can reach it.
    team_topic = f"arn:{Aws.PARTITION}:sns:{Aws.REGION}:{Aws.ACCOUNT_ID}:ops-alerts"
    expected = [{"Ref": topic_id}]
    if stack == QA:
        expected.append(synth.stacks[stack].resolve(team_topic))
    alarms = of_type(synth, stack, "AWS::CloudWatch::Alarm")
    assert len(alarms) == (6 if stack in BLUE_GREEN else 3)
    for alarm_ in alarms.values():
        assert alarm_["Properties"]["AlarmActions"] == expected
        assert alarm_["Properties"]["OKActions"] == expected
        assert "InsufficientDataActions" not in alarm_["Properties"]


@pytest.mark.parametrize("stack", [STAGING, EDGE])
def test_only_this_accounts_alarms_may_publish_to_the_alarm_topic_and_use_its_key(
    synth: Synthesized, stack: str
) -> None:
    topic_id = one(synth, stack, "AWS::SNS::Topic")[0]
    account = {"Ref": "AWS::AccountId"}
    statements = props(synth, stack, "AWS::SNS::TopicPolicy")["PolicyDocument"]["Statement"]
    ssl_only, alarms = statements
    assert (ssl_only["Effect"], ssl_only["Condition"]) == (
        "Deny",
        {"Bool": {"aws:SecureTransport": "false"}},
    )
    assert alarms == {
        "Action": "sns:Publish",
        "Condition": {
            "StringEquals": {"aws:SourceAccount": account},
            "ArnLike": {
                "aws:SourceArn": synth.stacks[stack].resolve(
                    f"arn:{Aws.PARTITION}:cloudwatch:{Aws.REGION}:{Aws.ACCOUNT_ID}:alarm:*"
                )
            },
        },
        "Effect": "Allow",
        "Principal": {"Service": "cloudwatch.amazonaws.com"},
        "Resource": {"Ref": topic_id},
        "Sid": "AllowCloudWatchAlarms",
    }
    key = props(synth, stack, "AWS::KMS::Key")
    [use] = [s for s in key["KeyPolicy"]["Statement"] if s.get("Sid") == "AllowCloudWatchAlarms"]
    assert use == {
        "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
        "Condition": {"StringEquals": {"aws:SourceAccount": account}},
        "Effect": "Allow",
        "Principal": {"Service": "cloudwatch.amazonaws.com"},
        "Resource": "*",
        "Sid": "AllowCloudWatchAlarms",
    }


# --- blue/green ---------------------------------------------------------------------------------

TG = "AWS::ElasticLoadBalancingV2::TargetGroup"
RULE = "AWS::ElasticLoadBalancingV2::ListenerRule"


def role_arn(synth: Synthesized, stack: str, prefix: str) -> dict[str, list[str]]:
    return arn(synth, stack, "AWS::IAM::Role", prefix)


def trusted_service(role: dict[str, Any]) -> str:
    """The one service principal `role` trusts, with sts:AssumeRole and no condition."""
    [statement] = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert statement.keys() == {"Action", "Effect", "Principal"}
    assert (statement["Action"], statement["Effect"]) == ("sts:AssumeRole", "Allow")
    service: str = statement["Principal"]["Service"]
    return service


@pytest.mark.parametrize("stack", BLUE_GREEN)
def test_blue_green_service_starts_on_blue_with_green_as_its_alternate_and_both_rules(
    synth: Synthesized, stack: str
) -> None:
    service = props(synth, stack, "AWS::ECS::Service")
    assert service["DeploymentController"] == {"Type": "ECS"}
    assert service["AvailabilityZoneRebalancing"] == "DISABLED"
    assert service["LoadBalancers"] == [
        {
            "AdvancedConfiguration": {
                "AlternateTargetGroupArn": ref(synth, stack, TG, "LoadBalancerGreen"),
                "ProductionListenerRule": ref(synth, stack, RULE, "LoadBalancerProductionRule"),
                "TestListenerRule": ref(synth, stack, RULE, "LoadBalancerTestRule"),
                "RoleArn": role_arn(synth, stack, "BlueGreenInfrastructureRole"),
            },
            "ContainerName": "app",
            "ContainerPort": 8080,
            "TargetGroupArn": ref(synth, stack, TG, "LoadBalancerBlue"),
        }
    ]
    groups = of_type(synth, stack, TG)
    assert len(groups) == 2
    checks = {
        json.dumps(
            {k: v for k, v in g["Properties"].items() if k.startswith("HealthCheck") or k == "Port"}
        )
        for g in groups.values()
    }
    assert len(checks) == 1  # green is judged exactly as blue


@pytest.mark.parametrize(
    ("stack", "production_port", "test_port", "cidrs"),
    [(PRODUCTION, 443, 8080, []), (PERF, 80, 9443, ["192.0.2.0/24"]), (LIVE, 443, 8443, [])],
)
def test_each_listener_forwards_every_path_by_one_rule_weighting_blue_100_and_green_0(
    synth: Synthesized, stack: str, production_port: int, test_port: int, cidrs: list[str]
) -> None:
    blue = ref(synth, stack, TG, "LoadBalancerBlue")
    green = ref(synth, stack, TG, "LoadBalancerGreen")
    listeners = {
        v["Properties"]["Port"]: (k, v["Properties"])
        for k, v in of_type(synth, stack, "AWS::ElasticLoadBalancingV2::Listener").items()
    }
    rules = {
        r["Properties"]["ListenerArn"]["Ref"]: r["Properties"]
        for r in of_type(synth, stack, RULE).values()
    }
    assert len(rules) == 2  # one per listener
    for port in (production_port, test_port):
        listener_id, listener_props = listeners[port]
        # ECS refuses listeners that mix forward with other actions: the default forwards too.
        assert listener_props["DefaultActions"] == [{"TargetGroupArn": blue, "Type": "forward"}]
        rule = rules[listener_id]
        assert rule["Priority"] == 1
        assert rule["Conditions"] == [
            {"Field": "path-pattern", "PathPatternConfig": {"Values": ["/*"]}}
        ]
        assert rule["Actions"] == [
            {
                "ForwardConfig": {
                    "TargetGroups": [
                        {"TargetGroupArn": blue, "Weight": 100},
                        {"TargetGroupArn": green, "Weight": 0},
                    ]
                },
                "Type": "forward",
            }
        ]
    # The hook needs no path to the test listener: it admits test_listener_cidrs only.
    assert [c for c, low, _ in ingress(synth, stack) if low == test_port] == cidrs


@pytest.mark.parametrize(
    ("stack", "strategy", "bake", "steps"),
    [
        (
            PRODUCTION,
            "CANARY",
            10,
            {"CanaryConfiguration": {"CanaryBakeTimeInMinutes": 5, "CanaryPercent": 10}},
        ),
        (PERF, "BLUE_GREEN", 15, {}),
        (
            LIVE,
            "LINEAR",
            10,
            {"LinearConfiguration": {"StepBakeTimeInMinutes": 3, "StepPercent": 10}},
        ),
    ],
)
def test_traffic_shifts_by_the_configured_strategy_then_bakes_and_rolls_back_on_alarm(
    synth: Synthesized, stack: str, strategy: str, bake: int, steps: dict[str, Any]
) -> None:
    alarms = [
        one(synth, stack, "AWS::CloudWatch::Alarm", f"Alarms{color}{metric}")[0]
        for color in ("Blue", "Green")
        for metric in ("ErrorRate", "UnhealthyHosts", "Latency")
    ]
    hook = arn(synth, stack, "AWS::Lambda::Function", "DeployHookFunction")
    assert props(synth, stack, "AWS::ECS::Service")["DeploymentConfiguration"] == {
        "Strategy": strategy,
        "BakeTimeInMinutes": bake,
        **steps,
        "Alarms": {"AlarmNames": [{"Ref": a} for a in alarms], "Enable": True, "Rollback": True},
        "DeploymentCircuitBreaker": {"Enable": True, "Rollback": True},
        "LifecycleHooks": [
            {
                "HookTargetArn": hook,
                "LifecycleStages": ["POST_TEST_TRAFFIC_SHIFT"],
                "RoleArn": role_arn(synth, stack, "DeployHookInvokeRole"),
            }
        ],
        "MaximumPercent": 200,
        "MinimumHealthyPercent": 100,
    }


def test_ecs_moves_targets_and_reweights_exactly_the_two_rules_with_its_infrastructure_role(
    synth: Synthesized,
) -> None:
    role_id, role = one(synth, PRODUCTION, "AWS::IAM::Role", "BlueGreenInfrastructureRole")
    p = role["Properties"]
    assert p["RoleName"] == "payment-processor-ecs-load-balancer-production"
    assert trusted_service(role) == "ecs.amazonaws.com"
    assert "ManagedPolicyArns" not in p
    assert p["Policies"] == [
        {
            "PolicyName": "ShiftTraffic",
            "PolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Action": [
                            "elasticloadbalancing:DescribeListeners",
                            "elasticloadbalancing:DescribeRules",
                            "elasticloadbalancing:DescribeTargetGroups",
                            "elasticloadbalancing:DescribeTargetHealth",
                        ],
                        "Effect": "Allow",
                        "Resource": "*",
                        "Sid": "ReadLoadBalancer",
                    },
                    {
                        "Action": [
                            "elasticloadbalancing:DeregisterTargets",
                            "elasticloadbalancing:RegisterTargets",
                        ],
                        "Effect": "Allow",
                        "Resource": [
                            ref(synth, PRODUCTION, TG, "LoadBalancerBlue"),
                            ref(synth, PRODUCTION, TG, "LoadBalancerGreen"),
                        ],
                        "Sid": "MoveTargets",
                    },
                    {
                        "Action": "elasticloadbalancing:ModifyRule",
                        "Effect": "Allow",
                        "Resource": [
                            ref(synth, PRODUCTION, RULE, "LoadBalancerProductionRule"),
                            ref(synth, PRODUCTION, RULE, "LoadBalancerTestRule"),
                        ],
                        "Sid": "ReweightRules",
                    },
                ],
            },
        }
    ]
    policies = of_type(synth, PRODUCTION, "AWS::IAM::Policy").values()
    assert not [q for q in policies if {"Ref": role_id} in q["Properties"]["Roles"]]


def test_validation_hook_reads_the_test_rule_from_its_environment(synth: Synthesized) -> None:
    function_id, function = one(synth, PRODUCTION, "AWS::Lambda::Function", "DeployHookFunction")
    p = function["Properties"]
    assert p["Handler"] == "runtime.deploy_hook.handler"
    assert p["FunctionName"] == "payment-processor-deploy-hook-production"
    assert p["Timeout"] == 60
    assert p["Environment"]["Variables"] == {
        "POWERTOOLS_SERVICE_NAME": "payment-processor",
        "LOG_LEVEL": "INFO",
        "TEST_RULE_ARN": ref(synth, PRODUCTION, RULE, "LoadBalancerTestRule"),
        "DEADLINE_SECONDS": "300",
        "CALLBACK_SECONDS": "15",
        "MIN_HEALTHY_TARGETS": "1",
    }
    assert p["KmsKeyArn"] == arn(synth, PRODUCTION, "AWS::KMS::Key")
    assert "VpcConfig" not in p  # it reads target health from the ELB API, never the tasks
    stack = synth.stacks[PRODUCTION]
    assert stack.hook_function is not None
    assert stack.resolve(stack.hook_function.function_arn) == {"Fn::GetAtt": [function_id, "Arn"]}


def test_hook_may_only_read_rules_and_target_health_and_write_its_logs(
    synth: Synthesized,
) -> None:
    role_id, role = one(synth, PRODUCTION, "AWS::IAM::Role", "DeployHookFunctionRole")
    assert trusted_service(role) == "lambda.amazonaws.com"
    assert "ManagedPolicyArns" not in role["Properties"]
    [policy] = [
        q["Properties"]
        for q in of_type(synth, PRODUCTION, "AWS::IAM::Policy").values()
        if {"Ref": role_id} in q["Properties"]["Roles"]
    ]
    logs = arn(synth, PRODUCTION, "AWS::Logs::LogGroup", "DeployHookFunctionLogs")
    assert policy["PolicyDocument"]["Statement"] == [
        {
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Effect": "Allow",
            "Resource": [logs, {"Fn::Join": ["", [logs, ":*"]]}],
            "Sid": "WriteOwnLogs",
        },
        {
            "Action": [
                "elasticloadbalancing:DescribeRules",
                "elasticloadbalancing:DescribeTargetHealth",
            ],
            "Effect": "Allow",
            "Resource": "*",
            "Sid": "ReadTestTargetHealth",
        },
    ]


def test_ecs_invokes_the_hook_through_a_role_that_may_invoke_exactly_that_function(
    synth: Synthesized,
) -> None:
    role_id, role = one(synth, PRODUCTION, "AWS::IAM::Role", "DeployHookInvokeRole")
    p = role["Properties"]
    assert p["RoleName"] == "payment-processor-deploy-hook-invoke-production"
    assert trusted_service(role) == "ecs.amazonaws.com"
    assert p["Policies"] == [
        {
            "PolicyName": "InvokeHook",
            "PolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Action": "lambda:InvokeFunction",
                        "Effect": "Allow",
                        "Resource": arn(synth, PRODUCTION, "AWS::Lambda::Function", "DeployHook"),
                        "Sid": "InvokeValidationHook",
                    }
                ],
            },
        }
    ]
    policies = of_type(synth, PRODUCTION, "AWS::IAM::Policy").values()
    assert not [q for q in policies if {"Ref": role_id} in q["Properties"]["Roles"]]


@pytest.mark.parametrize("stack", ROLLING)
def test_rolling_environments_have_no_test_listener_rules_or_hook(
    synth: Synthesized, stack: str
) -> None:
    assert of_type(synth, stack, RULE) == {}
    ports = {
        v["Properties"]["Port"]
        for v in of_type(synth, stack, "AWS::ElasticLoadBalancingV2::Listener").values()
    }
    assert ports == ({443, 80} if stack == STAGING else {80})  # HTTPS and its redirect, or HTTP
    assert (
        "LifecycleHooks" not in props(synth, stack, "AWS::ECS::Service")["DeploymentConfiguration"]
    )
    assert [
        k for k in synth.raw[stack]["Resources"] if k.startswith(("DeployHook", "BlueGreen"))
    ] == []


# --- the image ----------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", ALL)
def test_image_tag_is_a_string_parameter_that_is_empty_until_the_pipeline_sets_it(
    synth: Synthesized, stack: str
) -> None:
    env = stack.rsplit("-", 1)[1]
    parameter = synth.raw[stack]["Parameters"]["ImageTag"]
    assert parameter["Type"] == "String"
    assert parameter["Default"] == ""
    assert parameter["AllowedPattern"] == "^$|^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"
    assert parameter["Description"] == (
        f"Tag of the payment-processor-images-shared image the service runs in {env}; the "
        "pipeline sets it to the commit it built. Empty (the default): the placeholder image "
        "public.ecr.aws/docker/library/caddy:2-alpine. A deploy that does not pass it keeps "
        "the running tag."
    )
    assert synth.raw[stack]["Conditions"]["ImageTagIsEmpty"] == {
        "Fn::Equals": [{"Ref": "ImageTag"}, ""]
    }


@pytest.mark.parametrize(
    ("tag", "allowed"),
    [
        ("", True),
        ("3f2a9c1", True),
        ("v1.2.3-rc_1", True),
        ("_underscore", True),
        ("x" * 128, True),
        ("x" * 129, False),
        (".hidden", False),
        ("-dash", False),
        ("has space", False),
        ("with:colon", False),
    ],
)
def test_image_tag_pattern_admits_ecr_tags_and_empty_only(tag: str, allowed: bool) -> None:
    assert (re.fullmatch(IMAGE_TAG_PATTERN, tag) is not None) is allowed


@pytest.mark.parametrize("stack", ALL)
def test_every_task_definition_image_depends_on_the_image_tag(
    synth: Synthesized, stack: str
) -> None:
    containers = [
        c
        for task in of_type(synth, stack, "AWS::ECS::TaskDefinition").values()
        for c in task["Properties"]["ContainerDefinitions"]
    ]
    assert containers
    for definition in containers:
        condition, _placeholder, tagged = definition["Image"]["Fn::If"]
        assert condition == "ImageTagIsEmpty"
        assert tagged["Fn::Join"][1][-1] == {"Ref": "ImageTag"}


@pytest.mark.parametrize("stack", AGNOSTIC)
def test_execution_role_pulls_from_exactly_the_pipeline_repository(
    synth: Synthesized, stack: str
) -> None:
    role = ref(synth, stack, "AWS::IAM::Role", "ServiceExecutionRole")
    [policy] = [
        q["Properties"]
        for q in of_type(synth, stack, "AWS::IAM::Policy").values()
        if q["Properties"]["Roles"] == [role]
    ]
    statements = {s.get("Sid"): s for s in policy["PolicyDocument"]["Statement"]}
    assert statements["PullServiceImage"] == {
        "Action": [
            "ecr:BatchCheckLayerAvailability",
            "ecr:BatchGetImage",
            "ecr:GetDownloadUrlForLayer",
        ],
        "Effect": "Allow",
        "Sid": "PullServiceImage",
        "Resource": {
            "Fn::Join": [
                "",
                [
                    "arn:",
                    {"Ref": "AWS::Partition"},
                    ":ecr:",
                    {"Ref": "AWS::Region"},
                    ":",
                    {"Ref": "AWS::AccountId"},
                    ":repository/payment-processor-images-shared",
                ],
            ]
        },
    }
    assert statements["EcrAuthorizationToken"] == {
        "Action": "ecr:GetAuthorizationToken",
        "Effect": "Allow",
        "Resource": "*",
        "Sid": "EcrAuthorizationToken",
    }
    assert sorted(k for k in statements if k) == sorted(
        ["PullServiceImage", "EcrAuthorizationToken", "WriteAppLogs"]
        + (["PullThroughCache"] if stack == PERF else [])
    )


@pytest.mark.parametrize("stack", AGNOSTIC)
def test_a_stack_without_account_or_region_names_none(synth: Synthesized, stack: str) -> None:
    built = synth.stacks[stack]
    assert Token.is_unresolved(built.account) and Token.is_unresolved(built.region)
    assert "Metadata" not in synth.raw[stack]
    literal = [
        (name, found)
        for name, resource in synth.raw[stack]["Resources"].items()
        for found in literal_locations(json.dumps(resource.get("Properties", {})))
    ]
    assert literal == []


def test_an_environment_in_another_account_pulls_from_the_pipeline_account_and_region(
    synth: Synthesized,
) -> None:
    built = synth.stacks[EDGE]
    assert (built.account, built.region) == (EDGE_ACCOUNT, EDGE_REGION)
    assert container(synth, EDGE)["Image"] == {
        "Fn::If": [
            "ImageTagIsEmpty",
            "public.ecr.aws/docker/library/caddy:2-alpine",
            {
                "Fn::Join": [
                    "",
                    [
                        f"{PIPELINE_ACCOUNT}.dkr.ecr.{PIPELINE_REGION}.",
                        {"Ref": "AWS::URLSuffix"},
                        "/payment-processor-images-shared:",
                        {"Ref": "ImageTag"},
                    ],
                ]
            },
        ]
    }
    role = ref(synth, EDGE, "AWS::IAM::Role", "ServiceExecutionRole")
    [policy] = [
        q["Properties"]
        for q in of_type(synth, EDGE, "AWS::IAM::Policy").values()
        if q["Properties"]["Roles"] == [role]
    ]
    [pull] = [
        s for s in policy["PolicyDocument"]["Statement"] if s.get("Sid") == "PullServiceImage"
    ]
    assert pull["Resource"] == {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                f":ecr:{PIPELINE_REGION}:{PIPELINE_ACCOUNT}:repository/"
                "payment-processor-images-shared",
            ],
        ]
    }
    # The template says why it names accounts and regions (deployline check DL130).
    assert synth.raw[EDGE]["Metadata"] == {
        "deployline": {
            "suppress": [
                {
                    "id": "DL130",
                    "reason": f"deployline.yaml places edge in aws://{EDGE_ACCOUNT}/{EDGE_REGION} "
                    f"and the pipeline's image repository in {PIPELINE_ACCOUNT}/{PIPELINE_REGION} "
                    "(environments[].account/region, pipeline.account/region): the stack is "
                    "synthesized for that account and region, not meant to deploy elsewhere",
                }
            ]
        }
    }


# --- lifecycle ----------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", ALL)
def test_every_stateful_resource_has_an_explicit_policy_retained_in_production(
    synth: Synthesized, stack: str
) -> None:
    expected = "Retain" if stack in RETAINED else "Delete"
    stateful = {
        k: (v.get("DeletionPolicy"), v.get("UpdateReplacePolicy"))
        for k, v in synth.raw[stack]["Resources"].items()
        if v["Type"] in STATEFUL_TYPES
    }
    assert stateful
    assert set(stateful.values()) == {(expected, expected)}


def test_production_load_balancer_refuses_deletion(synth: Synthesized) -> None:
    assert attributes(synth, LIVE)["deletion_protection.enabled"] == "true"
    assert attributes(synth, PERF)["deletion_protection.enabled"] == "false"


# --- outputs ------------------------------------------------------------------------------------


def test_rolling_outputs_name_the_url_cluster_service_listener_and_target_group(
    synth: Synthesized,
) -> None:
    outputs = {k: v["Value"] for k, v in synth.raw[QA]["Outputs"].items()}
    lb = one(synth, QA, "AWS::ElasticLoadBalancingV2::LoadBalancer")[0]
    assert outputs == {
        "ServiceUrl": {"Fn::Join": ["", ["http://", {"Fn::GetAtt": [lb, "DNSName"]}]]},
        "ClusterName": ref(synth, QA, "AWS::ECS::Cluster"),
        "ServiceName": {"Fn::GetAtt": [one(synth, QA, "AWS::ECS::Service")[0], "Name"]},
        "ListenerArn": ref(synth, QA, "AWS::ElasticLoadBalancingV2::Listener"),
        "TargetGroupArn": ref(synth, QA, "AWS::ElasticLoadBalancingV2::TargetGroup"),
        "LoadBalancerDnsName": {"Fn::GetAtt": [lb, "DNSName"]},
    }
    # With a domain, the URL is the domain's, on the HTTPS listener.
    staging = {k: v["Value"] for k, v in synth.raw[STAGING]["Outputs"].items()}
    assert staging["ServiceUrl"] == "https://payments-staging.example.com"
    assert staging["ListenerArn"] == {"Ref": https_listener(synth, STAGING)}


def test_blue_green_outputs_add_the_test_listener_its_rules_and_the_green_group(
    synth: Synthesized,
) -> None:
    outputs = {k: v["Value"] for k, v in synth.raw[PRODUCTION]["Outputs"].items()}
    lb = one(synth, PRODUCTION, "AWS::ElasticLoadBalancingV2::LoadBalancer")[0]
    listeners = {
        v["Properties"]["Port"]: {"Ref": k}
        for k, v in of_type(synth, PRODUCTION, "AWS::ElasticLoadBalancingV2::Listener").items()
    }
    assert outputs == {
        "ServiceUrl": "https://payments.example.com",
        "ClusterName": ref(synth, PRODUCTION, "AWS::ECS::Cluster"),
        "ServiceName": {"Fn::GetAtt": [one(synth, PRODUCTION, "AWS::ECS::Service")[0], "Name"]},
        "ListenerArn": listeners[443],
        "TargetGroupArn": ref(synth, PRODUCTION, TG, "LoadBalancerBlue"),
        "LoadBalancerDnsName": {"Fn::GetAtt": [lb, "DNSName"]},
        "TestUrl": "https://payments.example.com:8080",
        "TestListenerArn": listeners[8080],
        "GreenTargetGroupArn": ref(synth, PRODUCTION, TG, "LoadBalancerGreen"),
        "ProductionListenerRuleArn": ref(synth, PRODUCTION, RULE, "LoadBalancerProductionRule"),
        "TestListenerRuleArn": ref(synth, PRODUCTION, RULE, "LoadBalancerTestRule"),
    }


# --- peers --------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", ALL)
def test_cfn_lint_reports_no_error_and_no_warning(synth: Synthesized, stack: str) -> None:
    # Informational messages (I*) are not ignored either: none is reported today.
    assert [(m.rule.id, m.message) for m in lint_file(synth.paths[stack])] == []


#: cdk-nag findings every environment has by design (each acknowledged with its reason).
ACKNOWLEDGED_EVERYWHERE = {
    "AwsSolutions-ECS2",
    "AwsSolutions-IAM5[Resource::*]",
    "AwsSolutions-IAM5[Resource::<ServiceLogs205D48C6.Arn>:*]",
    "AwsSolutions-S1",
}


def test_cdk_nag_aws_solutions_has_no_unacknowledged_finding(synth: Synthesized) -> None:
    assert synth.synth_error is None
    [report] = [r for r in synth.report["pluginReports"] if r["pluginName"] == "AwsSolutions"]
    assert report["violations"] == []
    assert report["conclusion"] == "success"


def test_every_cdk_nag_acknowledgement_gives_a_reason_specific_to_its_resource(
    synth: Synthesized,
) -> None:
    [report] = [r for r in synth.report["pluginReports"] if r["pluginName"] == "AwsSolutions"]
    acknowledged: dict[str, set[str]] = {}
    for violation in report["suppressedViolations"]:
        reason = violation["reason"]
        assert len(reason) >= 60, violation["ruleName"]
        for construct in violation["violatingConstructs"]:
            stack = construct["constructPath"].split("/", 1)[0]
            acknowledged.setdefault(stack, set()).add(violation["ruleName"])
    for stack in ALL:
        assert acknowledged[stack] >= ACKNOWLEDGED_EVERYWHERE, stack
    # Open ingress is acknowledged only where deployline.yaml opens it (qa admits two CIDRs).
    assert {s for s in ALL if "AwsSolutions-EC23" in acknowledged[s]} == set(ALL) - {QA}
    # The hook's findings only where a hook exists; flow logs only in a new VPC.
    assert {s for s in ALL if "AwsSolutions-L1" in acknowledged[s]} == set(BLUE_GREEN)
    assert not any("NetworkFlowLogs" in r for r in acknowledged[DEV])
    assert any("NetworkFlowLogs" in r for r in acknowledged[STAGING])


@pytest.mark.parametrize("pack", COMPLIANCE_PACKS)
def test_compliance_pack_reports_no_unacknowledged_finding(synth: Synthesized, pack: str) -> None:
    assert synth.synth_error is None
    assert ran(synth.report, pack)
    assert [(f.rule, f.path) for f in findings(synth.report, pack)] == []


@pytest.mark.parametrize("pack", PACKS)
def test_every_acknowledgement_names_its_resource(synth: Synthesized, pack: str) -> None:
    entries = acknowledgements(synth.report, pack)
    assert {e.stack for e in entries} == set(ALL)
    assert all(len(e.reason or "") >= 60 for e in entries)
    missing = unnamed_resources(entries, Assembly(synth.outdir), ["payment-processor"])
    assert [(e.rule, e.path, e.reason) for e in missing] == []


def accepted(synth: Synthesized, rule: str) -> set[str]:
    """The stacks where a compliance pack's `rule` is acknowledged (in any pack)."""
    return {
        e.stack
        for pack in COMPLIANCE_PACKS
        for e in acknowledgements(synth.report, pack)
        if e.rule == f"{pack}-{rule}"
    }


def test_compliance_findings_are_accepted_only_where_the_configuration_made_them(
    synth: Synthesized,
) -> None:
    plain_http = {QA, PERF, DEV, EDGE}
    assert accepted(synth, "ALBHttpToHttpsRedirection") == plain_http
    assert accepted(synth, "ALBWAFEnabled") == set(ALL) - set(GUARDED)
    # Production load balancers refuse deletion; the others go with their stack.
    assert accepted(synth, "ELBDeletionProtectionEnabled") == set(DESTROYABLE)
    # The HTTPS environments' HTTP listener only redirects, without a certificate.
    assert accepted(synth, "ELBv2ACMCertificateRequired") == set(ALL)
    # Public subnets route to the internet gateway only in the VPCs deployline creates.
    assert accepted(synth, "VPCNoUnrestrictedRouteToIGW") == set(ALL) - {DEV}
    assert accepted(synth, "IAMNoInlinePolicy") == set(ALL)
    # Fixed, not accepted: versioned log buckets, alarms that notify, no public address on
    # launch, web ACLs that log.
    for rule in (
        "S3BucketVersioningEnabled",
        "CloudWatchAlarmAction",
        "VPCSubnetAutoAssignPublicIpDisabled",
        "WAFv2LoggingEnabled",
    ):
        assert accepted(synth, rule) == set(), rule


@pytest.fixture(scope="module")
def checkov(synth: Synthesized) -> dict[str, dict[str, Any]]:
    """checkov once over every template (it costs seconds per run): results by stack."""
    files = [str(synth.paths[name]) for name in ALL]
    completed = subprocess.run(
        [
            str(VENV_BIN / "checkov"),
            *[arg for f in files for arg in ("-f", f)],
            "--framework",
            "cloudformation",
            "--skip-download",  # offline; not --quiet, which leaves the skipped checks out
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    report = json.loads(completed.stdout)
    reports = report if isinstance(report, list) else [report]
    by_stack: dict[str, dict[str, Any]] = {name: {"failed": [], "skipped": []} for name in ALL}
    for one_report in reports:
        for kind in ("failed", "skipped"):
            for check in one_report["results"].get(f"{kind}_checks", []):
                stack = Path(check["file_path"]).name.removesuffix(".template.json")
                by_stack[stack][kind].append(check)
    return by_stack


@pytest.mark.parametrize("stack", ALL)
def test_checkov_finds_no_failed_check_and_every_skip_gives_a_reason(
    checkov: dict[str, dict[str, Any]], stack: str
) -> None:
    assert [(c["check_id"], c["resource"]) for c in checkov[stack]["failed"]] == []
    skipped = checkov[stack]["skipped"]
    assert skipped
    for check in skipped:
        assert len(check["check_result"]["suppress_comment"]) >= 40, check["check_id"]


@pytest.mark.parametrize("stack", ALL)
def test_deployline_checker_reports_no_finding_and_nothing_unknown(
    synth: Synthesized, stack: str
) -> None:
    result = check_files([synth.paths[stack]], threshold="LOW")
    assert [(f.rule_id, f.resource, f.message) for f in result.findings] == []
    assert [(f.rule_id, f.resource, f.message) for f in result.unknown] == []
    # Only a stack placed in an account and region may name them, and says so in its metadata.
    suppressed = {f.rule_id for f in result.suppressed_findings}
    assert suppressed == ({"DL130"} if stack == EDGE else set())


# --- bad configuration --------------------------------------------------------------------------


def bad_environment(**changes: Any) -> dict[str, Any]:
    data = example_data()
    data["environments"][1].update(changes)
    return data


BAD_CONFIGS = [
    pytest.param(
        bad_environment(listener_port=8080, test_listener_port=None),
        "test_listener_port (8080) must differ from listener_port (8080)",
        id="blue-green-without-a-second-listener-port",
    ),
    pytest.param(
        bad_environment(test_listener_port=80),
        "test_listener_port (80) must differ from listener_port (80)",
        id="test-listener-on-the-production-port",
    ),
    pytest.param(
        bad_environment(desired_count=0),
        "desired_count: must be at least 1, found 0",
        id="desired-count-zero",
    ),
    pytest.param(
        bad_environment(min_capacity=4, max_capacity=3, desired_count=3),
        "min_capacity (4) must not exceed max_capacity (3)",
        id="min-above-max",
    ),
    pytest.param(
        bad_environment(cpu=256, memory=4096),
        "memory 4096 MiB is not offered by Fargate with cpu 256; choose one of 512, 1024, 2048",
        id="memory-fargate-does-not-offer",
    ),
    pytest.param(
        bad_environment(cpu=300, memory=512),
        "cpu must be one of [256, 512, 1024, 2048, 4096, 8192, 16384] Fargate CPU units, got 300",
        id="cpu-fargate-does-not-offer",
    ),
]


def write_config(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "deployline.yaml"
    environments = data["environments"]
    for env in environments:
        for key in [k for k, v in env.items() if v is None]:
            del env[key]
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


@pytest.mark.parametrize(("data", "message"), BAD_CONFIGS)
def test_bad_environment_config_fails_with_a_message_naming_the_field(
    tmp_path: Path, data: dict[str, Any], message: str
) -> None:
    path = write_config(tmp_path, data)
    with pytest.raises(ConfigError) as error:
        load_config(path)
    [problem] = error.value.problems
    assert problem.file == str(path)
    assert problem.field.startswith("environments[1]")
    assert problem.line is not None
    assert message in str(problem)


@pytest.mark.parametrize(("data", "message"), BAD_CONFIGS)
def test_validate_exits_2_with_the_message_and_no_traceback(
    tmp_path: Path, data: dict[str, Any], message: str
) -> None:
    path = write_config(tmp_path, data)
    result = CliRunner().invoke(cli_app, ["validate", "--config", str(path)])
    assert result.exit_code == 2
    output = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert message in " ".join(output.split())
    assert "Traceback" not in output
    assert isinstance(result.exception, SystemExit)


def test_validate_command_exits_2_without_traceback_as_a_process(tmp_path: Path) -> None:
    path = write_config(tmp_path, bad_environment(desired_count=0))
    completed = subprocess.run(
        [str(VENV_BIN / "deployline"), "validate", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 2
    assert "desired_count" in completed.stdout + completed.stderr
    assert "Traceback" not in completed.stdout + completed.stderr


def test_the_example_configuration_is_valid_as_shipped(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, example_data()))
    assert [e.name for e in config.environments] == ["staging", "production"]


# --- construct helpers --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("namer", "head"),
    [
        (Namer("payment-processor", "staging"), "payment-processor-alb-logs"),
        (Namer("payment-processor", "production"), "payment-processor-alb"),
        (Namer("a" * 28, "production", "acme-platform"), None),
    ],
)
def test_access_log_bucket_name_ends_with_its_environment_and_fits_63_characters(
    namer: Namer, head: str | None
) -> None:
    name = access_log_bucket_name(namer)
    literal = name.split("-${Token", 1)[0]
    if head is not None:
        assert literal == head
    assert name.endswith(f"-{namer.env}")
    # account (12) and the longest region name (14) with their hyphens
    assert len(literal) + 1 + 12 + 1 + 14 + len(f"-{namer.env}") <= 63


def test_certificate_is_named_in_the_stack_own_account_and_region_and_bad_arns_fail() -> None:
    stack = Stack()
    resolved = stack.resolve(certificate_in_this_stack(CERTIFICATE))
    assert json.dumps(resolved).endswith(f':certificate/{CERTIFICATE_ID}"]]}}')
    assert "123456789012" not in json.dumps(resolved)
    with pytest.raises(ValueError, match=r"must be an ACM certificate ARN .* got 'not-an-arn'"):
        certificate_in_this_stack("not-an-arn")


def test_stack_refuses_a_namer_for_another_environment() -> None:
    config = config_from(example_data())
    with pytest.raises(ValueError, match="build the namer with env='staging'"):
        EnvironmentStack(
            App(),
            "Mismatch",
            config=config,
            environment=config.environments[0],
            namer=Namer(config.service, "production"),
            repository_name="payment-processor-images-shared",
        )


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("public.ecr.aws/docker/library/caddy:2-alpine", True),
        ("caddy", True),
        ("public.ecr.aws/docker/library/caddy@sha256:" + "a" * 64, True),
        ("123456789012.dkr.ecr.eu-west-1.amazonaws.com/mirror/caddy:2", True),
        ("public.ecr.aws/nginx/nginx:stable", False),
        ("ghcr.io/acme/caddy-proxy:1", False),  # another image whose name merely starts so
    ],
)
def test_the_placeholder_command_is_caddy_respond_for_caddy_images_only(
    image: str, expected: bool
) -> None:
    from deployline.stacks.environment_stack import placeholder_image_command

    command = placeholder_image_command(image, 9000)
    if not expected:
        assert command is None  # other images run their own command
        return
    assert command is not None
    assert command[:4] == ["caddy", "respond", "--listen", ":9000"]
    assert command[4:6] == ["--status", "200"]
