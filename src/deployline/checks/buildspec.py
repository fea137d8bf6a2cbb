"""CodeBuild buildspecs held in a template.

A buildspec is *inline* when the project's `Source.BuildSpec` is the buildspec itself (YAML or JSON
text, possibly assembled with Fn::Join/Fn::Sub). A file name (`buildspec.yml`), or no BuildSpec at
all, means the buildspec lives in the source repository: the template does not hold the answer and
rules that need it report UNKNOWN.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import yaml

from deployline.checks.intrinsics import is_intrinsic, render

if TYPE_CHECKING:
    from deployline.checks.template import Resource

_FILE_NAME = re.compile(r"^[\w./\-${}]+\.(ya?ml|json)$", re.IGNORECASE)
# `docker` at a command position: line start, after ; & | ( ` or a prefix word (sudo, then, ...),
# optionally after VAR=value assignments. Text such as `echo "docker push later"` is not a command.
_CMD_START = (
    r"(?:^|[;&|(`]|\b(?:sudo|then|do|else|exec|time|xargs|env)\b)\s*"
    r"(?:[A-Za-z_][A-Za-z0-9_]*=\S*\s+)*"
)
_DOCKER = re.compile(
    _CMD_START + r"docker\s+(buildx\s+|image\s+)?(build|push|login|run|tag|pull|buildx)\b",
    re.MULTILINE,
)
_DOCKER_PUSH = re.compile(
    _CMD_START + r"docker\s+"
    r"((image\s+)?push\b|(buildx\s+)?build\b[^\n]*?(--push\b|--output[= ][^\n]*push=true))",
    re.MULTILINE,
)


@dataclass
class BuildSpec:
    """What a project's buildspec says, as far as the template tells."""

    inline: bool
    text: str = ""
    data: dict[str, Any] | None = None
    commands: list[str] = field(default_factory=list)
    reason: str = ""  # why it is not inline (for UNKNOWN messages)

    def mentions(self, needle: str) -> bool:
        return needle in self.text

    @property
    def runs_docker(self) -> bool:
        return any(_DOCKER.search(c) for c in self._command_texts())

    @property
    def pushes_image(self) -> bool:
        return any(_DOCKER_PUSH.search(c) for c in self._command_texts())

    def _command_texts(self) -> list[str]:
        return self.commands if self.commands else [self.text]

    def env_variables(self) -> dict[str, Any]:
        env = (self.data or {}).get("env", {})
        variables = env.get("variables", {}) if isinstance(env, dict) else {}
        return variables if isinstance(variables, dict) else {}


def _commands(data: dict[str, Any]) -> list[str]:
    out: list[str] = []
    phases = data.get("phases")
    if not isinstance(phases, dict):
        return out
    for phase in phases.values():
        if not isinstance(phase, dict):
            continue
        for key in ("commands", "finally"):
            items = phase.get(key)
            if isinstance(items, list):
                out.extend(render(c) for c in items)
            elif isinstance(items, str):
                out.append(items)
    return out


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@lru_cache(maxsize=512)
def parse_buildspec_text(text: str) -> BuildSpec:
    """The buildspec in `text` (cached: the pipeline model and several rules read each one;
    treat the result as read-only)."""
    data: Any = None
    try:
        if text.lstrip().startswith("{"):
            data = json.loads(text)
        else:
            data = yaml.load(text, Loader=_LOADER)  # noqa: S506 - a safe loader
    except (ValueError, yaml.YAMLError, RecursionError):
        data = None
    if isinstance(data, dict):
        return BuildSpec(inline=True, text=text, data=data, commands=_commands(data))
    return BuildSpec(inline=True, text=text)


def project_buildspec(project: Resource) -> BuildSpec:
    """The buildspec of an `AWS::CodeBuild::Project` (Source.BuildSpec)."""
    source = project.prop("Source")
    value = source.get("BuildSpec") if isinstance(source, dict) else None
    if value is None:
        return BuildSpec(
            inline=False,
            reason="the project has no inline buildspec: it reads buildspec.yml from the source",
        )
    if isinstance(value, str):
        stripped = value.strip()
        if "\n" not in stripped and _FILE_NAME.match(stripped):
            return BuildSpec(
                inline=False, reason=f"the buildspec is the file {stripped!r} in the source"
            )
        if stripped.startswith("arn:"):
            return BuildSpec(inline=False, reason="the buildspec is an S3 object")
        return parse_buildspec_text(value)
    if is_intrinsic(value):
        text = render(value)
        if "${?}" in text and "\n" not in text and "phases" not in text:
            return BuildSpec(
                inline=False, reason="the buildspec is computed by an intrinsic the template hides"
            )
        return parse_buildspec_text(text)
    return BuildSpec(inline=False, reason="the buildspec value is not text")
