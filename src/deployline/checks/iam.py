"""IAM reading: identity policies and their holders, statements, action matching, trust.

Identity policies are role/user/group inline `Policies`, `AWS::IAM::Policy`,
`AWS::IAM::ManagedPolicy`, and `AWS::IAM::RolePolicy`/`UserPolicy`/`GroupPolicy`. Resource
policies (key, bucket, topic, queue) are not identity policies.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from deployline.checks.intrinsics import as_list, get_path, literal_str, ref_target, render

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


def statements_of(document: Any, base_path: str = "PolicyDocument") -> list[Statement]:
    if not isinstance(document, dict):
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


def _principal_ids(value: Any) -> tuple[str, ...]:
    out = []
    for item in as_list(value):
        target = ref_target(item)
        if target:
            out.append(target)
    return tuple(out)


def identity_policies(template: Template) -> list[PolicyDocument]:
    out: list[PolicyDocument] = []
    for res in template.of_type("AWS::IAM::Role", "AWS::IAM::User", "AWS::IAM::Group"):
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
            _principal_ids(res.prop("Roles"))
            + _principal_ids(res.prop("Users"))
            + _principal_ids(res.prop("Groups"))
        )
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
                    _principal_ids(res.prop(key)),
                )
            )
    return out


def policies_of(template: Template, principal_id: str) -> list[PolicyDocument]:
    """Every identity policy that applies to the role/user/group `principal_id`."""
    return [p for p in identity_policies(template) if principal_id in p.principals]


def separate_policies_of(template: Template, role_id: str) -> list[Resource]:
    """`AWS::IAM::Policy` / `ManagedPolicy` / `RolePolicy` resources that attach to the role."""
    out = []
    for doc in identity_policies(template):
        if role_id in doc.principals and doc.holder != role_id:
            res = template.get(doc.holder)
            if res is not None:
                out.append(res)
    return out


def allowed_statements(template: Template, principal_id: str) -> list[Statement]:
    return [s for p in policies_of(template, principal_id) for s in p.statements if s.allows]


def denied_statements(template: Template, principal_id: str) -> list[Statement]:
    return [
        s for p in policies_of(template, principal_id) for s in p.statements if s.effect == "Deny"
    ]


def resource_matches(statement_resource: Any, wanted: Iterable[str]) -> bool:
    """Does a statement Resource entry cover one of `wanted` (literal ARNs or rendered values)?

    `*` covers everything; intrinsic resources are compared by their rendered text, and a rendered
    wildcard (`${Bucket.Arn}/*`) covers what it prefixes."""
    if statement_resource == "*":
        return True
    text = render(statement_resource)
    for want in wanted:
        if text == want or action_matches(text, want):
            return True
    return False


def principal_allows(
    template: Template, principal_id: str, action: str, resources: Iterable[str] | None = None
) -> bool:
    """True when some Allow statement attached to the principal covers `action` (and, when given,
    one of `resources`), and no Deny statement with `Resource: "*"` covers it."""
    wanted = list(resources) if resources is not None else None
    for st in denied_statements(template, principal_id):
        if st.covers_action(action) and st.resource_is_star() and not st.condition:
            return False
    for st in allowed_statements(template, principal_id):
        if not st.covers_action(action):
            continue
        if wanted is None or any(resource_matches(r, wanted) for r in st.resources):
            return True
    return False


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
        if not any(
            isinstance(a, str) and action_matches(a, "sts:AssumeRole") for a in st.actions
        ) and not st.has_not_action:
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
