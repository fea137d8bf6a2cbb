"""IAM reading: identity policies and their holders, statements, action matching, trust.

Identity policies are role/user/group inline `Policies`, `AWS::IAM::Policy`,
`AWS::IAM::ManagedPolicy`, and `AWS::IAM::RolePolicy`/`UserPolicy`/`GroupPolicy`. Resource
policies (key, bucket, topic, queue) are not identity policies.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from deployline.checks.intrinsics import (
    as_list,
    get_path,
    is_intrinsic,
    literal_str,
    ref_like,
    ref_target,
    render,
)

if TYPE_CHECKING:
    from deployline.checks.template import Resource, Template


@dataclass(frozen=True)
class Statement:
    effect: str
    actions: tuple[Any, ...]  # literal strings, or intrinsics
    not_actions: tuple[Any, ...]
    resources: tuple[Any, ...]
    not_resources: tuple[Any, ...]
    has_not_action: bool
    condition: Any
    sid: str | None
    path: str  # property path of the statement within its holder
    raw: dict[str, Any]

    @property
    def allows(self) -> bool:
        return self.effect == "Allow"

    def literal_actions(self) -> list[str]:
        return [a for a in self.actions if isinstance(a, str)]

    def covers_action(self, action: str) -> bool:
        """Does this statement's Action / NotAction select `action`?"""
        if self.has_not_action:
            return not any(
                isinstance(p, str) and action_matches(p, action) for p in self.not_actions
            )
        return any(isinstance(p, str) and action_matches(p, action) for p in self.actions)

    def resource_is_star(self) -> bool:
        return any(r == "*" for r in self.resources)


@dataclass(frozen=True)
class PolicyDocument:
    holder: str  # logical ID of the resource that holds the statements
    holder_type: str
    path: str  # property path of the PolicyDocument in the holder
    document: Any
    principals: tuple[str, ...]  # logical IDs of the roles/users/groups it applies to

    @property
    def statements(self) -> list[Statement]:
        return statements_of(self.document, self.path)


_BARE_HOLE = re.compile(r'(?<!")(\$\{[^}"]*\})(?!")')


def policy_document(value: Any) -> dict[str, Any] | None:
    """A policy-shaped property (identity, trust, key, bucket, topic, queue or repository
    policy) as a mapping: a mapping as written; a JSON text, literal or assembled by `Fn::Sub`
    or `Fn::Join`, parsed (what the template does not resolve stays a `${...}` hole inside the
    strings). None when the value is computed some other way or is not a JSON object."""
    if isinstance(value, dict) and not is_intrinsic(value):
        return value
    if isinstance(value, str):
        text = value
    elif isinstance(value, dict) and next(iter(value)) in ("Fn::Sub", "Fn::Join"):
        text = render(value)
    else:
        return None
    for candidate in (text, _BARE_HOLE.sub(r'"\1"', text)):
        try:
            parsed = json.loads(candidate)
        except (ValueError, RecursionError):
            continue
        return parsed if isinstance(parsed, dict) else None
    return None


def statements_of(document: Any, base_path: str = "PolicyDocument") -> list[Statement]:
    """The statements of a policy-shaped property (see `policy_document`)."""
    document = policy_document(document)
    if document is None:
        return []
    raw = document.get("Statement")
    items = raw if isinstance(raw, list) else [raw] if isinstance(raw, dict) else []
    out = []
    for i, st in enumerate(items):
        if not isinstance(st, dict):
            continue
        path = f"{base_path}.Statement[{i}]" if isinstance(raw, list) else f"{base_path}.Statement"
        out.append(
            Statement(
                effect=literal_str(st.get("Effect")) or "",
                actions=tuple(as_list(st.get("Action"))),
                not_actions=tuple(as_list(st.get("NotAction"))),
                resources=tuple(as_list(st.get("Resource"))),
                not_resources=tuple(as_list(st.get("NotResource"))),
                has_not_action="NotAction" in st,
                condition=st.get("Condition"),
                sid=literal_str(st.get("Sid")),
                path=path,
                raw=st,
            )
        )
    return out


