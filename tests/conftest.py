"""Test tiers: `make test` runs every test, `make test-fast` (`pytest -m "not slow"`) the tests
that neither synthesize a CDK app nor start a peer (cfn-lint, checkov, the CDK CLI).

A test is marked where it is written (`@pytest.mark.synth`, and `slow` follows) or here: from
where it is (a module whose every test synthesizes), from the fixtures it uses (the module
fixtures that synthesize once for their module, by the module or conftest directory that
defines them), or by name:

- `synth`: it synthesizes a CDK app (App.synth, Template.from_stack), or reads a fixture that does;
- `slow`:  every `synth` test, and the tests that run a peer or a whole command in a process.

The marking is checked as the tests run: a test without `synth` that synthesizes (in its own
setup or call, or through a fixture that synthesized for another test) fails and says which
rule to add it to, and so does a test without `slow` that starts cfn-lint, checkov or Node.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable, Generator
from pathlib import PurePath
from typing import Any

import pytest

#: Modules whose every test synthesizes or reads a module synth (by path from the repository).
SYNTH_MODULES = frozenset(
    {
        "tests/test_compliance.py",
        "tests/test_multi_account.py",
        "tests/constructs/test_container_pipeline_plain_cdk.py",
        "tests/deploy/test_against_moto.py",
    }
)

#: Fixtures that synthesize, as "<where it is defined>::<name>" (a module, or a conftest's
#: directory); a test that uses one is `synth`.
SYNTH_FIXTURES = frozenset(
    {
        "tests/stacks/test_pipeline_stack.py::synth",
        "tests/stacks/test_environment_stack.py::synth",
        "tests/stacks/test_environment_stack.py::checkov",
        "tests/test_synth.py::synthesized",
        "tests/test_cli.py::init_synthesized",
        "tests/checks/test_cdk_plugin.py::synthesized",
        "tests/constructs/test_deployment_history.py::synth",
        "tests/constructs/test_deployment_events.py::synth",
        "tests/constructs/test_notifications.py::synth",
        "tests/test_diagram.py::example_mermaid",
        "tests/test_synth_cache.py::real",  # `deployline synth` of the example in a process
    }
)

#: Tests that synthesize in their own body, as "<module>::<test function>".
SYNTH_TESTS = frozenset(
    {
        "tests/test_synth.py::test_cdk_app_entry_point_synthesizes_for_the_cdk_cli",
        "tests/test_cli.py::test_ctrl_c_during_a_real_synth_leaves_the_previous_output",
        "tests/checks/test_check_cli.py::test_synth_of_the_example_checks_what_it_wrote_and_no_check_skips_it",
        "tests/test_config_fuzz.py::test_every_config_validate_accepts_synthesizes",
        "tests/constructs/test_notifications.py::test_accepts_an_https_endpoint_without_emails",
    }
)

#: Modules whose every test runs a peer (the CDK CLI, npm, Node).
PEER_MODULES = frozenset({"tests/deploy/test_cdk.py"})

#: Fixtures that start a peer or a command in a process of its own, and take seconds, by where
#: they are defined.
SLOW_FIXTURES = frozenset(
    {
        "tests/deploy::cdk_cli",
        "tests/test_sample_service.py::test_run",  # the sample's tests in a fresh virtualenv
    }
)

#: Tests that run a peer, or a whole command or tool in a process of its own, and take seconds.
SLOW_TESTS = frozenset(
    {
        "tests/test_local_runner.py::test_scan_runs_bandit_for_real_on_the_sample_and_passes",
        "tests/test_local_runner.py::test_a_trivy_on_path_is_used_and_its_report_judged",
        "tests/test_local_runner.py::test_commands_run_in_a_fresh_virtualenv_first_on_path",
        "tests/test_local_runner.py::test_scan_fails_on_injected_flaws_and_names_them",
    }
)

#: The modules that take longest (several apps synthesized, the peers run on them, deploys through
#: the CDK CLI), run first: `make test`'s workers take a module at a time, so one of these
#: started last would keep one worker busy long after the other has finished.
FIRST = (
    "tests/stacks/test_pipeline_stack.py",
    "tests/deploy/test_against_moto.py",
    "tests/stacks/test_environment_stack.py",
    "tests/test_cli.py",
)

#: Programs that are peers: a test that starts one is `slow`.
PEERS = frozenset({"checkov", "cfn-lint", "node", "npm", "npx", "cdk"})


def _module(item: pytest.Item) -> str:
    return item.nodeid.split("::", 1)[0]


def _test(item: pytest.Item) -> str:
    return f"{_module(item)}::{getattr(item, 'originalname', item.name)}"


def _fixtures(item: pytest.Item) -> set[str]:
    """Every fixture the test uses, directly or through other fixtures, by where it is defined."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return set()
    return {f"{d.baseid}::{d.argname}" for defs in info.name2fixturedefs.values() for d in defs}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # the longest modules first; the others, and the tests in each module, keep their order
    items.sort(key=lambda item: FIRST.index(m) if (m := _module(item)) in FIRST else len(FIRST))
    for item in items:
        fixtures = _fixtures(item)
        synth = (
            item.get_closest_marker("synth") is not None  # marked where it is written
            or _module(item) in SYNTH_MODULES
            or _test(item) in SYNTH_TESTS
            or bool(fixtures & SYNTH_FIXTURES)
        )
        if synth:
            item.add_marker(pytest.mark.synth)
        if (
            synth
            or _module(item) in PEER_MODULES
            or _test(item) in SLOW_TESTS
            or fixtures & SLOW_FIXTURES
        ):
            item.add_marker(pytest.mark.slow)


