"""DL304: a Windows build environment asked to build a Linux container image."""

from __future__ import annotations

import re
from collections.abc import Iterator

from deployline.checks.buildspec import project_buildspec
from deployline.checks.intrinsics import literal_str
from deployline.checks.model import Hit, Rule, Severity
from deployline.checks.template import Template

_LINUX_PLATFORM = re.compile(r"--platform[= ]+[\"']?linux/", re.IGNORECASE)


class WindowsBuildsLinuxImage(Rule):
    """Fires when Environment.Type starts with WINDOWS_ and the inline buildspec passes
    `--platform linux/...`. A Windows project whose buildspec lives in the repository is
    UNKNOWN; an environment type hidden by an intrinsic is UNKNOWN when the buildspec builds a
    Linux image."""

    id = "DL304"
    severity = Severity.MEDIUM
    family = "Build"
    seed = "002 §4"
    title = "Windows build environment building a Linux image"
    resource_types = ("AWS::CodeBuild::Project",)
    rationale = (
        "A Windows CodeBuild host runs Windows containers: a `--platform linux/...` build fails "
        "or produces an image the ECS Linux tasks cannot run."
    )
    remediation = (
        "Build Linux images on a LINUX_CONTAINER (or ARM_CONTAINER) environment with a current "
        "standard image."
    )
    fix_example = """\
ImageBuild:
  Type: AWS::CodeBuild::Project
  Properties:
    Environment:
      Type: LINUX_CONTAINER
      Image: aws/codebuild/standard:7.0
      PrivilegedMode: true
"""

    def check(self, template: Template) -> Iterator[Hit]:
        for project in template.of_type(*self.resource_types):
            raw_type = project.prop("Environment", "Type")
            env_type = literal_str(raw_type)
            windows = env_type is not None and env_type.upper().startswith("WINDOWS_")
            if env_type is not None and not windows:
                continue
            if raw_type is None:
                continue
            spec = project_buildspec(project)
            if not spec.inline:
                if windows:
                    yield self.unknown(
                        project.logical_id,
                        "Properties.Source.BuildSpec",
                        f"Windows environment; cannot tell what it builds: {spec.reason}",
                    )
                continue
            builds_linux = any(_LINUX_PLATFORM.search(c) for c in (spec.commands or [spec.text]))
            if not builds_linux:
                continue
            if not windows:
                yield self.unknown(
                    project.logical_id,
                    "Properties.Environment.Type",
                    "the buildspec builds a Linux image and the environment type is computed "
                    "by an intrinsic",
                )
                continue
            yield self.hit(
                project.logical_id,
                "Properties.Environment.Type",
                f"environment type {env_type} builds a Linux image (--platform linux/...)",
            )
