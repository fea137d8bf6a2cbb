"""The AWS CDK CLI (npm `aws-cdk`), pinned, found or installed, and run with its output streamed.

Where the CLI comes from, first match wins:

1. `node_modules/aws-cdk` at the pinned version in the project directory or one of its parents
   (what `make` installs with `npm ci` from the repository's package.json and package-lock.json),
   or in the deployline source checkout;
2. deployline's cache (`$DEPLOYLINE_CACHE_DIR`, else `$XDG_CACHE_HOME/deployline`, else
   `~/.cache/deployline`), where the first deploy command installs it with npm.

Node.js (18 or newer) runs it; without Node (or npm, to install it) the error says how to get it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

#: The CDK CLI deployline drives. package.json and package-lock.json pin the same version (a test
#: keeps the three in step); it reads aws-cdk-lib 2.275's cloud assemblies (schema 55).
CDK_CLI_VERSION = "2.1149.0"
#: The oldest Node.js major version the CLI supports (its package's `engines`).
MIN_NODE_MAJOR = 18
#: How long a CLI gets to stop after Ctrl-C before it is killed. Default: 30 seconds.
STOP_SECONDS = 30.0

NODE_HELP = (
    "install Node.js 18 or newer (https://nodejs.org, or your package manager: "
    "`brew install node`, `apt-get install nodejs npm`, `winget install OpenJS.NodeJS.LTS`) "
    "and make sure `node` is on PATH"
)


class CdkCliError(Exception):
    """The CDK CLI cannot be found, installed or started; the message says how to fix it."""


@dataclass(frozen=True)
class CdkCli:
    """A CDK CLI to run: `node <entry> ...`."""

    node: str
    entry: Path
    version: str

    def command(self, args: Sequence[str]) -> list[str]:
        return [self.node, str(self.entry), *args]

    def run(
        self,
        args: Sequence[str],
        *,
        cwd: Path,
        on_line: Callable[[str], None],
        env: Mapping[str, str] | None = None,
    ) -> int:
        """Run the CLI with `args`, handing each line of its output (stdout and stderr, in order)
        to `on_line`; return its exit code. Ctrl-C is passed on to the CLI, which gets
        STOP_SECONDS to stop (CloudFormation keeps going on its side), then re-raised."""
        process = subprocess.Popen(
            self.command(args),
            cwd=cwd,
            env=cli_environment(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            errors="replace",
            bufsize=1,
        )
        try:
            for line in _lines(process):
                on_line(line)
            return process.wait()
        except KeyboardInterrupt:
            _stop(process)
            raise


def _lines(process: subprocess.Popen[str]) -> Iterator[str]:
    assert process.stdout is not None
    for line in process.stdout:
        yield line.rstrip("\r\n")


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def cli_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The CLI's environment: ours, without the CLI's check for a newer version (deployline pins
    the one it drives), plus `extra`."""
    env = dict(os.environ)
    env.setdefault("CDK_DISABLE_VERSION_CHECK", "1")
    env.update(extra or {})
    return env


# ---- finding and installing ---------------------------------------------------------------


