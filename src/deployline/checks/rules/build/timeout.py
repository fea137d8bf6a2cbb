"""DL301: a CodeBuild project that may run longer than the limit (default 60 minutes)."""

from __future__ import annotations

from deployline.checks.intrinsics import int_of
from deployline.checks.model import Option, ResourceValueRule, Severity


class BuildTimeout(ResourceValueRule):
    """HIGH when `TimeoutInMinutes` is above the limit; MEDIUM when it is absent (CodeBuild's
    implicit default of 60 minutes is then in force); UNKNOWN when an intrinsic sets it."""

    id = "DL301"
    severity = Severity.HIGH
    family = "Build"
    seed = "000 §3"
    title = "CodeBuild project timeout above the limit, or left to the service default"
    resource_types = ("AWS::CodeBuild::Project",)
    options_definition = {
        "limit": Option("integer", 60, "the longest TimeoutInMinutes allowed, in minutes")
    }
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

    property_path = ("TimeoutInMinutes",)
    missing = (
        "TimeoutInMinutes is not set: the service default of 60 minutes applies implicitly"
    )
    missing_severity = Severity.MEDIUM

    def judge(self, value: object) -> str | None:
        minutes = int_of(value)
        limit: int = self.options["limit"]
        if minutes is not None and minutes > limit:
            return f"TimeoutInMinutes is {minutes}, above the limit of {limit}"
        return None
