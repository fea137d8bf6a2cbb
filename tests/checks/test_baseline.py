"""Baseline files: keys independent of line and working directory, strict reading, atomic writes."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest

from deployline.checks import baseline as baseline_module
from deployline.checks.baseline import (
    BaselineError,
    atomic_write,
    baseline_document,
    load_baseline,
    write_baseline,
)
from deployline.checks.model import Finding, Severity


def _finding(file: str = "infra/app.yaml", resource: str = "Bucket", line: int = 3) -> Finding:
    return Finding(
        rule_id="DL101",
        severity=Severity.HIGH,
        file=file,
        resource=resource,
        path="Properties.BucketEncryption",
        message="bucket has no BucketEncryption",
        line=line,
    )


def test_a_finding_matches_its_entry_whatever_its_line(tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    write_baseline(path, [_finding(line=3)], cwd=tmp_path)
    loaded = load_baseline(path)
    new, accepted, stale = loaded.partition([_finding(line=40)], cwd=tmp_path)
    assert new == [] and len(accepted) == 1 and stale == []


def test_entries_are_relative_to_the_baseline_so_any_working_directory_matches(
    tmp_path: Path,
) -> None:
    (tmp_path / "sub").mkdir()
    path = tmp_path / "ci" / "baseline.json"
    write_baseline(path, [_finding("infra/app.yaml")], cwd=tmp_path)
    assert json.loads(path.read_text())["findings"][0]["file"] == "../infra/app.yaml"
    loaded = load_baseline(path)
    # The same file, named from another directory.
    _, accepted, _ = loaded.partition([_finding("../infra/app.yaml")], cwd=tmp_path / "sub")
    assert len(accepted) == 1
    # A different file with the same resource is not accepted.
    new, _, _ = loaded.partition([_finding("other/app.yaml")], cwd=tmp_path)
    assert len(new) == 1


def test_a_different_property_path_or_rule_is_a_new_finding(tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    write_baseline(path, [_finding()], cwd=tmp_path)
    loaded = load_baseline(path)
    other_path = dataclasses.replace(_finding(), path="Properties.VersioningConfiguration")
    other_rule = dataclasses.replace(_finding(), rule_id="DL103")
    new, accepted, stale = loaded.partition(
        [other_path, other_rule], checked_files=["infra/app.yaml"], cwd=tmp_path
    )
    assert new == [other_path, other_rule] and accepted == []
    assert [e["rule_id"] for e in stale] == ["DL101"]


def test_stale_entries_count_only_for_files_checked_and_rules_run(tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    write_baseline(path, [_finding(), _finding("elsewhere.yaml")], cwd=tmp_path)
    loaded = load_baseline(path)
    _, _, stale = loaded.partition([], checked_files=["infra/app.yaml"], cwd=tmp_path)
    assert [e["file"] for e in stale] == ["infra/app.yaml"]
    _, _, none = loaded.partition(
        [], checked_files=["infra/app.yaml"], rules_run=["DL205"], cwd=tmp_path
    )
    assert none == []


def test_the_document_is_sorted_deduplicated_and_versioned(tmp_path: Path) -> None:
    findings = [_finding(resource="B"), _finding(resource="A"), _finding(resource="A", line=9)]
    document = baseline_document(findings, tmp_path, cwd=tmp_path)
    assert document["version"] == 1 and document["tool"] == "deployline"
    assert [e["resource"] for e in document["findings"]] == ["A", "B"]
    assert set(document["findings"][0]) == {
        "rule_id", "file", "resource", "path", "severity", "message",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "not a JSON baseline"),
        ("[]", "an object with a `findings` list"),
        ('{"version": 2, "findings": []}', "baseline version 2 is not supported"),
        ('{"findings": [1]}', r"findings\[0\] must be an object"),
        ('{"findings": [{"rule_id": "DL101"}]}', "needs string rule_id, file, resource and path"),
    ],
)
def test_a_malformed_baseline_says_what_is_wrong_and_how_to_fix_it(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "baseline.json"
    path.write_text(content)
    with pytest.raises(BaselineError, match=message) as raised:
        load_baseline(path)
    assert "--write-baseline" in str(raised.value)


def test_a_missing_baseline_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(BaselineError, match="no such baseline file"):
        load_baseline(tmp_path / "absent.json")


def test_atomic_write_replaces_the_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out" / "report.json"
    atomic_write(target, "first")
    atomic_write(target, "second")
    assert target.read_text() == "second"
    assert os.listdir(target.parent) == ["report.json"]


def test_a_failed_atomic_write_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "report.json"
    target.write_text("old")

    def broken_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(baseline_module.os, "replace", broken_replace)
    with pytest.raises(OSError, match="No space left"):
        atomic_write(target, "new")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["report.json"]


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_reports_and_baselines_are_written_with_the_users_umask(tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        atomic_write(tmp_path / "report.sarif", "{}\n")
        write_baseline(tmp_path / "baseline.json", [])
    finally:
        os.umask(old)
    for name in ("report.sarif", "baseline.json"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~umask
