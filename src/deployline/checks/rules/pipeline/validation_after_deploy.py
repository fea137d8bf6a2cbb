"""DL402: a deploy action that nothing validates afterwards."""

from __future__ import annotations

from collections.abc import Iterator

from deployline.checks.model import Hit, Rule, Severity
from deployline.checks.pipeline import Action
from deployline.checks.template import Template


def validates(deploy: Action, candidate: Action) -> bool:
    """Is `candidate` a Lambda Invoke or Test action later in the deploy's stage (higher
    RunOrder) or in the next stage?"""
    if not candidate.is_test:
        return False
    if candidate.stage_index == deploy.stage_index:
        return candidate.run_order > deploy.run_order
    return candidate.stage_index == deploy.stage_index + 1


class ValidationAfterDeploy(Rule):
    """A Deploy-category action must be followed, later in the same stage (higher RunOrder)
    or in the next stage, by a Lambda Invoke or a Test-category action. An action running in
    parallel with the deploy (same RunOrder) does not validate it. Deploys are those of the
    pipeline model (see DL401): a change set being prepared, a DELETE_ONLY and the pipeline's
    update of its own stack need no validation."""

    id = "DL402"
    severity = Severity.HIGH
    family = "Pipeline structure"
    seed = "000 §4, 002 Deployment"
    title = "Deploy action not followed by a validation action"
    resource_types = ("AWS::CodePipeline::Pipeline",)
    rationale = (
        "CodePipeline marks a deploy successful when the service accepted it, not when the "
        "service works: without a post-deploy check a broken release flows on to production."
    )
    remediation = (
        "Add a Lambda Invoke (smoke test) or Test-category action right after each deploy: "
        "same stage with a higher RunOrder, or the next stage."
    )
    fix_example = """\
- Name: DeployStaging
  Actions:
    - Name: Deploy
      ActionTypeId: {Category: Deploy, Owner: AWS, Provider: ECS, Version: "1"}
    - Name: SmokeTest
      RunOrder: 2
      ActionTypeId: {Category: Invoke, Owner: AWS, Provider: Lambda, Version: "1"}
      Configuration: {FunctionName: !Ref SmokeTestFunction}
"""

    def check(self, template: Template) -> Iterator[Hit]:
        for pipeline in template.pipelines:
            actions = pipeline.actions
            for deploy in pipeline.deploy_actions:
                if any(validates(deploy, a) for a in actions):
                    continue
                window = [
                    a
                    for a in actions
                    if a.category is None
                    and (
                        (a.stage_index == deploy.stage_index and a.run_order > deploy.run_order)
                        or a.stage_index == deploy.stage_index + 1
                    )
                ]
                if window:
                    yield self.unknown(
                        pipeline.logical_id,
                        deploy.path,
                        f"{deploy.label}: an action after it hides its category behind an "
                        "intrinsic",
                    )
                    continue
                yield self.hit(
                    pipeline.logical_id,
                    deploy.path,
                    f"{deploy.label} is not followed (later in its stage or in the next stage) "
                    "by a Lambda Invoke or Test action that validates it",
                )
