"""cdk-nag's packs as the tests run them, and what the tests read back from its report.

`add_packs(app)` adds AwsSolutions and the three compliance packs (NIST 800-53 R5, PCI DSS 3.2.1,
HIPAA Security) as validation plugins; the synthesis writes `validation-report.json`, which
`findings` and `acknowledgements` read. `unnamed_resources` lists the acknowledgements whose
reason does not name the resource they are about.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_cdk import App, Validations
from cdk_nag import AwsSolutionsChecks, HIPAASecurityChecks, NIST80053R5Checks, PCIDSS321Checks

AWS_SOLUTIONS = "AwsSolutions"
#: The compliance packs, by the plugin name cdk-nag reports them under.
COMPLIANCE_PACKS = ("NIST.800.53.R5", "PCI.DSS.321", "HIPAA.Security")
PACKS = (AWS_SOLUTIONS, *COMPLIANCE_PACKS)

#: Properties that hold a resource's physical name.
_NAME_PROPERTIES = (
    "RoleName",
    "FunctionName",
    "TableName",
    "TopicName",
    "QueueName",
    "AlarmName",
    "LogGroupName",
    "RepositoryName",
    "Family",
    "BucketName",
    "Name",
)
#: Resources named by what they belong to: (type, property holding a Ref to the owner).
_OWNERS = {
    "AWS::IAM::Policy": "Roles",
    "AWS::ElasticLoadBalancingV2::Listener": "LoadBalancerArn",
}


def add_packs(app: App) -> None:
    """AwsSolutions and the three compliance packs, as validation plugins of `app`."""
    Validations.of(app).add_plugins(
        AwsSolutionsChecks(), NIST80053R5Checks(), PCIDSS321Checks(), HIPAASecurityChecks()
    )


@dataclass(frozen=True)
class Entry:
    """One finding (or acknowledgement) of one rule on one construct."""

    pack: str
    rule: str
    path: str
    reason: str | None

    @property
    def stack(self) -> str:
        return self.path.split("/", 1)[0]


def _entries(report: dict[str, Any], key: str, pack: str) -> list[Entry]:
    return [
        Entry(pack, v["ruleName"], c["constructPath"], v.get("reason"))
        for plugin in report.get("pluginReports", [])
        if plugin["pluginName"] == pack
        for v in plugin.get(key, [])
        for c in v["violatingConstructs"]
    ]


def findings(report: dict[str, Any], pack: str) -> list[Entry]:
    """The findings of `pack` nobody acknowledged."""
    return _entries(report, "violations", pack)


def acknowledgements(report: dict[str, Any], pack: str) -> list[Entry]:
    """The findings of `pack` acknowledged in code, each with its reason."""
    return _entries(report, "suppressedViolations", pack)


def ran(report: dict[str, Any], pack: str) -> bool:
    """Whether `pack` reported at all (cdk-nag leaves out a pack with nothing to report)."""
    return any(p["pluginName"] == pack for p in report.get("pluginReports", []))


class Assembly:
    """The templates of a cloud assembly and, from its metadata files, the logical ID of every
    construct path."""

    def __init__(self, outdir: Path) -> None:
        self.templates: dict[str, dict[str, Any]] = {}
        self.logical_ids: dict[str, tuple[str, str]] = {}
        for path in outdir.glob("*.template.json"):
            stack = path.name.removesuffix(".template.json")
            self.templates[stack] = json.loads(path.read_text())
            metadata = outdir / f"{stack}.metadata.json"
            if not metadata.exists():
                continue
            for construct, entries in json.loads(metadata.read_text()).items():
                for entry in entries:
                    if entry.get("type") == "aws:cdk:logicalId":
                        self.logical_ids[construct.lstrip("/")] = (stack, entry["data"])

    def names(self, path: str) -> set[str]:
        """The literal physical names of the resource at construct `path` (or of the resource
        it belongs to: a role's policy, a load balancer's listener)."""
        found = self.logical_ids.get(path)
        return self._names(*found) if found else set()

    def _names(self, stack: str, logical_id: str) -> set[str]:
        resource = self.templates[stack]["Resources"].get(logical_id, {})
        props = resource.get("Properties", {})
        names = {props[p] for p in _NAME_PROPERTIES if isinstance(props.get(p), str)}
        owner = _OWNERS.get(resource.get("Type", ""))
        if not names and owner is not None:
            refs = props.get(owner)
            for ref in refs if isinstance(refs, list) else [refs]:
                if isinstance(ref, dict) and "Ref" in ref:
                    names |= self._names(stack, ref["Ref"])
        return names


def environment_of(stack: str) -> str:
    """The environment a deployline stack belongs to: the last part of its name."""
    return stack.rsplit("-", 1)[-1]


def unnamed_resources(
    entries: Iterable[Entry], assembly: Assembly, services: Iterable[str]
) -> list[Entry]:
    """The acknowledgements whose reason does not name their resource: its physical name when
    it has one (or its owner's), else a deployline name of its stack's environment
    (`{service}-...-{env}`)."""
    services = list(services)
    missing = []
    for entry in entries:
        reason = entry.reason or ""
        names = assembly.names(entry.path)
        if names:
            named = any(name in reason for name in names)
        else:
            env = re.escape(environment_of(entry.stack))
            named = any(
                re.search(rf"\b{re.escape(service)}-[a-z0-9-]*-{env}\b", reason)
                for service in services
            )
        if not named:
            missing.append(entry)
    return missing
