"""What a synthesized cloud assembly (`cdk.out`) holds, read from its manifest: plain JSON.

Each stack artifact says where it deploys (`aws://account/region`, `unknown-account` and
`unknown-region` for environment-agnostic stacks), the bootstrap version it needs and the SSM
parameter that holds the deployed one, the role the CLI assumes to deploy it, and its asset
manifest (the bootstrap bucket its files are published to).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

UNKNOWN_ACCOUNT = "unknown-account"
UNKNOWN_REGION = "unknown-region"


class AssemblyError(Exception):
    """The directory is not a cloud assembly deployline can read."""


@dataclass(frozen=True)
class Placement:
    """An account and region, as the stack gives them (None: wherever the credentials point)."""

    account: str | None
    region: str | None

    def resolve(self, *, account: str, region: str) -> Placement:
        """Fill what the stack leaves open with the credentials' account and region."""
        return Placement(self.account or account, self.region or region)

    def __str__(self) -> str:
        return f"aws://{self.account or UNKNOWN_ACCOUNT}/{self.region or UNKNOWN_REGION}"


@dataclass(frozen=True)
class StackArtifact:
    """One stack of the assembly."""

    artifact_id: str
    stack_name: str
    template_file: Path
    placement: Placement
    #: The bootstrap version the stack needs, and the SSM parameter that holds the deployed one.
    requires_bootstrap_version: int
    bootstrap_version_parameter: str | None
    #: The roles the CLI assumes to deploy and to read (placeholders unresolved).
    deploy_role_arn: str | None
    lookup_role_arn: str | None
    #: Bootstrap buckets the stack's files are published to (placeholders unresolved).
    asset_buckets: tuple[str, ...] = field(default_factory=tuple)

    def template(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.template_file.read_text(encoding="utf-8"))
        return data

    def parameters(self) -> dict[str, Any]:
        params: dict[str, Any] = self.template().get("Parameters", {})
        return params

    def role(self, kind: str, placement: Placement, partition: str) -> str | None:
        """The `deploy` or `lookup` role's ARN in `placement` (account and region resolved)."""
        template = self.deploy_role_arn if kind == "deploy" else self.lookup_role_arn
        if template is None or placement.account is None or placement.region is None:
            return None
        return substitute(
            template, account=placement.account, region=placement.region, partition=partition
        )


def parse_environment(text: str) -> Placement:
    """`aws://123456789012/eu-west-1` -> Placement; unknown parts become None."""
    if not text.startswith("aws://"):
        raise AssemblyError(f"a stack environment must look like aws://account/region, got {text}")
    account, _, region = text[len("aws://") :].partition("/")
    return Placement(
        account=None if account in ("", UNKNOWN_ACCOUNT) else account,
        region=None if region in ("", UNKNOWN_REGION) else region,
    )


def substitute(text: str, *, account: str, region: str, partition: str = "aws") -> str:
    """Resolve the CDK manifest placeholders in `text`."""
    return (
        text.replace("${AWS::AccountId}", account)
        .replace("${AWS::Region}", region)
        .replace("${AWS::Partition}", partition)
    )


def read_assembly(outdir: Path) -> list[StackArtifact]:
    """The stacks of the cloud assembly in `outdir`, in manifest order."""
    manifest_path = outdir / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise AssemblyError(
            f"{manifest_path}: cannot read the cloud assembly's manifest ({exc.strerror}): "
            "synthesize first (`deployline synth --out DIR`)"
        ) from None
    except ValueError as exc:
        raise AssemblyError(f"{manifest_path}: not JSON ({exc}): synthesize again") from None
    artifacts: dict[str, Any] = manifest.get("artifacts", {})
    stacks = []
    for artifact_id, artifact in artifacts.items():
        if artifact.get("type") != "aws:cloudformation:stack":
            continue
        props = artifact.get("properties", {})
        stacks.append(
            StackArtifact(
                artifact_id=artifact_id,
                stack_name=props.get("stackName") or artifact.get("displayName") or artifact_id,
                template_file=outdir / props["templateFile"],
                placement=parse_environment(artifact.get("environment", "aws://")),
                requires_bootstrap_version=int(props.get("requiresBootstrapStackVersion", 0)),
                bootstrap_version_parameter=props.get("bootstrapStackVersionSsmParameter"),
                deploy_role_arn=props.get("assumeRoleArn"),
                lookup_role_arn=(props.get("lookupRole") or {}).get("arn"),
                asset_buckets=_asset_buckets(outdir, artifacts, artifact),
            )
        )
    return stacks


def _asset_buckets(
    outdir: Path, artifacts: dict[str, Any], artifact: dict[str, Any]
) -> tuple[str, ...]:
    buckets: set[str] = set()
    for dependency in artifact.get("dependencies", []):
        assets = artifacts.get(dependency, {})
        if assets.get("type") != "cdk:asset-manifest":
            continue
        data = json.loads((outdir / assets["properties"]["file"]).read_text(encoding="utf-8"))
        for entry in data.get("files", {}).values():
            for destination in entry.get("destinations", {}).values():
                if destination.get("bucketName"):
                    buckets.add(destination["bucketName"])
    return tuple(sorted(buckets))


def stack_named(stacks: list[StackArtifact], name: str) -> StackArtifact:
    for stack in stacks:
        if stack.stack_name == name:
            return stack
    raise AssemblyError(
        f"the cloud assembly has no stack {name!r}; it has {[s.stack_name for s in stacks]}"
    )
