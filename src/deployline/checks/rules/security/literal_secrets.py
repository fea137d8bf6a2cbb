"""DL110: a literal secret in the template (a known token shape, or a secret-named value)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from itertools import pairwise
from typing import Any

from deployline.checks.buildspec import project_buildspec
from deployline.checks.intrinsics import (
    format_path,
    get_path,
    is_intrinsic,
    literal_str,
    render,
    walk,
)
from deployline.checks.model import Hit, Rule, Severity
from deployline.checks.template import Template

TOKEN_SHAPES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("a GitHub token", re.compile(r"\bgh[opsur]_[A-Za-z0-9]{20,}")),
    ("a GitHub fine-grained token", re.compile(r"\bgithub_pat_[A-Za-z0-9_]{20,}")),
    ("a GitLab token", re.compile(r"\bglpat-[A-Za-z0-9_\-]{20,}")),
    ("a Slack token", re.compile(r"\bxox[abpr]-[A-Za-z0-9\-]{10,}")),
    ("an AWS access key ID", re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])")),
    (
        "a PEM private key",
        re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY( BLOCK)?-----"),
    ),
)

SECRET_WORDS = frozenset({"TOKEN", "PASSWORD", "PASSWD", "SECRET"})
LOCATOR_WORDS = frozenset({"ARN", "NAME", "ID", "URL", "URI", "PATH", "PARAM", "PARAMETER"})
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")


def words(name: str) -> list[str]:
    """`GITHUB_TOKEN` -> [GITHUB, TOKEN]; `OAuthToken` -> [O, AUTH, TOKEN]; `apiKey` -> [API,
    KEY]."""
    return [w.upper() for w in _WORD.findall(name)]


def names_a_secret(name: str) -> bool:
    """The catalog's name test: a whole word TOKEN/PASSWORD/PASSWD/SECRET/API_KEY, and not a name
    that ends in a word saying where a secret is kept (ARN, NAME, ID, URL, URI, PATH, PARAM...)."""
    parts = words(name)
    if not parts or parts[-1] in LOCATOR_WORDS:
        return False
    if SECRET_WORDS.intersection(parts):
        return True
    return any(a == "API" and b == "KEY" for a, b in pairwise(parts))


def is_literal_value(value: Any) -> bool:
    """A non-empty literal: not an intrinsic, not a dynamic reference, not blank."""
    if isinstance(value, bool) or value is None:
        return False
    if isinstance(value, int | float):
        return True
    text = literal_str(value)
    return text is not None and text.strip() != ""


def _carrier(path: tuple[str | int, ...]) -> tuple[str, str]:
    """(who carries a finding at `path` of the template, the property path it reports)."""
    if len(path) >= 2 and path[0] == "Resources":
        return str(path[1]), format_path(path[2:]) or "(resource)"
    if len(path) >= 2 and path[0] in {"Parameters", "Outputs"}:
        return str(path[1]), format_path(path)
    return str(path[0]) if path else "(template)", format_path(path)


class LiteralSecret(Rule):
    id = "DL110"
    severity = Severity.CRITICAL
    family = "Security"
    seed = "000 §1, 003 §7"
    title = "Literal secret in the template"
    resource_types = ()  # token shapes are searched everywhere, Globals included
    rationale = (
        "A template is stored in source control, in the CloudFormation console and in every "
        "stack's history; a token, password or key written into it is readable by anyone who can "
        "read any of those, and it cannot be rotated without a deployment."
    )
    remediation = (
        "Keep the secret in Secrets Manager or SSM SecureString and reference it: a dynamic "
        "reference ({{resolve:secretsmanager:name:SecretString:key}}), a CodeBuild variable of "
        "type SECRETS_MANAGER/PARAMETER_STORE, or ECS `Secrets` with ValueFrom. Rotate any secret "
        "that was committed."
    )
    fix_example = """\
Source:
  ActionTypeId: {Category: Source, Owner: ThirdParty, Provider: GitHub, Version: "1"}
  Configuration:
    OAuthToken: "{{resolve:secretsmanager:github-token:SecretString:token}}"
BuildProject:
  Type: AWS::CodeBuild::Project
  Properties:
    Environment:
      EnvironmentVariables:
        - {Name: NPM_TOKEN, Type: SECRETS_MANAGER, Value: "npm-token:token"}