@lru_cache(maxsize=4096)
def _pattern(pattern: str) -> re.Pattern[str]:
    return re.compile(
        "^" + re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".") + "$", re.IGNORECASE
    )


def action_matches(pattern: str, action: str) -> bool:
    """IAM action matching: case-insensitive, `*` and `?` wildcards (`s3:Get*` covers
    `s3:GetObject`; `*` covers everything)."""
    return bool(_pattern(pattern.strip()).match(action.strip()))


PRINCIPAL_TYPES = ("AWS::IAM::Role", "AWS::IAM::User", "AWS::IAM::Group")
SAM_POLICY_HOLDERS = ("AWS::Serverless::Function", "AWS::Serverless::StateMachine")
_NAME_PROPS = {"AWS::IAM::Role": "RoleName", "AWS::IAM::User": "UserName",
               "AWS::IAM::Group": "GroupName"}  # fmt: skip


def _principals_named(template: Template, value: Any, rtype: str) -> tuple[str, ...]:
    """Logical IDs of the roles/users/groups a `Roles`/`Users`/`Groups` list names, by reference
    or by their literal physical name."""
    out: list[str] = []
    for item in as_list(value):
        target = ref_target(item)
        if target:
            out.append(target)
            continue
        name = literal_str(item)
        if name:
            for res in template.of_type(rtype):
                if literal_str(res.prop(_NAME_PROPS[rtype])) == name:
                    out.append(res.logical_id)
    return tuple(out)


def identity_policies(template: Template) -> list[PolicyDocument]:
    """Every identity policy in the template with the principals it applies to (cached)."""
    cached = template.__dict__.get("_identity_policies")
    if cached is None:
        cached = _identity_policies(template)
        template.__dict__["_identity_policies"] = cached
    return list(cached)


def _identity_policies(template: Template) -> list[PolicyDocument]:
    out: list[PolicyDocument] = []
    attached_by_arn: dict[str, list[str]] = {}
    for res in template.of_type(*PRINCIPAL_TYPES):
        for arn in as_list(res.prop("ManagedPolicyArns")):
            target = ref_target(arn)
            if target:
                attached_by_arn.setdefault(target, []).append(res.logical_id)
    for res in template.of_type(*SAM_POLICY_HOLDERS):
        for i, pol in enumerate(as_list(res.prop("Policies"))):
            if isinstance(pol, dict) and "Statement" in pol:
                path = f"Properties.Policies[{i}]"
                out.append(PolicyDocument(res.logical_id, res.type, path, pol, (res.logical_id,)))
    for res in template.of_type(*PRINCIPAL_TYPES):
        for i, pol in enumerate(as_list(res.prop("Policies"))):
            doc = get_path(pol, "PolicyDocument")
            if doc is not None:
                out.append(
                    PolicyDocument(
                        res.logical_id,
                        res.type,
                        f"Properties.Policies[{i}].PolicyDocument",
                        doc,
                        (res.logical_id,),
                    )
                )
    for res in template.of_type("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        principals = (
            _principals_named(template, res.prop("Roles"), "AWS::IAM::Role")
            + _principals_named(template, res.prop("Users"), "AWS::IAM::User")
            + _principals_named(template, res.prop("Groups"), "AWS::IAM::Group")
        )
        if res.type == "AWS::IAM::ManagedPolicy":
            extra = [p for p in attached_by_arn.get(res.logical_id, []) if p not in principals]
            principals += tuple(extra)
        out.append(
            PolicyDocument(
                res.logical_id,
                res.type,
                "Properties.PolicyDocument",
                res.prop("PolicyDocument"),
                principals,
            )
        )
    single = {
        "AWS::IAM::RolePolicy": "RoleName",
        "AWS::IAM::UserPolicy": "UserName",
        "AWS::IAM::GroupPolicy": "GroupName",
    }
    for rtype, key in single.items():
        for res in template.of_type(rtype):
            out.append(
                PolicyDocument(
                    res.logical_id,
                    res.type,
                    "Properties.PolicyDocument",
                    res.prop("PolicyDocument"),
                    _principals_named(template, res.prop(key), f"AWS::IAM::{key[:-4]}"),
                )
            )
    return out


