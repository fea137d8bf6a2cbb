"""destroy: delete one environment's stack with the CDK CLI, then what it kept on delete (only
when asked), then verify that nothing tagged for the environment is left.

Production stacks keep their data on delete (DeletionPolicy Retain: the KMS key, log groups,
access-log bucket) and protect their load balancer from deletion. So, in order:

1. `inventory`: the stack's resources, and which ones the deployed template retains;
2. `disable_deletion_protection` on its load balancers (CloudFormation cannot delete them else);
3. `cdk destroy` of the stack;
4. with `delete_retained`, `delete_resource` for each kept resource deployline can delete (S3
   buckets, emptied first; log groups; KMS keys, scheduled for deletion after 7 days);
5. `verify`: the stack is gone, no resource tagged `Service=<service>`, `Environment=<env>` is
   left (the Resource Groups Tagging API), and none of the stack's IAM roles (which that API does
   not list). A kept resource is reported as kept, not as left over; a key awaiting deletion as
   scheduled.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from deployline.deploy.assembly import Placement, StackArtifact
from deployline.deploy.aws import Aws, describe
from deployline.deploy.cdk import CdkCli
from deployline.deploy.operations import (
    DeployError,
    Output,
    Plan,
    common_arguments,
    read_deployed,
)
from deployline.naming import MANAGED_BY
from deployline.runtime.clients import error_code

RETAINED_POLICIES = frozenset({"Retain", "RetainExceptOnCreate"})
#: How long a KMS key waits before deletion. Default: 7 days, the shortest AWS allows.
KEY_PENDING_DAYS = 7


@dataclass(frozen=True)
class StackResource:
    logical_id: str
    resource_type: str
    physical_id: str
    retained: bool


def inventory(cloudformation: Any, stack_name: str) -> list[StackResource] | None:
    """The stack's resources (None when the stack does not exist)."""
    deployed = read_deployed(cloudformation, stack_name)
    if deployed is None:
        return None
    declared: Mapping[str, Any] = deployed.template.get("Resources", {})
    pages = cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack_name)
    out = []
    for page in pages:
        for summary in page["StackResourceSummaries"]:
            logical = summary["LogicalResourceId"]
            policy = declared.get(logical, {}).get("DeletionPolicy")
            physical = summary.get("PhysicalResourceId")
            if not physical:
                continue
            out.append(
                StackResource(
                    logical_id=logical,
                    resource_type=summary["ResourceType"],
                    physical_id=physical,
                    retained=policy in RETAINED_POLICIES,
                )
            )
    return out


def disable_deletion_protection(elbv2: Any, resources: Iterable[StackResource]) -> list[str]:
    """Turn deletion protection off on the stack's load balancers; return the ones changed."""
    changed = []
    for resource in resources:
        if resource.resource_type != "AWS::ElasticLoadBalancingV2::LoadBalancer":
            continue
        arn = resource.physical_id
        attributes = elbv2.describe_load_balancer_attributes(LoadBalancerArn=arn)["Attributes"]
        if {"Key": "deletion_protection.enabled", "Value": "true"} not in attributes:
            continue
        elbv2.modify_load_balancer_attributes(
            LoadBalancerArn=arn,
            Attributes=[{"Key": "deletion_protection.enabled", "Value": "false"}],
        )
        changed.append(arn)
    return changed


def destroy_arguments(plan: Plan) -> list[str]:
    return [
        "destroy",
        *common_arguments(plan.outdir),
        "--force",
        "--exclusively",
        *(s.stack_name for s in plan.stacks),
    ]


def destroy_stacks(
    plan: Plan, cli: CdkCli, output: Output, *, env: Mapping[str, str] | None = None
) -> int:
    """`cdk destroy` of the plan's stacks, without the CLI's own prompt (the caller asked)."""
    return cli.run(destroy_arguments(plan), cwd=plan.outdir.parent, on_line=output, env=env)


# ---- what the stack kept ------------------------------------------------------------------


def resource_arn(resource: StackResource, *, partition: str, account: str, region: str) -> str:
    """The ARN of a stack resource from its physical ID (the types deployline retains), else the
    physical ID itself."""
    prefix = f"arn:{partition}"
    kind, physical = resource.resource_type, resource.physical_id
    if physical.startswith("arn:"):
        return physical
    if kind == "AWS::S3::Bucket":
        return f"{prefix}:s3:::{physical}"
    if kind == "AWS::Logs::LogGroup":
        return f"{prefix}:logs:{region}:{account}:log-group:{physical}"
    if kind == "AWS::KMS::Key":
        return f"{prefix}:kms:{region}:{account}:key/{physical}"
    return physical


