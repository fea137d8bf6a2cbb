"""The sample service (examples/payment-processor): its own tests pass inside this suite,
through `run-local test` (the pipeline's test stage), and it is what deployline.yaml says it is.

The module installs the sample's pinned requirements once, into one virtualenv, then serves the
app with gunicorn from it.
"""

from __future__ import annotations

import json
import os
import re
import runpy
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from deployline.config import DeploymentType, load_config
from deployline.local_runner import EXIT_PASSED, LocalRunResult, run_local

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "payment-processor"
SAMPLE_CONFIG = SAMPLE / "deployline.yaml"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sample")


@pytest.fixture(scope="module")
def test_run(workspace: Path) -> LocalRunResult:
    """`deployline run-local test` on a copy of the sample (its tests, the pipeline's way)."""
    repo = workspace / "repo"
    shutil.copytree(
        SAMPLE,
        repo / "examples" / "payment-processor",
        ignore=shutil.ignore_patterns("reports", "__pycache__", ".pytest_cache", ".coverage"),
    )
    return run_local(
        "test",
        config_path=repo / "examples" / "payment-processor" / "deployline.yaml",
        workdir=repo,
        reports_dir=workspace / "reports",
        venv_dir=workspace / "venv",
        console=Console(stderr=True, quiet=True),
    )


def test_the_sample_tests_pass_in_the_pipelines_test_stage(test_run: LocalRunResult) -> None:
    failed = test_run.failed_step
    assert test_run.exit_code == EXIT_PASSED, failed and failed.output
    assert test_run.collected == ("junit.xml", "coverage.xml")
    suite = ET.parse(test_run.reports_dir / "junit.xml").getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")  # type: ignore[assignment]
    assert suite is not None
    assert int(suite.get("tests", "0")) >= 40
    assert (suite.get("failures"), suite.get("errors"), suite.get("skipped")) == ("0", "0", "0")
    names = {case.get("name") for case in suite.iter("testcase")}
    assert {"test_health_answers_ok", "test_concurrent_refunds_never_exceed_the_amount"} <= names


