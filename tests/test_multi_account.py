"""The three-account example (examples/multi-account), synthesized as `deployline synth` does:
every stack carries its account and region, the pipeline reaches the others only through their
bootstrap roles, ECS deployment events find their way back, and the whole assembly is clean
under `deployline check` at LOW (DL130 reads the accounts the assembly declares), and its
environment stacks under cfn-lint and checkov (the pipeline's stacks of this config: in
tests/stacks/test_pipeline_stack.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import lint_file

from deployline.checks.api import check_assembly
from deployline.synth import SynthResult, synthesize

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "examples" / "multi-account" / "deployline.yaml"
CHECKOV = Path(sys.executable).with_name("checkov")
TOOLING, STAGING, PRODUCTION = "111111111111", "222222222222", "333333333333"


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> SynthResult:
    return synthesize(CONFIG, tmp_path_factory.mktemp("multi") / "cdk.out")


def manifest(result: SynthResult) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((result.outdir / "manifest.json").read_text())
    return data


def template(result: SynthResult, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((result.outdir / f"{name}.template.json").read_text())
    return data


def of_type(raw: dict[str, Any], type_: str) -> list[dict[str, Any]]:
    return [r for r in raw["Resources"].values() if r["Type"] == type_]


def test_every_stack_carries_its_account_and_region(synthesized: SynthResult) -> None:
    environments = {
        name: artifact["environment"]
        for name, artifact in manifest(synthesized)["artifacts"].items()
        if artifact["type"] == "aws:cloudformation:stack"
    }
    assert environments == {
        "orders-api-service-staging": f"aws://{STAGING}/us-east-1",
        "orders-api-service-production": f"aws://{PRODUCTION}/eu-west-1",
        "orders-api-artifacts-eu-west-1-shared": f"aws://{TOOLING}/eu-west-1",
        "orders-api-pipeline-shared": f"aws://{TOOLING}/us-east-1",
    }


def test_the_environments_pull_from_the_tooling_accounts_registry(
    synthesized: SynthResult,
) -> None:
    raw = template(synthesized, "orders-api-service-production")
    text = json.dumps(raw)
    assert f"{TOOLING}.dkr.ecr.us-east-1." in text
    assert (
        f"arn:aws:ecr:us-east-1:{TOOLING}:repository/orders-api-images-shared"
        in text.replace('{"Ref": "AWS::Partition"}', "aws")
        or f":ecr:us-east-1:{TOOLING}:repository/orders-api-images-shared" in text
    )


def test_environments_elsewhere_forward_their_ecs_deployment_events_to_the_pipeline(
    synthesized: SynthResult,
) -> None:
    bus = f":events:us-east-1:{TOOLING}:event-bus/orders-api-deploy-events-shared"
    for name in ("orders-api-service-staging", "orders-api-service-production"):
        rules = of_type(template(synthesized, name), "AWS::Events::Rule")
        forwarding = [
            r for r in rules if any(bus in json.dumps(t["Arn"]) for t in r["Properties"]["Targets"])
        ]
        assert len(forwarding) == 1, name
        pattern = forwarding[0]["Properties"]["EventPattern"]
        assert pattern["source"] == ["aws.ecs"]
        assert pattern["detail-type"] == ["ECS Deployment State Change"]
    pipeline = template(synthesized, "orders-api-pipeline-shared")
    (policy,) = of_type(pipeline, "AWS::Events::EventBusPolicy") or [None]
    assert policy is not None
    statement = json.dumps(policy["Properties"])
    assert STAGING in statement and PRODUCTION in statement


def test_the_whole_assembly_is_clean_for_deployline_check_at_low(synthesized: SynthResult) -> None:
    result = check_assembly(synthesized.outdir, threshold="LOW")
    assert not result.findings, [
        (f.rule_id, f.file, f.resource, f.message) for f in result.findings
    ]
    assert not result.unknown, [(f.rule_id, f.file, f.resource, f.message) for f in result.unknown]


def test_cfn_lint_and_checkov_find_nothing(synthesized: SynthResult) -> None:
    """On the environment stacks: the pipeline's own stacks of this config (the pipeline and the
    other region's artifact store) go through both in tests/stacks/test_pipeline_stack.py
    ("multi"), which builds them with the same deployline.app.pipeline_stacks."""
    every = sorted(synthesized.outdir.glob("*.template.json"))
    assert len(every) == 4
    paths = [p for p in every if "-service-" in p.name]
    assert [p.name for p in paths] == [
        "orders-api-service-production.template.json",
        "orders-api-service-staging.template.json",
    ]
    matches = [f"{p.name}: {m}" for p in paths for m in lint_file(p)]
    assert not matches, "\n".join(matches)
    args = [
        str(CHECKOV),
        "--framework",
        "cloudformation",
        "--skip-download",
        "--quiet",
        "-o",
        "json",
    ]
    for path in paths:
        args += ["-f", str(path)]
    result = subprocess.run(args, capture_output=True, text=True, timeout=600, check=False)
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    failed = [
        (c["check_id"], c["resource"], c["file_path"])
        for r in reports
        for c in r.get("results", {}).get("failed_checks", [])
    ]
    assert not failed, failed
