"""Property-based tests: random and mutated templates never make the checker raise, and no rule
crashes on them (a crash would surface as a "could not evaluate" UNKNOWN and hide findings)."""

from __future__ import annotations

import copy
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deployline.checks.api import check_paths, check_texts
from deployline.checks.engine import check_template, template_from_text
from deployline.checks.loader import TemplateParseError, parse_text
from deployline.checks.registry import rule_classes, select_rules

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "templates"
RULES = select_rules()
RESOURCE_TYPES = sorted({t for c in rule_classes() for t in c.resource_types}) or [
    "AWS::S3::Bucket"
]
CRASH = "could not evaluate this template"
SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
)


def _fixture_templates() -> list[dict[str, Any]]:
    out = []
    for path in sorted(FIXTURES.glob("DL*/*")):
        if path.suffix not in {".yaml", ".yml", ".json"}:
            continue
        try:
            out.append(parse_text(path.read_text(encoding="utf-8"), str(path)))
        except TemplateParseError:
            continue
    return out


SEEDS = _fixture_templates()

names = st.sampled_from(
    ["Bucket", "Role", "Pipeline", "Project", "Key", "Topic", "Arn", "Name", "Value", "Sub", "*"]
) | st.text(min_size=1, max_size=12)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**40), max_value=2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
    | st.sampled_from(["*", "s3:*", "arn:aws:s3:::b/*", "${AWS::AccountId}", "prod", "Delete"])
)


def _intrinsics(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.builds(lambda v: {"Ref": v}, children),
        st.builds(lambda v: {"Fn::GetAtt": v}, children),
        st.builds(lambda v: {"Fn::Sub": v}, children),
        st.builds(lambda a, b: {"Fn::Join": [a, b]}, children, children),
        st.builds(lambda a, b, c: {"Fn::If": [a, b, c]}, children, children, children),
        st.builds(lambda v: {"Fn::ImportValue": v}, children),
        st.builds(lambda v: {"Fn::Select": v}, children),
        st.builds(lambda v: {"Fn::FindInMap": v}, children),
    )


values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(names, children, max_size=4)
        | _intrinsics(children)
    ),
    max_leaves=20,
)

resource = st.fixed_dictionaries(
    {"Type": st.sampled_from(RESOURCE_TYPES) | values},
    optional={
        "Properties": st.dictionaries(names, values, max_size=6) | values,
        "Metadata": values,
        "DependsOn": values,
        "DeletionPolicy": values,
        "Condition": values,
    },
)
random_templates = st.fixed_dictionaries(
    {
        "Resources": st.dictionaries(
            st.from_regex(r"[A-Za-z][A-Za-z0-9]{0,15}", fullmatch=True),
            resource | values,
            max_size=6,
        )
    },
    optional={
        "AWSTemplateFormatVersion": values,
        "Parameters": values,
        "Conditions": values,
        "Outputs": values,
        "Metadata": values,
        "Mappings": values,
    },
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(node, dict):
        for key, child in node.items():
            yield from _paths(child, (*prefix, key))
    elif isinstance(node, list):
        for i, child in enumerate(node):
            yield from _paths(child, (*prefix, i))


def _parent(node: Any, path: tuple[Any, ...]) -> Any:
    for step in path[:-1]:
        node = node[step]
    return node


@st.composite
def mutated_templates(draw: st.DrawFn) -> dict[str, Any]:
    template = copy.deepcopy(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        paths = [p for p in _paths(template) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = _parent(template, path)
        key = path[-1]
        action = draw(st.sampled_from(["replace", "delete", "intrinsic", "wrap", "retype"]))
        if action == "delete":
            del parent[key]
        elif action == "replace":
            parent[key] = draw(values)
        elif action == "intrinsic":
            parent[key] = draw(_intrinsics(st.just(parent[key]) | values))
        elif action == "wrap":
            parent[key] = [parent[key]]
        else:  # retype: a scalar where a mapping was expected, or the reverse
            parent[key] = (
                json.dumps(parent[key])
                if isinstance(parent[key], dict | list)
                else {"Value": parent[key]}
            )
    return template


def _check_everything(data: dict[str, Any]) -> None:
    text = json.dumps(data, default=str)
    try:
        template = template_from_text(text, "fuzz.json")
    except TemplateParseError:
        template = None
    if template is not None:
        findings, unknown = check_template(template, RULES)
        crashes = [u for u in unknown if CRASH in u.message]
        assert not crashes, crashes[0].message
        assert all(f.rule_id and f.resource is not None for f in findings)
    result = check_texts({"fuzz.json": text})
    assert not [u for u in result.unknown if CRASH in u.message]
    assert result.exit_code() in {0, 1, 2}


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as name:
        yield Path(name)


@SETTINGS
@given(random_templates)
def test_random_templates_never_raise_or_crash_a_rule(data: dict[str, Any]) -> None:
    _check_everything(data)


@SETTINGS
@given(mutated_templates())
def test_mutated_fixture_templates_never_raise_or_crash_a_rule(data: dict[str, Any]) -> None:
    _check_everything(data)


@settings(SETTINGS, max_examples=40)
@given(
    st.sampled_from(SEEDS),
    st.integers(min_value=0, max_value=4000),
    st.text(max_size=8),
)
def test_damaged_template_text_is_a_parse_error_or_a_result_never_an_exception(
    scratch: Path, seed: dict[str, Any], cut: int, noise: str
) -> None:
    text = json.dumps(seed, indent=1)
    damaged = text[:cut] + noise + text[cut + len(noise) :]
    path = scratch / "damaged.json"
    path.write_text(damaged, encoding="utf-8")
    result = check_paths([path], cwd=scratch)
    assert result.exit_code() in {0, 1, 2}
    assert len(result.errors) + len(result.files) == 1
    for error in result.errors:
        assert error.file == "damaged.json" and error.message


def test_the_seeds_cover_the_fixture_templates() -> None:
    assert len(SEEDS) >= 20