def test_the_sample_keeps_its_coverage_floor(test_run: LocalRunResult) -> None:
    coverage = ET.parse(test_run.reports_dir / "coverage.xml").getroot()
    assert float(coverage.get("line-rate", "0")) >= 0.9
    assert float(coverage.get("branch-rate", "0")) >= 0.8
    covered = {c.get("filename") for c in coverage.iter("class")}
    assert {"payments.py", "service.py", "structured_logging.py"} <= {
        Path(str(f)).name for f in covered
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _request(url: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


@pytest.fixture(scope="module")
def served(test_run: LocalRunResult, workspace: Path) -> Iterator[tuple[str, Path, Path]]:
    """gunicorn serving a copy of the sample with its container settings; yields the URL, the
    code directory and HOME, both of which must stay untouched."""
    assert test_run.exit_code == EXIT_PASSED
    code = workspace / "srv"
    shutil.copytree(
        SAMPLE,
        code,
        ignore=shutil.ignore_patterns("tests", "reports", "__pycache__", ".pytest_cache"),
    )
    home = workspace / "home"
    home.mkdir()
    port = _free_port()
    env = {
        "PATH": f"{workspace / 'venv' / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(home),
        "TMPDIR": str(workspace / "tmp"),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    (workspace / "tmp").mkdir()
    proc = subprocess.Popen(
        [
            str(workspace / "venv" / "bin" / "gunicorn"),
            "--config",
            "gunicorn.conf.py",
            "--bind",
            f"127.0.0.1:{port}",
            "--worker-tmp-dir",
            env["TMPDIR"],
            "wsgi:application",
        ],
        cwd=code,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if _request(f"{url}/health")[0] == 200:
                break
        except OSError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail(f"gunicorn did not answer: {proc.communicate()[0].decode()}")
    yield url, code, home
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)


def test_gunicorn_serves_health_and_the_payment_api(served: tuple[str, Path, Path]) -> None:
    url, _, _ = served
    assert _request(f"{url}/health") == (200, {"status": "ok"})
    status, payment = _request(
        f"{url}/payments",
        {"amount": 1999, "currency": "GBP", "card_token": "tok_" + "a1" * 10},
    )
    assert status == 201 and payment["status"] == "authorized"
    for _ in range(6):  # several reads: every one must find it, whichever thread answers
        assert _request(f"{url}/payments/{payment['id']}") == (200, payment)
    status, refunded = _request(f"{url}/payments/{payment['id']}/refunds", {"amount": 999})
    assert status == 200 and refunded["status"] == "partially_refunded"
    assert _request(f"{url}/payments", {"amount": -1})[0] == 400


def test_the_server_writes_nothing_beside_its_code_or_in_home(
    served: tuple[str, Path, Path],
) -> None:
    url, code, home = served
    before = sorted(str(p.relative_to(code)) for p in code.rglob("*"))
    _request(f"{url}/health")
    assert list(home.iterdir()) == []  # gunicorn's control socket would go to ~/.gunicorn
    assert sorted(str(p.relative_to(code)) for p in code.rglob("*")) == before
    assert not list(code.rglob("__pycache__"))


# --------------------------------------------------------------------------------------------
# What the files say
# --------------------------------------------------------------------------------------------


def _stages(dockerfile: str) -> dict[str, list[str]]:
    """Dockerfile instructions (continuations joined), per stage name."""
    text = re.sub(r"\\\n\s*", " ", dockerfile)
    stages: dict[str, list[str]] = {}
    current = "preamble"
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = re.match(r"FROM\s+\S+\s+AS\s+(\S+)", line, re.IGNORECASE)
        if match:
            current = match.group(1)
        stages.setdefault(current, []).append(line)
    return stages


def test_the_dockerfile_builds_in_two_stages_and_runs_as_a_non_root_user() -> None:
    stages = _stages((SAMPLE / "Dockerfile").read_text())
    assert list(stages) == ["preamble", "builder", "runtime"]
    assert any(re.search(r"python:3\.\d+-slim", line) for line in stages["preamble"])
    builder, runtime = "\n".join(stages["builder"]), "\n".join(stages["runtime"])
    assert "pip install --no-compile -r requirements.txt" in builder
    assert "pip install" not in runtime  # dependencies come from the builder
    assert "COPY --from=builder /opt/venv /opt/venv" in runtime
    user = next(line for line in stages["runtime"] if line.startswith("USER "))
    assert user.split()[1].split(":")[0] not in {"0", "root"}
    assert "EXPOSE 8080" in stages["runtime"]
    healthcheck = next(line for line in stages["runtime"] if line.startswith("HEALTHCHECK"))
    assert "http://127.0.0.1:8080/health" in healthcheck
    cmd = json.loads(next(line for line in stages["runtime"] if line.startswith("CMD "))[4:])
    assert cmd[0] == "gunicorn" and "0.0.0.0:8080" in cmd and "wsgi:application" in cmd
    assert "PYTHONDONTWRITEBYTECODE=1" in runtime  # nothing written at run time
    assert "compileall" in builder


def test_the_image_context_leaves_tests_and_dev_files_out_but_keeps_what_it_copies() -> None:
    ignored = {
        line.strip()
        for line in (SAMPLE / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {"tests", "requirements-dev.txt", ".venv", "reports"} <= ignored
    copied = re.findall(r"^COPY (?!--from)(.+) \S+$", (SAMPLE / "Dockerfile").read_text(), re.M)
    sources = {src for line in copied for src in line.split()}
    assert sources == {"requirements.txt", "app", "wsgi.py", "gunicorn.conf.py"}
    assert not sources & ignored
    assert all((SAMPLE / src).exists() for src in sources)


def test_requirements_are_pinned_exactly() -> None:
    pins = {}
    for name in ("requirements.txt", "requirements-dev.txt"):
        lines = (SAMPLE / name).read_text().splitlines()
        entries = [line for line in lines if line.strip() and not line.startswith("#")]
        assert entries, name
        for entry in entries:
            match = re.fullmatch(r"([a-z0-9][a-z0-9._-]*)==(\d+(?:\.\d+)+)", entry)
            assert match, f"{name}: {entry!r} is not pinned as name==version"
            pins[match.group(1)] = name
    assert pins["flask"] == pins["gunicorn"] == "requirements.txt"
    assert pins["pytest"] == pins["pytest-cov"] == "requirements-dev.txt"


def test_gunicorn_settings_fit_a_read_only_container_behind_a_load_balancer() -> None:
    settings = runpy.run_path(str(SAMPLE / "gunicorn.conf.py"))
    assert settings["worker_tmp_dir"] == "/tmp"
    assert settings["control_socket_disable"] is True
    assert settings["accesslog"] is None  # the app logs requests as JSON itself
    assert settings["keepalive"] > 60  # outlives the load balancer's idle timeout
    assert settings["graceful_timeout"] < 30  # finishes before ECS's SIGKILL
    assert settings["worker_class"] == "gthread"
    assert settings["workers"] == 1  # the payment store is in-process: one worker sees them all


def test_the_sample_config_points_at_the_sample_and_matches_the_root_shape() -> None:
    config = load_config(SAMPLE_CONFIG)
    root = load_config(ROOT / "deployline.yaml")
    assert (ROOT / config.build.context / config.build.dockerfile).is_file()
    assert config.source.type == "github"
    assert config.source.paths == ["examples/payment-processor/**"]  # type: ignore[union-attr]
    assert config.security.paths == ["examples/payment-processor"]
    assert [(e.name, e.deployment, e.approval) for e in config.environments] == [
        (e.name, e.deployment, e.approval) for e in root.environments
    ]
    production = config.environment("production")
    assert production.deployment is DeploymentType.BLUE_GREEN and production.approval
    for env in config.environments:
        assert env.container_port == 8080 and env.health_check_path == "/health"
    assert config.test.reports.junit == "examples/payment-processor/reports/junit.xml"


def _pypi_json_api_reachable() -> bool:
    """pip-audit asks the per-release endpoint (/pypi/<name>/<version>/json), which some
    mirrors do not serve even when they serve /pypi/<name>/json."""
    pinned = next(
        line.split("==")
        for line in (SAMPLE / "requirements.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    name, version = pinned[0].strip(), pinned[1].strip()
    try:
        with urllib.request.urlopen(
            f"https://pypi.org/pypi/{name}/{version}/json", timeout=5
        ) as response:
            return bool(response.status == 200)
    except (OSError, ValueError):
        return False


@pytest.mark.slow
def test_pip_audit_finds_no_known_vulnerability_in_the_pins() -> None:
    if not _pypi_json_api_reachable():
        pytest.skip("pip-audit needs PyPI's JSON API, which this machine cannot reach")
    from deployline.runtime.security_gate import evaluate

    result = subprocess.run(
        [
            str(ROOT / ".venv" / "bin" / "pip-audit"),
            "-r",
            str(SAMPLE / "requirements.txt"),
            "-r",
            str(SAMPLE / "requirements-dev.txt"),
            "--format",
            "json",
            "--progress-spinner",
            "off",
        ],
        capture_output=True,
        timeout=600,
        check=False,
    )
    verdict = evaluate({"pip-audit.json": result.stdout}, threshold="low", scanners=["pip-audit"])
    assert verdict.passed, verdict.render_text()
