"""deployline.source_tree: the files of a working directory that make up its source, as git
gives them to the pipeline (with git: git's answer; without: every .gitignore read as git reads
it, tested against `git ls-files` on the same tree)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from deployline.local_runner import find_workdir
from deployline.source_tree import source_files


def test_a_git_workdir_copies_tracked_and_untracked_files_but_not_ignored_ones(
    tmp_path: Path,
) -> None:
    repo = tmp_path / "repo"
    (repo / "ignored").mkdir(parents=True)
    (repo / ".gitignore").write_text("ignored/\n*.log\n")
    (repo / "tracked.txt").write_text("t")
    (repo / "ignored" / "x.txt").write_text("x")
    (repo / "debug.log").write_text("l")
    git = ["git", "-C", str(repo), "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "tracked.txt", ".gitignore"], check=True)
    subprocess.run([*git, "commit", "-qm", "init"], check=True)
    (repo / "untracked.txt").write_text("u")
    (repo / "sub").mkdir()
    config = repo / "sub" / "deployline.yaml"
    config.write_text("service: x\n")
    assert find_workdir(config) == repo.resolve()
    files = sorted(str(p) for p in source_files(repo))
    assert files == [".gitignore", "sub/deployline.yaml", "tracked.txt", "untracked.txt"]
    assert ".git" not in {Path(f).parts[0] for f in files}


def test_a_plain_directory_honours_ignore_files_and_default_excludes(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    for rel in (
        "app/main.py",
        "app/__pycache__/main.cpython-311.pyc",
        ".venv/bin/python",
        "node_modules/x/index.js",
        "secrets.env",
        "build/out.bin",
        "keep/build.txt",
    ):
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text("x")
    (repo / ".gitignore").write_text("# comment\n*.env\n/build/\n")
    files = sorted(str(p) for p in source_files(repo, exclude=[repo / "keep"]))
    assert files == [".gitignore", "app/main.py"]


# --------------------------------------------------------------------------------------------
# without git: .gitignore as git reads it
# --------------------------------------------------------------------------------------------


@pytest.fixture
def plain_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory that git does not see as a repository, whatever holds tmp_path."""
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    repo = tmp_path / "plain"
    repo.mkdir()
    return repo


