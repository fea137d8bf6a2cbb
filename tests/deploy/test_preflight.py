"""Preflight pieces that need no deployed stack: the bootstrap command each failure names, and
unconfirmed alert e-mails (moto never leaves a subscription pending, so SNS is stubbed)."""

from __future__ import annotations

import json
from typing import Any

import boto3
import yaml
from botocore.stub import Stubber

from deployline.config import parse_config_text
from deployline.deploy.assembly import Placement, StackArtifact
from deployline.deploy.aws import Aws
from deployline.deploy.cdk import CDK_CLI_VERSION
from deployline.deploy.preflight import (
    alert_topic_arn,
    bootstrap_command,
    check_alarm_subscriptions,
    check_certificates,
    check_existing_topic,
    check_hosted_zones,
    check_subscriptions,
)

from .conftest import ACCOUNT, REGION, ROOT, Moto

TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:payment-processor-alerts-shared"
EXAMPLE = yaml.safe_load((ROOT / "deployline.yaml").read_text())
CONFIG = parse_config_text(yaml.safe_dump(EXAMPLE))


def sns_answering(*responses: tuple[str, dict[str, Any]]) -> Any:
    client = boto3.client("sns", region_name=REGION)
    stubber = Stubber(client)
    for kind, body in responses:
        if kind == "error":
            stubber.add_client_error(
                "list_subscriptions_by_topic", service_error_code=body["code"], http_status_code=404
            )
        else:
            stubber.add_response("list_subscriptions_by_topic", body, {"TopicArn": TOPIC})
    stubber.activate()
    return client


def subscription(address: str, arn: str) -> dict[str, str]:
    return {
        "SubscriptionArn": arn,
        "Owner": ACCOUNT,
        "Protocol": "email",
        "Endpoint": address,
        "TopicArn": TOPIC,
    }


def test_the_alert_topic_is_named_as_the_pipeline_stack_names_it() -> None:
    assert alert_topic_arn(CONFIG, partition="aws", account=ACCOUNT, region=REGION) == TOPIC


def test_an_unconfirmed_e_mail_is_a_warning_with_the_command_that_resends_it(moto: Moto) -> None:
    sns = sns_answering(
        (
            "ok",
            {
                "Subscriptions": [
                    subscription("payments-oncall@example.com", "PendingConfirmation"),
                    subscription(
                        "lead@example.com", f"{TOPIC}:0b9a7c3e-1d2f-4a5b-8c6d-7e8f9a0b1c2d"
                    ),
                ]
            },
        )
    )
    (check,) = check_subscriptions(CONFIG, Aws(), sns)
    assert (check.name, check.ok, check.blocking) == (
        "e-mail subscription payments-oncall@example.com",
        False,
        False,
    )
    assert check.detail == "not confirmed: alerts to this address are dropped"
    assert check.fix == (
        "confirm the e-mail from AWS Notifications; to have it sent again: `aws sns subscribe "
        f"--region {REGION} --topic-arn {TOPIC} --protocol email --notification-endpoint "
        "payments-oncall@example.com`"
    )


def test_before_the_topic_exists_the_check_says_what_will_happen(moto: Moto) -> None:
    sns = sns_answering(("error", {"code": "NotFound"}))
    (check,) = check_subscriptions(CONFIG, Aws(), sns)
    assert (check.ok, check.blocking) == (True, False)
    assert check.detail.startswith("the alert topic is created by this deploy; AWS then e-mails")


def test_no_e_mail_configured_means_no_check(moto: Moto) -> None:
    data = {**EXAMPLE, "notifications": {"emails": []}}
    assert check_subscriptions(parse_config_text(yaml.safe_dump(data)), Aws()) == []


