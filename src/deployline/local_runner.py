"""`deployline run-local`: run a pipeline stage's commands on the developer's machine.

The commands come from `deployline.stages`, the same definition the CodeBuild buildspecs come
from. They run like CodeBuild runs them:

- in a scratch copy of the repository (the files `deployline.source_tree` finds: tracked and
  untracked, minus what .gitignore excludes), so the user's tree is never modified;
- in a fresh virtualenv put first on PATH (like CodeBuild's clean container): the stage's own
  `pip install` commands install there;
- in one bash shell, so a `cd` or a variable set by one command is seen by the next; the first
  failing command stops the stage, and its full output is shown.

Steps that need the pipeline's AWS context (ECR login, push, the deployed task definition) are
skipped and say why; steps that need a Docker engine run when `docker info` answers. When none
answers they are skipped too, and the stage does not pass: it ends "skipped" (build) or
"incomplete" with exit status 3, so a script never takes an image that was not built for one that
was. The files the pipeline would collect (test reports, security reports, deployment files) are
copied into a reports directory. `scan` then applies the pipeline's security gate
(`deployline.runtime.security_gate.evaluate`) and exits as the pipeline would: 0 pass, 1 fail,
2 for usage or configuration errors, 3 when steps the stage needs were skipped for want of
Docker. A configured scanner that is not installed and that the stage cannot install (Trivy is a
separate binary) is an error, never a silent pass; with
`--skip-scanner NAME` the run goes on and the verdict shows the skip.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, BinaryIO, Literal

import typer

from deployline import stages as stage_defs
from deployline.config import ConfigError, DeploylineConfig, load_config
from deployline.source_tree import source_files

if TYPE_CHECKING:
    from rich.console import Console
    from rich.status import Status

    from deployline.runtime.security_gate import GateVerdict

#: Exit statuses, as the pipeline would give them.
EXIT_PASSED = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
#: Nothing failed, but steps the stage needs were skipped (no Docker engine): not a pass.
EXIT_INCOMPLETE = 3
#: Why run-local skips a step that needs Docker.
NO_DOCKER = "no Docker engine answers `docker info`"

#: Scanners whose executable must already be on PATH (the pipeline installs them from a release
#: archive; locally we do not download binaries), with how to install each.
PATH_SCANNERS: Mapping[str, str] = {
    "trivy": (
        "install Trivy (https://trivy.dev/latest/getting-started/installation/: e.g. "
        "`brew install trivy`, your distribution's trivy package, or the release archive; the "
        f"pipeline pins {stage_defs.TRIVY_VERSION})"
    ),
}

#: Variables of the developer's shell that would leak into a clean build.
_DROPPED_ENV = (
    "VIRTUAL_ENV",
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONSTARTUP",
    "PIP_REQUIRE_VIRTUALENV",
    "PIP_USER",
    "PIP_TARGET",
    "PIP_PREFIX",
    "CONDA_PREFIX",
    "CONDA_DEFAULT_ENV",
    "PYTEST_ADDOPTS",
    "__PYVENV_LAUNCHER__",
)
#: Name of the verdict file `scan` writes next to the reports.
VERDICT_FILE = "gate-verdict.json"
_LOCAL_REPOSITORY = "deployline-local"


class StageChoice(StrEnum):
    """The stages `run-local` can run."""

    TEST = "test"
    SCAN = "scan"
    BUILD = "build"


class LocalRunError(Exception):
    """A usage or environment problem found before anything runs (exit 2)."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


StepStatus = Literal["passed", "failed", "skipped", "not run"]


@dataclass(frozen=True)
class PlannedStep:
    """A step and whether it runs here; `note` says why it does not."""

    step: stage_defs.Step
    run: bool
    note: str = ""


@dataclass(frozen=True)
class StepOutcome:
    """What happened to one step."""

    name: str
    command: str
    status: StepStatus
    seconds: float = 0.0
    exit_code: int | None = None
    note: str = ""
    output: str = ""


