"""Property-based: random, mutated and hostile configs never raise anything but ConfigError, never
hang, and the CLI never shows a traceback: always a valid config or a clean error with exit code
2. And every config validate accepts synthesizes (a small sample here, the large run in
`make fuzz`)."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from config_cases import config_documents, synthesize_together
from deployline.cli import app
from deployline.config import ConfigError, DeploylineConfig, load_config, parse_config_text
from deployline.naming import Namer

ROOT = Path(__file__).resolve().parent.parent
#: `make fuzz` multiplies every example count here (DEPLOYLINE_FUZZ_SCALE); `make test` runs 1x.
SCALE = int(os.environ.get("DEPLOYLINE_FUZZ_SCALE", "1"))
EXAMPLE: dict[str, Any] = yaml.safe_load((ROOT / "deployline.yaml").read_text())

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.sampled_from(["", "rolling", "blue_green", "github", "high", "0.0.0.0/0", "/health"]),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(max_size=12), children, max_size=4),
    ),
    max_leaves=12,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


ALL_PATHS = _paths(EXAMPLE)[1:]


@st.composite
def mutated_configs(draw: st.DrawFn) -> dict[str, Any]:
    config = copy.deepcopy(EXAMPLE)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        path = draw(st.sampled_from(ALL_PATHS))
        parent: Any = config
        try:
            for part in path[:-1]:
                parent = parent[part]
            key = path[-1]
            action = draw(st.sampled_from(["replace", "delete", "rename"]))
            if action == "replace":
                parent[key] = draw(values)
            elif action == "delete":
                del parent[key]
            elif isinstance(parent, dict):
                parent[draw(st.text(min_size=1, max_size=10))] = parent.pop(key)
        except (KeyError, IndexError, TypeError):
            continue
    return config


def _load(text: str) -> None:
    try:
        result = parse_config_text(text, "fuzz.yaml")
    except ConfigError as exc:
        assert exc.problems, "a ConfigError must carry at least one problem"
        for problem in exc.problems:
            assert problem.file == "fuzz.yaml"
            assert problem.message
    else:
        assert isinstance(result, DeploylineConfig)


@settings(max_examples=150 * SCALE, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_configs())
def test_mutated_configs_load_or_fail_cleanly(config: dict[str, Any]) -> None:
    _load(yaml.safe_dump(config, allow_unicode=True))


@settings(max_examples=100 * SCALE, deadline=None)
@given(values)
def test_random_documents_load_or_fail_cleanly(document: Any) -> None:
    _load(yaml.safe_dump(document, allow_unicode=True))


@settings(max_examples=100 * SCALE, deadline=None)
@given(st.text(max_size=200))
def test_random_text_loads_or_fails_cleanly(text: str) -> None:
    _load(text)


@settings(
    max_examples=40 * SCALE,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(mutated_configs())
def test_cli_never_shows_a_traceback(tmp_path: Path, config: dict[str, Any]) -> None:
    path = tmp_path / "deployline.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    result = CliRunner().invoke(app, ["validate", "--config", str(path)])
    assert result.exit_code in (0, 2), result.output
    assert "Traceback" not in result.output
    if result.exception is not None:
        assert isinstance(result.exception, SystemExit)


# --------------------------------------------------------------------------------------------
# Hostile files: refused with a clear error, fast, whatever their shape
# --------------------------------------------------------------------------------------------


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    """The billion-laughs document: each level lists the previous one `width` times."""
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(1, levels):
        refs = ",".join([f"*a{level - 1}"] * width)
        lines.append(f"a{level}: &a{level} [{refs}]")
    return "\n".join(lines) + "\n"


def _refused_in_time(text: str, seconds: float = 1.0) -> ConfigError:
    """The refusal of `text`, which must cost under `seconds` of this process's CPU time (not
    wall time: a loaded machine or a second test worker would make that flaky; the bound is
    on the work the loader does)."""
    started = time.process_time()
    with pytest.raises(ConfigError) as caught:
        parse_config_text(text, "hostile.yaml")
    assert time.process_time() - started < seconds
    return caught.value


def test_a_500_byte_alias_bomb_is_refused_at_once() -> None:
    text = alias_bomb()
    assert len(text) <= 500
    (problem,) = _refused_in_time(text).problems
    assert problem.line == 5 and problem.field == ""
    assert problem.message.startswith("this value holds 66,430 values once its YAML aliases")
    assert "deployline reads at most 10,000" in problem.message


def test_a_self_referencing_alias_is_refused() -> None:
    (problem,) = _refused_in_time("service: &s [a, *s]\n").problems
    assert problem.message.startswith("a YAML alias refers to a value that contains it")


def test_deep_nesting_is_refused_without_recursing() -> None:
    (problem,) = _refused_in_time("service: " + "[" * 5_000 + "]" * 5_000 + "\n").problems
    assert problem.line == 1 and "YAML syntax error: exceeded maximum nesting depth" in str(problem)
    (problem,) = _refused_in_time("service: " + "[" * 40 + "]" * 40 + "\n").problems
    assert problem.message == "nests more than 32 levels deep; deployline.yaml needs 6"


def test_a_file_of_too_many_values_is_refused() -> None:
    text = "tags:\n" + "".join(f"  k{i}: v\n" for i in range(6_000))
    (problem,) = _refused_in_time(text).problems
    assert problem.message.startswith("the file holds more than 10,000 values")


def test_a_huge_value_is_reported_shortly(tmp_path: Path) -> None:
    text = (ROOT / "deployline.yaml").read_text().replace("/health", "/" + "h" * 900_000, 1)
    (problem,) = _refused_in_time(text).problems
    assert problem.field == "environments[0].health_check_path"
    assert problem.message.startswith("must be at most 1024 characters, found '/hhhh")
    assert len(problem.message) < 200


def test_a_file_over_1_mb_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "deployline.yaml"
    path.write_bytes(b"# padding\n" * 1_048_577)  # 10 MB
    started = time.process_time()
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert time.process_time() - started < 1.0  # CPU time, as in _refused_in_time
    (problem,) = caught.value.problems
    assert problem.message.startswith("is 10,485,770 bytes; deployline reads at most 1,000,000")


def test_an_endless_file_is_refused_after_1_mb() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config("/dev/zero")
    (problem,) = caught.value.problems
    assert problem.message.startswith("is larger than 1,000,000 bytes")


def test_anchors_and_merge_keys_within_the_bounds_are_fine() -> None:
    text = (
        "service: orders\nproject: shop\nsource: {type: s3}\n"
        "environments:\n"
        "  - &staging {name: staging, cpu: 512, memory: 1024, ingress_cidrs: [10.0.0.0/8],\n"
        "      plain_http: true}\n"
        "  - <<: *staging\n    name: production\n    approval: true\n"
    )
    _, production = parse_config_text(text).environments
    assert (production.name, production.cpu, production.ingress_cidrs) == (
        "production",
        512,
        ["10.0.0.0/8"],
    )


@pytest.mark.parametrize("case", ["bomb", "10mb"])
def test_the_command_exits_2_in_under_2_seconds(tmp_path: Path, case: str) -> None:
    """The issue's measure, end to end: a new process, `deployline validate`, exit 2."""
    path = tmp_path / "deployline.yaml"
    if case == "bomb":
        path.write_text(alias_bomb())
    else:
        path.write_bytes(b"a: b\n" * 2_097_152)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "deployline.cli", "validate", "--config", str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: 1 problem in the configuration:")
    assert "Traceback" not in done.stderr
    assert elapsed < 2.0, f"{elapsed:.2f} s"