def test_the_bootstrap_command_names_qualifier_trust_and_profile_only_when_needed() -> None:
    here = Placement("111111111111", "eu-west-1")
    npx = f"npx aws-cdk@{CDK_CLI_VERSION} bootstrap"
    assert bootstrap_command(here, qualifier="hnb659fds", trust=None) == (
        f"{npx} aws://111111111111/eu-west-1"
    )
    assert bootstrap_command(here, qualifier="hnb659fds", trust="111111111111") == (
        f"{npx} aws://111111111111/eu-west-1"
    )
    assert bootstrap_command(here, qualifier="acme", trust="222222222222", profile="tooling") == (
        f"{npx} aws://111111111111/eu-west-1 --qualifier acme --trust 222222222222 "
        "--trust-for-lookup 222222222222 --cloudformation-execution-policies "
        "arn:aws:iam::aws:policy/AdministratorAccess --profile tooling"
    )


# ---- notifications.sns_topic_arn: the team's existing topic --------------------------------


def with_topic(arn: str) -> Any:
    data = {**EXAMPLE, "notifications": {"sns_topic_arn": arn}}
    return parse_config_text(yaml.safe_dump(data))


def publish_statement(*services: str, topic: str) -> dict[str, Any]:
    return {
        "Effect": "Allow",
        "Principal": {"Service": list(services)},
        "Action": "sns:Publish",
        "Resource": topic,
        "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}},
    }


def test_a_missing_existing_topic_is_a_warning_that_names_the_field(moto: Moto) -> None:
    arn = f"arn:aws:sns:{REGION}:{ACCOUNT}:no-such-topic"
    (check,) = check_existing_topic(with_topic(arn), Aws(), moto.client("sns"))
    assert (check.ok, check.blocking) == (False, False)
    assert "does not exist" in check.detail and "notifications.sns_topic_arn" in (check.fix or "")


def test_the_default_topic_policy_lets_alarms_publish_but_not_eventbridge(moto: Moto) -> None:
    arn = moto.client("sns").create_topic(Name="ops-default")["TopicArn"]
    (check,) = check_existing_topic(with_topic(arn), Aws(), moto.client("sns"))
    assert (check.ok, check.blocking) == (False, False)
    assert "EventBridge" in check.detail and "CloudWatch" not in check.detail
    assert "events.amazonaws.com" in (check.fix or "")
    assert "cloudwatch.amazonaws.com" not in (check.fix or "")


def test_a_policy_for_both_services_passes_and_one_for_neither_names_both(moto: Moto) -> None:
    sns = moto.client("sns")
    good = sns.create_topic(Name="ops-good")["TopicArn"]
    services = ("events.amazonaws.com", "cloudwatch.amazonaws.com")
    policy = {"Version": "2012-10-17", "Statement": [publish_statement(*services, topic=good)]}
    sns.set_topic_attributes(
        TopicArn=good, AttributeName="Policy", AttributeValue=json.dumps(policy)
    )
    (check,) = check_existing_topic(with_topic(good), Aws(), sns)
    assert check.ok, check

    other = sns.create_topic(Name="ops-other")["TopicArn"]
    # right services, wrong topic: the statement grants another resource
    policy = {"Version": "2012-10-17", "Statement": [publish_statement(*services, topic=good)]}
    sns.set_topic_attributes(
        TopicArn=other, AttributeName="Policy", AttributeValue=json.dumps(policy)
    )
    (check,) = check_existing_topic(with_topic(other), Aws(), sns)
    assert not check.ok
    assert "EventBridge" in check.detail and "CloudWatch alarms" in check.detail


def test_a_key_that_keeps_eventbridge_and_cloudwatch_out_is_a_warning(moto: Moto) -> None:
    sns, kms = moto.client("sns"), moto.client("kms")
    key = kms.create_key(Description="ops alerts")["KeyMetadata"]["KeyId"]
    arn = sns.create_topic(Name="ops-encrypted", Attributes={"KmsMasterKeyId": key})["TopicArn"]
    services = ("events.amazonaws.com", "cloudwatch.amazonaws.com")
    policy = {"Version": "2012-10-17", "Statement": [publish_statement(*services, topic=arn)]}
    sns.set_topic_attributes(
        TopicArn=arn, AttributeName="Policy", AttributeValue=json.dumps(policy)
    )
    topic_check, key_check = check_existing_topic(with_topic(arn), Aws(), sns, kms)
    assert topic_check.ok
    # moto's default key policy admits the account's root only
    assert (key_check.ok, key_check.blocking) == (False, False)
    assert "EventBridge" in key_check.detail and "CloudWatch alarms" in key_check.detail

    kms.put_key_policy(
        KeyId=key,
        PolicyName="default",
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                        "Action": "kms:*",
                        "Resource": "*",
                    },
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": list(services)},
                        "Action": ["kms:GenerateDataKey*", "kms:Decrypt"],
                        "Resource": "*",
                    },
                ],
            }
        ),
    )
    _, key_check = check_existing_topic(with_topic(arn), Aws(), sns, kms)
    assert key_check.ok, key_check


