"""cdk-nag's NIST 800-53 R5, PCI DSS 3.2.1 and HIPAA Security packs, beside AwsSolutions, over
the whole example app and the three-account example as `deployline.app.build_app` makes them
(pipeline, environments and, for the three-account example, the other region's artifact store),
each synthesized once for the module.

No finding is left unacknowledged, every acknowledgement's reason names the resource it is about,
and what the example accepts is exactly what was decided (issue 14, item 3): anything else is
either fixed or a new decision to make in code, with its reason.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App

from deployline.app import APP_CONTEXT, build_app, feature_flags
from deployline.config import load_config
from nag_reports import (  # tests/nag_reports.py
    COMPLIANCE_PACKS,
    PACKS,
    Assembly,
    acknowledgements,
    add_packs,
    findings,
    ran,
    unnamed_resources,
)

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "deployline.yaml"
PAYMENT_EXAMPLE = ROOT / "examples" / "payment-processor" / "deployline.yaml"
MULTI_ACCOUNT = ROOT / "examples" / "multi-account" / "deployline.yaml"
STAGING = "payment-processor-service-staging"
PRODUCTION = "payment-processor-service-production"
PIPELINE = "payment-processor-pipeline-shared"


@dataclass(frozen=True)
class Nagged:
    service: str
    outdir: Path
    report: dict[str, Any]


def nagged(config: Path, outdir: Path) -> Nagged:
    """`config` through build_app, synthesized with every pack (cdk-nag findings fail the synth;
    the report says which)."""
    app = App(
        outdir=str(outdir),
        context={**feature_flags(), **APP_CONTEXT},
        builtin_cloud_formation_validation=False,
    )
    loaded = load_config(config)
    build_app(loaded, app=app)
    add_packs(app)
    with contextlib.suppress(RuntimeError):
        app.synth()
    report = json.loads((outdir / "validation-report.json").read_text())
    return Nagged(loaded.service, outdir, report)


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Nagged:
    return nagged(EXAMPLE, tmp_path_factory.mktemp("example"))


@pytest.fixture(scope="module")
def multi_account(tmp_path_factory: pytest.TempPathFactory) -> Nagged:
    return nagged(MULTI_ACCOUNT, tmp_path_factory.mktemp("multi-account"))


@pytest.fixture(
    scope="module", params=["example", "multi_account"], ids=["example", "multi-account"]
)
def app(request: pytest.FixtureRequest) -> Nagged:
    """Each example, synthesized once for the module (the tests of the example's decisions
    read the same synth)."""
    nag: Nagged = request.getfixturevalue(request.param)
    return nag


@pytest.mark.parametrize("pack", PACKS)
def test_no_pack_reports_a_finding_nobody_acknowledged(app: Nagged, pack: str) -> None:
    assert ran(app.report, pack)
    assert [(f.rule, f.path) for f in findings(app.report, pack)] == []


@pytest.mark.parametrize("pack", PACKS)
def test_every_acknowledgement_names_the_resource_it_is_about(app: Nagged, pack: str) -> None:
    entries = acknowledgements(app.report, pack)
    assert entries
    missing = unnamed_resources(entries, Assembly(app.outdir), [app.service])
    assert [(e.rule, e.path, e.reason) for e in missing] == []


def accepted(nag: Nagged, stack: str) -> dict[str, set[str]]:
    """The compliance rules acknowledged in `stack`, by pack."""
    return {
        pack: {
            e.rule.removeprefix(f"{pack}-")
            for e in acknowledgements(nag.report, pack)
            if e.stack == stack
        }
        for pack in COMPLIANCE_PACKS
    }


#: What every stack of the example accepts, in the packs that have the rule.
EVERYWHERE = {"IAMNoInlinePolicy", "S3BucketReplicationEnabled", "S3DefaultEncryptionKMS"}
#: What every environment accepts: the internet gateway route of the public subnets (the load
#: balancer's), the access-log bucket that logs nowhere, and the HTTP listener that only
#: redirects to HTTPS, without a certificate of its own.
ENVIRONMENT = EVERYWHERE | {
    "VPCNoUnrestrictedRouteToIGW",
    "S3BucketLoggingEnabled",
    "ELBv2ACMCertificateRequired",
}
#: A deployline Lambda function: no VPC (AWS APIs only), no reserved concurrency (it would take
#: from the account's pool), no dead-letter queue (synchronous callers, an on-failure
#: destination, or a schedule).
FUNCTIONS = {"LambdaInsideVPC", "LambdaConcurrency", "LambdaDLQ"}
#: Which packs carry each rule (cdk-nag 3.0.2); the others never report it.
ONLY_IN = {
    "LambdaConcurrency": {"NIST.800.53.R5", "HIPAA.Security"},
    "LambdaDLQ": {"NIST.800.53.R5", "HIPAA.Security"},
    "ELBDeletionProtectionEnabled": {"NIST.800.53.R5", "HIPAA.Security"},
    "DynamoDBInBackupPlan": {"NIST.800.53.R5", "HIPAA.Security"},
    "CodeBuildProjectSourceRepoUrl": {"PCI.DSS.321", "HIPAA.Security"},
}


@pytest.mark.parametrize(
    ("stack", "decided"),
    [
        # staging is not production: its load balancer goes with its stack
        (STAGING, ENVIRONMENT | {"ELBDeletionProtectionEnabled"}),
        # production's blue/green validation hook is a Lambda function
        (PRODUCTION, ENVIRONMENT | FUNCTIONS),
        (
            PIPELINE,
            EVERYWHERE | FUNCTIONS | {"DynamoDBInBackupPlan", "CodeBuildProjectSourceRepoUrl"},
        ),
    ],
)
def test_the_example_accepts_exactly_the_decided_findings(
    example: Nagged, stack: str, decided: set[str]
) -> None:
    for pack, rules in accepted(example, stack).items():
        expected = {r for r in decided if pack in ONLY_IN.get(r, {pack})}
        assert rules == expected, pack


def test_what_the_issue_named_is_fixed_in_the_example_not_accepted(example: Nagged) -> None:
    """HTTPS with a certificate, web ACLs (that log), alarms that notify, no public address on
    launch, versioned log buckets: neither reported nor acknowledged anywhere."""
    fixed = {
        "ALBHttpToHttpsRedirection",
        "ALBWAFEnabled",
        "WAFv2LoggingEnabled",
        "CloudWatchAlarmAction",
        "VPCSubnetAutoAssignPublicIpDisabled",
        "S3BucketVersioningEnabled",
    }
    for pack in COMPLIANCE_PACKS:
        seen = {
            e.rule.removeprefix(f"{pack}-")
            for e in [*acknowledgements(example.report, pack), *findings(example.report, pack)]
        }
        assert not seen & fixed, pack


def test_the_sample_services_own_config_deploys_the_same_environments() -> None:
    """examples/payment-processor/deployline.yaml differs from the root example only in how it
    builds and tests, so the packs' verdict on the root example holds for it."""
    sample, example = load_config(PAYMENT_EXAMPLE), load_config(EXAMPLE)
    assert sample.environments == example.environments
    assert sample.notifications == example.notifications
    assert all(env.serves_https for env in sample.environments)


def test_a_literal_is_what_cdk_calls_resolved_without_asking_it() -> None:
    """compliance._literal answers a string without CDK's "Token[" marker itself (no jsii round
    trip) and asks Token.is_unresolved otherwise: the same answer as asking CDK every time."""
    from aws_cdk import Aws, Fn, Token

    from deployline.constructs.compliance import _literal

    values: list[object] = [
        "payment-processor-deploy-role",
        "",
        "deployline: a description with Token[ in its text",
        "${Token[not closed",
        Aws.ACCOUNT_ID,
        f"role-{Aws.REGION}-name",
        Fn.join("-", ["name", Aws.STACK_NAME]),
        Token.as_string({"Ref": "RoleName"}),
        None,
        12,
    ]
    for value in values:
        expected = isinstance(value, str) and not Token.is_unresolved(value)
        assert _literal(value) == expected, value
    assert not _literal(Aws.ACCOUNT_ID) and _literal("plain")
