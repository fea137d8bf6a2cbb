"""DL204: a CodeBuild project without CloudWatch logs in a log group the template creates."""

from __future__ import annotations

from collections.abc import Iterator

from deployline.checks.intrinsics import is_intrinsic, literal_str
from deployline.checks.model import Hit, Rule, Severity
from deployline.checks.template import Template

PATH = "Properties.LogsConfig.CloudWatchLogs"


class CodeBuildLogs(Rule):
    id = "DL204"
    severity = Severity.HIGH
    family = "Cost and resource lifecycle"
    seed = "000 §5, 001 §2"
    title = "CodeBuild project without CloudWatch logs in a log group of the template"
    resource_types = ("AWS::CodeBuild::Project",)
    rationale = (
        "Build logs are how a failed build is diagnosed. Disabled logs leave nothing to read; "
        "logs in the default group /aws/codebuild/<project> land in a group nobody created, "
        "with no retention, which outlives the stack."
    )
    remediation = (
        "Create an AWS::Logs::LogGroup with RetentionInDays and point "
        "LogsConfig.CloudWatchLogs {Status: ENABLED, GroupName: !Ref BuildLogs} at it."
    )
    fix_example = """\
BuildLogs:
  Type: AWS::Logs::LogGroup
  Properties: {RetentionInDays: 30}
BuildProject:
  Type: AWS::CodeBuild::Project
  Properties:
    LogsConfig:
      CloudWatchLogs: {Status: ENABLED, GroupName: !Ref BuildLogs}
"""

    def check(self, template: Template) -> Iterator[Hit]:
        for project in template.of_type(*self.resource_types):
            config = project.prop("LogsConfig", "CloudWatchLogs")
            if is_intrinsic(config) or is_intrinsic(project.prop("LogsConfig")):
                yield self.unknown(project.logical_id, PATH, "LogsConfig is computed")
                continue
            status = project.prop("LogsConfig", "CloudWatchLogs", "Status")
            text = literal_str(template.resolve(status))
            if text is not None and text.strip().upper() == "DISABLED":
                yield self.hit(project.logical_id, f"{PATH}.Status", "CloudWatch logs are DISABLED")
                continue
            if status is not None and text is None:
                yield self.unknown(project.logical_id, f"{PATH}.Status", "Status is computed")
                continue
            name = project.prop("LogsConfig", "CloudWatchLogs", "GroupName")
            if name is None:
                yield self.hit(
                    project.logical_id,
                    f"{PATH}.GroupName",
                    "no GroupName: logs go to /aws/codebuild/<project>, a group the template "
                    "does not create (no retention, created on the first build)",
                )
                continue
            lookup = template.named(name, ("AWS::Logs::LogGroup",), "LogGroupName")
            group = lookup.resource
            if group is None:
                if lookup.external:
                    yield self.hit(
                        project.logical_id,
                        f"{PATH}.GroupName",
                        f"{lookup.reason}: the build logs to a group the template does not create",
                    )
                else:
                    yield self.unknown(project.logical_id, f"{PATH}.GroupName", lookup.reason)
                continue
            if group.prop("RetentionInDays") is None:
                yield self.hit(
                    project.logical_id,
                    f"{PATH}.GroupName",
                    f"the log group {group.logical_id} has no RetentionInDays",
                )
