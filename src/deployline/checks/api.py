"""Check files, directories and CDK cloud assemblies: the function behind `deployline check`.

    result = check_paths(["cdk.out"], severity_threshold="HIGH")
    sys.exit(result.exit_code())

Inputs:
- a template file (.json, .yaml, .yml, .template; any file named explicitly is read as one);
- a directory: every file under it that looks like a CloudFormation template (a mapping with
  `Resources` or `AWSTemplateFormatVersion`); other JSON/YAML is skipped silently; hidden
  directories, node_modules and virtualenvs are not entered;
- a CDK cloud assembly (a directory with manifest.json, or the manifest itself): every
  `aws:cloudformation:stack` artifact's template, the nested stacks those reference through
  `aws:asset:path` metadata, and nested assemblies (`cdk:cloud-assembly`, CDK Stages).

A template that cannot be parsed is reported as a ParseError (file, line, message; exit code 2)
and the other files are still checked. Suppressions (template Metadata and deployline.yaml
`checks.suppress`) and a baseline then set findings aside; they are counted and kept in the
result, never lost. Imports nothing heavy: no aws_cdk, pydantic, boto3 or jsii.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from deployline.checks.baseline import Baseline, load_baseline
from deployline.checks.engine import check_template, template_from_text
from deployline.checks.intrinsics import get_path
from deployline.checks.loader import TemplatedFile, TemplateParseError, line_index, parse_text
from deployline.checks.model import CheckResult, Finding, ParseError, Rule, Severity
from deployline.checks.registry import select_rules
from deployline.checks.settings import ChecksConfig, load_checks_config
from deployline.checks.suppressions import Suppression, partition, template_suppressions
from deployline.checks.template import StackContext, Template

TEMPLATE_SUFFIXES = (".json", ".yaml", ".yml", ".template")
SKIPPED_DIRS = frozenset({"node_modules", "__pycache__", "venv", "site-packages"})
DEFAULT_CONFIG = "deployline.yaml"

__all__ = [
    "CheckUsageError",
    "check_assembly",
    "check_files",
    "check_paths",
    "check_texts",
    "display_path",
]


class CheckUsageError(Exception):
    """The run cannot start: a missing path, an unknown rule, an unreadable config or baseline.
    The CLI prints the message on one line and exits 2."""


@dataclass(frozen=True)
class _Source:
    path: Path
    display: str
    explicit: bool  # named by the user or by a manifest: report parse errors even if odd


def display_path(path: Path, cwd: Path | None = None) -> str:
    """`path` relative to `cwd` (Default: the working directory) when under it, else absolute;
    always with forward slashes."""
    here = (cwd or Path.cwd()).resolve()
    absolute = path if path.is_absolute() else here / path
    absolute = Path(os.path.normpath(absolute))
    try:
        return absolute.relative_to(here).as_posix()
    except ValueError:
        return absolute.as_posix()


def _looks_like_template(data: dict[str, Any]) -> bool:
    return isinstance(data.get("Resources"), dict) or "AWSTemplateFormatVersion" in data


def _mentions_template_keys(text: str) -> bool:
    return "AWSTemplateFormatVersion" in text or "Resources" in text


class _Runner:
    """One run: the selected rules, the suppressions, and what has been found so far."""

    def __init__(
        self,
        rules: Sequence[Rule],
        config_suppressions: Sequence[Suppression],
        cwd: Path,
        exclude: Sequence[str] = (),
    ) -> None:
        self.rules = list(rules)
        self.config_suppressions = list(config_suppressions)
        self.cwd = cwd
        self.exclude = list(exclude)
        self.result = CheckResult(rules=[r.id for r in self.rules])
        self.seen: set[Path] = set()

    # Reading -----------------------------------------------------------------------------

    def check_text(
        self, text: str, display: str, *, explicit: bool, context: StackContext | None = None
    ) -> Template | None:
        """Parse and check one template's text. Returns the template (None when skipped)."""
        if not explicit and not _mentions_template_keys(text):
            return None  # found by a directory walk and not a template: skip without parsing
        try:
            data = parse_text(text, display)
        except TemplatedFile:
            self.result.templated.append(display)
            return None
        except TemplateParseError as exc:
            self.result.errors.append(ParseError(display, exc.message, exc.line))
            return None
        except Exception as exc:  # a loader bug must not take the run down
            self.result.errors.append(
                ParseError(display, f"could not be read ({type(exc).__name__}: {exc})")
            )
            return None
        if not explicit and not _looks_like_template(data):
            return None
        resources = data.get("Resources") or {}
        ids = [k for k in resources if isinstance(k, str)] if isinstance(resources, dict) else []
        try:
            template = Template(
                file=display,
                data=data,
                lines=line_index(text, ids),
                text=text,
                context=context or StackContext(),
            )
        except Exception as exc:  # an index that cannot be built is a template we cannot read
            self.result.errors.append(
                ParseError(display, f"could not be indexed ({type(exc).__name__}: {exc})")
            )
            return None
        self.result.files.append(display)
        self.check_template(template)
        return template

    def excluded(self, display: str) -> bool:
        """Does an --exclude glob match the path (as reported) or one of its parent folders?"""
        parts = display.split("/")
        candidates = {display, *("/".join(parts[: i + 1]) for i in range(len(parts)))}
        return any(
            fnmatch.fnmatch(c, pattern) or fnmatch.fnmatch(c.rsplit("/", 1)[-1], pattern)
            for pattern in self.exclude
            for c in candidates
        )

    def check_file(self, source: _Source, context: StackContext | None = None) -> Template | None:
        if self.exclude and self.excluded(source.display):
            return None
        resolved = source.path.resolve()
        if resolved in self.seen:
            return None
        self.seen.add(resolved)
        try:
            raw = source.path.read_bytes()
        except OSError as exc:
            self.result.errors.append(
                ParseError(source.display, f"cannot be read: {exc.strerror or exc}")
            )
            return None
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            if source.explicit:
                self.result.errors.append(
                    ParseError(source.display, f"is not UTF-8 text ({exc.reason})")
                )
            return None
        return self.check_text(text, source.display, explicit=source.explicit, context=context)

    def check_template(self, template: Template) -> None:
        findings, unknown = check_template(template, self.rules)
        suppressions = [*template_suppressions(template), *self.config_suppressions]
        kept, dropped = partition(findings, suppressions)
        kept_unknown, dropped_unknown = partition(unknown, suppressions)
        self.result.findings.extend(kept)
        self.result.unknown.extend(kept_unknown)
        self.result.suppressed_findings.extend(dropped + dropped_unknown)
        self.result.suppressed += len(dropped) + len(dropped_unknown)

    # Walking -----------------------------------------------------------------------------

    def check_assembly(self, directory: Path, depth: int = 0, reach: _Reach | None = None) -> None:
        display = display_path(directory / "manifest.json", self.cwd)
        try:
            artifacts = _manifest_artifacts(directory)
        except TemplateParseError as exc:
            self.result.errors.append(ParseError(display, exc.message, exc.line))
            return
        if reach is None:  # the whole assembly's environments, nested assemblies included
            reach = _Reach()
            reach.collect(directory)
        for name in sorted(artifacts):
            artifact = artifacts[name]
            if not isinstance(artifact, dict):
                continue
            props = artifact.get("properties")
            props = props if isinstance(props, dict) else {}
            kind = artifact.get("type")
            if kind == "aws:cloudformation:stack":
                template_file = props.get("templateFile")
                if not isinstance(template_file, str):
                    self.result.errors.append(
                        ParseError(display, f"artifact {name!r} names no templateFile")
                    )
                    continue
                path = directory / template_file
                if not path.is_file():
                    self.result.errors.append(
                        ParseError(
                            display,
                            f"artifact {name!r}: template {template_file} is missing; "
                            "synthesize again",
                        )
                    )
                    continue
                self.check_stack(directory, path, reach.context(name, artifact))
            elif kind == "cdk:cloud-assembly" and depth < 16:
                nested = props.get("directoryName")
                if isinstance(nested, str) and (directory / nested / "manifest.json").is_file():
                    self.check_assembly(directory / nested, depth + 1, reach)

    def check_stack(
        self, assembly: Path, path: Path, context: StackContext, depth: int = 0
    ) -> None:
        """Check a stack template, then the nested stacks it references in the assembly (in the
        parent's environment, under names CloudFormation generates)."""
        template = self.check_file(_Source(path, display_path(path, self.cwd), True), context)
        if template is None or depth >= 16:
            return
        nested_context = replace(context, stack_name=None)
        for nested in _nested_stack_files(template, assembly):
            self.check_stack(assembly, nested, nested_context, depth + 1)

    def walk(self, root: Path) -> None:
        if (root / "manifest.json").is_file():
            self.check_assembly(root)
            return
        for current, dirs, files in os.walk(root):
            here = Path(current)
            if here != root and (here / "manifest.json").is_file():
                dirs[:] = []
                self.check_assembly(here)
                continue
            dirs[:] = sorted(
                d
                for d in dirs
                if not d.startswith(".")
                and d not in SKIPPED_DIRS
                and not (here / d / "pyvenv.cfg").exists()
            )
            for name in sorted(files):
                if name.endswith(TEMPLATE_SUFFIXES) and not name.startswith("."):
                    path = here / name
                    self.check_file(_Source(path, display_path(path, self.cwd), False))


