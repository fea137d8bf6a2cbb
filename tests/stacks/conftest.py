"""Shared helpers for the stack tests: configs built in code from the example deployline.yaml,
and one synth of many environment stacks (with cdk-nag's AwsSolutions and compliance packs) per
call."""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from aws_cdk import App
from aws_cdk.assertions import Template

from deployline.app import APP_CONTEXT, _environment_stacks, feature_flags
from deployline.config import DeploylineConfig, parse_config_text
from deployline.naming import Namer
from deployline.stacks.environment_stack import EnvironmentStack
from nag_reports import add_packs  # tests/nag_reports.py

EXAMPLE = Path(__file__).resolve().parents[2] / "deployline.yaml"


def example_data() -> dict[str, Any]:
    """The example deployline.yaml as plain data (a fresh copy each call)."""
    data: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    return copy.deepcopy(data)


def config_from(source: str | dict[str, Any]) -> DeploylineConfig:
    """Validate YAML text (or data, dumped to YAML) as deployline.config does for the file."""
    text = source if isinstance(source, str) else yaml.safe_dump(source, sort_keys=False)
    return parse_config_text(text)


def with_environments(*environments: dict[str, Any]) -> DeploylineConfig:
    """The example configuration with its environments replaced."""
    data = example_data()
    data["environments"] = list(environments)
    return config_from(data)


@dataclass
class Synthesized:
    """The result of one synth: stacks, templates (by stack name) and the validation report."""

    outdir: Path
    stacks: dict[str, EnvironmentStack]
    paths: dict[str, Path]
    raw: dict[str, dict[str, Any]]
    templates: dict[str, Template]
    report: dict[str, Any]
    synth_error: str | None


def synth_environments(configs: Sequence[DeploylineConfig], outdir: Path) -> Synthesized:
    """One EnvironmentStack per environment of every config, in one app, synthesized once.

    Built by deployline.app's own wiring (`_environment_stacks`, what build_app calls: names,
    tags, description, the stack's account and region, the repository by name in the pipeline's
    account and region) in an App made as build_app makes it (feature flags, no built-in
    CloudFormation validation: cfn-lint checks these templates below), without the pipeline
    stack. cdk-nag's AwsSolutions and compliance packs run as validation plugins; their report
    is read back from the output directory (a failing validation raises, which is kept).
    """
    app = App(
        outdir=str(outdir),
        context={**feature_flags(), **APP_CONTEXT},
        builtin_cloud_formation_validation=False,
    )
    stacks: dict[str, EnvironmentStack] = {}
    for config in configs:
        shared = Namer(config.service, config.naming.pipeline_environment, config.naming.prefix)
        for stack in _environment_stacks(app, config, shared).values():
            stacks[stack.stack_name] = stack
    add_packs(app)
    synth_error: str | None = None
    try:
        app.synth()
    except RuntimeError as error:  # cdk-nag violations fail the synth; the report says which
        synth_error = str(error)
    report_path = outdir / "validation-report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    paths = {name: outdir / f"{name}.template.json" for name in stacks}
    raw = {name: json.loads(path.read_text()) for name, path in paths.items()}
    return Synthesized(
        outdir=outdir,
        stacks=stacks,
        paths=paths,
        raw=raw,
        templates={name: Template.from_json(data) for name, data in raw.items()},
        report=report,
        synth_error=synth_error,
    )
