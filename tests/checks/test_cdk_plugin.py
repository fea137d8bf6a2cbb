"""The CDK policy-validation plugin: plain `cdk synth` (App.synth) reports our findings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack, Validations
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3

import deployline._jsii_env  # noqa: F401  (quiet jsii's Node banner before aws_cdk loads)
from deployline.checks.cdk_plugin import DeploylineChecks, DeploylineValidation


def _synth(app: App, outdir: Path) -> tuple[str | None, dict[str, Any]]:
    """(error message or None, validation report) of synthesizing `app`."""
    error = None
    try:
        app.synth()
    except Exception as exc:  # jsii raises RuntimeError("ValidationFailed: ...")
        error = str(exc)
    report_file = outdir / "validation-report.json"
    report = json.loads(report_file.read_text()) if report_file.exists() else {}
    return error, report


def _ours(report: dict[str, Any]) -> dict[str, Any]:
    [plugin] = [p for p in report["pluginReports"] if p["pluginName"] == "deployline"]
    return plugin


#: aws-cdk-lib's own CloudFormation validator (about 5 s per app) is not what these tests test.
NO_CFN_VALIDATOR: dict[str, Any] = {"builtin_cloud_formation_validation": False}


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out: dict[str, Any] = {}

    # A bare L1 bucket through the Beta1 App option.
    bad_dir = tmp_path_factory.mktemp("bad")
    bad = App(outdir=str(bad_dir), policy_validation_beta1=[DeploylineChecks()], **NO_CFN_VALIDATOR)
    s3.CfnBucket(Stack(bad, "Tiny"), "Bad")
    out["bad"] = _synth(bad, bad_dir)

    # A bucket with every secure default through Validations.add_plugins.
    good_dir = tmp_path_factory.mktemp("good")
    good = App(outdir=str(good_dir), **NO_CFN_VALIDATOR)
    Validations.of(good).add_plugins(DeploylineValidation())
    stack = Stack(good, "Tiny")
    key = kms.Key(stack, "Key", enable_key_rotation=True)
    s3.Bucket(
        stack,
        "Good",
        encryption=s3.BucketEncryption.KMS,
        encryption_key=key,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        versioned=True,
    )
    out["good"] = _synth(good, good_dir)

    # The bare bucket again, its HIGH findings accepted: one in the template's Metadata, one
    # passed to the plugin.
    accepted_dir = tmp_path_factory.mktemp("accepted")
    plugin = DeploylineChecks(
        suppressions=[{"id": "DL103", "reason": "a fixture bucket that holds nothing"}]
    )
    accepted = App(outdir=str(accepted_dir), policy_validation_beta1=[plugin], **NO_CFN_VALIDATOR)
    bucket = s3.CfnBucket(Stack(accepted, "Tiny"), "Bad")
    bucket.cfn_options.metadata = {
        "deployline": {"suppress": [{"id": "DL101", "reason": "a fixture bucket, no data"}]}
    }
    out["accepted"] = _synth(accepted, accepted_dir)
    out["accepted_plugin"] = (plugin, accepted_dir / "Tiny.template.json")
    return out


def test_a_bare_bucket_fails_synth_with_our_violations(synthesized) -> None:  # type: ignore[no-untyped-def]
    error, report = synthesized["bad"]
    assert error is not None and "ValidationFailed" in error
    assert "DL101" in error  # CDK prints our report
    ours = _ours(report)
    assert ours["conclusion"] == "failure"
    assert ours["pluginVersion"]
    by_rule = {v["ruleName"]: v for v in ours["violations"]}
    assert set(by_rule) == {"DL101", "DL103"}  # HIGH and above only, by default
    dl101 = by_rule["DL101"]
    assert dl101["customSeverity"] == "HIGH"
    assert "BucketEncryption" in dl101["suggestedFix"]
    [construct] = dl101["violatingConstructs"]
    assert construct["constructPath"] == "Tiny/Bad"
    assert construct["cloudFormationResource"]["logicalId"] == "Bad"
    assert construct["cloudFormationResource"]["propertyPaths"] == ["Properties.BucketEncryption"]
    assert int(ours["metadata"]["findings below threshold"]) > 0


def test_a_secure_bucket_passes(synthesized) -> None:  # type: ignore[no-untyped-def]
    error, report = synthesized["good"]
    assert error is None, error
    # CDK lists only failing plugins in the report.
    assert not [p for p in report.get("pluginReports", []) if p["pluginName"] == "deployline"]


def test_suppressions_in_metadata_and_in_the_plugin_are_honoured(synthesized) -> None:  # type: ignore[no-untyped-def]
    error, report = synthesized["accepted"]
    assert error is None, error
    assert not [p for p in report.get("pluginReports", []) if p["pluginName"] == "deployline"]
    plugin, template = synthesized["accepted_plugin"]
    rerun = plugin.run([str(template)])
    assert rerun.at_or_above() == []
    assert {f.rule_id for f in rerun.suppressed_findings} == {"DL101", "DL103"}


def test_the_plugin_rejects_bad_options_when_it_is_built() -> None:
    with pytest.raises(ValueError, match="unknown severity 'urgent'"):
        DeploylineChecks(threshold="urgent")
    with pytest.raises(ValueError, match="no rule matches 'DL999'"):
        DeploylineValidation(rules=["DL999"])
    with pytest.raises(ValueError, match=r"suppressions\[0\] has no reason"):
        DeploylineChecks(suppressions=[{"id": "DL101", "reason": " "}])


def test_the_plugin_names_itself_and_its_rules() -> None:
    plugin = DeploylineChecks(rules=["DL1"], threshold="medium")
    assert plugin.name == "deployline"
    assert plugin.rule_ids and all(r.startswith("DL1") for r in plugin.rule_ids)
    assert plugin.threshold.name == "MEDIUM"
