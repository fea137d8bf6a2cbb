"""The runtime functions' asset: what it holds is enough to import every handler in Lambda.

The asset is the deployline package directory filtered by `_ASSET_EXCLUDE`, so in Lambda the
runtime package is the top-level `runtime` and the shared names the top-level `contract`. These
tests copy what the exclude list lets through into an empty directory and import each module in
a clean interpreter (`-I -S`: no site-packages, no PYTHONPATH, so no installed deployline) with
that directory alone added to sys.path.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pathspec
import pytest

from deployline.constructs import runtime_function

PACKAGE_DIR = runtime_function.PACKAGE_DIR
MODULES = sorted(p.stem for p in runtime_function.RUNTIME_DIR.glob("*.py") if p.stem != "__init__")


def _shipped(package: Path) -> list[Path]:
    """The files `_ASSET_EXCLUDE` lets through: for each path the last matching pattern wins
    (`!` keeps), and nothing inside an excluded directory is kept (as in aws-cdk-lib's copy)."""
    spec = pathspec.PathSpec.from_lines("gitignore", runtime_function._ASSET_EXCLUDE)

    def walk(directory: Path) -> list[Path]:
        out: list[Path] = []
        for path in sorted(directory.iterdir()):
            relative = path.relative_to(package).as_posix()
            if path.is_dir():
                if not spec.match_file(relative + "/"):
                    out.extend(walk(path))
            elif not spec.match_file(relative):
                out.append(path.relative_to(package))
        return out

    return walk(package)


@pytest.fixture(scope="module")
def asset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("asset")
    for relative in _shipped(PACKAGE_DIR):
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((PACKAGE_DIR / relative).read_bytes())
    return root


def test_the_asset_holds_the_runtime_package_and_the_contract_only(asset: Path) -> None:
    tops = {p.parts[0] for p in _shipped(PACKAGE_DIR)}
    assert tops == {"runtime", "contract.py"}
    assert (asset / "runtime" / "__init__.py").is_file()


@pytest.mark.parametrize("module", MODULES)
def test_each_runtime_module_imports_from_the_asset_alone(asset: Path, module: str) -> None:
    script = (
        "import sys\n"
        f"sys.path.insert(0, {str(asset)!r})\n"
        f"import runtime.{module} as m\n"
        "import runtime\n"
        "assert runtime.contract.__file__.startswith(sys.path[0]), runtime.contract.__file__\n"
        "assert not [n for n in sys.modules if n.split('.')[0] in ('deployline', 'aws_cdk')]\n"
        "assert not callable(getattr(m, 'handler', None)) or m.handler.__module__ == m.__name__\n"
    )
    run = subprocess.run(
        [sys.executable, "-I", "-S", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=asset,
    )
    assert run.returncode == 0, run.stderr


def test_installed_the_runtime_shares_deployline_contract() -> None:
    import deployline.contract
    import deployline.runtime

    assert deployline.runtime.contract is deployline.contract


def test_the_runtime_digest_covers_the_contract(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "deployline"
    (package / "runtime").mkdir(parents=True)
    (package / "runtime" / "__init__.py").write_text("")
    (package / "contract.py").write_text("A = 1\n")
    (package / "config.py").write_text("B = 1\n")  # not shipped: not hashed
    monkeypatch.setattr(runtime_function, "PACKAGE_DIR", package)
    monkeypatch.setattr(runtime_function, "RUNTIME_DIR", package / "runtime")
    runtime_function.runtime_digest.cache_clear()
    try:
        before = runtime_function.runtime_digest()
        runtime_function.runtime_digest.cache_clear()
        (package / "config.py").write_text("B = 2\n")
        assert runtime_function.runtime_digest() == before
        runtime_function.runtime_digest.cache_clear()
        (package / "contract.py").write_text("A = 2\n")
        assert runtime_function.runtime_digest() != before
    finally:
        runtime_function.runtime_digest.cache_clear()
