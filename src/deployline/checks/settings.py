"""deployline.yaml's `checks:` section: the one definition `deployline check`, `validate` and
`synth` share.

`read_checks` turns the section as parsed from YAML into a `ChecksConfig` and the problems it
found, each at its place in the section. `deployline check` reads the file with
`load_checks_config` (PyYAML only, no pydantic, so it starts fast): it skips suppressions that
are not valid (they become DL000 findings) and refuses a bad threshold or rule option when it
uses them. `deployline validate` (config.py) reads the same section with `read_checks(strict=True)`
and refuses every problem, unknown keys included; `CHECKS_JSON_SCHEMA` is the section's part of
`deployline schema`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

from deployline.checks.suppressions import Suppression, problem_of
from deployline.contract import Severity

Location = tuple[str | int, ...]

#: What `validate` says of a key it does not know.
UNKNOWN_KEY: Final = (
    "is not a known field (check the spelling; `deployline schema` lists every field)"
)
_KEYS: Final = frozenset({"severity_threshold", "suppress", "options"})
_SUPPRESSION_KEYS: Final = frozenset({"id", "reason", "resource"})
_RULE_ID: Final = re.compile(r"[Dd][Ll][0-9]{3}")
_MAX_RESOURCE: Final = 255


@dataclass(frozen=True)
class Problem:
    """Why part of the section is refused; `loc` is its place below `checks`."""

    loc: Location
    message: str
    line: int | None = None

    @property
    def where(self) -> str:
        """`checks.suppress[0]`, `checks.options.DL301.limit`."""
        return "checks" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in self.loc)


@dataclass(frozen=True)
class ChecksConfig:
    """The `checks:` section.

    Attributes:
        severity_threshold: findings at or above it fail the check. Default: not set (HIGH,
            unless `--severity-threshold` says otherwise).
        suppress: the valid suppressions, rule IDs upper-cased.
        options: rule options by rule ID (upper-cased), as written.
        file: the file it was read from ("" when not from a file).
        problems: what was refused (invalid suppressions are not in `suppress`).
    """

    severity_threshold: Severity | None = None
    suppress: tuple[Suppression, ...] = ()
    options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    file: str = ""
    problems: tuple[Problem, ...] = ()

    def as_section(self) -> dict[str, Any]:
        """The section as deployline.yaml would write it; `read_checks` reads it back."""
        section: dict[str, Any] = {
            "suppress": [
                {"id": s.id, "reason": s.reason, **({"resource": s.resource} if s.resource else {})}
                for s in self.suppress
            ],
            "options": {rule_id: dict(settings) for rule_id, settings in self.options.items()},
        }
        if self.severity_threshold is not None:
            section["severity_threshold"] = self.severity_threshold.value
        return section

    def file_wide(self, rule_id: str) -> bool:
        """True when `rule_id` is suppressed for every resource (no `resource`)."""
        return any(s.id == rule_id and s.resource is None for s in self.suppress)

    @property
    def suppression_problems(self) -> tuple[Problem, ...]:
        """The problems of `suppress` items: `deployline check` reports them as DL000."""
        return tuple(p for p in self.problems if p.loc[:1] == ("suppress",) and len(p.loc) > 1)

    def problem_at(self, *loc: str | int) -> Problem | None:
        return next((p for p in self.problems if p.loc[: len(loc)] == loc), None)


class ConfigReadError(Exception):
    """deployline.yaml could not be read or parsed (a usage error: exit 2)."""


def read_checks(
    section: Any,
    *,
    strict: bool = False,
    file: str = "",
    line_of: Callable[[Location], int | None] = lambda _loc: None,
) -> ChecksConfig:
    """The section as `deployline check` reads it, and its problems.

    With `strict` (what `validate` wants), also unknown keys, option keys with blanks around
    them, options that are not mappings and a `resource` that names no resource are problems,
    and each rule option is judged by the rule's constructor (the checker does that when it
    selects the rules)."""
    problems: list[Problem] = []

    def refuse(loc: Location, message: str) -> None:
        problems.append(Problem(loc, message, line_of(loc)))

    if section is None:
        return ChecksConfig(file=file)
    if not isinstance(section, Mapping):
        refuse((), f"must be a mapping (severity_threshold, suppress, options), found {section!r}")
        return ChecksConfig(file=file, problems=tuple(problems))
    if strict:
        for key in section:
            if key not in _KEYS:
                refuse((str(key),), UNKNOWN_KEY)
    threshold = _threshold(section.get("severity_threshold"), refuse)
    suppress = _suppressions(section.get("suppress"), strict, file, refuse)
    options = _options(section.get("options"), strict, refuse)
    return ChecksConfig(threshold, suppress, options, file, tuple(problems))


def _threshold(value: Any, refuse: Callable[[Location, str], None]) -> Severity | None:
    if value is None:
        return None
    if not isinstance(value, str):
        refuse(("severity_threshold",), f"expected critical, high, medium or low, found {value!r}")
        return None
    try:
        return Severity.parse(value)
    except ValueError as exc:
        refuse(("severity_threshold",), str(exc))
        return None


def _suppressions(
    value: Any, strict: bool, file: str, refuse: Callable[[Location, str], None]
) -> tuple[Suppression, ...]:
    items = [] if value is None else value if isinstance(value, list) else [value]
    out = []
    for i, raw in enumerate(items):
        problem = problem_of(raw)
        if problem is not None:
            refuse(("suppress", i), problem)
            continue
        resource = raw.get("resource")
        if strict:
            for key in raw:
                if key not in _SUPPRESSION_KEYS:
                    refuse(("suppress", i, str(key)), UNKNOWN_KEY)
            if resource is not None and not (
                isinstance(resource, str) and 0 < len(resource) <= _MAX_RESOURCE
            ):
                refuse(
                    ("suppress", i, "resource"),
                    f"expected the logical ID of a resource (1 to {_MAX_RESOURCE} characters), "
                    f"found {resource!r}",
                )
                continue
        out.append(
            Suppression(
                id=str(raw["id"]).strip().upper(),
                reason=str(raw["reason"]).strip(),
                resource=resource if isinstance(resource, str) and resource else None,
                source=f"{file or 'deployline.yaml'}: checks.suppress[{i}]",
            )
        )
    return tuple(out)


def _options(
    value: Any, strict: bool, refuse: Callable[[Location, str], None]
) -> dict[str, Mapping[str, Any]]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        refuse(("options",), f"expected a mapping of rule IDs to their options, found {value!r}")
        return {}
    if not strict:
        return {str(k).upper(): v for k, v in value.items() if isinstance(v, Mapping)}
    from deployline.checks.registry import rule_classes

    rules = {rule.id: rule for rule in rule_classes()}
    out: dict[str, Mapping[str, Any]] = {}
    for key, settings in value.items():
        text = str(key)
        at: Location = ("options", text)
        if text != text.strip():
            refuse(at, f"{key!r} has spaces around the rule ID; write {text.strip()}")
            continue
        if not _RULE_ID.fullmatch(text):
            refuse(at, f"expected a rule ID like DL301, found {key!r}")
            continue
        rule = rules.get(text.upper())
        if rule is None:
            refuse(at, f"{key!r} is no rule (see deployline rules)")
            continue
        if not isinstance(settings, Mapping):
            refuse(at, f"expected a mapping of {rule.id}'s options, found {settings!r}")
            continue
        for name, setting in settings.items():
            try:
                rule({name: setting})  # the rule's typed options judge it, one at a time
            except ValueError as exc:
                refuse((*at, str(name)), str(exc))
        out[rule.id] = settings
    return out


def _node_for(node: Any, loc: Location) -> Any:
    for key in loc:
        if isinstance(key, int):
            if not isinstance(node, yaml.SequenceNode) or key >= len(node.value):
                return None
            node = node.value[key]
        else:
            if not isinstance(node, yaml.MappingNode):
                return None
            found = None
            for k, v in node.value:
                if isinstance(k, yaml.ScalarNode) and k.value == key:
                    found = v
            if found is None:
                return None
            node = found
    return node


def load_checks_config(path: str | Path) -> ChecksConfig:
    """Read `checks:` from deployline.yaml as `deployline check` does. Raises ConfigReadError
    when the file is unreadable, or when `checks` is not a mapping."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigReadError(f"{p}: cannot be read ({exc})") from None
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        data = yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader
        root = yaml.compose(text, Loader=loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{p}:{mark.line + 1}" if mark is not None else str(p)
        raise ConfigReadError(f"{where}: invalid YAML") from None
    section = data.get("checks") if isinstance(data, dict) else None
    if section is not None and not isinstance(section, Mapping):
        raise ConfigReadError(f"{p}: `checks` must be a mapping")

    def line_of(loc: Location) -> int | None:
        node = _node_for(root, ("checks", *loc))
        return node.start_mark.line + 1 if node is not None else None

    return read_checks(section, file=str(p), line_of=line_of)


def _any_case(word: str) -> str:
    return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else re.escape(c) for c in word)