#: Resource-based and trust policies: (resource type, property holding the policy).
RESOURCE_POLICY_PROPERTIES: tuple[tuple[str, str], ...] = (
    ("AWS::IAM::Role", "AssumeRolePolicyDocument"),
    ("AWS::KMS::Key", "KeyPolicy"),
    ("AWS::S3::BucketPolicy", "PolicyDocument"),
    ("AWS::SNS::TopicPolicy", "PolicyDocument"),
    ("AWS::SNS::TopicInlinePolicy", "PolicyDocument"),
    ("AWS::SQS::QueuePolicy", "PolicyDocument"),
    ("AWS::SQS::QueueInlinePolicy", "PolicyDocument"),
    ("AWS::ECR::Repository", "RepositoryPolicyText"),
    ("AWS::SecretsManager::ResourcePolicy", "ResourcePolicy"),
    ("AWS::Logs::ResourcePolicy", "PolicyDocument"),
)


#: Types that hold identity policies (a statement there grants its principals).
IDENTITY_POLICY_TYPES: tuple[str, ...] = (
    *PRINCIPAL_TYPES,
    *SAM_POLICY_HOLDERS,
    "AWS::IAM::Policy",
    "AWS::IAM::ManagedPolicy",
    "AWS::IAM::RolePolicy",
    "AWS::IAM::UserPolicy",
    "AWS::IAM::GroupPolicy",
)
#: Every type that holds a policy of any kind.
POLICY_TYPES: tuple[str, ...] = tuple(
    dict.fromkeys([*IDENTITY_POLICY_TYPES, *(t for t, _ in RESOURCE_POLICY_PROPERTIES)])
)


def resource_policies(template: Template) -> list[PolicyDocument]:
    """Every trust and resource-based policy in the template (principals: none)."""
    out = []
    for rtype, prop in RESOURCE_POLICY_PROPERTIES:
        for res in template.of_type(rtype):
            value = res.prop(prop)
            if value is not None:
                out.append(PolicyDocument(res.logical_id, rtype, f"Properties.{prop}", value, ()))
    return out


def policies_of(template: Template, principal_id: str) -> list[PolicyDocument]:
    """Every identity policy that applies to the role/user/group `principal_id`."""
    return [p for p in identity_policies(template) if principal_id in p.principals]


def allowed_statements(template: Template, principal_id: str) -> list[Statement]:
    return [s for p in policies_of(template, principal_id) for s in p.statements if s.allows]


def denied_statements(template: Template, principal_id: str) -> list[Statement]:
    return [
        s for p in policies_of(template, principal_id) for s in p.statements if s.effect == "Deny"
    ]


_PARTITION = r"(?:aws|aws-cn|aws-us-gov|\$\{AWS::Partition\})"
_REGION = r"(?:[a-z]{2}(?:-[a-z]+)+-\d|\$\{AWS::Region\})"
_ACCOUNT = r"(?:\d{12}|\$\{AWS::AccountId\})"
#: ARNs a policy builds from a resource's name (`Ref`) that are that resource's `Arn` attribute.
_BUILT_ARNS = (
    re.compile(rf"arn:{_PARTITION}:kms:{_REGION}:{_ACCOUNT}:key/\$\{{(\w+)\}}"),
    re.compile(rf"arn:{_PARTITION}:s3:::\$\{{(\w+)\}}"),
    re.compile(rf"arn:{_PARTITION}:ecr:{_REGION}:{_ACCOUNT}:repository/\$\{{(\w+)\}}"),
    re.compile(rf"arn:{_PARTITION}:codebuild:{_REGION}:{_ACCOUNT}:project/\$\{{(\w+)\}}"),
    re.compile(rf"arn:{_PARTITION}:dynamodb:{_REGION}:{_ACCOUNT}:table/\$\{{(\w+)\}}"),
    re.compile(rf"arn:{_PARTITION}:lambda:{_REGION}:{_ACCOUNT}:function:\$\{{(\w+)\}}"),
)
_HOLE = re.compile(r"\$\{[^}]*\}")