def _tree(root: Path, *files: str, **ignore_files: str) -> None:
    """Create `files` (relative paths) and ignore files: `gitignore="..."` writes .gitignore,
    `sub__gitignore="..."` writes sub/.gitignore, `dockerignore="..."` writes .dockerignore."""
    for rel in files:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(rel)
    for key, text in ignore_files.items():
        *dirs, name = key.split("__")
        path = root.joinpath(*dirs, f".{name}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def _copied(root: Path) -> set[str]:
    """What the scratch copy takes from `root`, ignore files left out of the answer."""
    names = {p.as_posix() for p in source_files(root)}
    return {n for n in names if Path(n).name not in (".gitignore", ".dockerignore")}


def test_a_negation_re_includes_a_file_an_earlier_pattern_ignores(plain_dir: Path) -> None:
    _tree(plain_dir, "debug.log", "keep.log", "sub/keep.log", "sub/trace.log", "a.txt",
          gitignore="*.log\n!keep.log\n")  # fmt: skip
    assert _copied(plain_dir) == {"keep.log", "sub/keep.log", "a.txt"}


def test_a_leading_slash_anchors_the_pattern_to_the_top(plain_dir: Path) -> None:
    _tree(plain_dir, "build/out.bin", "src/build/out.bin", "src/main.py", gitignore="/build\n")
    assert _copied(plain_dir) == {"src/build/out.bin", "src/main.py"}


def test_a_trailing_slash_matches_directories_only(plain_dir: Path) -> None:
    _tree(plain_dir, "build/out.bin", "src/build/gen.py", "docs/build", "src/main.py",
          gitignore="build/\n")  # fmt: skip
    assert _copied(plain_dir) == {"docs/build", "src/main.py"}  # docs/build is a file


def test_a_character_class_in_a_pattern(plain_dir: Path) -> None:
    _tree(plain_dir, "a.py", "a.pyo", "lib/b.pyo", "lib/b.pyx", gitignore="*.py[co]\n")
    assert _copied(plain_dir) == {"a.py", "lib/b.pyx"}


def test_a_star_does_not_cross_a_slash(plain_dir: Path) -> None:
    _tree(plain_dir, "a/b.txt", "a/b/c.txt", "a/b.md", gitignore="a/*.txt\n")
    assert _copied(plain_dir) == {"a/b/c.txt", "a/b.md"}


def test_a_double_star_matches_at_any_depth(plain_dir: Path) -> None:
    _tree(plain_dir, "tmp/x", "src/tmp/y", "src/deep/tmp/z", "src/tmpfile", "a/b/c.gen.py",
          "a/c.gen.py", "a/b/keep.py", gitignore="**/tmp\na/**/*.gen.py\n")  # fmt: skip
    assert _copied(plain_dir) == {"src/tmpfile", "a/b/keep.py"}


def test_comments_blank_lines_and_an_escaped_hash(plain_dir: Path) -> None:
    _tree(plain_dir, "#notes.txt", "main.py", "x.tmp", "# main.py",
          gitignore="# *.py is a comment, not a pattern\n\n   \n*.tmp\n\\#notes.txt\n")  # fmt: skip
    assert _copied(plain_dir) == {"main.py", "# main.py"}


def test_trailing_spaces_are_dropped_unless_escaped(plain_dir: Path) -> None:
    _tree(plain_dir, "a.tmp", "b ", "b", gitignore="*.tmp   \nb\\ \n")
    assert _copied(plain_dir) == {"b"}


def test_nested_gitignore_files_apply_relative_to_their_directory(plain_dir: Path) -> None:
    _tree(
        plain_dir,
        "x.tmp", "only-here", "debug.log",
        "sub/x.tmp", "sub/deep/y.tmp", "sub/only-here", "sub/deep/only-here",
        "sub/keep.log", "sub/other.log", "sub/gen/a.py", "sub/deep/gen/b.py",
        gitignore="*.log\n",
        sub__gitignore="*.tmp\n/only-here\n!keep.log\ndeep/gen/\n",
    )  # fmt: skip
    assert _copied(plain_dir) == {
        "x.tmp",  # the pattern in sub/.gitignore does not reach up
        "only-here",
        "sub/deep/only-here",  # "/only-here" is anchored to sub/
        "sub/keep.log",  # the deeper file re-includes what the top one ignores
        "sub/gen/a.py",  # "deep/gen/" has a slash: relative to sub/, not at any depth
    }


def test_a_file_inside_an_ignored_directory_cannot_be_re_included(plain_dir: Path) -> None:
    """git does not look inside an ignored directory; `dir/*` leaves the directory open."""
    _tree(plain_dir, "logs/keep.txt", "logs/x.txt", "out/keep.txt", "out/x.txt",
          gitignore="logs/\n!logs/keep.txt\nout/*\n!out/keep.txt\n")  # fmt: skip
    assert _copied(plain_dir) == {"out/keep.txt"}


def test_ignore_everything_but_python_sources(plain_dir: Path) -> None:
    _tree(plain_dir, "a.py", "a.txt", "pkg/b.py", "pkg/b.txt", "pkg/sub/c.py",
          gitignore="*\n!*/\n!*.py\n")  # fmt: skip
    assert _copied(plain_dir) == {"a.py", "pkg/b.py", "pkg/sub/c.py"}


def test_a_nested_re_included_directory_keeps_the_top_level_file_patterns(
    plain_dir: Path,
) -> None:
    """git: the last pattern that matches the file itself decides; one that matched only a
    parent directory (and was overruled for it) does not."""
    _tree(plain_dir, "sub/build/a.log", "sub/build/a.py", "build/b.py",
          gitignore="*.log\nbuild/\n", sub__gitignore="!build/\n")  # fmt: skip
    assert _copied(plain_dir) == {"sub/build/a.py"}


def test_unparsable_gitignore_lines_are_skipped_as_git_skips_them(plain_dir: Path) -> None:
    _tree(plain_dir, "a.tmp", "b.txt", "!", gitignore="!\nbad\\\n*.tmp\n")
    assert _copied(plain_dir) == {"b.txt", "!"}


def test_default_excludes_give_way_to_a_gitignore_negation(plain_dir: Path) -> None:
    """The defaults are the lowest layer (as git's core.excludesFile): `!env/` keeps a package
    that happens to be called env."""
    _tree(plain_dir, "app/env/settings.py", "env/bin/python", "node_modules/x/i.js", "a.py",
          gitignore="!app/env/\n")  # fmt: skip
    assert _copied(plain_dir) == {"app/env/settings.py", "a.py"}


def test_the_walk_agrees_with_git_ls_files(plain_dir: Path, tmp_path: Path) -> None:
    """The same tree, once without git (the walk) and once in a repository (git's own view)."""
    files = (
        "a.py", "a.log", "keep.log", "x.tmp", "#hash", "b ", "build/o", "src/build/o",
        "docs/build", "dist/keep.txt", "dist/x.txt", "logs/keep.txt", "logs/y.txt",
        "docs/a.md", "docs/private/b.md", "docs/private/keep.md", "sub/x.tmp", "sub/keep.log",
        "sub/deep/gen/g.py", "sub/gen/g.py", "sub/only", "sub/deep/only", "sub/build/s.py",
        "sub/build/s.log", "tmp/t", "src/tmp/t", "a/b.txt", "a/b/c.txt", "c.pyo", "c.pyx",
    )  # fmt: skip
    ignores = {
        "gitignore": "# top\n*.log\n!keep.log\n/build\ndist/*\n!dist/keep.txt\nlogs/\n"
        "!logs/keep.txt\n\\#hash\nb\\ \n**/tmp\na/*.txt\n*.py[co]\n/src/build/\n",
        "sub__gitignore": "*.tmp\n/only\ndeep/gen/\n!keep.log\n!build/\n",
        "docs__gitignore": "private/*\n!private/keep.md\n",
    }
    _tree(plain_dir, *files, **ignores)
    repo = tmp_path / "git"
    _tree(repo, *files, **ignores)
    subprocess.run(["git", "-C", str(repo), "init", "-q"], check=True)
    in_git = {p.as_posix() for p in source_files(repo)}
    walked = {p.as_posix() for p in source_files(plain_dir)}
    assert walked == in_git
    assert "sub/build/s.py" in walked and "dist/keep.txt" in walked  # the tree is not trivial
    assert "logs/keep.txt" not in walked and "sub/build/s.log" not in walked


def test_dockerignore_is_left_to_docker_build(plain_dir: Path) -> None:
    """The pipeline's tests and scans see the whole source; .dockerignore shapes only the
    image's build context, and docker applies it there."""
    _tree(plain_dir, "app/main.py", "tests/test_main.py", "docs/a.md", dockerignore="tests\ndocs\n")
    assert _copied(plain_dir) == {"app/main.py", "tests/test_main.py", "docs/a.md"}