# --- the check of the marking, as the tests run ----------------------------------------------

_current: list[set[str]] = []  # what the test (or fixture) being set up or run did
_by_fixture: dict[str, set[str]] = {}  # what each fixture did when it was set up
_hooked: set[str] = set()


def _saw(what: str) -> None:
    for seen in _current:
        seen.add(what)


def _wrap(owner: Any, name: str, what: str, kind: Callable[[Any], Any] | None = None) -> None:
    original = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _saw(what)
        return original(*args, **kwargs)

    setattr(owner, name, kind(wrapper) if kind else wrapper)


def _hook_cdk() -> None:
    """Watch synthesis once aws_cdk is imported (importing it here would slow every run)."""
    if "cdk" in _hooked or "aws_cdk" not in sys.modules:
        return
    _hooked.add("cdk")
    import aws_cdk
    from aws_cdk import assertions

    for cls in {aws_cdk.App, aws_cdk.Stage}:
        _wrap(cls, "synth", "synth: a CDK app was synthesized")
    _wrap(assertions.Template, "from_stack", "synth: Template.from_stack", staticmethod)


def _hook_peers() -> None:
    if "peers" in _hooked:
        return
    _hooked.add("peers")
    popen_init = subprocess.Popen.__init__

    def init(self: subprocess.Popen[Any], args: Any, *rest: Any, **kwargs: Any) -> None:
        argv = [args] if isinstance(args, str | bytes | PurePath) else list(args)
        program = PurePath(str(argv[0])).name if argv else ""
        if program in PEERS:
            _saw(f"peer: {program}")
        popen_init(self, args, *rest, **kwargs)

    subprocess.Popen.__init__ = init  # type: ignore[method-assign]
    try:
        from cfnlint.runner import Runner
    except ImportError:  # pragma: no cover - cfn-lint is a dev dependency
        return
    _wrap(Runner, "run", "peer: cfn-lint")
    _wrap(Runner, "validate_template", "peer: cfn-lint")


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef: pytest.FixtureDef[Any]) -> Generator[None, Any, Any]:
    _hook_cdk()
    seen: set[str] = set()
    _current.append(seen)
    try:
        return (yield)
    finally:
        _current.pop()  # nested: the last one pushed is this one
        if seen:
            key = f"{fixturedef.baseid}::{fixturedef.argname}"
            _by_fixture.setdefault(key, set()).update(seen)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, Any, Any]:
    _hook_cdk()
    _hook_peers()
    seen: set[str] = set()
    _current.append(seen)
    try:
        return (yield)
    finally:
        _current.pop()  # nested: the last one pushed is this one


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, Any, Any]:
    _hook_cdk()
    result = yield
    seen = set(_current[-1]) if _current else set()
    for fixture in _fixtures(item):
        seen |= _by_fixture.get(fixture, set())
    unmarked = {
        what
        for what in seen
        if (what.startswith("synth") and item.get_closest_marker("synth") is None)
        or item.get_closest_marker("slow") is None
    }
    if unmarked:
        pytest.fail(
            f"{_test(item)} is not marked for what it does ({', '.join(sorted(unmarked))}): "
            "add it, or the fixture that does it, to the tiers in tests/conftest.py",
            pytrace=False,
        )
    return result


# --- stable test IDs ---------------------------------------------------------------------------

_TOKEN = re.compile(r"\$\{Token\[([^\]]*?)\.\d+\]\}")


def pytest_make_parametrize_id(val: object) -> str | None:
    """A CDK token's text holds a number that depends on how many tokens were made before it
    (so on the order modules are collected in): leave it out of test IDs, which must be the same
    in every process (pytest-xdist's workers compare them)."""
    if isinstance(val, str) and _TOKEN.search(val):
        return _TOKEN.sub(r"${Token[\1]}", val)
    return None
