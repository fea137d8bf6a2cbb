"""DL401: a deploy action with no Build-category or no Test-category action before it."""

from __future__ import annotations

from collections.abc import Iterator

from deployline.checks.model import Hit, Rule, Severity
from deployline.checks.template import Template


class BuildAndTestBeforeDeploy(Rule):
    """ "Before" is the catalog's order: an earlier stage, or the same stage with a lower
    RunOrder. Actions in parallel with the deploy (same stage, same RunOrder) do not count.
    A deploy is what the pipeline model calls one (`checks.pipeline`): a Deploy-category action
    other than a change set being prepared (CHANGE_SET_REPLACE) or a DELETE_ONLY, or a CodeBuild
    action whose inline buildspec deploys; the pipeline updating its own stack is not one. A
    Lambda Invoke counts as a test, as it does for DL402. When an action before the deploy
    hides its category behind an intrinsic, a missing category is UNKNOWN rather than a
    finding. Reported on the pipeline, at the deploy action."""

    id = "DL401"
    severity = Severity.HIGH
    family = "Pipeline structure"
    seed = "002 §1, 003 §1"
    title = "Deploy action without a Build and a Test action before it"
    resource_types = ("AWS::CodePipeline::Pipeline",)
    rationale = (
        "A pipeline that deploys what it has not built and tested ships untested code: the "
        "first test is production traffic."
    )
    remediation = (
        "Put a Build-category action and a Test-category action in stages before every deploy "
        "(or earlier in the same stage, with a lower RunOrder)."
    )
    fix_example = """\
Stages:
  - Name: Source   # ...
  - Name: Build
    Actions:
      - Name: Build
        ActionTypeId: {Category: Build, Owner: AWS, Provider: CodeBuild, Version: "1"}
      - Name: UnitTests
        RunOrder: 2
        ActionTypeId: {Category: Test, Owner: AWS, Provider: CodeBuild, Version: "1"}
  - Name: Deploy   # ECS deploy here
"""

    def check(self, template: Template) -> Iterator[Hit]:
        for pipeline in template.pipelines:
            for deploy in pipeline.deploy_actions:
                before = pipeline.actions_before(deploy)
                hidden = any(a.category is None for a in before)
                found = {
                    "Build": any(a.category == "Build" for a in before),
                    "Test": any(a.is_test for a in before),
                }
                missing = [c for c, present in found.items() if not present]
                if not missing:
                    continue
                what = " and ".join(f"no {c}-category action" for c in missing)
                if hidden:
                    yield self.unknown(
                        pipeline.logical_id,
                        deploy.path,
                        f"{deploy.label}: {what} before it, and an earlier action's category "
                        "is computed by an intrinsic",
                    )
                    continue
                yield self.hit(
                    pipeline.logical_id,
                    deploy.path,
                    f"{deploy.label} deploys with {what} before it",
                )