def canonical_arn(text: str) -> str:
    """`text` with ARNs built from a resource's name (`arn:${AWS::Partition}:kms:${AWS::Region}:
    ${AWS::AccountId}:key/${Key}`, literal partition, region or account included) written as
    that resource's `${Key.Arn}`, so that the two ways of naming one ARN compare equal."""
    for pattern in _BUILT_ARNS:
        text = pattern.sub(lambda m: "${" + m.group(1) + ".Arn}", text)
    return text


def resource_match(
    template: Template | None, statement_resource: Any, wanted: Iterable[str]
) -> bool | None:
    """Does a statement Resource entry cover one of `wanted` (ARNs as text with `${...}` holes)?

    True when it does (`*`, an equal ARN however it is built, a wildcard that covers it); None
    when it could, depending on what the template does not define (a `${Parameter}` without a
    default standing where the wanted ARN has a name); False otherwise."""
    if statement_resource == "*":
        return True
    text = template.text_of(statement_resource) if template else render(statement_resource)
    text = canonical_arn(text)
    wanted = [canonical_arn(w) for w in wanted]
    if any(text == want or action_matches(text, want) for want in wanted):
        return True
    open_holes = [h for h in _HOLE.findall(text) if _open(template, h)]
    if open_holes:
        loose = text
        for hole in open_holes:
            loose = loose.replace(hole, "*")
        if any(action_matches(loose, want) for want in wanted):
            return None
    return False


def _open(template: Template | None, hole: str) -> bool:
    """Could a `${...}` hole be any value (a parameter without a default, something computed)?
    A resource of the template or a pseudo parameter is a known, distinct thing."""
    name = hole[2:-1].split(".", 1)[0]
    if name == "?":
        return True
    return template is not None and template.is_parameter(name)


def resource_matches(statement_resource: Any, wanted: Iterable[str]) -> bool:
    """`resource_match` without a template, definite answers only."""
    return resource_match(None, statement_resource, wanted) is True


def principal_allows(
    template: Template, principal_id: str, action: str, resources: Iterable[str] | None = None
) -> bool | None:
    """True when some Allow statement attached to the principal covers `action` (and, when given,
    one of `resources`), and no Deny statement with `Resource: "*"` covers it; None when a
    statement could cover the resources, depending on what the template does not define."""
    wanted = list(resources) if resources is not None else None
    for st in denied_statements(template, principal_id):
        if st.covers_action(action) and st.resource_is_star() and not st.condition:
            return False
    maybe = False
    for st in allowed_statements(template, principal_id):
        if not st.covers_action(action):
            continue
        if wanted is None:
            return True
        answers = [resource_match(template, r, wanted) for r in st.resources]
        if True in answers:
            return True
        maybe = maybe or None in answers
    return None if maybe else False


def role_id_of(template: Template, value: Any) -> str | None:
    """Logical ID of the role a `RoleArn`-like property points at (GetAtt X.Arn or Ref X)."""
    target = ref_target(value)
    if target is None:
        return None
    res = template.get(target)
    if res is None or res.type != "AWS::IAM::Role":
        return None
    return target


