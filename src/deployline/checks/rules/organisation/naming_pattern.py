"""DL703: literal physical names that break the template's naming pattern."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from deployline.checks.intrinsics import literal_str
from deployline.checks.model import Hit, Rule, Severity
from deployline.checks.names import PHYSICAL_NAME_PROPS, physical_names
from deployline.checks.template import Template

_SEPARATORS = "-_."
HOUSE_STYLE = ("-", "lower")  # {service}-{type}-{env}
_PREFERENCE = [HOUSE_STYLE, ("_", "lower"), (".", "lower"), ("-", "mixed"), ("_", "upper")]


@dataclass(frozen=True)
class NameStyle:
    """A name's separator ('-', '_', '.', '' for none, '+' for mixed) and letter case
    ('lower', 'upper', 'mixed'; 'none' without letters)."""

    separator: str
    case: str

    @classmethod
    def of(cls, name: str) -> NameStyle:
        last = name.rstrip("/").rsplit("/", 1)[-1]  # /aws/codebuild/x: the path is AWS's
        seps = {c for c in last if c in _SEPARATORS}
        separator = seps.pop() if len(seps) == 1 else ("" if not seps else "+")
        letters = [c for c in last if c.isalpha()]
        if not letters:
            case = "none"
        elif all(c.islower() for c in letters):
            case = "lower"
        elif all(c.isupper() for c in letters):
            case = "upper"
        else:
            case = "mixed"
        return cls(separator, case)

    def fits(self, pattern: tuple[str, str]) -> bool:
        separator, case = pattern
        separator_ok = self.separator in ("", separator)
        case_ok = self.case in ("none", case)
        return separator_ok and case_ok


class NamingPattern(Rule):
    """Looks at fully literal physical names (the catalog's list, as in DL702; the last path
    segment of hierarchical names). Each name has a style: its separator (-, _, . or none) and
    its case (lower, upper, mixed). The dominant style is the one most names fit (a name
    without separators fits any separator); on a tie the house `{service}-{type}-{env}` style
    (lower-case, `-`) wins. Each name that does not fit the dominant style is reported. Needs
    two or more literal names."""

    id = "DL703"
    severity = Severity.LOW
    family = "Organisation"
    seed = "000 §8"
    title = "Physical names mix naming patterns"
    resource_types = tuple(PHYSICAL_NAME_PROPS)
    rationale = (
        "Mixed patterns (shop-build-prod next to Shop_Pipeline) make names unguessable: IAM "
        "policies with name prefixes, dashboards and clean-up scripts miss resources."
    )
    remediation = "Name every resource {service}-{type}-{env}, lower case, separated by '-'."
    fix_example = """\
BuildProject:
  Type: AWS::CodeBuild::Project
  Properties:
    Name: shop-build-prod
"""

    def check(self, template: Template) -> Iterator[Hit]:
        names = []
        for res, prop, value in physical_names(template):
            text = literal_str(template.resolve(value))
            if text:
                names.append((res.logical_id, prop, text, NameStyle.of(text)))
        if len(names) < 2:
            return
        candidates = Counter(
            (s.separator, s.case)
            for *_, s in names
            if s.separator in _SEPARATORS and s.case in ("lower", "upper", "mixed")
        )
        candidates.update({p: 0 for p in _PREFERENCE})
        scores = {p: sum(1 for *_, s in names if s.fits(p)) for p in candidates}
        best = max(scores.values())
        order = _PREFERENCE + sorted(p for p in scores if p not in _PREFERENCE)
        dominant = next(p for p in order if scores.get(p) == best)
        for logical_id, prop, text, style in names:
            if not style.fits(dominant):
                sep = dominant[0]
                yield self.hit(
                    logical_id,
                    f"Properties.{prop}",
                    f"{prop} {text!r} breaks the template's naming pattern ({dominant[1]} case, "
                    f"words separated by {sep!r})",
                )