def node_executable() -> str:
    """The `node` on PATH, checked to be new enough. Raises CdkCliError."""
    node = shutil.which("node")
    if node is None:
        raise CdkCliError(f"Node.js was not found on PATH; the AWS CDK CLI runs on it: {NODE_HELP}")
    try:
        text = subprocess.run(
            [node, "--version"], capture_output=True, text=True, check=True, timeout=30
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        raise CdkCliError(f"{node} --version failed ({exc}): {NODE_HELP}") from None
    match = re.match(r"^v?(\d+)\.", text)
    if not match or int(match.group(1)) < MIN_NODE_MAJOR:
        raise CdkCliError(
            f"the AWS CDK CLI needs Node.js {MIN_NODE_MAJOR} or newer, found {text or 'nothing'} "
            f"at {node}: {NODE_HELP}"
        )
    return node


def cache_dir() -> Path:
    """Where deployline installs the CDK CLI on first use."""
    explicit = os.environ.get("DEPLOYLINE_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base) if base else Path.home() / ".cache") / "deployline"


def installed_version(prefix: Path) -> str | None:
    """The aws-cdk version installed under `prefix/node_modules`, or None."""
    manifest = prefix / "node_modules" / "aws-cdk" / "package.json"
    try:
        version = json.loads(manifest.read_text(encoding="utf-8")).get("version")
    except (OSError, ValueError):
        return None
    return version if isinstance(version, str) else None


def _entry(prefix: Path) -> Path:
    return prefix / "node_modules" / "aws-cdk" / "bin" / "cdk"


def _source_checkout() -> Path:
    return Path(__file__).resolve().parents[3]


def candidate_prefixes(project_dir: Path) -> list[Path]:
    """Directories whose node_modules may hold the pinned CLI, nearest first."""
    start = project_dir.resolve()
    out = [start, *start.parents, _source_checkout()]
    return list(dict.fromkeys(out))


def find_cli(
    project_dir: Path,
    *,
    install: bool = True,
    cache: Path | None = None,
    on_line: Callable[[str], None] = lambda _line: None,
) -> CdkCli:
    """The pinned CDK CLI nearest to `project_dir`, else the cached one, installed with npm into
    the cache when `install` (Default: on) and missing. Raises CdkCliError."""
    node = node_executable()
    for prefix in candidate_prefixes(project_dir):
        if installed_version(prefix) == CDK_CLI_VERSION and _entry(prefix).is_file():
            return CdkCli(node, _entry(prefix), CDK_CLI_VERSION)
    target = (cache or cache_dir()) / f"aws-cdk-{CDK_CLI_VERSION}"
    if installed_version(target) != CDK_CLI_VERSION:
        if not install:
            raise CdkCliError(
                f"the AWS CDK CLI {CDK_CLI_VERSION} is not installed: run `npm ci` in the "
                "deployline repository (`make test` does), or let a deploy command install it"
            )
        install_cli(target, on_line=on_line)
    return CdkCli(node, _entry(target), CDK_CLI_VERSION)


def install_cli(target: Path, *, on_line: Callable[[str], None] = lambda _line: None) -> None:
    """`npm install aws-cdk@CDK_CLI_VERSION` into `target`, atomically: npm works in a scratch
    directory beside it, which replaces `target` only when the install succeeded."""
    npm = shutil.which("npm")
    if npm is None:
        raise CdkCliError(
            f"npm was not found on PATH; it installs the AWS CDK CLI {CDK_CLI_VERSION} on first "
            f"use: {NODE_HELP} (npm comes with it)"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        (scratch / "package.json").write_text(
            json.dumps({"name": "deployline-cdk-cli", "private": True}), encoding="utf-8"
        )
        command = [
            npm,
            "install",
            "--no-audit",
            "--no-fund",
            "--ignore-scripts",
            "--save-exact",
            f"aws-cdk@{CDK_CLI_VERSION}",
        ]
        process = subprocess.Popen(
            command,
            cwd=scratch,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
        output = list(_lines(process))
        for line in output:
            on_line(line)
        if process.wait() != 0 or installed_version(scratch) != CDK_CLI_VERSION:
            tail = "\n".join(output[-10:])
            raise CdkCliError(
                f"npm could not install aws-cdk@{CDK_CLI_VERSION} into {target} "
                f"(exit {process.returncode}):\n{tail}\nCheck your network and npm registry "
                "(`npm config get registry`), then run the command again"
            )
        shutil.rmtree(target, ignore_errors=True)
        scratch.rename(target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


# ---- reading its output -------------------------------------------------------------------

#: `stack | 3/43 | 8:16:17 PM | CREATE_COMPLETE | AWS::ECS::Service | path (LogicalId) reason`,
#: the line the CLI prints per stack event with `--progress events`.
_EVENT = re.compile(
    r"^(?P<stack>[^\s|]+) \|\s*(?P<done>\d+)/(?P<total>\d+) \| [^|]+ \| "
    r"(?P<status>[A-Z_]+)(?: \(skipped\))?\s*\| (?P<type>[^\s|]*)\s*\| (?P<rest>.*)$"
)


@dataclass(frozen=True)
class StackEvent:
    """One CloudFormation event as the CLI printed it."""

    stack: str
    done: int
    total: int
    status: str
    resource_type: str
    detail: str

    @property
    def failed(self) -> bool:
        return self.status.endswith("_FAILED")


def parse_event(line: str) -> StackEvent | None:
    """The stack event printed on `line`, or None for any other line."""
    match = _EVENT.match(line)
    if match is None:
        return None
    return StackEvent(
        stack=match["stack"],
        done=int(match["done"]),
        total=int(match["total"]),
        status=match["status"],
        resource_type=match["type"],
        detail=match["rest"].strip(),
    )
