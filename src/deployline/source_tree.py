"""Which files of a working directory make up its source, as the pipeline would see them.

The pipeline's CodeBuild projects get what git holds. `deployline run-local` copies the same set
into a scratch tree: in a git repository, git's own answer (`git ls-files --cached --others
--exclude-standard`: tracked and untracked files, minus ignored ones); without git, a walk that
reads every .gitignore as git reads it (pathspec's GitIgnoreSpec).

`.dockerignore` is not read here: it shapes only the image's build context, and `docker build`
applies it itself; the tests and the scans, here as in the pipeline, see the whole source.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Collection, Iterator
from pathlib import Path

from pathspec import GitIgnoreSpec

#: What a walk leaves out when the workdir is not a git repository, before the .gitignore files
#: (as git's core.excludesFile would: a `!` in a .gitignore overrules them).
DEFAULT_EXCLUDES = (
    ".git",
    ".hg",
    ".svn",
    ".venv",
    "venv",
    "env",
    "node_modules",
    "__pycache__",
    "*.pyc",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    ".tox",
    ".nox",
    ".hypothesis",
    "cdk.out",
    ".coverage",
    "htmlcov",
)


def source_files(workdir: Path, *, exclude: Collection[Path] = ()) -> list[Path]:
    """Relative paths of the files to copy: git's view when `workdir` is in a repository
    (tracked and untracked, minus ignored), else a walk minus what DEFAULT_EXCLUDES and the
    .gitignore files (read as git reads them) leave out. Paths under `exclude` (absolute) are
    left out."""
    excluded = [p.resolve() for p in exclude]
    files = _git_files(workdir)
    if files is None:
        files = _walk_files(workdir)
    out = []
    for rel in files:
        absolute = (workdir / rel).resolve()
        if any(absolute == e or e in absolute.parents for e in excluded):
            continue
        out.append(rel)
    return out


def _git_files(workdir: Path) -> list[Path] | None:
    git = shutil.which("git")
    if git is None:
        return None
    inside = subprocess.run(
        [git, "-C", str(workdir), "rev-parse", "--is-inside-work-tree"],
        capture_output=True,
        text=True,
        check=False,
    )
    if inside.returncode != 0 or inside.stdout.strip() != "true":
        return None
    listed = subprocess.run(
        [git, "-C", str(workdir), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        check=False,
    )
    if listed.returncode != 0:
        return None
    names = {n for n in listed.stdout.decode("utf-8", "surrogateescape").split("\0") if n}
    return [Path(n) for n in sorted(names) if (workdir / n).is_file() or (workdir / n).is_symlink()]


# --------------------------------------------------------------------------------------------
# Which files the scratch copy takes when there is no git
# --------------------------------------------------------------------------------------------
#
# .gitignore is read as git reads it (pathspec's GitIgnoreSpec): every .gitignore from the top
# down, each relative to its own directory, a deeper file's patterns after (so over) a higher
# one's; DEFAULT_EXCLUDES come first, as git's core.excludesFile would, so a `!` can overrule
# them. Like git, the walk never looks inside an ignored directory, so nothing in it can be
# re-included; the last pattern that matches a path itself decides (one that matched only a
# parent directory, and was overruled there, does not).


def _walk_files(workdir: Path) -> list[Path]:
    top = _GitIgnores(list(DEFAULT_EXCLUDES)).entering(workdir, "")
    return sorted(Path(rel) for rel in _walk(workdir, "", top))


def _walk(workdir: Path, rel_dir: str, rules: _GitIgnores) -> Iterator[str]:
    """The files to copy under `rel_dir` ("" or "a/b/"), in no particular order."""
    with os.scandir(workdir / rel_dir) as scan:
        entries = list(scan)
    for entry in entries:
        rel = rel_dir + entry.name
        if entry.is_dir(follow_symlinks=False):
            if not rules.ignores(rel, directory=True):
                yield from _walk(workdir, rel + "/", rules.entering(workdir, rel))
        # a symlink, even to a directory, is copied as a link (as git records it)
        elif (entry.is_file(follow_symlinks=False) or entry.is_symlink()) and not rules.ignores(
            rel, directory=False
        ):
            yield rel


class _GitIgnores:
    """The .gitignore patterns in force in one directory, rewritten relative to the top."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self._files = GitIgnoreSpec.from_lines(lines)
        # a directory is checked as a plain path, so a directory-only pattern (`build/`) loses
        # its slash here; checked with the slash, pathspec would let `*` outrank `!*/`
        self._dirs = GitIgnoreSpec.from_lines([_directory_pattern(line) for line in lines])

    def entering(self, workdir: Path, rel_dir: str) -> _GitIgnores:
        """The patterns in force in `rel_dir`: these, then its own .gitignore's, if any."""
        path = workdir / rel_dir / ".gitignore"
        if not path.is_file():
            return self
        text = path.read_text(encoding="utf-8", errors="replace")
        added = [_relative_to_top(line, rel_dir) for line in text.splitlines()]
        return _GitIgnores(self.lines + [line for line in added if _parses(line)])

    def ignores(self, rel: str, *, directory: bool) -> bool:
        spec = self._dirs if directory else self._files
        return spec.check_file(rel).include is True


def _strip_trailing_spaces(line: str) -> str:
    """git drops trailing spaces unless the last one is escaped with a backslash."""
    stripped = line.rstrip(" ")
    return stripped + " " if stripped != line and stripped.endswith("\\") else stripped


def _relative_to_top(line: str, rel_dir: str) -> str:
    """A line of the .gitignore in `rel_dir` as a pattern of the top directory's .gitignore:
    a pattern with a slash before its end is anchored to `rel_dir`, one without matches at any
    depth below it. Comments and blank lines come back empty."""
    line = _strip_trailing_spaces(line)
    if not rel_dir or not line or line.startswith("#"):
        return "" if line.startswith("#") else line
    negate, body = line.startswith("!"), line.removeprefix("!")
    anchored = "/" in body.rstrip("/")
    body = body.removeprefix("/")
    if not body:
        return ""
    prefix = "".join("\\" + c if c in "\\*?[]!# " else c for c in rel_dir)
    return ("!" if negate else "") + prefix + ("/" if anchored else "/**/") + body


def _directory_pattern(line: str) -> str:
    """`line` with the trailing slash of a directory-only pattern removed."""
    line = _strip_trailing_spaces(line)
    if line.endswith("/") and not line.startswith("#") and line.strip("!/"):
        return line[:-1]
    return line


def _parses(line: str) -> bool:
    """git skips a pattern it cannot read (a lone `!`, a trailing backslash); so do we."""
    try:
        GitIgnoreSpec.from_lines([line, _directory_pattern(line)])
    except (ValueError, re.error):
        return False
    return True