def test_the_aws_managed_sns_key_can_never_carry_these_alerts(moto: Moto) -> None:
    sns = moto.client("sns")
    arn = sns.create_topic(Name="ops-managed", Attributes={"KmsMasterKeyId": "alias/aws/sns"})[
        "TopicArn"
    ]
    checks = check_existing_topic(with_topic(arn), Aws(), sns)
    assert not checks[-1].ok and "alias/aws/sns" in checks[-1].detail
    assert "customer managed key" in (checks[-1].fix or "")


def test_no_existing_topic_means_no_check(moto: Moto) -> None:
    assert check_existing_topic(CONFIG, Aws()) == []


# ---- hosted zones: where the certificate is validated and the alias lands ------------------


def env_stack(name: str) -> StackArtifact:
    return StackArtifact(
        artifact_id=name,
        stack_name=name,
        template_file=ROOT / "unused.template.json",
        placement=Placement(None, None),
        requires_bootstrap_version=6,
        bootstrap_version_parameter=None,
        deploy_role_arn=None,
        lookup_role_arn=None,
    )


ZONE_ID = "Z0123456789ABCDEFGHIJ"  # Route 53's form; moto's IDs are not, so they are mapped


def with_zone(zone_id: str = ZONE_ID) -> Any:
    data = yaml.safe_load((ROOT / "deployline.yaml").read_text())
    for env in data["environments"]:
        env["hosted_zone_id"] = zone_id
    return parse_config_text(yaml.safe_dump(data))


class Route53As:
    """moto's Route 53, answering for ZONE_ID about the zone `moto_id`."""

    def __init__(self, client: Any, moto_id: str) -> None:
        self.client, self.moto_id = client, moto_id

    def get_hosted_zone(self, Id: str) -> Any:
        return self.client.get_hosted_zone(Id=self.moto_id if Id == ZONE_ID else Id)


def zones(moto: Moto, moto_id: str, config: Any = None) -> list[Any]:
    stacks = [env_stack("payment-processor-service-staging")]  # production is not deployed
    route53 = Route53As(moto.client("route53"), moto_id)
    return check_hosted_zones(config or with_zone(), stacks, Aws(), lambda stack: route53)


def new_zone(moto: Moto, name: str, *, private: bool = False) -> str:
    kwargs: dict[str, Any] = {"Name": name, "CallerReference": name + str(private)}
    if private:
        vpc = moto.client("ec2").create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        kwargs["HostedZoneConfig"] = {"PrivateZone": True}
        kwargs["VPC"] = {"VPCRegion": REGION, "VPCId": vpc}
    zone_id: str = moto.client("route53").create_hosted_zone(**kwargs)["HostedZone"]["Id"]
    return zone_id.rsplit("/", 1)[-1]


def test_a_public_zone_that_holds_the_domain_passes(moto: Moto) -> None:
    (check,) = zones(moto, new_zone(moto, "example.com"))
    assert check.ok, check
    assert check.detail == "example.com (public) holds payments-staging.example.com"


def test_a_missing_zone_fails_naming_the_field(moto: Moto) -> None:
    (check,) = zones(moto, "Z0000000000NOSUCHZONE")
    assert (check.ok, check.blocking) == (False, True)
    assert check.detail.startswith("environments[0].hosted_zone_id: no hosted zone")
    assert "list-hosted-zones-by-name" in (check.fix or "")