def trusted_services(role: Resource) -> list[str]:
    """Service principals the role's trust policy lets assume it (rendered text)."""
    out: list[str] = []
    for st in statements_of(role.prop("AssumeRolePolicyDocument")):
        if not st.allows:
            continue
        if (
            not any(isinstance(a, str) and action_matches(a, "sts:AssumeRole") for a in st.actions)
            and not st.has_not_action
        ):
            continue
        principal = st.raw.get("Principal")
        if isinstance(principal, dict):
            for svc in as_list(principal.get("Service")):
                out.append(render(svc))
        elif principal == "*":
            out.append("*")
    return out


def trusts_service(role: Resource, service: str) -> bool:
    """Does the role trust `<service>.amazonaws.com` (also the regional and China forms)?"""
    prefix = f"{service}."
    for principal in trusted_services(role):
        p = principal.strip().lower()
        if p == "*" or p == f"{service}.amazonaws.com" or p == f"{service}.amazonaws.com.cn":
            return True
        if p.startswith(prefix) and (".amazonaws.com" in p or "${" in p):
            return True
    return False


# Managed policies ---------------------------------------------------------------------------

_AWS_MANAGED_ARN = re.compile(
    r"^arn:(?:aws|aws-cn|aws-us-gov|\$\{AWS::Partition\}):iam::aws:policy/(.+)$"
)


@dataclass(frozen=True)
class ManagedPolicyRef:
    """One entry of a principal's `ManagedPolicyArns` (or a SAM function's named `Policies`).

    `aws_name` is the AWS managed policy's path and name (`service-role/AWSCodePipelineServiceRole`)
    when the entry is an AWS managed policy ARN; `resource` the logical ID of an
    `AWS::IAM::ManagedPolicy` of the template it references; otherwise the template cannot show
    what the policy allows."""

    path: str
    text: str
    aws_name: str | None = None
    resource: str | None = None

    @property
    def short_name(self) -> str | None:
        return self.aws_name.rsplit("/", 1)[-1] if self.aws_name else None


def aws_managed_name(value: Any) -> str | None:
    """`service-role/AWSCodePipelineServiceRole` for an AWS managed policy ARN (literal, or built
    with `${AWS::Partition}` through Fn::Sub / Fn::Join), else None."""
    text = render(value).strip()
    m = _AWS_MANAGED_ARN.match(text)
    return m.group(1) if m else None


def managed_policies_of(template: Template, principal: Resource) -> list[ManagedPolicyRef]:
    """The managed policies a role/user/group (or SAM function) attaches by ARN or name."""
    out: list[ManagedPolicyRef] = []
    for i, arn in enumerate(as_list(principal.prop("ManagedPolicyArns"))):
        path = f"Properties.ManagedPolicyArns[{i}]"
        target = ref_target(arn)
        if target and template.get(target) is not None:
            out.append(ManagedPolicyRef(path, target, resource=target))
            continue
        out.append(ManagedPolicyRef(path, render(arn), aws_name=aws_managed_name(arn)))
    if principal.type in SAM_POLICY_HOLDERS:
        for i, pol in enumerate(as_list(principal.prop("Policies"))):
            path = f"Properties.Policies[{i}]"
            if isinstance(pol, str) and not pol.startswith("arn:"):
                out.append(ManagedPolicyRef(path, pol, aws_name=pol))
            elif isinstance(pol, str) or is_intrinsic(pol):
                out.append(ManagedPolicyRef(path, render(pol), aws_name=aws_managed_name(pol)))
    return out


@lru_cache(maxsize=1)
def _managed_policy_statements() -> dict[str, list[Statement]]:
    from deployline.checks import data

    table: dict[str, list[Statement]] = {}
    for item in data.items("aws_managed_policy_grants"):
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            doc = {"Statement": item.get("statements") or []}
            table[item["name"].lower()] = statements_of(doc, f"aws-managed:{item['name']}")
    return table


