"""Preflight pieces that need no deployed stack: the bootstrap command each failure names, and
unconfirmed alert e-mails (moto never leaves a subscription pending, so SNS is stubbed)."""

from __future__ import annotations

from typing import Any

import boto3
import yaml
from botocore.stub import Stubber

from deployline.config import parse_config_text
from deployline.deploy.assembly import Placement
from deployline.deploy.aws import Aws
from deployline.deploy.cdk import CDK_CLI_VERSION
from deployline.deploy.preflight import alert_topic_arn, bootstrap_command, check_subscriptions

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
