"""The checker as a CDK policy-validation plugin, so plain `cdk synth` reports our findings.

    from aws_cdk import App
    from deployline.checks.cdk_plugin import DeploylineChecks

    app = App(policy_validation_beta1=[DeploylineChecks()])

or, with the current API (the one cdk-nag v3 uses):

    from aws_cdk import Validations
    from deployline.checks.cdk_plugin import DeploylineValidation

    Validations.of(app).add_plugins(DeploylineValidation())

After synthesis CDK hands the plugin the written templates; findings at or above the threshold
become violations (one per rule, naming each resource and property path), the report fails, and
`cdk synth` exits non-zero with CDK's validation report. Suppressions in the templates' Metadata
apply, as do those passed in. This module imports aws_cdk; `deployline check` never imports it.
"""

from __future__ import annotations

import deployline._jsii_env  # noqa: F401  (must precede the aws_cdk import)

# isort: split
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import (
    IPolicyValidationContext,
    IPolicyValidationContextBeta1,
    IPolicyValidationPlugin,
    IPolicyValidationPluginBeta1,
    PolicyValidationPluginReport,
    PolicyValidationPluginReportBeta1,
    PolicyViolatingResource,
    PolicyViolatingResourceBeta1,
    PolicyViolation,
    PolicyViolationBeta1,
)

from deployline import __version__
from deployline.checks.api import check_files
from deployline.checks.model import CheckResult, Finding, Severity
from deployline.checks.registry import rule_classes, select_rules
from deployline.checks.suppressions import Suppression

PLUGIN_NAME = "deployline"


class _Checks:
    """What both plugin flavours share: options, validation of them, and the run."""

    def __init__(
        self,
        *,
        threshold: Severity | str = Severity.HIGH,
        rules: Sequence[str] | None = None,
        skip: Sequence[str] | None = None,
        suppressions: Iterable[Suppression | dict[str, Any]] = (),
    ) -> None:
        """
        Args:
            threshold: findings at or above it fail the synth. Default: HIGH.
            rules: rule IDs or prefixes to run. Default: every rule.
            skip: rule IDs or prefixes not to run. Default: none.
            suppressions: accepted findings, each {id, reason, resource (optional)}, as in
                deployline.yaml `checks.suppress`. Default: none (template Metadata still
                applies).

        Raises ValueError for an unknown severity, a rule ID that matches no rule, or a
        suppression without a reason.
        """
        self._threshold = Severity.parse(threshold)
        self._rules = list(rules) if rules else None
        self._skip = list(skip) if skip else None
        selected = select_rules(self._rules, self._skip)  # raises ValueError early
        self._rule_ids = [r.id for r in selected]
        self._suppressions: list[Suppression | dict[str, Any]] = []
        for i, item in enumerate(suppressions):
            reason = item.reason if isinstance(item, Suppression) else item.get("reason")
            if not isinstance(reason, str) or not reason.strip():
                raise ValueError(
                    f"suppressions[{i}] has no reason, got {item!r}: give each suppression an "
                    "id and a reason saying why the finding is accepted"
                )
            self._suppressions.append(item)

    @property
    def threshold(self) -> Severity:
        """Findings at or above this severity fail the synth."""
        return self._threshold

    # The plugin interface's properties; both flavours answer them alike.
    @property
    def name(self) -> str:
        return PLUGIN_NAME

    @property
    def version(self) -> str | None:
        return __version__

    @property
    def rule_ids(self) -> list[str] | None:
        return list(self._rule_ids)

    def run(self, template_paths: Sequence[str]) -> CheckResult:
        return check_files(
            list(template_paths),
            threshold=self._threshold,
            suppressions=self._suppressions,
            rules=self._rules,
            skip=self._skip,
        )

    def grouped(self, result: CheckResult) -> dict[str, list[Finding]]:
        by_rule: dict[str, list[Finding]] = defaultdict(list)
        for finding in result.at_or_above():
            by_rule[finding.rule_id].append(finding)
        return dict(sorted(by_rule.items()))

    def metadata(self, result: CheckResult) -> dict[str, str]:
        below = len(result.findings) - len(result.at_or_above())
        out = {
            "threshold": self._threshold.name,
            "findings below threshold": str(below),
            "unknown (review)": str(len(result.unknown)),
            "suppressed": str(result.suppressed),
        }
        for error in result.errors:
            out[f"parse error: {error.file}"] = error.message
        return out

    def _report(
        self, template_paths: Sequence[str], *, report: Any, violation: Any, resource: Any
    ) -> Any:
        """Run the checks and build the report with the given flavour's classes (the Beta1
        and the current API have the same shapes under different names)."""
        result = self.run(template_paths)
        violations = [
            violation(
                rule_name=rule_id,
                description=_description(findings),
                fix=findings[0].remediation or None,
                severity=max(f.severity for f in findings).name,
                rule_metadata=_rule_metadata(rule_id),
                violating_resources=[
                    resource(resource_logical_id=logical_id, template_path=file, locations=paths)
                    for (file, logical_id), paths in _by_resource(findings).items()
                ],
            )
            for rule_id, findings in self.grouped(result).items()
        ]
        return report(
            success=result.exit_code() == 0,
            violations=violations,
            metadata=self.metadata(result),
            plugin_version=__version__,
        )


def _description(findings: list[Finding]) -> str:
    first = findings[0]
    lines = [first.title or first.rule_id]
    lines += [f"- {f.resource} {f.path or '(resource)'}: {f.message}" for f in findings]
    return "\n".join(lines)


def _rule_metadata(rule_id: str) -> dict[str, str]:
    cls = {c.id: c for c in rule_classes()}.get(rule_id)
    if cls is None:
        return {}
    return {"family": cls.family, "why": cls.rationale}


def _by_resource(findings: list[Finding]) -> dict[tuple[str, str], list[str]]:
    out: dict[tuple[str, str], list[str]] = defaultdict(list)
    for f in findings:
        out[(str(Path(f.file).resolve()), f.resource)].append(f.path or "Properties")
    return out


@jsii.implements(IPolicyValidationPluginBeta1)
class DeploylineChecks(_Checks):
    """deployline's failure-catalog rules as a CDK policy-validation plugin (the `Beta1` API
    that `App(policy_validation_beta1=[...])` takes). Keyword arguments: see `_Checks`.
    Default threshold HIGH; every rule."""

    def validate(self, context: IPolicyValidationContextBeta1) -> PolicyValidationPluginReportBeta1:
        return self._report(  # type: ignore[no-any-return]
            context.template_paths,
            report=PolicyValidationPluginReportBeta1,
            violation=PolicyViolationBeta1,
            resource=PolicyViolatingResourceBeta1,
        )


@jsii.implements(IPolicyValidationPlugin)
class DeploylineValidation(_Checks):
    """The same plugin for `Validations.of(app).add_plugins(...)` (the current, non-beta API).
    Keyword arguments: see `_Checks`. Default threshold HIGH; every rule."""

    def validate(self, context: IPolicyValidationContext) -> PolicyValidationPluginReport:
        return self._report(  # type: ignore[no-any-return]
            context.template_paths,
            report=PolicyValidationPluginReport,
            violation=PolicyViolation,
            resource=PolicyViolatingResource,
        )