def delete_resource(clients: Any, arn: str) -> str:
    """Delete what `arn` names (S3 bucket, log group, KMS key); return what was done.
    `clients(service)` makes a client where the resource lives. Raises ValueError for a kind
    deployline does not delete."""
    parts = arn.split(":", 5)
    service = parts[2] if len(parts) > 2 else ""
    if service == "s3":
        bucket = parts[5]
        empty_bucket(clients("s3"), bucket)
        clients("s3").delete_bucket(Bucket=bucket)
        return "deleted (emptied first)"
    if service == "logs":
        name = parts[5].removeprefix("log-group:").removesuffix(":*")
        clients("logs").delete_log_group(logGroupName=name)
        return "deleted"
    if service == "kms":
        key = parts[5].removeprefix("key/")
        answer = clients("kms").schedule_key_deletion(
            KeyId=key, PendingWindowInDays=KEY_PENDING_DAYS
        )
        return f"scheduled for deletion on {_day(answer.get('DeletionDate'))}"
    raise ValueError(f"deployline does not delete {arn}; delete it in the console or the AWS CLI")


def _day(value: Any) -> str:
    return value.strftime("%Y-%m-%d") if isinstance(value, datetime) else str(value)


def empty_bucket(s3: Any, bucket: str) -> int:
    """Delete every object version and delete marker in `bucket`; return how many."""
    deleted = 0
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        keys = [
            {"Key": v["Key"], "VersionId": v["VersionId"]}
            for v in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
        ]
        for start in range(0, len(keys), 1000):
            chunk = keys[start : start + 1000]
            s3.delete_objects(Bucket=bucket, Delete={"Objects": chunk, "Quiet": True})
            deleted += len(chunk)
    return deleted


# ---- verification -------------------------------------------------------------------------


@dataclass(frozen=True)
class Leftover:
    """Something of the environment still in the account after the destroy."""

    arn: str
    #: left (should not be there), kept (retained on delete, as configured), scheduled (a KMS
    #: key waiting out its deletion window).
    state: str
    note: str = ""


@dataclass(frozen=True)
class Verification:
    stack_gone: bool
    leftovers: tuple[Leftover, ...]

    @property
    def left(self) -> list[Leftover]:
        return [x for x in self.leftovers if x.state == "left"]

    @property
    def clean(self) -> bool:
        """Nothing is there that should not be."""
        return self.stack_gone and not self.left


def tagged_resources(tagging: Any, *, service: str, environment: str) -> dict[str, dict[str, str]]:
    """ARN -> tags of every resource tagged Service=service and Environment=environment."""
    filters = [
        {"Key": "Service", "Values": [service]},
        {"Key": "Environment", "Values": [environment]},
    ]
    found: dict[str, dict[str, str]] = {}
    for page in tagging.get_paginator("get_resources").paginate(TagFilters=filters):
        for mapping in page.get("ResourceTagMappingList", []):
            tags = {t["Key"]: t["Value"] for t in mapping.get("Tags", [])}
            found[mapping["ResourceARN"].removesuffix(":*")] = tags
    return found


def stack_exists(cloudformation: Any, stack_name: str) -> bool:
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except Exception as exc:
        if error_code(exc) == "ValidationError":
            return False
        raise
    return any(s.get("StackStatus") != "DELETE_COMPLETE" for s in stacks)


def remaining_roles(iam: Any, resources: Sequence[StackResource]) -> list[str]:
    """The stack's IAM roles that still exist (the tagging API does not list IAM)."""
    left = []
    for resource in resources:
        if resource.resource_type != "AWS::IAM::Role":
            continue
        try:
            left.append(iam.get_role(RoleName=resource.physical_id)["Role"]["Arn"])
        except Exception as exc:
            if error_code(exc) != "NoSuchEntity":
                raise
    return left


def key_pending_deletion(kms: Any, arn: str) -> str | None:
    """The deletion date of a KMS key waiting to be deleted, else None."""
    try:
        metadata = kms.describe_key(KeyId=arn)["KeyMetadata"]
    except Exception as exc:
        if error_code(exc) == "NotFoundException":
            return "deleted"
        raise
    if metadata.get("KeyState") != "PendingDeletion":
        return None
    return _day(metadata.get("DeletionDate"))


def verify(
    clients: Any,
    *,
    stack_name: str,
    service: str,
    environment: str,
    resources: Sequence[StackResource],
    kept: Iterable[str] = (),
) -> Verification:
    """What of the environment is still there. `clients(service)` makes clients in its account
    and region; `kept` are the ARNs retained on delete on purpose."""
    gone = not stack_exists(clients("cloudformation"), stack_name)
    found = set(
        tagged_resources(
            clients("resourcegroupstaggingapi"), service=service, environment=environment
        )
    )
    found.update(remaining_roles(clients("iam"), resources))
    kept_set = set(kept)
    leftovers = []
    for arn in sorted(found):
        when = key_pending_deletion(clients("kms"), arn) if ":kms:" in arn else None
        if when is not None:
            leftovers.append(Leftover(arn, "scheduled", f"deletion on {when}"))
        elif arn in kept_set:
            leftovers.append(Leftover(arn, "kept", "retained on delete"))
        else:
            leftovers.append(Leftover(arn, "left", "still exists"))
    return Verification(stack_gone=gone, leftovers=tuple(leftovers))