_ANCHORED = st.recursive(
    st.sampled_from(["x", "1", "true", "null", "[]", "{}"]),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(lambda items: "[" + ", ".join(items) + "]"),
        st.lists(st.tuples(st.sampled_from("abcdef"), inner), max_size=3).map(
            lambda pairs: "{" + ", ".join(f"{k}{i}: {v}" for i, (k, v) in enumerate(pairs)) + "}"
        ),
    ),
    max_leaves=20,
)


@st.composite
def aliased_documents(draw: st.DrawFn) -> str:
    """Documents whose values reuse earlier anchors, nested and repeated: small files that may
    expand a lot."""
    lines = []
    for level in range(draw(st.integers(1, 8))):
        anchors = [f"*n{i}" for i in range(level)]
        values = st.one_of(_ANCHORED, st.sampled_from(anchors)) if anchors else _ANCHORED
        items = draw(st.lists(values, min_size=1, max_size=10))
        lines.append(f"k{level}: &n{level} [{', '.join(items)}]")
    return "\n".join(lines) + "\n"


@settings(max_examples=150 * SCALE, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(aliased_documents())
def test_aliased_documents_load_or_fail_cleanly_and_fast(text: str) -> None:
    _load(text)


# --------------------------------------------------------------------------------------------
# Every config validate accepts synthesizes
# --------------------------------------------------------------------------------------------
#
# Each example draws CONFIGS_PER_APP whole documents over every setting (tests/config_cases.py;
# about 80% validate), and synthesizes the accepted ones together in one CDK app: about 1 s per
# config. `make test` runs one example; `make fuzz` sets DEPLOYLINE_FUZZ_EXAMPLES (and
# DEPLOYLINE_FUZZ_CONFIGS) for the large run.

FUZZ_EXAMPLES = int(os.environ.get("DEPLOYLINE_FUZZ_EXAMPLES", "1"))
CONFIGS_PER_APP = int(os.environ.get("DEPLOYLINE_FUZZ_CONFIGS", "5"))


@settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@given(st.lists(config_documents(), min_size=CONFIGS_PER_APP, max_size=CONFIGS_PER_APP))
def test_every_config_validate_accepts_synthesizes(
    tmp_path_factory: pytest.TempPathFactory, documents: list[dict[str, Any]]
) -> None:
    accepted = []
    for index, document in enumerate(documents):
        document["service"] = f"fz{index}-{document['service']}"[:28].rstrip("-")
        try:
            accepted.append(parse_config_text(yaml.safe_dump(document), f"fuzz{index}.yaml"))
        except ConfigError as exc:
            assert exc.problems and all(p.message for p in exc.problems)
    assume(accepted)
    outdir = tmp_path_factory.mktemp("fuzz") / "cdk.out"
    synthesized = synthesize_together(accepted, outdir)
    for config in accepted:
        prefix = config.naming.prefix
        expected = {
            Namer(config.service, env, prefix).stack_name()
            for env in [config.naming.pipeline_environment, *(e.name for e in config.environments)]
        }
        assert expected <= set(synthesized.templates), (config.service, sorted(expected))
