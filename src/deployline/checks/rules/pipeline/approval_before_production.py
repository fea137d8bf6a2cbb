"""DL405: the production deploy stage is reached without a manual approval."""

from __future__ import annotations

from collections.abc import Iterator

from deployline.checks.model import Hit, Rule, Severity
from deployline.checks.template import Template


class ApprovalBeforeProduction(Rule):
    """Applies to pipelines with two or more deploy stages (stages holding a deploy of the
    pipeline model, see DL401: a stage that only prepares a change set, or in which the pipeline
    updates its own stack, is not one); the last of them is production. Every deploy there needs
    a Manual approval before it: in an earlier stage, or in the same stage with a lower
    RunOrder. An approval in parallel (same RunOrder) does not hold the deploy back."""

    id = "DL405"
    severity = Severity.HIGH
    family = "Pipeline structure"
    seed = "002 §8, 004"
    title = "Production deploy without a manual approval before it"
    resource_types = ("AWS::CodePipeline::Pipeline",)
    rationale = (
        "Without a gate every commit that passes staging goes straight to production, "
        "including the ones nobody has looked at."
    )
    remediation = (
        "Add a Manual approval action before the production deploy: in its own stage, or in "
        "the production stage with a lower RunOrder than the deploy."
    )
    fix_example = """\
- Name: DeployProd
  Actions:
    - Name: Approve
      RunOrder: 1
      ActionTypeId: {Category: Approval, Owner: AWS, Provider: Manual, Version: "1"}
    - Name: Deploy
      RunOrder: 2
      ActionTypeId: {Category: Deploy, Owner: AWS, Provider: ECS, Version: "1"}
"""

    def check(self, template: Template) -> Iterator[Hit]:
        for pipeline in template.pipelines:
            stages = pipeline.deploy_stages
            if len(stages) < 2:
                continue
            production = stages[-1]
            actions = pipeline.actions
            for deploy in production.actions:
                if not deploy.deploys:
                    continue
                before = [a for a in actions if pipeline.before(a, deploy)]
                if any(a.is_manual_approval for a in before):
                    continue
                if any(a.category is None for a in before):
                    yield self.unknown(
                        pipeline.logical_id,
                        deploy.path,
                        f"{deploy.label}: an action before it hides its category behind an "
                        "intrinsic",
                    )
                else:
                    yield self.hit(
                        pipeline.logical_id,
                        deploy.path,
                        f"{deploy.label} deploys to production (the last of "
                        f"{len(stages)} deploy stages) with no Manual approval before it",
                    )
                break  # one finding per pipeline: the first unguarded production deploy
