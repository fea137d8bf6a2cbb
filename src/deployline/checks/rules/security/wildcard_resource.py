"""DL120: an identity policy allows a resource-scoped action on `Resource: "*"`."""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache

from deployline.checks import data
from deployline.checks.iam import action_matches, identity_policies
from deployline.checks.intrinsics import is_intrinsic
from deployline.checks.model import Hit, Rule, Severity
from deployline.checks.template import Template


@lru_cache(maxsize=1)
def star_only_actions() -> tuple[str, ...]:
    """Actions AWS documents without resource-level permissions (data file star_only_actions)."""
    return tuple(str(a) for a in data.items("star_only_actions"))


def is_star_only(action: str) -> bool:
    """True when an exempt entry covers `action` (`ec2:Describe*` covers `ec2:DescribeVpcs`)."""
    return any(action_matches(exempt, action) for exempt in star_only_actions())


class WildcardResource(Rule):
    id = "DL120"
    severity = Severity.HIGH
    family = "Security"
    seed = "000 §1, 002 §2, 003 §3"
    title = 'Identity policy grants a resource-scoped action on Resource "*"'
    resource_types = (
        "AWS::IAM::Role",
        "AWS::IAM::Policy",
        "AWS::IAM::ManagedPolicy",
        "AWS::IAM::User",
        "AWS::IAM::Group",
    )
    rationale = (
        "A pipeline role that may act on every bucket, repository or key in the account turns "
        "one compromised build into an account-wide incident. Only actions that AWS documents "
        "as supporting no resource-level permissions need '*'."
    )
    remediation = (
        "Scope the statement's Resource to the ARNs it needs (!GetAtt Bucket.Arn, "
        "!Sub '${Bucket.Arn}/*', the repository ARN); keep '*' only for actions AWS documents as "
        "'*'-only, in their own statement."
    )
    fix_example = """\
PolicyDocument:
  Statement:
    - Effect: Allow
      Action: ecr:GetAuthorizationToken   # documented as '*'-only
      Resource: "*"
    - Effect: Allow
      Action: [ecr:PutImage, ecr:InitiateLayerUpload, ecr:UploadLayerPart]
      Resource: !GetAtt Repository.Arn
"""

    def check(self, template: Template) -> Iterator[Hit]:
        for doc in identity_policies(template):
            if isinstance(doc.document, dict) and is_intrinsic(doc.document.get("Statement")):
                yield self.unknown(doc.holder, doc.path, "the statements are computed")
                continue
            for st in doc.statements:
                if not st.allows or not st.resource_is_star():
                    continue
                if st.has_not_action:
                    yield self.hit(
                        doc.holder,
                        st.path,
                        'NotAction with Resource "*" allows every other action on every resource',
                    )
                    continue
                scoped = [a for a in st.literal_actions() if not is_star_only(a)]
                if scoped:
                    shown = ", ".join(scoped[:5]) + (" ..." if len(scoped) > 5 else "")
                    yield self.hit(
                        doc.holder,
                        st.path,
                        f'{shown} on Resource "*": '
                        f"{'these actions support' if len(scoped) > 1 else 'it supports'} "
                        "resource-level permissions",
                    )
                elif any(not isinstance(a, str) for a in st.actions):
                    yield self.unknown(
                        doc.holder, st.path, 'an action on Resource "*" is computed by an intrinsic'
                    )
