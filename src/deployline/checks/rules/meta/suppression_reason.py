"""DL000: a suppression in a template's Metadata without a reason (or naming no rule)."""

from __future__ import annotations

from collections.abc import Iterator

from deployline.checks.model import Hit, Rule, Severity
from deployline.checks.suppressions import metadata_suppressions, problem_of
from deployline.checks.template import Template


class SuppressionWithoutReason(Rule):
    id = "DL000"
    severity = Severity.HIGH
    family = "Checker"
    seed = "design.md: Rules"
    title = "Suppression without a reason"
    resource_types = ()
    rationale = (
        "A suppression hides a finding from every later reader; without a reason nobody can tell "
        "whether it was a deliberate, reviewed decision or a way to make the build green. A "
        "suppression without a reason (or naming a rule that does not exist) is not applied."
    )
    remediation = (
        "Give every suppression an id and a non-empty reason: in the resource's Metadata "
        "`deployline: {suppress: [{id: DL305, reason: ...}]}` or in deployline.yaml "
        "`checks: {suppress: [{id, reason, resource}]}`."
    )
    fix_example = """\
BuildProject:
  Type: AWS::CodeBuild::Project
  Metadata:
    deployline:
      suppress:
        - id: DL305
          reason: builds run once a day; a layer cache would cost more than it saves
"""

    def check(self, template: Template) -> Iterator[Hit]:
        for entry in metadata_suppressions(template):
            problem = problem_of(entry.raw)
            if problem:
                yield self.hit(entry.carrier, entry.path, problem)
