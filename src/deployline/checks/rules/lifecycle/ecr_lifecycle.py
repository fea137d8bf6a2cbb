"""DL201: an ECR repository without a lifecycle policy."""

from __future__ import annotations

from collections.abc import Iterator

from deployline.checks.intrinsics import get_path, is_intrinsic
from deployline.checks.model import Hit, Rule, Severity
from deployline.checks.template import Template


class EcrLifecyclePolicy(Rule):
    id = "DL201"
    severity = Severity.MEDIUM
    family = "Cost and resource lifecycle"
    seed = "000 §2, 001 §4"
    title = "ECR repository without a lifecycle policy"
    resource_types = ("AWS::ECR::Repository",)
    rationale = (
        "Every pipeline run pushes an image; without a lifecycle policy the repository keeps "
        "them all, and storage cost grows with every commit."
    )
    remediation = (
        "Add LifecyclePolicy.LifecyclePolicyText that expires untagged images after a few days "
        "and keeps the last N tagged images."
    )
    fix_example = """\
Repository:
  Type: AWS::ECR::Repository
  Properties:
    LifecyclePolicy:
      LifecyclePolicyText: |
        {"rules": [{"rulePriority": 1, "description": "keep the last 30 images",
          "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 30},
          "action": {"type": "expire"}}]}
"""

    def check(self, template: Template) -> Iterator[Hit]:
        for repo in template.of_type(*self.resource_types):
            policy = repo.prop("LifecyclePolicy")
            if policy is None:
                yield self.hit(
                    repo.logical_id,
                    "Properties.LifecyclePolicy",
                    "repository has no LifecyclePolicy: images accumulate forever",
                )
                continue
            if is_intrinsic(policy):
                yield self.unknown(
                    repo.logical_id, "Properties.LifecyclePolicy", "the policy is computed"
                )
                continue
            text = get_path(policy, "LifecyclePolicyText")
            if text is None or (isinstance(text, str) and not text.strip()):
                yield self.hit(
                    repo.logical_id,
                    "Properties.LifecyclePolicy.LifecyclePolicyText",
                    "LifecyclePolicy has no LifecyclePolicyText: it expires nothing",
                )