def test_a_zone_of_another_domain_fails(moto: Moto) -> None:
    (check,) = zones(moto, new_zone(moto, "example.org"))
    assert not check.ok
    assert "zone example.org cannot hold payments-staging.example.com" in check.detail
    # a name that merely ends in the zone's text is not in the zone
    (check,) = zones(moto, new_zone(moto, "ample.com"))
    assert not check.ok


def test_a_private_zone_fails_since_acm_validates_through_public_dns(moto: Moto) -> None:
    (check,) = zones(moto, new_zone(moto, "example.com", private=True))
    assert not check.ok and "private zone" in check.detail


def test_each_environments_alarm_topic_asks_its_own_confirmation(moto: Moto) -> None:
    alarms = f"arn:aws:sns:{REGION}:{ACCOUNT}:payment-processor-alarms-staging"
    client = boto3.client("sns", region_name=REGION)
    stubber = Stubber(client)
    pending = {**subscription("payments-oncall@example.com", "PendingConfirmation")}
    stubber.add_response(
        "list_subscriptions_by_topic",
        {"Subscriptions": [{**pending, "TopicArn": alarms}]},
        {"TopicArn": alarms},
    )
    stubber.activate()
    stacks = [env_stack("payment-processor-service-staging")]
    (check,) = check_alarm_subscriptions(CONFIG, stacks, Aws(), lambda stack: client)
    assert (check.name, check.ok, check.blocking) == (
        "e-mail subscription payments-oncall@example.com (staging alarms)",
        False,
        False,
    )
    assert f"--topic-arn {alarms} " in (check.fix or "")
    stubber.assert_no_pending_responses()


# ---- certificate_arn: issued, and for domain_name ----------------------------------------


def self_signed(*names: str) -> tuple[bytes, bytes]:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)
        .sign(key, hashes.SHA256())
    )
    return (
        certificate.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        ),
    )


def certificates(moto: Moto, arn: str) -> list[Any]:
    data = yaml.safe_load((ROOT / "deployline.yaml").read_text())
    staging = data["environments"][0]
    staging.pop("hosted_zone_id", None)
    staging["certificate_arn"] = arn
    config = parse_config_text(yaml.safe_dump(data))
    stacks = [env_stack("payment-processor-service-staging")]
    acm = moto.client("acm")
    return check_certificates(config, stacks, Aws(), lambda stack: acm)


def imported(moto: Moto, *names: str) -> str:
    body, key = self_signed(*names)
    arn: str = moto.client("acm").import_certificate(Certificate=body, PrivateKey=key)[
        "CertificateArn"
    ]
    return arn


def test_an_issued_certificate_for_the_domain_or_its_wildcard_passes(moto: Moto) -> None:
    (check,) = certificates(moto, imported(moto, "payments-staging.example.com"))
    assert check.ok, check
    (check,) = certificates(moto, imported(moto, "*.example.com"))
    assert check.ok, check


def test_a_certificate_for_other_names_fails_naming_them(moto: Moto) -> None:
    # a wildcard covers one label only
    (check,) = certificates(moto, imported(moto, "*.staging.example.com", "example.com"))
    assert (check.ok, check.blocking) == (False, True)
    assert check.detail == (
        "environments[0].certificate_arn: the certificate covers *.staging.example.com, "
        "example.com, not payments-staging.example.com; browsers would refuse the service"
    )


def test_a_certificate_still_pending_validation_fails(moto: Moto) -> None:
    arn = moto.client("acm").request_certificate(
        DomainName="payments-staging.example.com", ValidationMethod="DNS"
    )["CertificateArn"]
    (check,) = certificates(moto, arn)
    assert not check.ok and "not ISSUED" in check.detail, check


def test_a_certificate_that_does_not_exist_fails(moto: Moto) -> None:
    arn = f"arn:aws:acm:{REGION}:{ACCOUNT}:certificate/0123abcd-0123-4567-89ab-0123456789ab"
    (check,) = certificates(moto, arn)
    assert not check.ok and "no certificate" in check.detail
