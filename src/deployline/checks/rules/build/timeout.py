"""DL301: a CodeBuild project that may run longer than the limit (default 60 minutes)."""

from __future__ import annotations

from collections.abc import Iterator

from deployline.checks.intrinsics import int_of, is_intrinsic
from deployline.checks.model import Hit, Rule, Severity
from deployline.checks.template import Template


class BuildTimeout(Rule):
    """HIGH when `TimeoutInMinutes` is above the limit; MEDIUM when it is absent (CodeBuild's
    implicit default of 60 minutes is then in force); UNKNOWN when an intrinsic sets it."""

    id = "DL301"
    severity = Severity.HIGH
    family = "Build"
    seed = "000 §3"
    title = "CodeBuild project timeout above the limit, or left to the service default"
    resource_types = ("AWS::CodeBuild::Project",)
    default_options = {"limit": 60}
    rationale = (
        "A hung build holds its compute and blocks the pipeline until it times out; a long or "
        "implicit timeout lets a stuck build burn up to eight hours of compute."
    )
    remediation = (
        "Set TimeoutInMinutes explicitly, at or below the limit (60 minutes by default, "
        "configurable as DL301 option `limit`)."
    )
    fix_example = """\
BuildProject:
  Type: AWS::CodeBuild::Project
  Properties:
    TimeoutInMinutes: 30
"""

    def check(self, template: Template) -> Iterator[Hit]:
        limit = int(self.options.get("limit", 60))
        for project in template.of_type(*self.resource_types):
            value = project.prop("TimeoutInMinutes")
            path = "Properties.TimeoutInMinutes"
            if value is None:
                yield self.hit(
                    project.logical_id,
                    path,
                    "TimeoutInMinutes is not set: the service default of 60 minutes applies "
                    "implicitly",
                    severity=Severity.MEDIUM,
                )
                continue
            minutes = int_of(value)
            if minutes is None:
                if is_intrinsic(value):
                    yield self.unknown(
                        project.logical_id, path, "TimeoutInMinutes is computed by an intrinsic"
                    )
                continue
            if minutes > limit:
                yield self.hit(
                    project.logical_id,
                    path,
                    f"TimeoutInMinutes is {minutes}, above the limit of {limit}",
                )
