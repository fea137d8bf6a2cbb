"""Structure guards: constructors read like a table of contents and stay that way.

A constructor longer than ~100 lines (its def line to its last line, signature and docstring
included) is a script, not a table of contents: split it into one method per concern, as
aws-cdk-lib's ApplicationLoadBalancedFargateService and deployline's PipelineMonitoring do.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "deployline"
MAX_INIT_LINES = 100


def long_constructors(root: Path, limit: int) -> list[str]:
    """`path:line Class.__init__ (N lines)` for every `__init__` under `root` over `limit`."""
    found = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.ClassDef):
                continue
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and (
                    item.name == "__init__"
                ):
                    assert item.end_lineno is not None
                    length = item.end_lineno - item.lineno + 1
                    if length > limit:
                        where = path.relative_to(root.parent)
                        found.append(f"{where}:{item.lineno} {node.name}.__init__ ({length} lines)")
    return found


def test_no_constructor_is_longer_than_100_lines() -> None:
    assert PACKAGE.is_dir(), PACKAGE
    too_long = long_constructors(PACKAGE, MAX_INIT_LINES)
    assert not too_long, (
        f"constructors over {MAX_INIT_LINES} lines (split them into one method per concern): "
        + "; ".join(too_long)
    )


def test_the_guard_finds_a_long_constructor(tmp_path: Path) -> None:
    body = "\n".join(f"        self.a{i} = {i}" for i in range(MAX_INIT_LINES))
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "long.py").write_text(
        f"class Long:\n    def __init__(self) -> None:\n{body}\n\n"
        "class Short:\n    def __init__(self) -> None:\n        self.a = 1\n",
        encoding="utf-8",
    )
    assert long_constructors(tmp_path / "pkg", MAX_INIT_LINES) == [
        f"pkg/long.py:2 Long.__init__ ({MAX_INIT_LINES + 1} lines)"
    ]
