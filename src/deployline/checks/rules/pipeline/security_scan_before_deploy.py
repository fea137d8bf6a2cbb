"""DL403: a deploy with no security scan before it."""

from __future__ import annotations

import re
from collections.abc import Iterator

from deployline.checks.buildspec import project_buildspec
from deployline.checks.model import Hit, Rule, Severity
from deployline.checks.pipeline import Action, project_of_action
from deployline.checks.template import Template

SCANNERS = ("bandit", "safety", "pip-audit", "trivy", "grype", "snyk", "semgrep", "checkov",
            "gitleaks")  # fmt: skip
_SCANNER_RUN = re.compile(
    r"(?:^|[\s;&|(`/$])(" + "|".join(re.escape(s) for s in SCANNERS) + r")(?=[\s:;&|)`\"']|$)"
)
_SEGMENT_SPLIT = re.compile(r"&&|\|\||;|\|")
_INSTALLER = re.compile(
    r"^\s*(sudo\s+)?(pip3?\s+install|python3?\s+-m\s+pip\s+install|pipx\s+install|"
    r"uv\s+(pip\s+)?(tool\s+)?install|npm\s+(i|install|ci)\b|yarn\s+(global\s+)?add|"
    r"apt(-get)?\s+install|yum\s+install|dnf\s+install|apk\s+add|brew\s+install|"
    r"go\s+install|gem\s+install|curl\b|wget\b)"
)


def runs_scanner(command: str) -> str | None:
    """The scanner a shell command runs (not merely installs or downloads), or None."""
    for segment in _SEGMENT_SPLIT.split(command):
        if _INSTALLER.match(segment):
            continue
        m = _SCANNER_RUN.search(segment)
        if m:
            return m.group(1)
    return None


def scan_state(template: Template, action: Action) -> tuple[bool | None, str]:
    """(True, what) for a security-scan action, (False, "") for not one, (None, why) when the
    template does not tell (a CodeBuild project or buildspec it does not hold)."""
    provider = action.provider or ""
    if provider == "InspectorScan":
        return True, f"{action.label} (Amazon Inspector)"
    if provider.lower() in SCANNERS:
        return True, f"{action.label} ({provider})"
    if action.provider is None:
        return None, f"{action.label}'s provider is computed by an intrinsic"
    if not action.is_codebuild:
        return False, ""
    found = project_of_action(template, action)
    if found.resource is None:
        return None, f"{action.label}: {found.reason}"
    spec = project_buildspec(found.resource)
    if not spec.inline:
        return None, f"{action.label} ({found.resource.logical_id}): {spec.reason}"
    for command in spec.commands or [spec.text]:
        scanner = runs_scanner(command)
        if scanner:
            return True, f"{action.label} runs {scanner}"
    return False, ""


class SecurityScanBeforeDeploy(Rule):
    """A scan is an Amazon Inspector `InspectorScan` action, a third-party action whose
    provider is one of the scanners, or a CodeBuild action whose project's inline buildspec
    runs bandit, safety, pip-audit, trivy, grype, snyk, semgrep, checkov or gitleaks (installing
    one is not running it). ECR scan-on-push is not a pipeline action and does not count.
    Deploys are those of the pipeline model (see DL401). A
    CodeBuild action before the deploy whose buildspec is in the repository makes a missing
    scan UNKNOWN."""

    id = "DL403"
    severity = Severity.HIGH
    family = "Pipeline structure"
    seed = "004 Security 3, 002 Security"
    title = "No security scan before deploy"
    resource_types = ("AWS::CodePipeline::Pipeline", "AWS::CodeBuild::Project")
    rationale = (
        "Vulnerable dependencies, leaked secrets and insecure code reach production unless a "
        "scan can stop the pipeline before the deploy; scan-on-push only reports after the fact."
    )
    remediation = (
        "Add a scan stage before deploying: a CodeBuild action running e.g. `pip-audit`, "
        "`bandit -r src`, `trivy image --exit-code 1 ...`, or an Amazon Inspector scan action."
    )
    fix_example = """\
- Name: Scan
  Actions:
    - Name: Trivy
      ActionTypeId: {Category: Test, Owner: AWS, Provider: CodeBuild, Version: "1"}
      Configuration: {ProjectName: !Ref ScanProject}  # buildspec runs trivy image --exit-code 1
"""

    def check(self, template: Template) -> Iterator[Hit]:
        for pipeline in template.pipelines:
            states: dict[int, tuple[bool | None, str]] = {}
            for deploy in pipeline.deploy_actions:
                unknown_reasons: list[str] = []
                scanned = False
                for action in pipeline.actions_before(deploy):
                    key = id(action)
                    if key not in states:
                        states[key] = scan_state(template, action)
                    state, why = states[key]
                    if state is True:
                        scanned = True
                        break
                    if state is None:
                        unknown_reasons.append(why)
                if scanned:
                    continue
                if unknown_reasons:
                    yield self.unknown(
                        pipeline.logical_id,
                        deploy.path,
                        f"{deploy.label}: no security scan found before it, and "
                        + "; ".join(unknown_reasons),
                    )
                    continue
                yield self.hit(
                    pipeline.logical_id,
                    deploy.path,
                    f"{deploy.label} deploys with no security-scan action before it",
                )