@dataclass(frozen=True)
class LocalRunResult:
    """The result of `run_local`.

    Attributes:
        stage: the stage that ran.
        exit_code: 0 passed, 1 a command or the security gate failed, 3 nothing failed but
            steps the stage needs were skipped for want of a Docker engine (`without_docker`).
        reports_dir: where the collected files are.
        collected: names of the files copied into `reports_dir`.
        missing: outputs the stage did not produce (pipeline-only steps, or a failure).
        steps: every step's outcome, in order.
        verdict: the security gate's verdict (scan only; None when the stage failed first).
        skipped_scanners: scanners skipped on request.
        scratch: the scratch directory when kept (`keep=True`), else None.
        notes: remarks shown to the user (docker absent, local image missing, ...).
    """

    stage: StageChoice
    exit_code: int
    reports_dir: Path
    collected: tuple[str, ...]
    missing: tuple[str, ...]
    steps: tuple[StepOutcome, ...]
    verdict: GateVerdict | None = None
    skipped_scanners: tuple[str, ...] = ()
    scratch: Path | None = None
    notes: tuple[str, ...] = ()

    @property
    def failed_step(self) -> StepOutcome | None:
        return next((s for s in self.steps if s.status == "failed"), None)

    @property
    def without_docker(self) -> tuple[str, ...]:
        """The steps skipped because no Docker engine answered: what this run did not do."""
        return tuple(s.name for s in self.steps if s.status == "skipped" and s.note == NO_DOCKER)


# --------------------------------------------------------------------------------------------
# Planning
# --------------------------------------------------------------------------------------------


def plan(
    stage: stage_defs.StageSpec, *, docker: bool, skip_scanners: Collection[str] = ()
) -> list[PlannedStep]:
    """Every step of `stage`, in buildspec order, marked to run here or skipped with a reason."""
    planned = []
    for step in stage.steps:
        if step.scanner is not None and step.scanner in skip_scanners:
            planned.append(PlannedStep(step, False, f"--skip-scanner {step.scanner}"))
        elif step.pipeline_only:
            planned.append(PlannedStep(step, False, f"pipeline only: {step.local_note}"))
        elif step.needs_docker and not docker:
            planned.append(PlannedStep(step, False, NO_DOCKER))
        else:
            planned.append(PlannedStep(step, True))
    return planned