#: `checks:` in the JSON Schema of deployline.yaml (`deployline schema`).
CHECKS_JSON_SCHEMA: Final[dict[str, Any]] = {
    "additionalProperties": False,
    "description": "How `deployline synth` checks what it wrote, and what `deployline check` "
    "reads from this file: the same section, read by the checker's own rules "
    "(`deployline.checks`).",
    "properties": {
        "options": {
            "additionalProperties": {"additionalProperties": True, "type": "object"},
            "description": "Settings of the rules that take some, by rule ID (`deployline rules "
            "ID` shows a rule's options and defaults), e.g. {DL301: {limit: 30}}.",
            "propertyNames": {"pattern": "^[Dd][Ll][0-9]{3}$"},
            "title": "Options",
            "type": "object",
        },
        "severity_threshold": {
            "default": "high",
            "description": "Findings at or above it fail the check: critical, high, medium or "
            "low, in any case. Default: high.",
            "pattern": rf"^\s*(?:{'|'.join(_any_case(s.value) for s in Severity)})\s*$",
            "type": "string",
        },
        "suppress": {
            "items": {
                "additionalProperties": False,
                "description": "An accepted finding: a rule ID (any case) and a reason that is "
                "not blank; `resource` limits it to one resource.",
                "properties": {
                    "id": {
                        "pattern": r"^\s*[Dd][Ll][0-9]{3}\s*$",
                        "title": "Id",
                        "type": "string",
                    },
                    "reason": {
                        "description": "Why the finding is accepted (required, not blank).",
                        "pattern": r"\S",
                        "title": "Reason",
                        "type": "string",
                    },
                    "resource": {
                        "anyOf": [
                            {"maxLength": _MAX_RESOURCE, "minLength": 1, "type": "string"},
                            {"type": "null"},
                        ],
                        "default": None,
                        "description": "Logical ID of the one resource it applies to. "
                        "Default: every resource.",
                        "title": "Resource",
                    },
                },
                "required": ["id", "reason"],
                "title": "Suppression",
                "type": "object",
            },
            "title": "Suppress",
            "type": "array",
        },
    },
    "title": "ChecksConfig",
    "type": "object",
}
