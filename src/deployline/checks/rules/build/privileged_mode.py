"""DL302: a project whose inline buildspec runs docker without privileged mode."""

from __future__ import annotations

from collections.abc import Iterator

from deployline.checks.buildspec import project_buildspec
from deployline.checks.intrinsics import bool_of
from deployline.checks.model import Hit, Rule, Severity
from deployline.checks.template import Template


class DockerNeedsPrivilegedMode(Rule):
    """Docker commands (build, buildx, push, login, ...) need the Docker daemon, which CodeBuild
    runs only in privileged mode. A buildspec kept in the repository gives UNKNOWN unless the
    project is privileged anyway."""

    id = "DL302"
    severity = Severity.HIGH
    family = "Build"
    seed = "000 §3, 001 §8"
    title = "Docker build without Environment.PrivilegedMode"
    resource_types = ("AWS::CodeBuild::Project",)
    rationale = (
        "Without privileged mode the Docker daemon does not start: `docker build` fails with "
        "'Cannot connect to the Docker daemon' on the first run."
    )
    remediation = "Set Environment.PrivilegedMode: true on projects that run docker."
    fix_example = """\
ImageBuild:
  Type: AWS::CodeBuild::Project
  Properties:
    Environment:
      Type: LINUX_CONTAINER
      ComputeType: BUILD_GENERAL1_SMALL
      Image: aws/codebuild/standard:7.0
      PrivilegedMode: true
"""

    def check(self, template: Template) -> Iterator[Hit]:
        for project in template.of_type(*self.resource_types):
            raw = project.prop("Environment", "PrivilegedMode")
            privileged = bool_of(raw)
            if privileged is True:
                continue
            spec = project_buildspec(project)
            path = "Properties.Environment.PrivilegedMode"
            if not spec.inline:
                yield self.unknown(
                    project.logical_id,
                    "Properties.Source.BuildSpec",
                    f"cannot tell whether the build runs docker: {spec.reason}",
                )
                continue
            if not spec.runs_docker:
                continue
            if raw is not None and privileged is None:
                yield self.unknown(
                    project.logical_id, path, "PrivilegedMode is computed by an intrinsic"
                )
                continue
            yield self.hit(
                project.logical_id,
                path,
                "the buildspec runs docker but PrivilegedMode is not true: the Docker daemon "
                "will not start",
            )