def deletable(tags: Mapping[str, str]) -> bool:
    """A tagged resource deployline may delete: one it created (ManagedBy=deployline)."""
    return tags.get("ManagedBy") == MANAGED_BY


# ---- the whole destroy --------------------------------------------------------------------


@dataclass(frozen=True)
class DestroyTarget:
    """An environment's stack, as found before anything is deleted."""

    plan: Plan
    environment: str
    placement: Placement
    #: The stack's resources; None when the stack does not exist.
    resources: tuple[StackResource, ...] | None

    @property
    def stack(self) -> StackArtifact:
        return self.plan.environments[self.environment]

    @property
    def retained(self) -> list[StackResource]:
        return [r for r in self.resources or () if r.retained]


@dataclass(frozen=True)
class Destroyed:
    """What a destroy did and what it found afterwards."""

    exit_code: int
    protection_disabled: tuple[str, ...]
    deleted: dict[str, str]
    not_deleted: dict[str, str]
    verification: Verification

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.not_deleted and self.verification.clean


def find_target(plan: Plan, environment: str, aws: Aws) -> DestroyTarget:
    """Read the environment's stack before anything is deleted."""
    stack = plan.environments[environment]
    resources = inventory(
        aws.stack_client("cloudformation", stack, role="lookup"), stack.stack_name
    )
    return DestroyTarget(
        plan=plan,
        environment=environment,
        placement=aws.placement(stack),
        resources=None if resources is None else tuple(resources),
    )


def destroy_environment(
    target: DestroyTarget,
    cli: CdkCli,
    output: Output,
    aws: Aws,
    *,
    delete_retained: bool = False,
) -> Destroyed:
    """Delete the environment's stack, its kept resources when `delete_retained` (Default: off),
    and verify what is left. Raises DeployError when that needs credentials of another account."""
    stack, config = target.stack, target.plan.config
    direct = target.placement.account == aws.identity.account
    if delete_retained and not direct:
        raise DeployError(
            f"deleting the resources {stack.stack_name} keeps needs credentials for account "
            f"{target.placement.account}: pass --profile with a profile for it"
        )
    read = _clients(aws, stack, "lookup")
    disabled: list[str] = []
    code = 0
    if target.resources is not None:
        disabled = _unprotect(target, aws, direct)
        code = destroy_stacks(target.plan, cli, output, env=aws.cli_environment())
    kept = [_arn(r, target.placement, aws) for r in target.retained]
    deleted: dict[str, str] = {}
    failed: dict[str, str] = {}
    if delete_retained and code == 0:
        tagged = tagged_resources(
            read("resourcegroupstaggingapi"), service=config.service, environment=target.environment
        )
        doomed = sorted(set(kept) | {arn for arn, tags in tagged.items() if deletable(tags)})
        write = _clients(aws, stack, "deploy")
        for arn in doomed:
            try:
                deleted[arn] = delete_resource(write, arn)
            except ValueError as exc:
                failed[arn] = str(exc)
            except Exception as exc:
                failed[arn] = str(describe(exc, f"deleting {arn}"))
    verification = verify(
        read,
        stack_name=stack.stack_name,
        service=config.service,
        environment=target.environment,
        resources=target.resources or (),
        kept=() if delete_retained else kept,
    )
    return Destroyed(code, tuple(disabled), deleted, failed, verification)


def _clients(aws: Aws, stack: StackArtifact, role: str) -> Any:
    return lambda service: aws.stack_client(service, stack, role=role)


def _arn(resource: StackResource, placement: Placement, aws: Aws) -> str:
    assert placement.account is not None and placement.region is not None
    return resource_arn(
        resource,
        partition=aws.identity.partition,
        account=placement.account,
        region=placement.region,
    )


def _unprotect(target: DestroyTarget, aws: Aws, direct: bool) -> list[str]:
    elbv2 = aws.stack_client("elbv2", target.stack, role="lookup")
    try:
        return disable_deletion_protection(elbv2, target.resources or ())
    except Exception as exc:
        if direct or error_code(exc) not in {"AccessDenied", "AccessDeniedException"}:
            raise describe(exc, "turning off the load balancer's deletion protection") from None
        raise DeployError(
            f"{target.stack.stack_name}'s load balancer is protected from deletion, and turning "
            f"that off needs credentials for account {target.placement.account}: pass --profile "
            "with a profile for it"
        ) from None