def known_managed_statements(aws_name: str) -> list[Statement] | None:
    """What an AWS managed policy allows, when the data file `aws_managed_policy_grants` knows it
    (by full path or short name), else None."""
    table = _managed_policy_statements()
    for key in (aws_name.lower(), aws_name.rsplit("/", 1)[-1].lower()):
        if key in table:
            return table[key]
    return None


def may_perform(
    template: Template,
    principal_id: str,
    action: str,
    resources: Iterable[str] | None = None,
) -> bool | None:
    """Can the principal perform `action` (on one of `resources`, when given)?

    True when a policy in the template (or an AWS managed policy whose content the data file
    knows) allows it; False when everything attached is visible and nothing allows it; None when
    the answer depends on a policy the template does not show (a customer managed policy ARN, an
    AWS managed policy the data file does not know, an intrinsic)."""
    for st in denied_statements(template, principal_id):
        if st.covers_action(action) and st.resource_is_star() and not st.condition:
            return False
    allowed = principal_allows(template, principal_id, action, resources)
    if allowed is True:
        return True
    principal = template.get(principal_id)
    if principal is None:
        return None
    hidden = allowed is None
    wanted = list(resources) if resources is not None else None
    for ref in managed_policies_of(template, principal):
        if ref.resource is not None:
            continue  # counted by identity_policies through ManagedPolicyArns
        statements = known_managed_statements(ref.aws_name) if ref.aws_name else None
        if statements is None:
            hidden = True
            continue
        for st in statements:
            if (
                st.allows
                and st.covers_action(action)
                and (wanted is None or any(resource_matches(r, wanted) for r in st.resources))
            ):
                return True
    return None if hidden else False


# What a role may do, counting inline, separate and managed policies in the template -----------


@dataclass
class RolePermissions:
    """Statements that apply to a role, and the AWS managed policies the template cannot show."""

    statements: list[Statement] = field(default_factory=list)
    aws_managed: list[str] = field(default_factory=list)  # policy names, e.g. "AdministratorAccess"
    unresolved: list[str] = field(default_factory=list)  # reasons


_AWS_MANAGED = re.compile(r"^arn:[^:]*:iam::aws:policy/(?:.*/)?([^/]+)$")


def role_permissions(template: Template, role_id: str) -> RolePermissions:
    perms = RolePermissions()
    for doc in identity_policies(template):
        if role_id in doc.principals:
            perms.statements.extend(doc.statements)
    role = template.get(role_id)
    arns = as_list(role.prop("ManagedPolicyArns")) if role is not None else []
    for arn in arns:
        target = ref_like(arn)
        res = template.get(target) if target else None
        if res is not None and res.type == "AWS::IAM::ManagedPolicy":
            if role_id not in _principals(res):  # not already counted through its Roles
                perms.statements.extend(
                    statements_of(res.prop("PolicyDocument"), "Properties.PolicyDocument")
                )
            continue
        text = render(arn)
        m = _AWS_MANAGED.match(text.replace("${AWS::Partition}", "aws"))
        if m:
            perms.aws_managed.append(m.group(1))
        else:
            perms.unresolved.append(f"the managed policy {text} is not in this template")
    return perms


def _principals(policy: Resource) -> set[str]:
    return {t for t in (ref_target(r) for r in as_list(policy.prop("Roles"))) if t}


def statements_allow(
    statements: Iterable[Statement], action: str, *, resource_star_only: bool = False
) -> bool:
    """Some Allow statement covers `action` and no unconditional Deny on `*` does.

    With `resource_star_only`, the Allow must be on `Resource: "*"` (actions without
    resource-level permissions are granted only that way)."""
    items = list(statements)
    for st in items:
        denies = st.effect == "Deny" and st.covers_action(action) and st.resource_is_star()
        if denies and not st.condition:
            return False
    for st in items:
        if not st.allows or not st.covers_action(action):
            continue
        if "NotResource" in st.raw:
            continue
        if resource_star_only and not st.resource_is_star():
            continue
        return True
    return False
