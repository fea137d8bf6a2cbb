"""The compliance packs deployline's templates are held to beside cdk-nag's AwsSolutions, and the
one way a construct records that one of their findings is accepted.

cdk-nag's NIST 800-53 R5, PCI DSS 3.2.1 and HIPAA Security packs share most rules (a rule has one
name in every pack that carries it). `accept` acknowledges a rule, with one reason, in exactly the
packs that carry it, and skips the checkov checks that test the same thing with the same reason,
so the two peers never disagree about why. A reason names the resource (its physical name, or
the stack and construct it belongs to) and says why the control is met otherwise or does not
apply.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeGuard

from aws_cdk import Acknowledgment, Stack, Token, Validations
from aws_cdk import aws_iam as iam
from constructs import Construct, IConstruct

from deployline import defaults

NIST = "NIST.800.53.R5"
PCI = "PCI.DSS.321"
HIPAA = "HIPAA.Security"
#: The packs, by the plugin name cdk-nag reports them under.
PACKS = (NIST, PCI, HIPAA)

#: Which packs carry each rule deployline accepts somewhere (cdk-nag 3.0.2, read from its
#: packs on 2026-05-12). A rule missing here is a ValueError: look it up before accepting it.
RULE_PACKS: dict[str, tuple[str, ...]] = {
    "ALBHttpToHttpsRedirection": (NIST, PCI, HIPAA),
    "ALBWAFEnabled": (NIST, PCI),
    "CloudWatchAlarmAction": (NIST, HIPAA),
    "CodeBuildProjectSourceRepoUrl": (PCI, HIPAA),
    "DynamoDBInBackupPlan": (NIST, HIPAA),
    "ELBDeletionProtectionEnabled": (NIST, HIPAA),
    "ELBv2ACMCertificateRequired": (NIST, PCI, HIPAA),
    "IAMNoInlinePolicy": (NIST, PCI, HIPAA),
    "LambdaConcurrency": (NIST, HIPAA),
    "LambdaDLQ": (NIST, HIPAA),
    "LambdaInsideVPC": (NIST, PCI, HIPAA),
    "S3BucketLoggingEnabled": (NIST, PCI, HIPAA),
    "S3BucketReplicationEnabled": (NIST, PCI, HIPAA),
    "S3BucketVersioningEnabled": (NIST, PCI, HIPAA),
    "S3DefaultEncryptionKMS": (NIST, PCI, HIPAA),
    "VPCNoUnrestrictedRouteToIGW": (NIST, PCI, HIPAA),
}


def accept(construct: IConstruct, rule: str, reason: str, *, checkov: Sequence[str] = ()) -> None:
    """Acknowledge cdk-nag rule `rule` (e.g. "LambdaDLQ") on `construct` and everything under it
    in every pack that carries it, and skip the checkov checks `checkov` (on `construct`'s
    CloudFormation resource) with the same `reason`."""
    packs = RULE_PACKS.get(rule)
    if packs is None:
        raise ValueError(
            f"unknown compliance rule {rule!r}; known: {sorted(RULE_PACKS)} (add it to "
            "RULE_PACKS with the packs that carry it)"
        )
    if len(reason.strip()) < 40:
        raise ValueError(f"accepting {rule} needs a reason that says why, got {reason!r}")
    Validations.of(construct).acknowledge(
        *[Acknowledgment(id=f"{pack}::{pack}-{rule}", reason=reason) for pack in packs]
    )
    if checkov and not isinstance(construct, Construct):
        raise TypeError(f"{construct.node.path}: checkov skips need a construct defined here")
    for check in checkov:
        assert isinstance(construct, Construct)
        defaults.skip_checkov(construct, check, reason)


def accept_inline_policies(stack: Stack) -> None:
    """Accept IAMNoInlinePolicy for every IAM role of `stack`, each with a reason naming it.

    Each deployline role's permissions are written for that role alone, every statement scoped
    to the ARNs it needs: least privilege is a property of the statements, not of the kind of
    policy that holds them. Inline is what IAM advises for a strict one-to-one policy (it cannot
    be attached to another identity, and it goes when the role goes); a customer-managed policy
    would add a second object to govern and nothing to what the role may do.
    """
    stack_name = stack.stack_name  # one jsii round trip for the stack, not one per role
    for node in stack.node.find_all():
        if isinstance(node, iam.Role):
            accept(node, "IAMNoInlinePolicy", _inline_policy_reason(stack_name, node))


def role_label(role: iam.IRole) -> str:
    """`role <name>` for a role of this app with a literal name, else `role <construct path>`."""
    return _role_label(role, role.node.default_child)


def _role_label(role: iam.IRole, cfn: IConstruct | None) -> str:
    name = cfn.role_name if isinstance(cfn, iam.CfnRole) else None
    if _literal(name):
        return f"role {name}"
    return f"role {role.node.path}"


#: What every token string of aws-cdk-lib contains (core/lib/private/encoding ANY_TOKEN_MARKER).
TOKEN_MARKER = "Token["  # noqa: S105  (CDK's token marker, no secret)


def _literal(value: object) -> TypeGuard[str]:
    """`value` is a string that holds no token. aws-cdk-lib's `Token.is_unresolved` first looks
    for its "Token[" marker and answers False without it: that answer needs no jsii round trip
    (most names and descriptions are literal); a string with the marker still asks CDK."""
    return isinstance(value, str) and (TOKEN_MARKER not in value or not Token.is_unresolved(value))


def _inline_policy_reason(stack_name: str, role: iam.Role) -> str:
    cfn = role.node.default_child
    description = cfn.description if isinstance(cfn, iam.CfnRole) else None
    purpose = f" ({description.removeprefix('deployline: ')})" if _literal(description) else ""
    return (
        f"{_role_label(role, cfn)}{purpose} in {stack_name}: its permissions are written for "
        "this role alone, each statement scoped to the ARNs it needs, and kept inline so they "
        "cannot be attached to any other identity and go when the role goes (IAM's advice for a "
        "one-to-one policy); least privilege (AC-6, PCI 7.1.2) is met by the statements"
    )
