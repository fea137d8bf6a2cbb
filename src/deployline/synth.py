"""`deployline synth`: deployline.yaml -> CloudFormation templates, offline, in-process.

Synthesizes into a scratch directory beside the output directory and swaps it in only when the
synth succeeded, so a failed or interrupted run never leaves a half-written `cdk.out`: Ctrl-C
during the swap waits for the two renames to finish.

A synth into a directory whose last synth came from the same inputs answers from it (see
`synth_cache`): no jsii, no aws_cdk, no pydantic config model; `force` synthesizes anyway. This
module imports the heavy ones only on the way to a real synth.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deployline import synth_cache
from deployline.fileio import publish_directory
from deployline.interrupts import interrupts

if TYPE_CHECKING:
    from deployline.checks.model import CheckResult


@dataclass(frozen=True)
class StackSummary:
    name: str
    resources: int
    outputs: int
    template: Path


@dataclass(frozen=True)
class SynthResult:
    outdir: Path
    stacks: list[StackSummary]
    check: CheckResult | None = None  # the failure-catalog check of what was synthesized
    warnings: tuple[str, ...] = ()  # config.warnings(): valid settings that will surprise
    #: When the synth this result was answered from ran (synth_cache); None: synthesized now.
    cached: datetime | None = None


class SynthError(Exception):
    """A synth that failed for a reason the user can fix (bad value, invalid construct input)."""


def _summarize(outdir: Path) -> list[StackSummary]:
    manifest = json.loads((outdir / "manifest.json").read_text(encoding="utf-8"))
    out = []
    for artifact in manifest.get("artifacts", {}).values():
        if artifact.get("type") != "aws:cloudformation:stack":
            continue
        template_file = outdir / artifact["properties"]["templateFile"]
        template = json.loads(template_file.read_text(encoding="utf-8"))
        out.append(
            StackSummary(
                name=artifact.get("displayName") or template_file.stem,
                resources=len(template.get("Resources", {})),
                outputs=len(template.get("Outputs", {})),
                template=template_file,
            )
        )
    return sorted(out, key=lambda s: s.name)


def synthesize(
    config_path: str | Path,
    outdir: str | Path = "cdk.out",
    *,
    progress: Callable[[str], None] = lambda _msg: None,
    check: bool = True,
    cfn_validation: bool = False,
    force: bool = False,
) -> SynthResult:
    """Validate the config, build the app, synthesize, and move the result into `outdir`.

    When `outdir` holds the output of a synth of the same inputs (`synth_cache`: the config's
    bytes, deployline's code, the CDK packages, the environment CDK reads, `cfn_validation`),
    unchanged since, that output is the answer (see `up_to_date`); `force` (Default: off)
    synthesizes anyway.

    With `cfn_validation` (Default: off), aws-cdk-lib's built-in CloudFormation template
    validation runs during synthesis too (see `build_app`).

    With `check` (Default: on), the failure-catalog checker then reads what was written exactly
    as `deployline check OUTDIR --config CONFIG` does: the `checks:` section (threshold,
    suppressions, rule options) is read by the checker's own loader. Its result is
    `SynthResult.check` (the caller decides whether findings fail the run).

    Raises ConfigError for a bad deployline.yaml and SynthError for values CDK rejects.
    """
    target = Path(outdir).resolve()
    key = synth_cache.synth_key(config_path, cfn_validation=cfn_validation)
    if key is not None and not force:
        progress("Comparing with the last synth")
        cached = _from_cache(target, key, config_path, check=check, progress=progress)
        if cached is not None:
            return cached
    warnings = _synthesize_into(target, config_path, progress, cfn_validation=cfn_validation)
    stacks = _summarize(target)
    checked = None
    if check:
        progress("Checking the templates (deployline check)")
        checked = check_synthesized(target, config_path)
    # The last step: the record, when the inputs did not change while the synth ran (the key is
    # read before and after; an edit meanwhile leaves no record, and the next synth runs).
    if key is not None and key == synth_cache.synth_key(config_path, cfn_validation=cfn_validation):
        record = synth_cache.new_record(
            target, key, warnings=warnings, stacks=tuple(_summary_data(target, stacks))
        )
        if checked is not None:
            context = synth_cache.check_context(target, config_path)
            record = synth_cache.with_check(record, context, checked)
        synth_cache.write(target, record)
    return SynthResult(outdir=target, stacks=stacks, check=checked, warnings=warnings)


def up_to_date(
    config_path: str | Path,
    outdir: str | Path = "cdk.out",
    *,
    check: bool = True,
    cfn_validation: bool = False,
) -> SynthResult | None:
    """What `synthesize` answers when `outdir` is up to date (its last synth had the same
    inputs, and nothing it wrote changed since), without synthesizing; None otherwise.

    Imports neither aws_cdk nor jsii nor the config model. `SynthResult.cached` says when that
    synth ran. With `check`, the check result kept with it when it was checked from the same
    working directory and config path, else a check run now."""
    key = synth_cache.synth_key(config_path, cfn_validation=cfn_validation)
    if key is None:
        return None
    return _from_cache(Path(outdir).resolve(), key, config_path, check=check)


def _from_cache(
    target: Path,
    key: dict[str, Any],
    config_path: str | Path,
    *,
    check: bool,
    progress: Callable[[str], None] = lambda _msg: None,
) -> SynthResult | None:
    record = synth_cache.lookup(target, key)
    if record is None:
        return None
    try:
        stacks = [
            StackSummary(
                name=s["name"],
                resources=s["resources"],
                outputs=s["outputs"],
                template=target / s["template"],
            )
            for s in record.stacks
        ]
    except (KeyError, TypeError):
        return None
    checked = None
    if check:
        context = synth_cache.check_context(target, config_path)
        checked = synth_cache.cached_check(record, context)
        if checked is None:
            progress("Checking the templates (deployline check)")
            checked = check_synthesized(target, config_path)
            with contextlib.suppress(OSError):  # a read-only directory: the answer stands
                synth_cache.write(target, synth_cache.with_check(record, context, checked))
    return SynthResult(
        outdir=target,
        stacks=stacks,
        check=checked,
        warnings=record.warnings,
        cached=record.synthesized_at,
    )


def _summary_data(target: Path, stacks: list[StackSummary]) -> list[dict[str, Any]]:
    return [
        {
            "name": s.name,
            "resources": s.resources,
            "outputs": s.outputs,
            "template": s.template.relative_to(target).as_posix(),
        }
        for s in stacks
    ]


def _synthesize_into(
    target: Path,
    config_path: str | Path,
    progress: Callable[[str], None],
    *,
    cfn_validation: bool,
) -> tuple[str, ...]:
    """Synthesize `config_path` into `target` (through a scratch directory swapped in); the
    config's warnings."""
    from deployline.config import load_config

    progress("Reading configuration")
    config = load_config(config_path)
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        progress("Starting the CDK runtime (jsii)")
        from deployline.app import build_app

        progress("Building stacks")
        try:
            built = build_app(config, outdir=str(scratch), cfn_validation=cfn_validation)
            progress("Synthesizing templates")
            built.app.synth()
        except Exception as exc:
            if interrupts.seen:  # Node died of the same Ctrl-C: not a problem of the config
                raise KeyboardInterrupt from None
            if isinstance(exc, ValueError | TypeError):
                raise SynthError(str(exc)) from None
            # jsii surfaces construct validation errors as JSIIError / RuntimeError.
            if type(exc).__name__ in {"JSIIError", "JavaScriptError"} or isinstance(
                exc, RuntimeError
            ):
                raise SynthError(_first_line(str(exc))) from None
            raise
        publish_directory(scratch)
        _swap_in(scratch, target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return tuple(config.warnings())


def check_synthesized(outdir: Path, config_path: str | Path) -> CheckResult:
    """`deployline check OUTDIR --config CONFIG`: the checker reads deployline.yaml's `checks:`
    (threshold, suppressions, rule options) with its own loader, the one `deployline check`
    uses, so the three commands give the section one meaning."""
    from deployline.checks.api import check_paths

    return check_paths([outdir], config_path=config_path)


def _swap_in(scratch: Path, target: Path) -> None:
    """Replace `target` by `scratch`; Ctrl-C meanwhile takes effect once both renames are done
    (and the old output is removed even then)."""
    backup = target.with_name(f".{target.name}.old")
    shutil.rmtree(backup, ignore_errors=True)
    try:
        with _interrupts_deferred():
            if target.exists():
                target.rename(backup)
            scratch.rename(target)
    finally:
        shutil.rmtree(backup, ignore_errors=True)


@contextlib.contextmanager
def _interrupts_deferred() -> Iterator[None]:
    """Hold Ctrl-C back while the block runs, then raise it.

    The Python-level SIGINT handler is swapped for one that only records the signal (blocking
    the signal in the main thread would not do: the kernel delivers a terminal's SIGINT to any
    thread that does not block it, jsii's reader threads among them, and Python then runs the
    handler in the main thread anyway). Outside the main thread no handler can be set, and no
    signal handler runs there either.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, _frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught and previous is not signal.SIG_IGN:
        if callable(previous):  # Python's default handler and the CLI's raise KeyboardInterrupt
            previous(signal.SIGINT, None)
        raise KeyboardInterrupt


def _first_line(text: str) -> str:
    for line in text.splitlines():
        line = line.strip()
        if line:
            return line
    return text
