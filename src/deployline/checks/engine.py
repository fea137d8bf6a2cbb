"""Run rules over one parsed template. Never raises: a rule that crashes on a strange template
reports UNKNOWN for it (the run goes on), so one odd file cannot hide the findings of the rest."""

from __future__ import annotations

from collections.abc import Sequence

from deployline.checks.loader import line_index, parse_text
from deployline.checks.model import Finding, Rule
from deployline.checks.template import Template


def template_from_text(text: str, file: str = "<template>") -> Template:
    """Parse and index a template (raises TemplateParseError)."""
    data = parse_text(text, file)
    resources = data.get("Resources") or {}
    ids = [k for k in resources if isinstance(k, str)] if isinstance(resources, dict) else []
    return Template(file=file, data=data, lines=line_index(text, ids), text=text)


def check_template(
    template: Template, rules: Sequence[Rule]
) -> tuple[list[Finding], list[Finding]]:
    """(findings, unknown) of `rules` on `template`, sorted by resource, rule and path."""
    findings: list[Finding] = []
    unknown: list[Finding] = []
    present = template.types
    for rule in rules:
        if rule.resource_types and present.isdisjoint(rule.resource_types):
            continue  # none of the types the rule reads: it has nothing to say
        try:
            hits = list(rule.check(template))
        except Exception as exc:  # a rule must never take the run down
            hits = [
                rule.unknown(
                    "(template)",
                    "",
                    f"{rule.id} could not evaluate this template "
                    f"({type(exc).__name__}: {exc}); please report it",
                )
            ]
        for hit in hits:
            res = template.resources.get(hit.resource)
            finding = Finding(
                rule_id=rule.id,
                severity=hit.severity or rule.severity,
                file=template.file,
                resource=hit.resource,
                path=hit.path,
                message=hit.message,
                remediation=rule.remediation,
                title=rule.title,
                line=_line_of(template, hit.resource, hit.path),
                unknown=hit.unknown,
                resource_type=res.type if res is not None else "",
            )
            (unknown if hit.unknown else findings).append(finding)
    order = lambda f: (f.file, f.resource, f.rule_id, f.path)  # noqa: E731
    return sorted(set(findings), key=order), sorted(set(unknown), key=order)


def _line_of(template: Template, name: str, path: str) -> int | None:
    try:
        return template.line_at(name, path)
    except Exception:  # locating a line is best effort; never lose the finding over it
        return None
