"""Read CloudFormation templates: JSON, or YAML with the short intrinsic tags.

`!Ref X` becomes {"Ref": "X"}, `!GetAtt A.B` becomes {"Fn::GetAtt": ["A", "B"]}, `!Sub`, `!Join`,
... become their long forms, so rules see one shape whatever the source. A file that cannot be
parsed raises TemplateParseError with the line. Uses libyaml (CSafeLoader) when available.
"""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

try:  # libyaml is an order of magnitude faster; PyYAML wheels ship it
    _BaseLoader: type[yaml.SafeLoader] = yaml.CSafeLoader  # type: ignore[assignment]
except AttributeError:  # pragma: no cover - only without libyaml
    _BaseLoader = yaml.SafeLoader


class TemplateParseError(Exception):
    def __init__(self, file: str, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.file = file
        self.message = message
        self.line = line


class TemplatedFile(TemplateParseError):
    """A file that is a template of a template (Jinja, ERB, cookiecutter): not checked."""


# `{% ... %}`, `{# ... #}` or `<% ... %>` anywhere, or `{{ ... }}` that is not a CloudFormation
# dynamic reference (`{{resolve:...}}`).
_TEMPLATING = re.compile(r"\{%|\{#|<%[=-]?\s|\{\{(?!resolve:)\s*[\w.]+\s*(?:\|[^}]*)?\}\}")


# Markers no CloudFormation template carries: a Jinja statement or comment tag, an ERB tag, a
# cookiecutter variable. A file with them is a template of a template even when it parses.
_STRONG_TEMPLATING = re.compile(r"\{%-?\s|\{#\s|<%[=-]?\s|\{\{\s*cookiecutter\.")


def templating_markers(text: str) -> bool:
    """Does `text` carry Jinja/ERB/cookiecutter markers (so it is rendered before deploying)?"""
    return _TEMPLATING.search(text) is not None


class CfnYamlLoader(_BaseLoader):  # type: ignore[misc,valid-type]
    """SafeLoader that understands CloudFormation's short tags and keeps timestamps as text."""


# Keep dates and times as strings (CloudFormation's "2010-09-09" must stay a string).
CfnYamlLoader.yaml_implicit_resolvers = {
    key: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}

_FN_TAGS = (
    "Base64", "Cidr", "FindInMap", "GetAZs", "ImportValue", "Join", "Select", "Split", "Sub",
    "Transform", "And", "Equals", "If", "Not", "Or", "ToJsonString", "Length", "ForEach",
)  # fmt: skip


def _construct(node: yaml.Node, loader: yaml.SafeLoader) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]


def _fn(name: str) -> Any:
    key = "Ref" if name == "Ref" else ("Condition" if name == "Condition" else f"Fn::{name}")

    def constructor(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
        return {key: _construct(node, loader)}

    return constructor


def _getatt(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    value = _construct(node, loader)
    if isinstance(value, str):
        logical, _, attr = value.partition(".")
        return {"Fn::GetAtt": [logical, attr]}
    return {"Fn::GetAtt": value}


for _name in _FN_TAGS:
    CfnYamlLoader.add_constructor(f"!{_name}", _fn(_name))
CfnYamlLoader.add_constructor("!Ref", _fn("Ref"))
CfnYamlLoader.add_constructor("!Condition", _fn("Condition"))
CfnYamlLoader.add_constructor("!GetAtt", _getatt)


def _no_duplicates(loader: yaml.SafeLoader, node: yaml.MappingNode) -> Any:
    loader.flatten_mapping(node)
    out: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, "found an unhashable mapping key", key_node.start_mark
            ) from None
        if key in out:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        out[key] = loader.construct_object(value_node, deep=True)
    return out


CfnYamlLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


def parse_text(text: str, file: str = "<template>") -> dict[str, Any]:
    """Parse JSON or YAML template text into a dict. JSON that does not parse (a trailing comma,
    comments) is read again as YAML, as cfn-lint and checkov do. Raises TemplatedFile for a
    Jinja/ERB template that does not parse, TemplateParseError for anything else unreadable."""
    stripped = text.lstrip()
    if not stripped:
        raise TemplateParseError(file, "the file is empty", 1)
    data: Any
    try:
        data = _parse(text, file, as_json=stripped.startswith("{"))
    except TemplateParseError as exc:
        if templating_markers(text):
            raise TemplatedFile(file, "templated (Jinja/ERB markers), not checked", None) from None
        raise exc from None
    if _STRONG_TEMPLATING.search(text):
        raise TemplatedFile(file, "templated (Jinja/ERB markers), not checked", None)
    if not isinstance(data, dict):
        raise TemplateParseError(
            file, f"a template must be a mapping at the top level, found {type(data).__name__}", 1
        )
    resources = data.get("Resources")
    if resources is not None and not isinstance(resources, dict):
        raise TemplateParseError(file, "'Resources' must be a mapping of logical IDs", None)
    return data


def _parse(text: str, file: str, *, as_json: bool) -> Any:
    if as_json:
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            error = TemplateParseError(file, f"invalid JSON: {exc.msg}", exc.lineno)
        except RecursionError:
            raise TemplateParseError(file, "invalid JSON: nested too deeply") from None
        try:
            return _parse(text, file, as_json=False)  # YAML reads JSON with a trailing comma
        except TemplateParseError:
            raise error from None
    try:
        return yaml.load(text, Loader=CfnYamlLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = exc.problem or exc.context or "invalid YAML"
        raise TemplateParseError(
            file, f"invalid YAML: {what}", mark.line + 1 if mark else None
        ) from None
    except yaml.YAMLError as exc:
        raise TemplateParseError(file, f"invalid YAML: {exc}") from None
    except RecursionError:
        raise TemplateParseError(file, "invalid YAML: nested too deeply") from None


def node_lines(text: str) -> dict[tuple[str | int, ...], int]:
    """1-based line of every mapping key and sequence item, by path from the document root
    (("Resources", "Bucket", "Properties", "Tags", 0) -> line). JSON is read by the YAML
    composer too. Empty when the text cannot be composed."""
    try:
        root = yaml.compose(text, Loader=CfnYamlLoader)
    except (yaml.YAMLError, RecursionError):
        return {}
    out: dict[tuple[str | int, ...], int] = {}
    stack: list[tuple[tuple[str | int, ...], Any]] = [((), root)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    child = (*path, key.value)
                    out[child] = key.start_mark.line + 1
                    stack.append((child, value))
        elif isinstance(node, yaml.SequenceNode):
            for i, value in enumerate(node.value):
                child = (*path, i)
                out[child] = value.start_mark.line + 1
                stack.append((child, value))
    return out


def line_index(text: str, logical_ids: list[str]) -> dict[str, int]:
    """1-based line where each logical ID is declared under Resources (best effort, fast)."""
    out: dict[str, int] = {}
    if not logical_ids:
        return out
    start = 0
    m = re.search(r'^\s*"?Resources"?\s*:', text, re.MULTILINE)
    if m:
        start = m.start()
    wanted = set(logical_ids)
    pattern = re.compile(r'^[ \t]*"?([A-Za-z0-9]+)"?[ \t]*:', re.MULTILINE)
    for found in pattern.finditer(text, start):
        name = found.group(1)
        if name in wanted and name not in out:
            out[name] = text.count("\n", 0, found.start()) + 1
            if len(out) == len(wanted):
                break
    return out
