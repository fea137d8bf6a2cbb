"""DL404: an ECS deploy action naming a service or cluster that the template does not have."""

from __future__ import annotations

from collections.abc import Iterator

from deployline.checks.intrinsics import literal_str
from deployline.checks.model import Hit, Rule, Severity
from deployline.checks.template import Template

_TARGETS = (
    ("ServiceName", "AWS::ECS::Service", "ServiceName"),
    ("ClusterName", "AWS::ECS::Cluster", "ClusterName"),
)


class EcsDeployTargetExists(Rule):
    """A literal ServiceName/ClusterName in an ECS deploy action must be the literal name of an
    `AWS::ECS::Service`/`AWS::ECS::Cluster` in the template. Intrinsics pass (they reference
    or import the real thing). When a service or cluster here has a computed name that could
    render to the literal, the answer is UNKNOWN."""

    id = "DL404"
    severity = Severity.MEDIUM
    family = "Pipeline structure"
    seed = "000 §4"
    title = "ECS deploy action targets a hard-coded service or cluster name"
    resource_types = ("AWS::CodePipeline::Pipeline", "AWS::ECS::Service", "AWS::ECS::Cluster")
    rationale = (
        "A hard-coded name that no resource in the stack carries drifts from the real service: "
        "the deploy fails with ServiceNotFoundException, or deploys to the wrong environment."
    )
    remediation = (
        "Reference the service and cluster: ServiceName: !GetAtt Service.Name, "
        "ClusterName: !Ref Cluster (or import them from the stack that owns them)."
    )
    fix_example = """\
Configuration:
  ClusterName: !Ref Cluster
  ServiceName: !GetAtt Service.Name
"""

    def check(self, template: Template) -> Iterator[Hit]:
        for pipeline in template.pipelines:
            for action in pipeline.actions:
                if action.provider != "ECS" or action.category not in ("Deploy", None):
                    continue
                for key, rtype, prop in _TARGETS:
                    value = action.config(key)
                    text = literal_str(value)
                    if text is None:
                        continue  # absent, or an intrinsic
                    found = template.named(value, (rtype,), prop)
                    path = f"{action.path}.Configuration.{key}"
                    if found.resource is not None:
                        continue
                    if not found.external:
                        yield self.unknown(
                            pipeline.logical_id, path, f"{action.label}: {found.reason}"
                        )
                        continue
                    yield self.hit(
                        pipeline.logical_id,
                        path,
                        f"{action.label}: {key} {text!r} is a literal that no {rtype} in this "
                        "template carries",
                    )
