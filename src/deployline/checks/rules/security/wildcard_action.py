"""DL121: an identity policy allows every action (`*`, `<service>:*`) or uses NotAction."""

from __future__ import annotations

from collections.abc import Iterator

from deployline.checks.iam import IDENTITY_POLICY_TYPES, identity_policies
from deployline.checks.iam_actions import ALL_ACTIONS
from deployline.checks.model import Hit, Rule, Severity
from deployline.checks.template import Template


class WildcardAction(Rule):
    id = "DL121"
    severity = Severity.CRITICAL
    family = "Security"
    seed = "000 §1, 002 §2"
    title = "Identity policy allows every action of a service (or uses NotAction)"
    resource_types = IDENTITY_POLICY_TYPES
    rationale = (
        "`s3:*`, `iam:*` or `*` grant deletion, policy changes and every action AWS adds later; "
        "`NotAction` in an Allow grants everything not listed. A build that runs third-party "
        "code must not hold such grants."
    )
    remediation = (
        "List the actions the role needs (ecr:PutImage, s3:GetObject, ...); replace NotAction "
        "with an explicit Action list."
    )
    fix_example = """\
- Effect: Allow
  Action: [s3:GetObject, s3:GetObjectVersion, s3:PutObject]
  Resource: !Sub "${ArtifactBucket.Arn}/*"
"""

    def check(self, template: Template) -> Iterator[Hit]:
        for doc in identity_policies(template):
            for st in doc.statements:
                if not st.allows:
                    continue
                if st.has_not_action:
                    yield self.hit(
                        doc.holder,
                        st.path,
                        "an Allow with NotAction grants every action it does not list",
                    )
                    continue
                broad = [a for a in st.literal_actions() if ALL_ACTIONS.match(a)]
                if broad:
                    yield self.hit(
                        doc.holder,
                        st.path,
                        f"allows {', '.join(repr(a.strip()) for a in broad)}: every action "
                        f"{'of the service' if broad[0].strip() != '*' else 'of every service'}",
                    )
