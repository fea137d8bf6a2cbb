"""DL305: a project that runs docker without a layer cache."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from deployline.checks.buildspec import project_buildspec
from deployline.checks.intrinsics import as_list, get_path, is_intrinsic, literal_str
from deployline.checks.model import Hit, Rule, Severity
from deployline.checks.template import Template


def cache_state(cache: Any) -> bool | None:
    """True for an S3 cache or a LOCAL cache with LOCAL_DOCKER_LAYER_CACHE, False for no
    usable cache, None when an intrinsic hides it."""
    if cache is None:
        return False
    if is_intrinsic(cache):
        return None
    kind_raw = get_path(cache, "Type")
    kind = literal_str(kind_raw)
    if kind is None:
        return None if kind_raw is not None else False
    kind = kind.upper()
    if kind == "S3":
        return True
    if kind == "LOCAL":
        modes_raw = get_path(cache, "Modes")
        if is_intrinsic(modes_raw):
            return None
        modes = [literal_str(m) for m in as_list(modes_raw)]
        if any(m is None for m in modes):
            return None
        return "LOCAL_DOCKER_LAYER_CACHE" in {m.upper() for m in modes if m}
    return False


class DockerLayerCache(Rule):
    """A project "runs docker" when its inline buildspec has docker commands. A project whose
    buildspec is in the repository and has no docker-capable cache is UNKNOWN."""

    id = "DL305"
    severity = Severity.LOW
    family = "Build"
    seed = "004 Perf 1"
    title = "Docker build without a layer cache"
    resource_types = ("AWS::CodeBuild::Project",)
    rationale = (
        "Without a Docker layer cache every build pulls and rebuilds every layer: slower "
        "builds and more registry traffic."
    )
    remediation = (
        "Add Cache: {Type: LOCAL, Modes: [LOCAL_DOCKER_LAYER_CACHE]} (or an S3 cache) to "
        "projects that run docker."
    )
    fix_example = """\
ImageBuild:
  Type: AWS::CodeBuild::Project
  Properties:
    Cache:
      Type: LOCAL
      Modes: [LOCAL_DOCKER_LAYER_CACHE, LOCAL_SOURCE_CACHE]
"""

    def check(self, template: Template) -> Iterator[Hit]:
        for project in template.of_type(*self.resource_types):
            state = cache_state(project.prop("Cache"))
            if state is True:
                continue
            spec = project_buildspec(project)
            if not spec.inline:
                yield self.unknown(
                    project.logical_id,
                    "Properties.Source.BuildSpec",
                    f"no Docker layer cache, and cannot tell whether the build runs docker: "
                    f"{spec.reason}",
                )
                continue
            if not spec.runs_docker:
                continue
            if state is None:
                yield self.unknown(
                    project.logical_id, "Properties.Cache", "Cache is computed by an intrinsic"
                )
                continue
            yield self.hit(
                project.logical_id,
                "Properties.Cache",
                "the buildspec runs docker but the project has no LOCAL_DOCKER_LAYER_CACHE or "
                "S3 cache",
            )
