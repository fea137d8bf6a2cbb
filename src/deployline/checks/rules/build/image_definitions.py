"""DL306: an ECS deploy action whose input artifact lacks the image definitions file."""

from __future__ import annotations

from collections.abc import Iterator
from fnmatch import fnmatchcase
from typing import Any

from deployline.checks.buildspec import BuildSpec, project_buildspec
from deployline.checks.intrinsics import as_list, literal_str
from deployline.checks.model import Hit, Rule, Severity
from deployline.checks.pipeline import Action, Pipeline
from deployline.checks.pipeline import project_of_action
from deployline.checks.template import Template

IMAGE_DEFINITIONS = "imagedefinitions.json"
IMAGE_DETAIL = "imageDetail.json"


def _artifact_section(spec: BuildSpec, artifact: str) -> dict[str, Any] | None:
    """The buildspec `artifacts` section that fills the pipeline artifact `artifact`: its
    `secondary-artifacts` entry when one has that identifier, else the primary section."""
    data = spec.data or {}
    primary = data.get("artifacts")
    if not isinstance(primary, dict):
        return None
    secondary = primary.get("secondary-artifacts")
    if isinstance(secondary, dict) and isinstance(secondary.get(artifact), dict):
        section: dict[str, Any] = secondary[artifact]
        return section
    return primary


def _exports(section: dict[str, Any], file_name: str) -> bool:
    """Does an artifacts section's `files` list cover a file called `file_name`?"""
    for pattern in as_list(section.get("files")):
        if not isinstance(pattern, str):
            continue
        last = pattern.strip().rstrip("/").rsplit("/", 1)[-1]
        if fnmatchcase(file_name, last) or last == "**":
            return True
    return False


def writes_file(spec: BuildSpec, artifact: str, file_name: str) -> str | None:
    """None when the buildspec writes `file_name` into `artifact`, else what is missing."""
    if not spec.mentions(file_name):
        return f"the buildspec never writes {file_name}"
    section = _artifact_section(spec, artifact)
    if section is None:
        return f"the buildspec writes {file_name} but declares no artifacts"
    if not _exports(section, file_name):
        return f"the buildspec writes {file_name} but its artifact files do not include it"
    return None


class ImageDefinitionsArtifact(Rule):
    """Follows each ECS deploy action's input artifact (and each CodeDeployToECS action's
    Image1..4ArtifactName) to the action that produced it. When that is a CodeBuild action,
    its project (ProjectName by Ref or literal name) must have an inline buildspec that writes
    the file (`FileName`, default imagedefinitions.json; imageDetail.json for CodeDeployToECS)
    and puts it in that artifact. A project or buildspec the template does not hold is
    UNKNOWN; artifacts made by other providers are outside this row."""

    id = "DL306"
    severity = Severity.HIGH
    family = "Build"
    seed = "000 §4"
    title = "ECS deploy reads an artifact without imagedefinitions.json / imageDetail.json"
    resource_types = ("AWS::CodePipeline::Pipeline", "AWS::CodeBuild::Project")
    rationale = (
        "The ECS deploy action reads the container image from imagedefinitions.json (blue/green "
        "from imageDetail.json); without it the deploy fails after the build succeeded."
    )
    remediation = (
        "Write the file in the build and list it in the buildspec artifacts, e.g. "
        '`printf \'[{"name":"app","imageUri":"%s"}]\' $IMAGE_URI > imagedefinitions.json`.'
    )
    fix_example = """\
BuildSpec: |
  version: 0.2
  phases:
    post_build:
      commands:
        - printf '[{"name":"app","imageUri":"%s"}]' "$IMAGE_URI" > imagedefinitions.json
  artifacts:
    files: [imagedefinitions.json]
"""

    def check(self, template: Template) -> Iterator[Hit]:
        for pipeline in template.pipelines:
            for action in pipeline.actions:
                if action.category not in ("Deploy", None):
                    continue
                if action.provider == "ECS":
                    raw = action.config("FileName")
                    name = literal_str(raw) if raw is not None else IMAGE_DEFINITIONS
                    if name is None:
                        yield self.unknown(
                            pipeline.logical_id,
                            f"{action.path}.Configuration.FileName",
                            f"{action.label}: FileName is computed by an intrinsic",
                        )
                        continue
                    artifacts = action.input_artifacts[:1]
                elif action.provider == "CodeDeployToECS":
                    name = IMAGE_DETAIL
                    artifacts = []
                    for i in range(1, 5):
                        value = action.config(f"Image{i}ArtifactName")
                        text = literal_str(value)
                        if text is not None:
                            artifacts.append(text)
                        elif value is not None:
                            yield self.unknown(
                                pipeline.logical_id,
                                f"{action.path}.Configuration.Image{i}ArtifactName",
                                f"{action.label}: the image artifact is computed by an intrinsic",
                            )
                else:
                    continue
                for artifact in artifacts:
                    yield from self._check_artifact(template, pipeline, action, artifact, name)

    def _check_artifact(
        self, template: Template, pipeline: Pipeline, action: Action, artifact: str, name: str
    ) -> Iterator[Hit]:
        producer = pipeline.producer_of(artifact)
        if producer is None:
            if not pipeline.complete:
                yield self.unknown(
                    pipeline.logical_id,
                    action.path,
                    f"{action.label}: cannot find the action that produces {artifact!r}",
                )
            return
        if producer.provider is None:
            yield self.unknown(
                pipeline.logical_id,
                producer.path,
                f"{action.label}: the provider of {producer.label} is computed by an intrinsic",
            )
            return
        if not producer.is_codebuild:
            return
        found = project_of_action(template, producer)
        if found.resource is None:
            yield self.unknown(
                pipeline.logical_id,
                f"{producer.path}.Configuration.ProjectName",
                f"{action.label} reads {artifact!r} from {producer.label}, whose project the "
                f"template does not hold: {found.reason}",
            )
            return
        spec = project_buildspec(found.resource)
        if not spec.inline:
            yield self.unknown(
                pipeline.logical_id,
                action.path,
                f"{action.label} reads {artifact!r} built by {found.resource.logical_id}: "
                f"{spec.reason}",
            )
            return
        if spec.data is None:
            yield self.unknown(
                pipeline.logical_id,
                action.path,
                f"the buildspec of {found.resource.logical_id} cannot be parsed",
            )
            return
        problem = writes_file(spec, artifact, name)
        if problem is not None:
            yield self.hit(
                pipeline.logical_id,
                action.path,
                f"{action.label} reads {artifact!r} from {producer.label} "
                f"({found.resource.logical_id}): {problem}",
            )
