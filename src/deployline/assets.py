"""Publish a cloud assembly's assets with the CDK's own `cdk-assets`, once per destination.

The pipeline's synth step runs `python3 -m deployline.assets cdk.out --cdk-assets <path>` after
`deployline synth`. Every stack has an asset manifest (`<stack>.assets.json`) naming its assets
(the runtime functions' code) and, per asset, the destinations to publish it to: the bootstrap
bucket of an account and region, and the `cdk bootstrap` file-publishing role to assume there.

The templates themselves are listed there too (for `cdk deploy`, which hands CloudFormation a URL
in the bootstrap bucket); the pipeline deploys them from its own artifacts, so they are left out.

Stacks in the same account and region share their assets (same content, same object key), so
this module asks cdk-assets to publish each (asset, destination) once: one cdk-assets process per
destination, which works through that destination's manifests in turn, and every destination in
parallel. cdk-assets itself checks the bucket first and uploads only what is missing; it does
the packaging, the role assumption and the upload (no hand-written S3 calls here).

Standard library only: the synth step runs it from the installed deployline package.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

#: Exit codes: 0 published (or nothing to publish), 1 a publish failed, 2 bad input.
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class AssetError(ValueError):
    """The cloud assembly cannot be read; the message names the file and the fix."""


@dataclass(frozen=True, order=True)
class Destination:
    """Where assets go: the role cdk-assets assumes and the region (as the manifest spells them,
    placeholders such as `${AWS::AccountId}` included)."""

    role: str
    region: str

    def describe(self) -> str:
        role = self.role.rsplit("/", 1)[-1] or "(default credentials)"
        return f"{role} in {self.region or '(default region)'}"


@dataclass
class Publication:
    """What one cdk-assets process publishes: selectors (`ASSET:DEST`) per manifest."""

    destination: Destination
    selectors: dict[Path, list[str]] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return sum(len(s) for s in self.selectors.values())


def plan(assembly: Path) -> list[Publication]:
    """One Publication per destination, each (asset, destination) once, in a stable order.

    Raises AssetError when `assembly` is not a directory or a manifest is not JSON.
    """
    if not assembly.is_dir():
        raise AssetError(
            f"{assembly}: not a directory; pass the cloud assembly `deployline synth` wrote "
            "(cdk.out)"
        )
    seen: set[tuple[str, Destination]] = set()
    by_destination: dict[Destination, Publication] = {}
    templates = _template_files(assembly)
    for manifest in sorted(assembly.glob("*.assets.json")):
        try:
            data = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise AssetError(f"{manifest}: not a readable asset manifest ({exc})") from None
        for asset_id, dest_id, destination in _entries(manifest, data, templates):
            if (asset_id, destination) in seen:
                continue
            seen.add((asset_id, destination))
            publication = by_destination.setdefault(destination, Publication(destination))
            publication.selectors.setdefault(manifest, []).append(f"{asset_id}:{dest_id}")
    return [by_destination[d] for d in sorted(by_destination)]


def _template_files(assembly: Path) -> set[str]:
    """The stacks' template files, from the cloud assembly's manifest (none without one)."""
    try:
        manifest = json.loads((assembly / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return set()
    artifacts = manifest.get("artifacts") if isinstance(manifest, dict) else None
    return {
        str(a["properties"]["templateFile"])
        for a in (artifacts or {}).values()
        if isinstance(a, dict)
        and a.get("type") == "aws:cloudformation:stack"
        and isinstance(a.get("properties"), dict)
        and "templateFile" in a["properties"]
    }


def _entries(manifest: Path, data: Any, templates: set[str]) -> list[tuple[str, str, Destination]]:
    if not isinstance(data, dict):
        raise AssetError(f"{manifest}: an asset manifest is a JSON object")
    out: list[tuple[str, str, Destination]] = []
    for kind in ("files", "dockerImages"):
        section = data.get(kind) or {}
        if not isinstance(section, dict):
            raise AssetError(f"{manifest}: '{kind}' must be an object")
        for asset_id, asset in sorted(section.items()):
            source = asset.get("source") if isinstance(asset, dict) else None
            if kind == "files" and isinstance(source, dict) and source.get("path") in templates:
                continue  # a stack's template: the pipeline deploys it from its artifacts
            destinations = asset.get("destinations") if isinstance(asset, dict) else None
            if not isinstance(destinations, dict):
                raise AssetError(f"{manifest}: {kind}.{asset_id} has no 'destinations' object")
            for dest_id, dest in sorted(destinations.items()):
                if not isinstance(dest, dict):
                    raise AssetError(f"{manifest}: {kind}.{asset_id}.{dest_id} is not an object")
                where = Destination(str(dest.get("assumeRoleArn", "")), str(dest.get("region", "")))
                out.append((asset_id, dest_id, where))
    return out


def publish(
    publications: Sequence[Publication],
    *,
    cdk_assets: Sequence[str],
    out: TextIO = sys.stdout,
    jobs: int | None = None,
) -> list[Destination]:
    """Run one cdk-assets per destination, destinations in parallel; return the failed ones.

    `cdk_assets` is the command (e.g. `["/tmp/x/node_modules/.bin/cdk-assets"]`). Within a
    destination the manifests go one after the other, so an asset two stacks share is uploaded
    once. Output lines are prefixed with the destination.
    """
    lock = threading.Lock()

    def emit(line: str) -> None:
        with lock:
            out.write(line + "\n")
            out.flush()

    def run(publication: Publication) -> Destination | None:
        name = publication.destination.describe()
        for manifest, selectors in publication.selectors.items():
            command = [*cdk_assets, "--path", str(manifest), "publish", *selectors]
            emit(f"[{name}] {manifest.name}: {len(selectors)} asset(s)")
            try:
                process = subprocess.Popen(
                    command,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
            except OSError as exc:
                emit(f"[{name}] cannot run {cdk_assets[0]}: {exc.strerror or exc}")
                return publication.destination
            assert process.stdout is not None
            for line in process.stdout:
                emit(f"[{name}] {line.rstrip()}")
            if process.wait() != 0:
                emit(f"[{name}] cdk-assets failed on {manifest.name} (exit {process.returncode})")
                return publication.destination
        return None

    if not publications:
        return []
    workers = max(1, min(jobs or len(publications), len(publications)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(run, publications))
    return [d for d in results if d is not None]


def main(argv: Sequence[str] | None = None, *, out: TextIO = sys.stdout) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 -m deployline.assets",
        description="Publish a cloud assembly's assets with cdk-assets, once per account and "
        "region, every destination in parallel.",
    )
    parser.add_argument("assembly", type=Path, help="the cloud assembly directory (cdk.out)")
    parser.add_argument(
        "--cdk-assets",
        default="cdk-assets",
        help="the cdk-assets executable (Default: cdk-assets on PATH)",
    )
    parser.add_argument("--jobs", type=int, default=None, help="Default: one per destination")
    args = parser.parse_args(argv)
    try:
        publications = plan(args.assembly)
    except AssetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not publications:
        out.write(f"no assets to publish in {args.assembly}\n")
        return EXIT_OK
    total = sum(p.count for p in publications)
    out.write(f"publishing {total} asset(s) to {len(publications)} destination(s)\n")
    failed = publish(publications, cdk_assets=[args.cdk_assets], out=out, jobs=args.jobs)
    if failed:
        names = ", ".join(d.describe() for d in failed)
        print(f"error: publishing failed for {names}", file=sys.stderr)
        return EXIT_FAILED
    out.write(f"published to {len(publications)} destination(s)\n")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