def docker_available(env: Mapping[str, str] | None = None, timeout: float = 15.0) -> bool:
    """True when a Docker engine answers `docker info` (with the given environment's PATH)."""
    path = (env or os.environ).get("PATH", os.defpath)
    docker = shutil.which("docker", path=path)
    if docker is None:
        return False
    try:
        result = subprocess.run(
            [docker, "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            timeout=timeout,
            env=dict(env) if env is not None else None,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0 and bool(result.stdout.strip())


# --------------------------------------------------------------------------------------------
# The scratch tree and the virtualenv
# --------------------------------------------------------------------------------------------


def find_workdir(config_path: Path) -> Path:
    """The repository that holds the config (git top level), else the config's directory."""
    start = config_path.resolve().parent
    git = shutil.which("git")
    if git is not None:
        result = subprocess.run(
            [git, "-C", str(start), "rev-parse", "--show-toplevel"],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode == 0 and result.stdout.strip():
            return Path(result.stdout.strip())
    return start


def copy_tree(workdir: Path, dest: Path, files: Sequence[Path]) -> int:
    """Copy `files` (relative to `workdir`) into `dest`, keeping modes and symlinks."""
    count = 0
    for rel in files:
        src, target = workdir / rel, dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            os.symlink(os.readlink(src), target)
        else:
            shutil.copy2(src, target)
        count += 1
    return count


def make_venv(path: Path) -> Path:
    """Create (or reuse, when it already holds one) a virtualenv at `path`; returns its bin/."""
    bindir = path / ("Scripts" if os.name == "nt" else "bin")
    if not (bindir / "python").exists():
        result = subprocess.run(
            [sys.executable, "-m", "venv", str(path)], capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise LocalRunError(
                f"could not create a virtualenv at {path}: {result.stderr.strip()}", EXIT_FAILED
            )
    return bindir


def stage_environment(
    *, src: Path, venv_bin: Path, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment the stage's commands see: the user's, minus what would leak into a clean
    build, with the virtualenv first on PATH and CodeBuild's source variables."""
    env = {k: v for k, v in (base if base is not None else os.environ).items()}
    for name in _DROPPED_ENV:
        env.pop(name, None)
    env["PATH"] = os.pathsep.join([str(venv_bin), env.get("PATH", os.defpath)])
    env["VIRTUAL_ENV"] = str(venv_bin.parent)
    env["CODEBUILD_SRC_DIR"] = str(src)
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    env["DEPLOYLINE_LOCAL"] = "1"
    return env


def source_version(workdir: Path) -> str:
    """The commit the tree is at (`git rev-parse HEAD`), or "local" outside git."""
    git = shutil.which("git")
    if git is not None:
        result = subprocess.run(
            [git, "-C", str(workdir), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode == 0 and result.stdout.strip():
            return result.stdout.strip()
    return "local"


# --------------------------------------------------------------------------------------------
# Running the steps in one shell
# --------------------------------------------------------------------------------------------


#: `on_event(kind, index, exit_code, elapsed)`, see `execute`.
EventCallback = Callable[[str, int, int | None, float], None]


def execute(
    steps: Sequence[stage_defs.Step],
    *,
    cwd: Path,
    env: Mapping[str, str],
    logdir: Path,
    timeout_seconds: float | None = None,
    on_event: EventCallback | None = None,
) -> list[StepOutcome]:
    """Run `steps` in order in one bash shell (shared `cd` and variables, as in CodeBuild),
    stopping at the first that fails. Each step's output goes to `logdir/<n>.log` and into its
    outcome. `on_event(kind, index, exit_code, elapsed)` reports "start", "end" and, about twice a
    second while a step runs, "tick". Default: no timeout, no events."""
    logdir.mkdir(parents=True, exist_ok=True)
    read_fd, write_fd = os.pipe()
    script_path = logdir / "stage.sh"
    script_path.write_text(_script(steps, logdir, write_fd), encoding="utf-8")
    bash = shutil.which("bash", path=env.get("PATH")) or shutil.which("bash") or "/bin/bash"
    markers = _Markers(on_event)
    deadline = time.monotonic() + timeout_seconds if timeout_seconds else None
    with (logdir / "shell.log").open("wb") as shell_log:
        proc = subprocess.Popen(
            [bash, "--noprofile", "--norc", str(script_path)],
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=shell_log,
            stderr=subprocess.STDOUT,
            pass_fds=(write_fd,),
            start_new_session=True,
        )
        os.close(write_fd)
        try:
            with os.fdopen(read_fd, "rb", buffering=0) as reader:
                timed_out = _follow(proc, reader, markers, deadline)
        finally:
            if proc.poll() is None:
                _kill_group(proc)
            proc.wait()
    return _outcomes(
        steps,
        logdir,
        markers,
        shell_status=proc.returncode,
        timed_out=timed_out,
        timeout_seconds=timeout_seconds,
    )


class _Markers:
    """What the stage's shell reports on its marker pipe ("start N", "end N STATUS"): when each
    step started and ended, and which one runs now; passed on to `on_event` as it comes."""

    def __init__(self, on_event: EventCallback | None) -> None:
        self.on_event = on_event
        self.started_at: dict[int, float] = {}
        self.ended: dict[int, tuple[int, float]] = {}  # index: (exit status, seconds)
        self.current: int | None = None
        self._buffer = b""

    def feed(self, chunk: bytes) -> None:
        self._buffer += chunk
        while b"\n" in self._buffer:
            line, self._buffer = self._buffer.split(b"\n", 1)
            self._marker(line.decode("ascii", "replace").split())

    def tick(self) -> None:
        if self.current is not None:
            elapsed = time.monotonic() - self.started_at[self.current]
            self._emit("tick", self.current, None, elapsed)

    def _marker(self, parts: list[str]) -> None:
        now = time.monotonic()
        if len(parts) == 2 and parts[0] == "start" and parts[1].isdigit():
            index = int(parts[1])
            self.started_at[index] = now
            self._emit("start", index, None, 0.0)
            self.current = index
        elif len(parts) == 3 and parts[0] == "end" and parts[1].isdigit():
            index = int(parts[1])
            code = int(parts[2]) if parts[2].lstrip("-").isdigit() else 1
            elapsed = now - self.started_at.get(index, now)
            self.ended[index] = (code, elapsed)
            self._emit("end", index, code, elapsed)
            self.current = None

    def _emit(self, kind: str, index: int, code: int | None, elapsed: float) -> None:
        if self.on_event is not None:
            self.on_event(kind, index, code, elapsed)


def _follow(
    proc: subprocess.Popen[bytes], reader: BinaryIO, markers: _Markers, deadline: float | None
) -> bool:
    """Read the markers until the shell has ended and nothing more comes, or until the deadline
    (then stop the shell and all it started). True when the deadline stopped it."""
    open_pipe = True
    while True:
        if open_pipe:
            open_pipe = _read_markers(reader, markers, timeout=0.5)
        else:
            time.sleep(0.1)
        markers.tick()
        # bash is gone; a grandchild may still hold the pipe: stop reading soon
        if proc.poll() is not None and (not open_pipe or not _readable(reader, 0.2)):
            return False
        if deadline is not None and time.monotonic() > deadline:
            _kill_group(proc)
            return True


def _read_markers(reader: BinaryIO, markers: _Markers, *, timeout: float) -> bool:
    """Feed what the pipe gives within `timeout` to `markers`; False once the pipe is closed."""
    if not _readable(reader, timeout):
        return True
    chunk = reader.read(4096)
    markers.feed(chunk)
    return bool(chunk)


def _readable(reader: BinaryIO, timeout: float) -> bool:
    ready, _, _ = select.select([reader], [], [], timeout)
    return bool(ready)


def _outcomes(
    steps: Sequence[stage_defs.Step],
    logdir: Path,
    markers: _Markers,
    *,
    shell_status: int,
    timed_out: bool,
    timeout_seconds: float | None,
) -> list[StepOutcome]:
    """Each step's outcome: passed or failed by its exit status; "not run" after the first
    failure; failed with a note when it started and never ended (the timeout stopped the shell,
    or the command ended it with `exit`: then the shell's own output is added)."""
    outcomes: list[StepOutcome] = []
    for index, step in enumerate(steps):
        if index not in markers.started_at or any(o.status == "failed" for o in outcomes):
            outcomes.append(StepOutcome(step.name, step.command, "not run"))
            continue
        log = _read_log(logdir / f"{index}.log")
        if index in markers.ended:
            code, seconds = markers.ended[index]
            status: StepStatus = "passed" if code == 0 else "failed"
            outcomes.append(StepOutcome(step.name, step.command, status, seconds, code, "", log))
            continue
        seconds = time.monotonic() - markers.started_at[index]
        exit_code: int | None = None
        if timed_out:
            note = f"timed out after {(timeout_seconds or 0) / 60:g} minutes (the stage's timeout)"
        else:
            exit_code, note = shell_status, f"the command ended the shell (exit {shell_status})"
            log += _read_log(logdir / "shell.log")
        outcomes.append(
            StepOutcome(step.name, step.command, "failed", seconds, exit_code, note, log)
        )
    return outcomes


def _script(steps: Sequence[stage_defs.Step], logdir: Path, fd: int) -> str:
    lines = ["# generated by deployline run-local: the stage's commands in one shell"]
    for index, step in enumerate(steps):
        log = shlex.quote(str(logdir / f"{index}.log"))
        lines += [
            f"printf 'start {index}\\n' >&{fd}",
            "{",
            step.command,
            f"}} >{log} 2>&1 </dev/null {fd}>&-",
            "__dl_rc=$?",
            f"printf 'end {index} %d\\n' \"$__dl_rc\" >&{fd}",
            '[ "$__dl_rc" -eq 0 ] || exit "$__dl_rc"',
        ]
    return "\n".join(lines) + "\n"


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Stop the stage's shell and everything it started (its own process group)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _read_log(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def _tail(path: Path, width: int = 80) -> str:
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 2048))
            lines = [ln for ln in f.read().decode("utf-8", "replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    if not lines:
        return ""
    last = " ".join(lines[-1].split())
    return last if len(last) <= width else last[: width - 3] + "..."


# --------------------------------------------------------------------------------------------
# run_local
# --------------------------------------------------------------------------------------------


def run_local(
    stage: StageChoice | str,
    *,
    config_path: Path,
    workdir: Path | None = None,
    skip_scanners: Sequence[str] = (),
    reports_dir: Path | None = None,
    keep: bool = False,
    venv_dir: Path | None = None,
    docker: bool | None = None,
    base_env: Mapping[str, str] | None = None,
    console: Console | None = None,
) -> LocalRunResult:
    """Run one stage locally; see the module docstring.

    Args:
        stage: test, scan or build.
        config_path: the deployline.yaml.
        workdir: the repository root the stage's paths are relative to. Default: the git
            repository that holds the config, else the config's directory.
        skip_scanners: scanners to skip knowingly (scan only); the verdict shows them.
        reports_dir: where the collected files go. Default: a new directory under the system's
            temporary directory (printed).
        keep: keep the scratch copy and virtualenv. Default: deleted afterwards.
        venv_dir: use (or create) this virtualenv instead of a fresh one, e.g. to reuse
            downloads across runs. Default: a fresh one in the scratch directory.
        docker: whether a Docker engine is there. Default: ask `docker info`.
        base_env: the environment to start from. Default: this process's.
        console: where progress goes. Default: standard error.

    Raises:
        ConfigError: the config is invalid.
        LocalRunError: a usage or environment problem (exit 2), found before anything runs.
    """
    from rich.console import Console

    console = console or Console(stderr=True)
    choice = _stage_choice(stage)
    config = load_config(config_path)
    skips = _check_skips(choice, config, skip_scanners)
    root = _source_root(workdir, config_path)
    stage_def = _stage(choice, config)
    env_in = dict(base_env if base_env is not None else os.environ)
    has_docker, notes = _docker_here(stage_def, skips, docker, env_in)
    if choice is StageChoice.SCAN:
        _check_path_scanners(config, skips, env_in)
    out_dir = _fresh_reports_dir(reports_dir, choice, stage_def)

    scratch = Path(tempfile.mkdtemp(prefix=f"deployline-{choice}-"))
    try:
        src = _copy_source(root, scratch / "src", out_dir, console)
        with console.status("Creating a fresh virtualenv"):
            venv_bin = make_venv(venv_dir.resolve() if venv_dir else scratch / "venv")
        env = stage_environment(src=src, venv_bin=venv_bin, base=env_in)
        version = source_version(root)
        env["CODEBUILD_RESOLVED_SOURCE_VERSION"] = version
        notes += _image_variables(env, choice, config, version=version, has_docker=has_docker)
        planned = plan(stage_def, docker=has_docker, skip_scanners=skips)
        outcomes = _run_planned(
            planned, src=src, env=env, logdir=scratch / "logs", stage=stage_def, console=console
        )
        collected, missing = _collect(stage_def, src, out_dir)
        verdict, exit_code = _judge(choice, config, outcomes, out_dir, skips)
    finally:
        if not keep:
            shutil.rmtree(scratch, ignore_errors=True)
    return LocalRunResult(
        stage=choice,
        exit_code=exit_code,
        reports_dir=out_dir,
        collected=tuple(collected),
        missing=tuple(missing),
        steps=tuple(outcomes),
        verdict=verdict,
        skipped_scanners=tuple(skips),
        scratch=scratch if keep else None,
        notes=tuple(notes),
    )


def _stage_choice(stage: StageChoice | str) -> StageChoice:
    try:
        return StageChoice(stage)
    except ValueError:
        raise LocalRunError(
            f"unknown stage {stage!r}; choose one of {[s.value for s in StageChoice]}"
        ) from None


def _source_root(workdir: Path | None, config_path: Path) -> Path:
    root = (workdir or find_workdir(config_path)).resolve()
    if not root.is_dir():
        raise LocalRunError(f"--workdir {root} is not a directory")
    return root


def _docker_here(
    stage: stage_defs.StageSpec, skips: Collection[str], docker: bool | None, env: Mapping[str, str]
) -> tuple[bool, list[str]]:
    """Whether the steps that need Docker run here (`docker info` is asked only when a step
    needs it and `docker` is None), with the note that says so when they cannot."""
    needs_docker = any(
        s.needs_docker and not s.pipeline_only and s.scanner not in skips for s in stage.steps
    )
    has_docker = docker if docker is not None else (needs_docker and docker_available(env))
    if needs_docker and not has_docker:
        return has_docker, [
            f"{NO_DOCKER}: steps that need one are skipped (start Docker to run them)"
        ]
    return has_docker, []


def _fresh_reports_dir(
    reports_dir: Path | None, choice: StageChoice, stage: stage_defs.StageSpec
) -> Path:
    """The reports directory (a new one by default), without the files a previous run left."""
    out_dir = reports_dir or Path(tempfile.mkdtemp(prefix=f"deployline-{choice}-reports-"))
    out_dir = out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in (*_collected_names(stage), VERDICT_FILE):
        (out_dir / name).unlink(missing_ok=True)
    return out_dir


def _copy_source(root: Path, src: Path, reports_dir: Path, console: Console) -> Path:
    """Copy the repository (minus the reports directory) into `src`, a new directory."""
    src.mkdir()
    with console.status("Copying the repository into a scratch directory"):
        files = source_files(root, exclude=[reports_dir])
        copied = copy_tree(root, src, files)
    console.print(f"[dim]Copied {copied} files from {root} into {src}[/]", highlight=False)
    return src


def _image_variables(
    env: dict[str, str],
    choice: StageChoice,
    config: DeploylineConfig,
    *,
    version: str,
    has_docker: bool,
) -> list[str]:
    """Point the image variables of `env` at the local repository: where build puts the image,
    and the image scan scans when Docker has it. Returns the note when it does not."""
    env.pop(stage_defs.REPOSITORY_URI, None)
    env.pop(stage_defs.IMAGE_TAG, None)
    local_repo = f"{_LOCAL_REPOSITORY}/{config.service}"
    if choice is StageChoice.BUILD:
        env[stage_defs.REPOSITORY_URI] = local_repo
    if choice is not StageChoice.SCAN or "trivy" not in config.security.scanners or not has_docker:
        return []
    image = f"{local_repo}:{_tag(version)}"
    if not _local_image_exists(image, env):
        return [
            f"no local image {image}: the image scan is skipped "
            "(run `deployline run-local build` first)"
        ]
    env[stage_defs.REPOSITORY_URI] = local_repo
    env["TRIVY_IMAGE_SRC"] = "docker"
    return []


def _judge(
    choice: StageChoice,
    config: DeploylineConfig,
    outcomes: Sequence[StepOutcome],
    out_dir: Path,
    skips: Sequence[str],
) -> tuple[GateVerdict | None, int]:
    """The security gate's verdict (scan, when no step failed: written next to the reports) and
    the exit status: failed when a step or the gate failed, incomplete when nothing failed but a
    step was skipped for want of Docker."""
    failed = any(o.status == "failed" for o in outcomes)
    verdict = None
    exit_code = EXIT_FAILED if failed else EXIT_PASSED
    if choice is StageChoice.SCAN and not failed:
        verdict = _evaluate(config, out_dir, skips)
        (out_dir / VERDICT_FILE).write_text(
            json.dumps(verdict.to_dict(), indent=2, default=str) + "\n", encoding="utf-8"
        )
        exit_code = EXIT_PASSED if verdict.passed else EXIT_FAILED
    if exit_code == EXIT_PASSED and any(o.note == NO_DOCKER for o in outcomes):
        exit_code = EXIT_INCOMPLETE
    return verdict, exit_code


def _stage(choice: StageChoice, config: DeploylineConfig) -> stage_defs.StageSpec:
    if choice is StageChoice.TEST:
        return stage_defs.test_stage(config)
    if choice is StageChoice.SCAN:
        return stage_defs.scan_stage(config)
    return stage_defs.build_stage(config)


def _check_skips(
    choice: StageChoice, config: DeploylineConfig, skip_scanners: Sequence[str]
) -> list[str]:
    skips = list(dict.fromkeys(skip_scanners))
    if not skips:
        return []
    if choice is not StageChoice.SCAN:
        raise LocalRunError(f"--skip-scanner applies to the scan stage only, not to {choice}")
    known = list(stage_defs.SCANNER_REPORTS)
    unknown = [s for s in skips if s not in known]
    if unknown:
        raise LocalRunError(f"--skip-scanner {unknown[0]!r} is not a scanner; choose from {known}")
    unused = [s for s in skips if s not in config.security.scanners]
    if unused:
        raise LocalRunError(
            f"--skip-scanner {unused[0]} names a scanner that security.scanners does not run "
            f"(it runs {list(config.security.scanners)}); nothing to skip"
        )
    return skips


def _check_path_scanners(
    config: DeploylineConfig, skips: Collection[str], env: Mapping[str, str]
) -> None:
    for scanner, how in PATH_SCANNERS.items():
        if scanner not in config.security.scanners or scanner in skips:
            continue
        if shutil.which(scanner, path=env.get("PATH", os.defpath)) is None:
            raise LocalRunError(
                f"security.scanners runs {scanner}, but no `{scanner}` is on PATH, and the scan "
                f"stage cannot install it here. Fix: {how}; or run again with "
                f"--skip-scanner {scanner} to go on without it (the verdict will show the skip)."
            )


def _tag(version: str) -> str:
    """The tag `_image_tag_command` derives from a source version (same sanitizing)."""
    tag = "".join(c if c.isalnum() or c in "_.-" else "-" for c in version)
    return tag[:128]


def _local_image_exists(image: str, env: Mapping[str, str]) -> bool:
    docker = shutil.which("docker", path=env.get("PATH"))
    if docker is None:
        return False
    result = subprocess.run(
        [docker, "image", "inspect", image], capture_output=True, env=dict(env), check=False
    )
    return result.returncode == 0


def _collected_names(stage: stage_defs.StageSpec) -> list[str]:
    return [Path(o).name for o in stage.outputs]


def _collect(stage: stage_defs.StageSpec, src: Path, out_dir: Path) -> tuple[list[str], list[str]]:
    collected, missing = [], []
    for output in stage.outputs:
        path = src / stage.output_dir / output
        if path.is_file():
            shutil.copy2(path, out_dir / path.name)
            collected.append(path.name)
        else:
            missing.append(path.name)
    return collected, missing


def _evaluate(config: DeploylineConfig, out_dir: Path, skips: Sequence[str]) -> GateVerdict:
    from deployline.runtime.security_gate import REPORT_FILES, evaluate

    reports: dict[str, bytes] = {}
    for files in REPORT_FILES.values():
        for name in files:
            path = out_dir / name
            if path.is_file():
                reports[name] = path.read_bytes()
    return evaluate(
        reports,
        threshold=config.security.threshold.value,
        scanners=list(config.security.scanners),
        allow_unverified=config.security.allow_unverified,
        skipped=list(skips),
    )


def _run_planned(
    planned: Sequence[PlannedStep],
    *,
    src: Path,
    env: Mapping[str, str],
    logdir: Path,
    stage: stage_defs.StageSpec,
    console: Console,
) -> list[StepOutcome]:
    """Run the steps planned to run, showing each step's line as the run reaches it, and the
    full output of the one that failed."""
    to_run = [p.step for p in planned if p.run]
    lines = _StepLines(console, planned, to_run, logdir)
    ran: list[StepOutcome] = []
    if to_run:
        with console.status("") as status:
            lines.status = status
            ran = execute(
                to_run,
                cwd=src,
                env=env,
                logdir=logdir,
                timeout_seconds=stage.timeout_minutes * 60,
                on_event=lines.on_event,
            )
    by_step = {id(step): outcome for step, outcome in zip(to_run, ran, strict=True)}
    outcomes = [
        by_step[id(p.step)]
        if p.run
        else StepOutcome(p.step.name, p.step.command, "skipped", note=p.note)
        for p in planned
    ]
    failed = next((o for o in outcomes if o.status == "failed"), None)
    if failed is None:
        lines.skipped_until(len(planned))
    else:
        _show_failure(console, planned, failed)
    return outcomes


class _StepLines:
    """One console line per planned step, in plan order (a skipped step's line when the run gets
    past it), and, while a step runs, a status line with the last line of its output."""

    def __init__(
        self,
        console: Console,
        planned: Sequence[PlannedStep],
        to_run: Sequence[stage_defs.Step],
        logdir: Path,
    ) -> None:
        self.console = console
        self.status: Status | None = None
        self._planned = planned
        self._to_run = to_run
        self._logdir = logdir
        self._position = {id(p.step): i for i, p in enumerate(planned)}
        self._due = 0  # the next planned position whose line has not been printed

    def skipped_until(self, upto: int) -> None:
        """Print the lines of the skipped steps before position `upto` not printed yet."""
        total = len(self._planned)
        while self._due < upto:
            p = self._planned[self._due]
            if not p.run:
                _print_step(self.console, self._due, total, p.step.name, "skipped", note=p.note)
            self._due += 1

    def on_event(self, kind: str, index: int, code: int | None, elapsed: float) -> None:
        """`execute`'s events: `index` counts the steps that run."""
        step = self._to_run[index]
        number, total = self._position[id(step)], len(self._planned)
        if kind == "start":
            self.skipped_until(number)
            self._due = number + 1
        if kind == "end":
            status = "passed" if code == 0 else "failed"
            _print_step(self.console, number, total, step.name, status, seconds=elapsed)
        elif self.status is not None:
            tail = _tail(self._logdir / f"{index}.log")
            self.status.update(
                f"[{number + 1}/{total}] {_escape(step.name)} [dim]{elapsed:.0f}s[/]"
                + (f"  [dim]{_escape(tail)}[/]" if tail else "")
            )


def _show_failure(console: Console, planned: Sequence[PlannedStep], failed: StepOutcome) -> None:
    """The failing step's line when it carries a note (a timeout), then its full output."""
    if failed.note:
        number = _position_of(planned, failed)
        _print_step(console, number, len(planned), failed.name, "failed", note=failed.note)
    console.rule(f"[red]output of the failing step: {_escape(failed.name)}", style="red")
    console.print(f"$ {failed.command}", markup=False, highlight=False)
    console.out(failed.output.rstrip("\n") or "(no output)", highlight=False)
    console.rule(style="red")


def _position_of(planned: Sequence[PlannedStep], outcome: StepOutcome) -> int:
    """The index of the planned step an outcome belongs to (by name and command)."""
    for i, p in enumerate(planned):
        if p.step.name == outcome.name and p.step.command == outcome.command:
            return i
    return 0


_MARKS = {
    "passed": "[green]✓[/]",
    "failed": "[red]✗[/]",
    "skipped": "[yellow]-[/]",
    "not run": "[dim]·[/]",
}


def _print_step(
    console: Console,
    index: int,
    total: int,
    name: str,
    status: str,
    *,
    seconds: float | None = None,
    note: str = "",
) -> None:
    timing = f" [dim]({seconds:.1f}s)[/]" if seconds is not None else ""
    why = f" [dim]{_escape(note)}[/]" if note else ""
    console.print(
        f"{_MARKS.get(status, status)} [{index + 1}/{total}] {_escape(name)}{timing}"
        + (f" [yellow]skipped[/]{why}" if status == "skipped" else why),
        highlight=False,
    )


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


# --------------------------------------------------------------------------------------------
# The command
# --------------------------------------------------------------------------------------------


def render_result(result: LocalRunResult, console: Console) -> None:
    """Print where the reports are, the notes and (scan) the verdict with its top findings."""
    for note in result.notes:
        console.print(f"[yellow]note:[/] {_escape(note)}", highlight=False)
    console.print(f"Reports: {result.reports_dir}", highlight=False, markup=False)
    for name in result.collected:
        console.print(f"  {name}", highlight=False, markup=False)
    if result.missing:
        console.print(f"[dim]  not produced here: {', '.join(result.missing)}[/]", highlight=False)
    if result.scratch is not None:
        console.print(f"Scratch copy kept at {result.scratch}", highlight=False, markup=False)
    if result.verdict is not None:
        colour = "green" if result.verdict.passed else "red"
        console.rule(style=colour)
        console.print(result.verdict.render_text(top=10), markup=False, highlight=False)
    failed = result.failed_step
    if failed is not None:
        console.print(
            f"[red]{result.stage} stage failed[/] at {_escape(failed.name)!s}: the pipeline "
            "would stop here.",
            highlight=False,
        )
    elif result.exit_code == EXIT_INCOMPLETE:
        console.print(_incomplete(result), highlight=False)
    elif result.verdict is None:
        console.print(f"[green]{result.stage} stage passed[/]", highlight=False)


def _incomplete(result: LocalRunResult) -> str:
    """The verdict line of a stage that skipped steps for want of Docker: never "passed"."""
    if result.stage is StageChoice.BUILD:
        return (
            f"[yellow]build stage skipped[/]: {NO_DOCKER}, so no image was built; start Docker "
            "and run it again"
        )
    skipped = ", ".join(result.without_docker)
    verdict = " (the security gate passed without them)" if result.verdict else ""
    return (
        f"[yellow]{result.stage} stage incomplete[/]: {_escape(skipped)} skipped{verdict}, since "
        f"{NO_DOCKER}; start Docker and run it again"
    )


def run_local_command(
    stage: Annotated[StageChoice, typer.Argument(help="The stage to run: test, scan or build.")],
    config: Annotated[
        Path, typer.Option("--config", "-c", help="Path to deployline.yaml.", dir_okay=False)
    ] = Path("deployline.yaml"),
    workdir: Annotated[
        Path | None,
        typer.Option(
            "--workdir",
            help="Repository root the stage runs in. Default: the git repository holding the "
            "config.",
            file_okay=False,
        ),
    ] = None,
    skip_scanner: Annotated[
        list[str] | None,
        typer.Option(
            "--skip-scanner",
            help="Skip this scanner knowingly (repeatable; scan only). The verdict shows it.",
        ),
    ] = None,
    reports_dir: Annotated[
        Path | None,
        typer.Option(
            "--reports-dir",
            help="Where the reports go. Default: a new temporary directory (printed).",
            file_okay=False,
        ),
    ] = None,
    keep: Annotated[
        bool, typer.Option("--keep", help="Keep the scratch copy and virtualenv.")
    ] = False,
    venv: Annotated[
        Path | None,
        typer.Option(
            "--venv",
            help="Reuse this virtualenv (created when missing) instead of a fresh one: faster, "
            "less isolated.",
            file_okay=False,
        ),
    ] = None,
) -> None:
    """Run a pipeline stage's commands on this machine, as the pipeline runs them.

    Exit status: 0 passed, 1 a command or the security gate failed, 2 usage or configuration
    error, 3 skipped or incomplete: steps the stage needs (the image build) were skipped because
    no Docker engine answers.
    """
    from rich.console import Console

    err = Console(stderr=True)
    out = Console()
    try:
        result = run_local(
            stage,
            config_path=config,
            workdir=workdir,
            skip_scanners=skip_scanner or [],
            reports_dir=reports_dir,
            keep=keep,
            venv_dir=venv,
            console=err,
        )
    except ConfigError as exc:
        from deployline.cli import config_errors

        config_errors(exc)
    except LocalRunError as exc:
        from deployline.cli import error_line

        error_line(exc.message)
        raise typer.Exit(exc.exit_code) from None
    render_result(result, out)
    raise typer.Exit(result.exit_code)


__all__ = [
    "EXIT_FAILED",
    "EXIT_INCOMPLETE",
    "EXIT_PASSED",
    "EXIT_USAGE",
    "PATH_SCANNERS",
    "VERDICT_FILE",
    "LocalRunError",
    "LocalRunResult",
    "PlannedStep",
    "StageChoice",
    "StepOutcome",
    "docker_available",
    "execute",
    "plan",
    "render_result",
    "run_local",
    "run_local_command",
]
