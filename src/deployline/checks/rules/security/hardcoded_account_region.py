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


def literal_locations(
    text: str, accounts: frozenset[str] = frozenset(), regions: frozenset[str] = frozenset()
) -> list[str]:
    """What `text` hard-codes: 'account ID 123456789012', 'region eu-west-2'; leaving out the
    `accounts` and `regions` that the deployment declares."""
    if AWS_MANAGED_POLICY.match(text):
        return []
    found = [f"region {m.group(0)}" for m in REGION.finditer(text) if m.group(0) not in regions]
    found += [
        f"account ID {m.group(0)}" for m in ACCOUNT.finditer(text) if m.group(0) not in accounts
    ]
    return found


def names_a_region(path: tuple[str | int, ...]) -> bool:
    """The properties where CodePipeline takes a region by name: `ArtifactStores[].Region` and an
    action's `Region` (a cross-region pipeline must name its regions)."""
    if len(path) == 4 and path[1] == "ArtifactStores" and path[3] == "Region":
        return True
    return len(path) == 6 and path[1] == "Stages" and path[3] == "Actions" and path[5] == "Region"


class HardcodedAccountRegion(Rule):
    """Every string in a resource's Properties (an inline buildspec and environment values
    included) is searched for a 12-digit account ID and a region name; a 12-digit number counts
    under a key that names an account, owner or principal. Not findings: AWS managed policy
    ARNs; the regions of a pipeline's `ArtifactStores[].Region` and of an action's `Region`,
    which CodePipeline takes only by name (in any template); and, in a stack of a CDK cloud
    assembly pinned to an environment (`aws://<account>/<region>` in manifest.json), the
    accounts and regions that the assembly's stacks are pinned to: the stack's own environment,
    and the other accounts and regions the deployment reaches (bootstrap role ARNs, principals of
    key, bucket and repository policies, registry hosts). An account or region the assembly
    does not declare is still a finding there. Environment-agnostic stacks and lone templates
    declare nothing."""

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
        context = template.context
        accounts = context.assembly_accounts if context.pinned else frozenset()
        regions = context.assembly_regions if context.pinned else frozenset()
        for resource in template.resources.values():
            props = resource.raw.get("Properties")
            if not isinstance(props, dict):
                continue
            for path, value in walk(props, ("Properties",)):
                if names_a_region(path):
                    continue
                if isinstance(value, str):
                    found = literal_locations(value, accounts, regions)
                elif (
                    isinstance(value, int)
                    and not isinstance(value, bool)
                    and len(str(value)) == 12
                    and any(isinstance(p, str) and _ACCOUNT_KEYS.search(p) for p in path)
                    and str(value) not in accounts
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
