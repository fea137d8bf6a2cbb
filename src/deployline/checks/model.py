"""The checker's vocabulary: severities, findings, and the Rule base class.

A rule is a class whose attributes are its catalog row (id, severity, title, remediation, ...) and
whose `check(template)` yields `Hit`s: a resource, a property path and a message, or an UNKNOWN
where an intrinsic hides the answer. The engine turns hits into `Finding`s (adding file, rule and
line). Nothing here imports aws_cdk.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

# The one severity (deployline.contract), part of the checker's vocabulary: rules import it here.
from deployline.contract import Severity as Severity

if TYPE_CHECKING:
    from deployline.checks.template import Template


@dataclass(frozen=True, slots=True)
class Hit:
    """What a rule reports; the engine adds the rule, file and line."""

    resource: str
    path: str
    message: str
    severity: Severity | None = None  # overrides the rule's severity (e.g. DL301 MEDIUM case)
    unknown: bool = False


@dataclass(frozen=True, slots=True)
class Finding:
    rule_id: str
    severity: Severity
    file: str
    resource: str
    path: str
    message: str
    remediation: str = ""
    title: str = ""
    line: int | None = None
    unknown: bool = False
    resource_type: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "severity": self.severity.name,
            "file": self.file,
            "resource": self.resource,
            "resource_type": self.resource_type,
            "path": self.path,
            "message": self.message,
            "remediation": self.remediation,
            "title": self.title,
            "line": self.line,
            "unknown": self.unknown,
        }

    @property
    def key(self) -> tuple[str, str, str, str]:
        """Identity for baselines and de-duplication (file-independent of line numbers)."""
        return (self.rule_id, self.file, self.resource, self.path)


@dataclass(frozen=True)
class Option:
    """One configurable knob of a rule (after cfn-lint's `config_definition`): its type, its
    default and what it means. `kind` is "integer", "string" or "list" (a list of strings)."""

    kind: str
    default: Any
    help: str = ""

    def parse(self, rule_id: str, name: str, value: Any) -> Any:
        """`value` checked against the type. Raises ValueError naming the rule, option, value
        and what it takes."""
        if self.kind == "integer" and isinstance(value, int) and not isinstance(value, bool):
            return value
        if self.kind == "string" and isinstance(value, str):
            return value
        if (
            self.kind == "list"
            and isinstance(value, list | tuple)
            and all(isinstance(v, str) and v.strip() for v in value)
        ):
            return tuple(value)
        wanted = {"integer": "an integer", "string": "a string"}.get(
            self.kind, "a list of non-empty strings"
        )
        raise ValueError(
            f"{rule_id} option {name!r} takes {wanted}, got {value!r} (default: {self.default!r})"
        )

    def to_dict(self) -> dict[str, Any]:
        default = list(self.default) if isinstance(self.default, tuple) else self.default
        return {"type": self.kind, "default": default, "help": self.help}


class Rule(ABC):
    """Base class of every rule. Subclasses set the class attributes from their catalog row.

    Attributes:
        id: the catalog ID, e.g. "DL302".
        severity: the catalog severity.
        title: one line saying what is wrong.
        rationale: why it matters (from the seed documents).
        remediation: what to do instead.
        fix_example: a short template snippet that passes.
        family: catalog section, e.g. "Security".
        resource_types: the CloudFormation types the rule reads. The engine runs the rule only
            on templates that hold at least one of them (empty: every template), so a rule
            lists every type whose presence can make it report.
        options_definition: typed configurable knobs (e.g. DL301's `limit`), set in
            deployline.yaml `checks.options.<ID>`; read them from `self.options`.
    """

    id: ClassVar[str] = ""
    severity: ClassVar[Severity] = Severity.MEDIUM
    title: ClassVar[str] = ""
    rationale: ClassVar[str] = ""
    remediation: ClassVar[str] = ""
    fix_example: ClassVar[str] = ""
    family: ClassVar[str] = ""
    seed: ClassVar[str] = ""
    resource_types: ClassVar[tuple[str, ...]] = ()
    options_definition: ClassVar[Mapping[str, Option]] = {}

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        """Raises ValueError for an option the rule does not have or a value of the wrong type."""
        self.options: dict[str, Any] = {k: o.default for k, o in self.options_definition.items()}
        for name, value in (options or {}).items():
            definition = self.options_definition.get(name)
            if definition is None:
                known = ", ".join(sorted(self.options_definition)) or "none"
                raise ValueError(f"{self.id} has no option {name!r} (its options: {known})")
            self.options[name] = definition.parse(self.id, name, value)

    @abstractmethod
    def check(self, template: Template) -> Iterable[Hit]:
        """Yield a Hit for each violation (and each UNKNOWN) in `template`."""

    # Helpers for subclasses -------------------------------------------------------------------

    def hit(
        self, resource: str, path: str, message: str, *, severity: Severity | None = None
    ) -> Hit:
        return Hit(resource=resource, path=path, message=message, severity=severity)

    def unknown(self, resource: str, path: str, message: str) -> Hit:
        return Hit(resource=resource, path=path, message=message, unknown=True)


@dataclass(frozen=True)
class ParseError:
    """A template that could not be read. The run goes on with the other files (exit 2)."""

    file: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "message": self.message}


@dataclass
class CheckResult:
    """What a run found. `findings` and `unknown` are what is left after suppressions and the
    baseline; `suppressed` and `baselined` count what those accepted, and `suppressed_findings`
    keeps them for reports that want to show them."""

    findings: list[Finding] = field(default_factory=list)
    unknown: list[Finding] = field(default_factory=list)
    errors: list[ParseError] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    suppressed: int = 0
    baselined: int = 0
    suppressed_findings: list[Finding] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)  # IDs of the rules that ran
    threshold: Severity = Severity.HIGH  # the run's --severity-threshold
    baselined_findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # e.g. stale baseline entries
    templated: list[str] = field(default_factory=list)  # Jinja/ERB files, not checked

    def at_or_above(self, threshold: Severity | str | None = None) -> list[Finding]:
        """Findings whose severity is at or above `threshold` (Default: the run's threshold)."""
        level = self.threshold if threshold is None else Severity.parse(threshold)
        return [f for f in self.findings if f.severity >= level]

    def exit_code(self, threshold: Severity | str | None = None) -> int:
        """1 when a finding is at or above `threshold` (Default: the run's threshold, HIGH
        unless set) or a template could not be read, else 0. A file that cannot be read fails
        the run like a finding (CI must not pass what it could not check) but hides nothing:
        every other file's findings are in the result. 2 is kept for usage errors, which never
        produce a result. UNKNOWN and templated files never fail a run on their own."""
        if self.errors:
            return 1
        return 1 if self.at_or_above(threshold) else 0

    def summary(self) -> dict[str, Any]:
        by_severity = {s.name: 0 for s in sorted(Severity, reverse=True)}
        for f in self.findings:
            by_severity[f.severity.name] += 1
        return {
            "files": len(self.files),
            "findings": len(self.findings),
            "unknown": len(self.unknown),
            "errors": len(self.errors),
            "templated": len(self.templated),
            "suppressed": self.suppressed,
            "baselined": self.baselined,
            "by_severity": by_severity,
        }


class ResourceValueRule(Rule):
    """A rule about one property of one resource (after checkov's BaseResourceValueCheck): for
    each resource of `resource_types`, the value at `property_path` is read through the
    resolver and judged.

    Subclasses set `property_path`; `missing` (the message when the property is absent; None:
    absent passes) and `missing_severity`; `needs_literal` (True: a value the template does not
    resolve is UNKNOWN; False: any value passes `judge` unresolved) and override `judge`."""

    property_path: ClassVar[tuple[str, ...]] = ()
    missing: ClassVar[str | None] = None
    missing_severity: ClassVar[Severity | None] = None
    needs_literal: ClassVar[bool] = True

    def judge(self, value: Any) -> str | None:
        """The message when `value` is wrong, else None. Default: any value passes."""
        return None

    def check(self, template: Template) -> Iterable[Hit]:
        from deployline.checks.intrinsics import is_intrinsic

        path = "Properties." + ".".join(self.property_path)
        for res in template.of_type(*self.resource_types):
            raw = res.prop(*self.property_path)
            if raw is None:
                if self.missing is not None:
                    yield self.hit(
                        res.logical_id, path, self.missing, severity=self.missing_severity
                    )
                continue
            value = template.resolve(raw)
            if self.needs_literal and is_intrinsic(value):
                yield self.unknown(
                    res.logical_id, path, f"{self.property_path[-1]} is computed by an intrinsic"
                )
                continue
            message = self.judge(value)
            if message is not None:
                yield self.hit(res.logical_id, path, message)