"""

    def check(self, template: Template) -> Iterator[Hit]:
        yield from self._token_shapes(template)
        yield from self._pipeline_values(template)
        yield from self._codebuild_values(template)
        yield from self._function_values(template)
        yield from self._task_values(template)
        yield from self._ssm_values(template)

    # Known token shapes, anywhere ---------------------------------------------------------

    def _token_shapes(self, template: Template) -> Iterator[Hit]:
        for path, value in walk(template.data):
            if not isinstance(value, str) or len(value) < 20:
                continue
            for what, pattern in TOKEN_SHAPES:
                if pattern.search(value):
                    resource, where = _carrier(path)
                    yield self.hit(resource, where, f"{what} is written literally in the template")
                    break

    # Secret-named values ------------------------------------------------------------------

    def _named(self, resource: str, path: str, name: Any, value: Any, what: str) -> Iterator[Hit]:
        text = literal_str(name)
        if text is None or not names_a_secret(text) or not is_literal_value(value):
            return
        yield self.hit(
            resource, path, f"{what} {text!r} holds a literal value instead of a reference"
        )

    def _pipeline_values(self, template: Template) -> Iterator[Hit]:
        for pipeline in template.pipelines:
            for action in pipeline.actions:
                if action.owner == "ThirdParty" and action.provider == "GitHub":
                    yield from self._named(
                        pipeline.logical_id,
                        f"{action.path}.Configuration.OAuthToken",
                        "OAuthToken",
                        action.config("OAuthToken"),
                        "the GitHub source's",
                    )
                raw = action.config("EnvironmentVariables")
                variables = _json_list(raw)
                for i, var in enumerate(variables):
                    kind = str(get_path(var, "type") or "PLAINTEXT").upper()
                    if kind == "PLAINTEXT":
                        yield from self._named(
                            pipeline.logical_id,
                            f"{action.path}.Configuration.EnvironmentVariables[{i}]",
                            get_path(var, "name"),
                            get_path(var, "value"),
                            "the CodeBuild action's PLAINTEXT variable",
                        )

    def _codebuild_values(self, template: Template) -> Iterator[Hit]:
        for project in template.of_type("AWS::CodeBuild::Project"):
            variables = project.prop("Environment", "EnvironmentVariables")
            for i, var in enumerate(variables if isinstance(variables, list) else []):
                kind = get_path(var, "Type")
                if kind is not None and is_intrinsic(kind):
                    name = literal_str(get_path(var, "Name"))
                    if name and names_a_secret(name) and is_literal_value(get_path(var, "Value")):
                        yield self.unknown(
                            project.logical_id,
                            f"Properties.Environment.EnvironmentVariables[{i}].Type",
                            f"variable {name!r} has a literal value and a computed Type",
                        )
                    continue
                if str(kind or "PLAINTEXT").upper() != "PLAINTEXT":
                    continue
                yield from self._named(
                    project.logical_id,
                    f"Properties.Environment.EnvironmentVariables[{i}]",
                    get_path(var, "Name"),
                    get_path(var, "Value"),
                    "PLAINTEXT variable",
                )
            spec = project_buildspec(project)
            if spec.inline:
                for name, value in spec.env_variables().items():
                    yield from self._named(
                        project.logical_id,
                        "Properties.Source.BuildSpec",
                        str(name),
                        value,
                        "the buildspec's plaintext env variable",
                    )

    def _function_values(self, template: Template) -> Iterator[Hit]:
        for fn in template.of_type("AWS::Lambda::Function", "AWS::Serverless::Function"):
            variables = fn.prop("Environment", "Variables")
            if isinstance(variables, dict):
                for name, value in variables.items():
                    yield from self._named(
                        fn.logical_id,
                        f"Properties.Environment.Variables.{name}",
                        str(name),
                        value,
                        "environment variable",
                    )
        shared = get_path(template.data, "Globals", "Function", "Environment", "Variables")
        if isinstance(shared, dict):
            for name, value in shared.items():
                yield from self._named(
                    "Globals",
                    f"Globals.Function.Environment.Variables.{name}",
                    str(name),
                    value,
                    "environment variable",
                )

    def _task_values(self, template: Template) -> Iterator[Hit]:
        for task in template.of_type("AWS::ECS::TaskDefinition"):
            containers = task.prop("ContainerDefinitions")
            for c, container in enumerate(containers if isinstance(containers, list) else []):
                env = get_path(container, "Environment")
                for i, var in enumerate(env if isinstance(env, list) else []):
                    yield from self._named(
                        task.logical_id,
                        f"Properties.ContainerDefinitions[{c}].Environment[{i}]",
                        get_path(var, "Name"),
                        get_path(var, "Value"),
                        "container environment variable",
                    )

    def _ssm_values(self, template: Template) -> Iterator[Hit]:
        for param in template.of_type("AWS::SSM::Parameter"):
            if literal_str(param.prop("Type")) != "String":
                continue
            name = param.prop("Name")
            shown = render(name) if name is not None else param.logical_id
            value = param.prop("Value")
            yield from self._named(
                param.logical_id, "Properties.Value", shown, value, "String parameter"
            )


def _json_list(raw: Any) -> list[Any]:
    """A CodePipeline action's EnvironmentVariables: a JSON string of [{name, value, type}]."""
    if isinstance(raw, list):
        return raw
    text = literal_str(raw)
    if not text:
        return []
    try:
        value = json.loads(text)
    except ValueError:
        return []
    return value if isinstance(value, list) else []
