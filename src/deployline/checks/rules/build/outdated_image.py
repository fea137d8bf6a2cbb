"""DL303: a CodeBuild project on an outdated AWS managed image."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from deployline.checks import data
from deployline.checks.intrinsics import as_list, ref_target
from deployline.checks.model import Hit, Rule, Severity
from deployline.checks.template import Template

_MANAGED_PREFIX = "aws/codebuild/"


@lru_cache(maxsize=1)
def _patterns() -> tuple[tuple[re.Pattern[str], Severity, str], ...]:
    out = []
    for item in data.items("outdated_codebuild_images"):
        out.append(
            (re.compile(item["pattern"]), Severity.parse(item["severity"]), str(item["note"]))
        )
    return tuple(out)


def outdated(image: str) -> tuple[Severity, str] | None:
    """(severity, note) when `image` is an outdated managed image, else None."""
    for pattern, severity, note in _patterns():
        if pattern.match(image.strip()):
            return severity, note
    return None


class OutdatedBuildImage(Rule):
    """Reads Environment.Image through the resolver: a parameter's default, a `Fn::FindInMap`
    with keys that resolve, a `Fn::Sub`/`Fn::Join` of those, and each branch of an `Fn::If`
    count as the image. A parameter without a default is UNKNOWN unless every AllowedValue is
    current; an image assembled with what the template does not hold is UNKNOWN when it is a
    managed image whose version is hidden, and passes when it is clearly a custom (e.g. ECR)
    image."""

    id = "DL303"
    severity = Severity.HIGH
    family = "Build"
    seed = "000 §3, 002 §4"
    title = "Outdated AWS managed CodeBuild image"
    resource_types = ("AWS::CodeBuild::Project",)
    rationale = (
        "Deprecated images are no longer cached or patched: builds provision slowly, run old "
        "runtimes and miss security fixes."
    )
    remediation = (
        "Use a current image: aws/codebuild/standard:7.0, "
        "aws/codebuild/amazonlinux-x86_64-standard:5.0 or "
        "aws/codebuild/amazonlinux-aarch64-standard:3.0."
    )
    fix_example = """\
BuildProject:
  Type: AWS::CodeBuild::Project
  Properties:
    Environment:
      Image: aws/codebuild/standard:7.0
"""

    def check(self, template: Template) -> Iterator[Hit]:
        for project in template.of_type(*self.resource_types):
            value = project.prop("Environment", "Image")
            if value is None:
                continue
            yield from self._check_image(template, project.logical_id, value)

    def _check_image(self, template: Template, logical_id: str, value: Any) -> Iterator[Hit]:
        path = "Properties.Environment.Image"
        images = template.candidates(value)
        if images is not None and all(isinstance(i, str) for i in images):
            # every value it may take (each branch of an Fn::If): the first outdated one
            yield from self._outdated(logical_id, path, images)
            return
        target = ref_target(value)
        if target is not None and template.is_parameter(target):
            allowed = template.parameters.get(target, {}).get("AllowedValues")
            values = [v for v in as_list(allowed) if isinstance(v, str)]
            if values and all(outdated(v) is None for v in values):
                return
            reason = f"the image comes from the parameter {target}, which has no default"
            yield self.unknown(logical_id, path, reason)
            return
        rendered = template.text_of(value)
        if _MANAGED_PREFIX not in rendered:
            return  # a custom image (ECR, Docker Hub, ...): not an AWS managed image
        head = rendered.split("${", 1)[0]
        if outdated(head) is not None:
            yield from self._outdated(logical_id, path, [rendered], probe=head)
            return
        yield self.unknown(
            logical_id, path, f"the managed image version is computed by an intrinsic: {rendered}"
        )

    def _outdated(
        self, logical_id: str, path: str, images: list[str], probe: str | None = None
    ) -> Iterator[Hit]:
        """A finding for the first of `images` that is outdated (judged by `probe` when the
        image text has holes: its literal head)."""
        for image in images:
            found = outdated(probe if probe is not None else image)
            if found is not None:
                severity, note = found
                message = f"image {image} is outdated ({note})"
                yield self.hit(logical_id, path, message, severity=severity)
                return
