"""DL408: a source action on the deprecated GitHub version 1 provider."""

from __future__ import annotations

from collections.abc import Iterator

from deployline.checks.model import Hit, Rule, Severity
from deployline.checks.template import Template


class GitHubV1Source(Rule):
    """Fires on every action whose ActionTypeId is Owner ThirdParty, Provider GitHub (the
    OAuth-token GitHub version 1 action); reported on the pipeline."""

    id = "DL408"
    severity = Severity.MEDIUM
    family = "Pipeline structure"
    seed = "000 §1, 004 §5"
    title = "GitHub version 1 source action (OAuth token) instead of a CodeStar connection"
    resource_types = ("AWS::CodePipeline::Pipeline",)
    rationale = (
        "The GitHub v1 action authenticates with a personal OAuth token and polling or "
        "webhooks; AWS deprecated it in favour of CodeStar (CodeConnections) connections."
    )
    remediation = (
        "Use Owner: AWS, Provider: CodeStarSourceConnection with ConnectionArn, "
        "FullRepositoryId and BranchName."
    )
    fix_example = """\
- Name: Source
  ActionTypeId: {Category: Source, Owner: AWS, Provider: CodeStarSourceConnection, Version: "1"}
  Configuration:
    ConnectionArn: !Ref ConnectionArn
    FullRepositoryId: my-org/my-service
    BranchName: main
"""

    def check(self, template: Template) -> Iterator[Hit]:
        for pipeline in template.pipelines:
            for action in pipeline.actions:
                if (action.owner or "").lower() == "thirdparty" and action.provider == "GitHub":
                    yield self.hit(
                        pipeline.logical_id,
                        f"{action.path}.ActionTypeId",
                        f"{action.label} uses the deprecated GitHub version 1 provider "
                        "(ThirdParty/GitHub)",
                    )