def _manifest_artifacts(directory: Path) -> dict[str, Any]:
    """The `artifacts` of `directory`/manifest.json. Raises TemplateParseError."""
    path = directory / "manifest.json"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise TemplateParseError(str(path), f"cannot be read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise TemplateParseError(str(path), f"invalid JSON: {exc.msg}", exc.lineno) from None
    artifacts = manifest.get("artifacts") if isinstance(manifest, dict) else None
    if not isinstance(artifacts, dict):
        raise TemplateParseError(
            str(path), "not a CDK cloud assembly manifest (no `artifacts` mapping)"
        )
    return artifacts


_ENVIRONMENT = re.compile(r"^aws://(?P<account>[^/]*)/(?P<region>[^/]*)$")


def _environment(artifact: dict[str, Any]) -> tuple[str | None, str | None]:
    """(account, region) a stack artifact is pinned to; None for `unknown-account` and
    `unknown-region` (environment-agnostic)."""
    m = _ENVIRONMENT.match(str(artifact.get("environment") or ""))
    if m is None:
        return None, None
    account = m["account"] if m["account"].isdigit() else None
    region = m["region"] if m["region"] and not m["region"].startswith("unknown") else None
    return account, region


@dataclass
class _Reach:
    """The accounts and regions the stacks of one cloud assembly are pinned to, and its stacks'
    templates (parsed only when a rule looks for a resource another stack names)."""

    accounts: set[str] = field(default_factory=set)
    regions: set[str] = field(default_factory=set)
    files: list[Path] = field(default_factory=list)
    _loaded: list[Template] | None = None

    def templates(self) -> list[Template]:
        if self._loaded is None:
            self._loaded = []
            for path in self.files:
                try:
                    text = path.read_text(encoding="utf-8-sig")
                    self._loaded.append(template_from_text(text, display_path(path)))
                except (OSError, UnicodeDecodeError, TemplateParseError):
                    continue  # reported when that stack itself is checked
        return self._loaded

    def collect(self, directory: Path, depth: int = 0) -> None:
        try:
            artifacts = _manifest_artifacts(directory)
        except TemplateParseError:
            return  # reported when the assembly itself is checked
        for artifact in artifacts.values():
            if not isinstance(artifact, dict):
                continue
            if artifact.get("type") == "aws:cloudformation:stack":
                account, region = _environment(artifact)
                self.accounts |= {account} if account else set()
                self.regions |= {region} if region else set()
                template_file = get_path(artifact, "properties", "templateFile")
                if isinstance(template_file, str):
                    self.files.append(directory / template_file)
            nested = get_path(artifact, "properties", "directoryName")
            if (
                artifact.get("type") == "cdk:cloud-assembly"
                and isinstance(nested, str)
                and depth < 16
                and (directory / nested / "manifest.json").is_file()
            ):
                self.collect(directory / nested, depth + 1)

    def context(self, name: str, artifact: dict[str, Any]) -> StackContext:
        account, region = _environment(artifact)
        stack_name = get_path(artifact, "properties", "stackName")
        return StackContext(
            stack_name=stack_name if isinstance(stack_name, str) else name,
            account=account,
            region=region,
            assembly_accounts=frozenset(self.accounts),
            assembly_regions=frozenset(self.regions),
            siblings=self.templates,
        )


def _nested_stack_files(template: Template, assembly: Path) -> Iterator[Path]:
    for resource in template.resources.values():
        if resource.type != "AWS::CloudFormation::Stack":
            continue
        asset = resource.metadata.get("aws:asset:path")
        if isinstance(asset, str) and asset.endswith(".nested.template.json"):
            candidate = assembly / asset
            if candidate.is_file():
                yield candidate


def _config_problem_findings(config: ChecksConfig, cwd: Path) -> list[Finding]:
    """deployline.yaml suppressions without a reason, as DL000 findings on the config file."""
    from deployline.checks.registry import rule_classes

    meta = {c.id: c for c in rule_classes()}.get("DL000")
    display = display_path(Path(config.file), cwd)
    return [
        Finding(
            rule_id="DL000",
            severity=meta.severity if meta else Severity.HIGH,
            file=display,
            resource="(config)",
            path=problem.where,
            message=problem.message,
            remediation=meta.remediation if meta else "",
            title=meta.title if meta else "Suppression without a reason",
            line=problem.line,
        )
        for problem in config.suppression_problems
    ]


def _resolve_config(config_path: str | Path | None, cwd: Path) -> ChecksConfig | None:
    if config_path is None:
        default = cwd / DEFAULT_CONFIG
        if not default.is_file():
            return None
        config_path = default
    path = Path(config_path)
    if not path.is_file():
        raise CheckUsageError(f"{path}: no such config file (pass --config PATH or omit it)")
    from deployline.checks.settings import ConfigReadError

    try:
        return load_checks_config(path)
    except ConfigReadError as exc:
        raise CheckUsageError(str(exc)) from None


def _select(
    rules: Sequence[str] | None,
    skip: Sequence[str] | None,
    options: Mapping[str, Mapping[str, Any]],
) -> list[Rule]:
    try:
        return select_rules(
            list(rules) if rules else None,
            list(skip) if skip else None,
            options,
        )
    except ValueError as exc:
        raise CheckUsageError(str(exc)) from None


def _finish(
    runner: _Runner,
    *,
    threshold: Severity,
    baseline: Baseline | None,
    extra_findings: Iterable[Finding] = (),
) -> CheckResult:
    result = runner.result
    result.threshold = threshold
    result.findings.extend(extra_findings)
    if baseline is not None:
        new, accepted, stale = baseline.partition(
            result.findings,
            checked_files=result.files,
            rules_run=result.rules,
            cwd=runner.cwd,
        )
        result.findings = new
        result.baselined_findings = accepted
        result.baselined = len(accepted)
        for entry in stale:
            result.notes.append(
                f"baseline {baseline.source}: {entry.get('rule_id')} on {entry.get('resource')} "
                f"({entry.get('file')}, {entry.get('path') or 'resource'}) no longer occurs; "
                "remove it with --write-baseline"
            )
    order = lambda f: (f.file, f.resource, f.rule_id, f.path)  # noqa: E731
    result.findings.sort(key=order)
    result.unknown.sort(key=order)
    result.suppressed_findings.sort(key=order)
    return result


def check_paths(
    paths: Sequence[str | Path],
    *,
    rules: Sequence[str] | None = None,
    skip: Sequence[str] | None = None,
    severity_threshold: Severity | str | None = None,
    config_path: str | Path | None = None,
    baseline: str | Path | Baseline | None = None,
    cwd: str | Path | None = None,
    exclude: Sequence[str] = (),
    profile: str | None = None,
) -> CheckResult:
    """Check templates, directories and cloud assemblies.

    Args:
        paths: files, directories or cloud assemblies (see the module docstring).
        rules: rule IDs or ID prefixes to run (`DL3` = DL300-DL399). Default: every rule.
        skip: rule IDs or prefixes not to run. Default: none.
        severity_threshold: findings at or above it make `exit_code()` 1. Default: the config's
            `checks.severity_threshold`, else HIGH.
        config_path: deployline.yaml, read for `checks.suppress`, `checks.options` and the
            threshold. Default: ./deployline.yaml when it exists, else none.
        baseline: a baseline file (or a loaded Baseline) whose findings are accepted.
            Default: none.
        cwd: the directory file names are reported relative to. Default: the working directory.
        exclude: globs of files or folders not to check (`tests/*`, `*.j2`), matched against the
            path as reported and each of its folders. Default: none.
        profile: a named rule set (`registry.PROFILES`): `third-party` leaves deployline's
            house conventions out. Default: every rule.

    Raises CheckUsageError for a path that does not exist, a rule ID that matches no rule, an
    unknown profile, an unreadable config or baseline, and when none of the paths holds a
    template ("no CloudFormation template under PATH": a wrong path in CI must not pass).
    Templates that cannot be parsed are not raised: they are ParseErrors in the result (exit
    code 1, beside every other file's findings).
    """
    here = Path(cwd).resolve() if cwd is not None else Path.cwd()
    if not paths:
        raise CheckUsageError("no path given: name template files, directories or a cdk.out")
    missing = [str(p) for p in paths if not Path(p).exists()]
    if missing:
        raise CheckUsageError(f"no such file or directory: {', '.join(missing)}")
    config = _resolve_config(config_path, here)
    threshold = _threshold(severity_threshold, config)
    loaded = _load_baseline(baseline)
    runner = _Runner(
        _select(rules, [*(skip or []), *_profile_skips(profile)], config.options if config else {}),
        config.suppress if config else [],
        here,
        exclude,
    )
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            runner.walk(path)
        elif path.name == "manifest.json" and _is_manifest(path):
            runner.check_assembly(path.parent)
        else:
            runner.check_file(_Source(path, display_path(path, here), True))
    extra = _config_problem_findings(config, here) if config else []
    if "DL000" not in runner.result.rules:
        extra = []  # DL000 was deselected with --rules/--skip
    if not runner.result.files and not runner.result.errors:
        names = ", ".join(str(p) for p in paths)
        templated = len(runner.result.templated)
        also = f" ({templated} templated files are not checked)" if templated else ""
        raise CheckUsageError(
            f"no CloudFormation template under {names}{also}: templates are .json/.yaml/.yml/"
            ".template files with Resources or AWSTemplateFormatVersion, or a cdk.out"
        )
    return _finish(runner, threshold=threshold, baseline=loaded, extra_findings=extra)


def check_texts(
    texts: dict[str, str],
    *,
    rules: Sequence[str] | None = None,
    skip: Sequence[str] | None = None,
    severity_threshold: Severity | str = Severity.HIGH,
    suppressions: Sequence[Suppression] = (),
) -> CheckResult:
    """Check templates held in memory, keyed by the name to report them under (used by the CDK
    plugin and tests). Same result shape as check_paths."""
    runner = _Runner(_select(rules, skip, {}), suppressions, Path.cwd())
    for name, text in texts.items():
        runner.check_text(text, name, explicit=True)
    return _finish(runner, threshold=Severity.parse(severity_threshold), baseline=None)


def check_assembly(
    outdir: str | Path,
    *,
    threshold: Severity | str = Severity.HIGH,
    suppressions: Iterable[Suppression | dict[str, Any] | Any] = (),
    rules: Sequence[str] | None = None,
    skip: Sequence[str] | None = None,
) -> CheckResult:
    """Check a synthesized cloud assembly (what `deployline synth` wrote).

    `suppressions` are Suppression objects, mappings {id, reason, resource}, or objects with
    those attributes (deployline.config.Suppression). Default threshold: HIGH.
    """
    here = Path.cwd()
    directory = Path(outdir)
    if not (directory / "manifest.json").is_file():
        raise CheckUsageError(f"{directory}: not a CDK cloud assembly (no manifest.json)")
    runner = _Runner(_select(rules, skip, {}), [_as_suppression(s) for s in suppressions], here)
    runner.check_assembly(directory)
    return _finish(runner, threshold=Severity.parse(str(threshold)), baseline=None)


def check_files(
    files: Sequence[str | Path],
    *,
    threshold: Severity | str = Severity.HIGH,
    suppressions: Iterable[Suppression | dict[str, Any] | Any] = (),
    rules: Sequence[str] | None = None,
    skip: Sequence[str] | None = None,
) -> CheckResult:
    """Check the given template files only (no directory walk, no deployline.yaml lookup): what
    the CDK policy-validation plugin hands over. `suppressions` as in check_assembly."""
    here = Path.cwd()
    runner = _Runner(_select(rules, skip, {}), [_as_suppression(s) for s in suppressions], here)
    for file in files:
        path = Path(file)
        runner.check_file(_Source(path, display_path(path, here), True))
    return _finish(runner, threshold=Severity.parse(str(threshold)), baseline=None)


def _as_suppression(value: Suppression | dict[str, Any] | Any) -> Suppression:
    if isinstance(value, Suppression):
        return value
    get = value.get if isinstance(value, dict) else lambda k: getattr(value, k, None)
    resource = get("resource")
    return Suppression(
        id=str(get("id")).strip().upper(),
        reason=str(get("reason") or "").strip(),
        resource=resource if isinstance(resource, str) and resource else None,
        source="deployline.yaml: checks.suppress",
    )


def _profile_skips(profile: str | None) -> list[str]:
    from deployline.checks.registry import PROFILES

    if profile is None:
        return []
    try:
        return list(PROFILES[profile.strip().lower()])
    except KeyError:
        raise CheckUsageError(
            f"--profile {profile!r} is not a profile; use one of {', '.join(sorted(PROFILES))}"
        ) from None


def _threshold(value: Severity | str | None, config: ChecksConfig | None) -> Severity:
    where = "--severity-threshold"
    chosen = value
    if chosen is None and config is not None:
        refused = config.problem_at("severity_threshold")
        if refused is not None:
            raise CheckUsageError(f"{config.file}: {refused.where}: {refused.message}")
        chosen = config.severity_threshold
    try:
        return Severity.parse(chosen if chosen is not None else Severity.HIGH)
    except ValueError as exc:
        raise CheckUsageError(f"{where}: {exc}") from None


def _load_baseline(value: str | Path | Baseline | None) -> Baseline | None:
    if value is None or isinstance(value, Baseline):
        return value
    from deployline.checks.baseline import BaselineError

    try:
        return load_baseline(value)
    except BaselineError as exc:
        raise CheckUsageError(str(exc)) from None


def _is_manifest(path: Path) -> bool:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and "artifacts" in data
