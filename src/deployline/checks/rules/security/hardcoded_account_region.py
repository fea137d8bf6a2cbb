"""DL130: a literal account ID or region in a resource property."""

from __future__ import annotations

import re
from collections.abc import Iterator

from deployline.checks.intrinsics import format_path, walk
from deployline.checks.model import Hit, Rule, Severity
from deployline.checks.template import Template

REGION = re.compile(
    r"(?<![a-z0-9])"
    r"(?:us-gov|us-iso[bef]?|eu-isoe|eusc-de|us|eu|ap|sa|ca|me|af|il|mx|cn)"
    r"-(?:north|south|east|west|central|northeast|southeast|northwest|southwest)-\d{1,2}"
    r"(?![0-9])"
)
ACCOUNT = re.compile(r"(?<![0-9A-Za-z])[0-9]{12}(?![0-9A-Za-z])")
AWS_MANAGED_POLICY = re.compile(r"^arn:[a-z-]+:iam::aws:policy/")
_ACCOUNT_KEYS = re.compile(r"account|owner|principal|^aws$", re.IGNORECASE)


def literal_locations(text: str) -> list[str]:
    """What `text` hard-codes: 'account ID 123456789012', 'region eu-west-2'."""
    if AWS_MANAGED_POLICY.match(text):
        return []
    found = [f"region {m.group(0)}" for m in REGION.finditer(text)]
    found += [f"account ID {m.group(0)}" for m in ACCOUNT.finditer(text)]
    return found


class HardcodedAccountRegion(Rule):
    id = "DL130"
    severity = Severity.MEDIUM
    family = "Security"
    seed = "001 §5, 002 §3"
    title = "Literal account ID or region in a resource property"
    resource_types = ()
    rationale = (
        "A template with a written-in account or region deploys correctly only there: the same "
        "stack in a second account or region points at the first one's resources, or fails."
    )
    remediation = (
        "Use ${AWS::AccountId} and ${AWS::Region} (Fn::Sub), ${AWS::URLSuffix} for endpoints, "
        "and Mappings keyed by region for per-region values."
    )
    fix_example = """\
Environment:
  EnvironmentVariables:
    - Name: REPOSITORY_URI
      Value: !Sub "${AWS::AccountId}.dkr.ecr.${AWS::Region}.amazonaws.com/${Repository}"
Principal:
  Service: !Sub "logs.${AWS::Region}.amazonaws.com"
"""

    def check(self, template: Template) -> Iterator[Hit]:
        for resource in template.resources.values():
            props = resource.raw.get("Properties")
            if not isinstance(props, dict):
                continue
            for path, value in walk(props, ("Properties",)):
                if isinstance(value, str):
                    found = literal_locations(value)
                elif (
                    isinstance(value, int)
                    and not isinstance(value, bool)
                    and len(str(value)) == 12
                    and any(isinstance(p, str) and _ACCOUNT_KEYS.search(p) for p in path)
                ):
                    found = [f"account ID {value}"]
                else:
                    continue
                if found:
                    yield self.hit(
                        resource.logical_id,
                        format_path(path),
                        f"literal {', '.join(dict.fromkeys(found))}: use ${{AWS::AccountId}} / "
                        "${AWS::Region} so the template deploys anywhere",
                    )
