"""What the construct tests of the deployment history, alerts and event forwarding share: the
test App (deployline's feature flags, the built-in CloudFormation validator off, cdk-nag's
AwsSolutions pack) and the peers that check its templates (cfn-lint, checkov, deployline's
own checker)."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from aws_cdk import App, Validations
from cdk_nag import AwsSolutionsChecks
from cfnlint.api import lint_file

from deployline.checks.engine import check_template, template_from_text
from deployline.checks.registry import rule_classes
from deployline.checks.suppressions import partition, template_suppressions

CHECKOV = Path(sys.executable).with_name("checkov")


def feature_flags() -> dict[str, Any]:
    """deployline's feature flags, read as `deployline.app.feature_flags` reads them (without
    importing the stacks)."""
    text = resources.files("deployline").joinpath("feature_flags.json").read_text("utf-8")
    flags: dict[str, Any] = json.loads(text)
    return flags


def nagged_app(outdir: Path) -> App:
    """An App for one module's synthesis, with cdk-nag's AwsSolutions pack."""
    app = App(
        context={**feature_flags(), "aws:cdk:disable-stack-trace": True},
        outdir=str(outdir),
        builtin_cloud_formation_validation=False,
    )
    Validations.of(app).add_plugins(AwsSolutionsChecks())
    return app


def synthesize(app: App, outdir: Path) -> tuple[dict[str, Any], str | None]:
    """Synthesize; (the validation report, cdk-nag's error if it failed the synthesis)."""
    error: str | None = None
    try:
        app.synth()
    except RuntimeError as exc:  # cdk-nag violations fail the synth; the report says which
        error = str(exc)
    report_path = outdir / "validation-report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    return report, error


def cfn_lint(path: Path) -> list[tuple[str, str]]:
    """cfn-lint's errors and warnings on a template."""
    return [(m.rule.id, m.message) for m in lint_file(path)]


def checkov_failures(*paths: Path) -> list[tuple[str, str, str]]:
    """checkov's failed checks on the templates, in one run (it costs seconds a run)."""
    args = [str(CHECKOV), "--framework", "cloudformation", "--skip-download", "--quiet"]
    for path in paths:
        args += ["-f", str(path)]
    result = subprocess.run(
        [*args, "-o", "json"], capture_output=True, text=True, timeout=600, check=False
    )
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    return [
        (c["check_id"], c["resource"], Path(c["file_path"]).name)
        for r in reports
        for c in r.get("results", {}).get("failed_checks", [])
    ]


def deployline_check(path: Path) -> list[tuple[str, str, str]]:
    """deployline's own findings and undecided rules on a template, at every severity."""
    rules = [cls() for cls in rule_classes()]
    template = template_from_text(path.read_text(encoding="utf-8"), str(path))
    findings, unknown = check_template(template, rules)
    kept, _ = partition([*findings, *unknown], template_suppressions(template))
    return [(f.rule_id, f.resource, f.message) for f in kept]


def service_arn(
    cluster: str, service: str, *, account: str | None = None, region: str | None = None
) -> dict[str, Any]:
    """An ECS service's ARN as CDK renders it: pseudo parameters where no account and region
    are given, the literal ones otherwise."""
    where: list[Any] = (
        [f":ecs:{region}:{account}:service/{cluster}/{service}"]
        if account and region
        else [
            ":ecs:",
            {"Ref": "AWS::Region"},
            ":",
            {"Ref": "AWS::AccountId"},
            f":service/{cluster}/{service}",
        ]
    )
    return {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, *where]]}


def ecs_deployment_pattern(*arns: dict[str, Any], **detail: Any) -> dict[str, Any]:
    """The event pattern of ECS deployment events of the services `arns` (and `detail`)."""
    pattern: dict[str, Any] = {
        "source": ["aws.ecs"],
        "detail-type": ["ECS Deployment State Change"],
        "resources": list(arns),
    }
    if detail:
        pattern["detail"] = detail
    return pattern
