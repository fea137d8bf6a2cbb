"""check_paths / check_assembly / check_files: inputs, parse errors, suppressions, baselines."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from deployline.checks.api import (
    CheckUsageError,
    check_assembly,
    check_files,
    check_paths,
    check_texts,
)
from deployline.checks.baseline import write_baseline
from deployline.checks.model import Severity

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
ASSEMBLY = FIXTURES / "assemblies" / "app"

CLEAN = """\
AWSTemplateFormatVersion: "2010-09-09"
Resources:
  Handle:
    Type: AWS::CloudFormation::WaitConditionHandle
"""

# A bare bucket: DL101 and DL103 (HIGH), DL205 and DL701 (MEDIUM), DL104 (LOW).
BARE_BUCKET = """\
AWSTemplateFormatVersion: "2010-09-09"
Resources:
  Handle:
    Type: AWS::CloudFormation::WaitConditionHandle
  DataBucket:
    Type: AWS::S3::Bucket
    Properties:
      BucketName: !Sub "${AWS::StackName}-data"
"""


def _ids(findings) -> set[tuple[str, str]]:  # type: ignore[no-untyped-def]
    return {(f.rule_id, f.resource) for f in findings}


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_a_yaml_template_with_short_tags_reports_rule_resource_path_and_line(
    tmp_path: Path,
) -> None:
    bad = _write(tmp_path / "bad.yaml", BARE_BUCKET)
    result = check_paths([bad], cwd=tmp_path)
    assert result.files == ["bad.yaml"]
    assert {("DL101", "DataBucket"), ("DL103", "DataBucket")} <= _ids(result.findings)
    dl101 = next(f for f in result.findings if f.rule_id == "DL101")
    assert dl101.file == "bad.yaml"
    assert dl101.path == "Properties.BucketEncryption"
    assert dl101.line == 5
    assert dl101.severity is Severity.HIGH
    assert dl101.resource_type == "AWS::S3::Bucket"
    assert result.exit_code() == 1


def test_a_clean_template_exits_0(tmp_path: Path) -> None:
    result = check_paths(
        [
            _write(
                tmp_path / "ok.json",
                json.dumps(
                    {"Resources": {"Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"}}}
                ),
            )
        ],
        cwd=tmp_path,
    )
    assert result.findings == [] and result.errors == []
    assert result.exit_code() == 0


def test_threshold_decides_the_exit_code(tmp_path: Path) -> None:
    bad = _write(tmp_path / "bad.yaml", BARE_BUCKET)
    assert check_paths([bad], rules=["DL205"], severity_threshold="HIGH").exit_code() == 0
    assert check_paths([bad], rules=["DL205"], severity_threshold="medium").exit_code() == 1
    with pytest.raises(CheckUsageError, match="--severity-threshold: unknown severity 'SEVERE'"):
        check_paths([bad], severity_threshold="SEVERE")
    config = _write(tmp_path / "deployline.yaml", "checks:\n  severity_threshold: urgent\n")
    with pytest.raises(CheckUsageError, match=r"deployline.yaml: checks.severity_threshold: unk"):
        check_paths([bad], config_path=config)


def test_a_directory_is_walked_and_non_templates_are_skipped_silently(tmp_path: Path) -> None:
    _write(tmp_path / "infra" / "bad.yaml", BARE_BUCKET)
    _write(tmp_path / "infra" / "nested" / "ok.template", CLEAN)
    _write(tmp_path / "package.json", json.dumps({"name": "x", "version": "1.0.0"}))
    _write(tmp_path / "docker-compose.yml", "services:\n  web:\n    image: nginx\n")
    _write(tmp_path / "notes.yaml", "key: [unclosed\n")  # broken, but no template keys
    _write(tmp_path / "node_modules" / "dep" / "t.yaml", BARE_BUCKET)
    _write(tmp_path / ".hidden" / "t.yaml", BARE_BUCKET)
    result = check_paths([tmp_path], cwd=tmp_path)
    assert sorted(result.files) == ["infra/bad.yaml", "infra/nested/ok.template"]
    assert result.errors == []
    assert {f.file for f in result.findings} == {"infra/bad.yaml"}


def test_a_template_that_cannot_be_parsed_is_an_error_with_line_and_the_rest_is_checked(
    tmp_path: Path,
) -> None:
    _write(tmp_path / "a_broken.yaml", "Resources:\n  Bucket:\n    Type: [AWS::S3::Bucket\n")
    _write(tmp_path / "b_broken.json", '{"Resources": {"X": {"Type": "AWS::S3::Bucket",}}')
    _write(tmp_path / "c_bad.yaml", BARE_BUCKET)
    result = check_paths([tmp_path], cwd=tmp_path)
    errors = {e.file: e for e in result.errors}
    assert set(errors) == {"a_broken.yaml", "b_broken.json"}
    assert errors["a_broken.yaml"].line is not None and errors["a_broken.yaml"].line >= 3
    assert errors["b_broken.json"].line == 1
    assert "invalid JSON" in errors["b_broken.json"].message
    assert ("DL101", "DataBucket") in _ids(result.findings)
    assert result.exit_code() == 1  # a file CI cannot check fails the run, like a finding
    assert result.exit_code("CRITICAL") == 1  # whatever the threshold


def test_a_file_named_explicitly_is_read_whatever_it_holds(tmp_path: Path) -> None:
    odd = _write(tmp_path / "list.yaml", "- a\n- b\n")
    result = check_paths([odd], cwd=tmp_path)
    assert [e.file for e in result.errors] == ["list.yaml"]
    assert "mapping at the top level" in result.errors[0].message


def test_a_cloud_assembly_checks_every_stack_nested_stack_and_stage() -> None:
    result = check_paths([ASSEMBLY], cwd=ASSEMBLY)
    assert sorted(result.files) == [
        "Parent.template.json",
        "ParentChild1234ABCD.nested.template.json",
        "assembly-Prod/ProdService.template.json",
    ]
    by_resource = {(f.resource, f.file) for f in result.findings if f.rule_id == "DL101"}
    assert by_resource == {
        ("NestedBucket", "ParentChild1234ABCD.nested.template.json"),
        ("StageBucket", "assembly-Prod/ProdService.template.json"),
    }
    assert result.errors == []


def test_an_assembly_inside_a_directory_and_its_manifest_path_are_both_understood(
    tmp_path: Path,
) -> None:
    shutil.copytree(ASSEMBLY, tmp_path / "deep" / "cdk.out")
    via_dir = check_paths([tmp_path], cwd=tmp_path)
    via_manifest = check_paths([tmp_path / "deep" / "cdk.out" / "manifest.json"], cwd=tmp_path)
    assert sorted(via_dir.files) == sorted(via_manifest.files)
    assert len(via_dir.files) == 3  # tree.json and the asset manifest are not templates
    assert _ids(via_dir.findings) == _ids(via_manifest.findings)


def test_a_manifest_naming_a_missing_template_is_an_error(tmp_path: Path) -> None:
    _write(
        tmp_path / "manifest.json",
        json.dumps(
            {
                "version": "55.0.0",
                "artifacts": {
                    "Gone": {
                        "type": "aws:cloudformation:stack",
                        "properties": {"templateFile": "Gone.template.json"},
                    }
                },
            }
        ),
    )
    result = check_paths([tmp_path], cwd=tmp_path)
    assert len(result.errors) == 1
    assert "Gone.template.json is missing" in result.errors[0].message
    assert result.exit_code() == 1


def test_usage_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(CheckUsageError, match=r"no such file or directory: .*nope"):
        check_paths([tmp_path / "nope"])
    with pytest.raises(CheckUsageError, match="no rule matches 'DL999'"):
        check_paths([tmp_path], rules=["DL999"])
    with pytest.raises(CheckUsageError, match="no path given"):
        check_paths([])


def test_rules_and_skip_take_ids_and_prefixes(tmp_path: Path) -> None:
    bad = _write(tmp_path / "bad.yaml", BARE_BUCKET)
    only_security = check_paths([bad], rules=["DL1"])
    assert {f.rule_id for f in only_security.findings} == {"DL101", "DL103", "DL104"}
    skipped = check_paths([bad], skip=["DL1", "DL701"])
    assert {f.rule_id for f in skipped.findings} == {"DL205"}
    assert "DL101" not in skipped.rules


def test_a_metadata_suppression_with_a_reason_sets_the_finding_aside(tmp_path: Path) -> None:
    text = BARE_BUCKET + (
        "    Metadata:\n      deployline:\n        suppress:\n"
        "          - id: DL101\n            reason: encrypted by the bucket key policy upstream\n"
    )
    result = check_paths([_write(tmp_path / "t.yaml", text)], cwd=tmp_path)
    assert ("DL101", "DataBucket") not in _ids(result.findings)
    assert ("DL101", "DataBucket") in _ids(result.suppressed_findings)
    assert result.suppressed == 1


def test_a_suppression_without_a_reason_is_reported_and_not_applied(tmp_path: Path) -> None:
    text = BARE_BUCKET + (
        "    Metadata:\n      deployline:\n        suppress:\n          - id: DL101\n"
    )
    result = check_paths([_write(tmp_path / "t.yaml", text)], cwd=tmp_path)
    assert ("DL101", "DataBucket") in _ids(result.findings)
    dl000 = [f for f in result.findings if f.rule_id == "DL000"]
    assert len(dl000) == 1 and "no reason" in dl000[0].message
    assert result.suppressed == 0


def test_deployline_yaml_suppressions_and_threshold_apply(tmp_path: Path) -> None:
    bad = _write(tmp_path / "bad.yaml", BARE_BUCKET)
    config = _write(
        tmp_path / "deployline.yaml",
        "service: x\nchecks:\n  severity_threshold: medium\n  suppress:\n"
        "    - id: DL101\n      reason: the data is public on purpose\n"
        "    - id: DL103\n      resource: DataBucket\n      reason: served by CloudFront OAC\n"
        "    - id: DL205\n"
        "      resource: Elsewhere\n      reason: another resource altogether\n",
    )
    result = check_paths([bad], config_path=config, cwd=tmp_path)
    assert _ids(result.suppressed_findings) == {("DL101", "DataBucket"), ("DL103", "DataBucket")}
    assert ("DL205", "DataBucket") in _ids(result.findings)
    assert result.threshold is Severity.MEDIUM
    assert result.exit_code() == 1  # DL205 MEDIUM at the config's threshold
    # An explicit threshold wins over the config's.
    assert check_paths([bad], config_path=config, severity_threshold="HIGH").exit_code() == 0


def test_deployline_yaml_is_found_in_the_working_directory(tmp_path: Path) -> None:
    bad = _write(tmp_path / "bad.yaml", BARE_BUCKET)
    _write(
        tmp_path / "deployline.yaml",
        "checks:\n  suppress:\n    - id: DL101\n      reason: checked by the platform team\n",
    )
    assert check_paths([bad], cwd=tmp_path).suppressed == 1
    with pytest.raises(CheckUsageError, match="no such config file"):
        check_paths([bad], config_path=tmp_path / "missing.yaml")


def test_a_config_suppression_without_a_reason_is_a_dl000_finding_with_its_line(
    tmp_path: Path,
) -> None:
    bad = _write(tmp_path / "bad.yaml", BARE_BUCKET)
    config = _write(
        tmp_path / "deployline.yaml",
        "service: x\nchecks:\n  suppress:\n    - id: DL101\n      reason: ''\n",
    )
    result = check_paths([bad], config_path=config, cwd=tmp_path)
    dl000 = [f for f in result.findings if f.rule_id == "DL000"]
    assert [(f.file, f.path, f.line) for f in dl000] == [
        ("deployline.yaml", "checks.suppress[0]", 4)
    ]
    assert ("DL101", "DataBucket") in _ids(result.findings)
    with pytest.raises(CheckUsageError, match="invalid YAML"):
        check_paths([bad], config_path=_write(tmp_path / "broken.yaml", "checks: [\n"))


def test_baseline_round_trip_accepts_known_findings_and_reports_stale_ones(
    tmp_path: Path,
) -> None:
    infra = tmp_path / "infra"
    bad = _write(infra / "bad.yaml", BARE_BUCKET)
    first = check_paths([infra], cwd=tmp_path)
    baseline = tmp_path / "baseline" / "deployline-baseline.json"
    assert write_baseline(baseline, first.findings, cwd=tmp_path) == len(first.findings)
    stored = json.loads(baseline.read_text())
    assert stored["version"] == 1
    assert {e["file"] for e in stored["findings"]} == {"../infra/bad.yaml"}

    again = check_paths([infra], baseline=baseline, cwd=tmp_path)
    assert again.findings == [] and again.baselined == len(first.findings)
    assert again.exit_code() == 0 and again.notes == []

    # A new finding fails the run; the baseline still covers the old ones.
    _write(bad, BARE_BUCKET + "  Logs:\n    Type: AWS::S3::Bucket\n")
    newer = check_paths([infra], baseline=baseline, cwd=tmp_path)
    assert {f.resource for f in newer.findings} == {"Logs"}
    assert newer.exit_code() == 1

    # A fixed resource leaves stale entries, reported as notes, not failures.
    _write(bad, CLEAN)
    fixed = check_paths([infra], baseline=baseline, cwd=tmp_path)
    assert fixed.findings == [] and fixed.exit_code() == 0
    assert len(fixed.notes) == len(first.findings)
    assert all("no longer occurs" in n for n in fixed.notes)

    # Entries for rules that did not run are not stale.
    assert check_paths([infra], baseline=baseline, rules=["DL7"], cwd=tmp_path).notes == [
        n for n in fixed.notes if "DL701" in n
    ]


def test_a_baseline_that_is_not_one_is_a_usage_error(tmp_path: Path) -> None:
    bad = _write(tmp_path / "bad.yaml", BARE_BUCKET)
    with pytest.raises(CheckUsageError, match="no such baseline file"):
        check_paths([bad], baseline=tmp_path / "none.json")
    with pytest.raises(CheckUsageError, match="not a JSON baseline"):
        check_paths([bad], baseline=_write(tmp_path / "b.json", "{"))
    with pytest.raises(CheckUsageError, match="`findings` list"):
        check_paths([bad], baseline=_write(tmp_path / "c.json", "[]"))


def test_check_assembly_applies_the_threshold_and_suppressions_it_is_given() -> None:
    plain = check_assembly(ASSEMBLY)
    assert plain.exit_code() == 1
    accepted = check_assembly(
        ASSEMBLY,
        threshold="high",
        suppressions=[
            {"id": "DL101", "reason": "fixture buckets hold nothing"},
            {"id": "dl103", "reason": "fixture buckets hold nothing"},
        ],
    )
    assert accepted.at_or_above() == []
    assert accepted.suppressed == 4
    with pytest.raises(CheckUsageError, match="not a CDK cloud assembly"):
        check_assembly(FIXTURES)


def test_check_files_and_check_texts_read_only_what_they_are_given(tmp_path: Path) -> None:
    bad = _write(tmp_path / "bad.yaml", BARE_BUCKET)
    _write(tmp_path / "deployline.yaml", "checks:\n  suppress:\n    - {id: DL101, reason: x y z}\n")
    assert ("DL101", "DataBucket") in _ids(check_files([bad]).findings)
    texts = check_texts({"a.yaml": BARE_BUCKET, "b.yaml": "Resources: [1]\n"}, rules=["DL101"])
    assert _ids(texts.findings) == {("DL101", "DataBucket")}
    assert [e.file for e in texts.errors] == ["b.yaml"]


def test_a_path_without_templates_is_a_usage_error_not_a_pass(tmp_path: Path) -> None:
    _write(tmp_path / "package.json", json.dumps({"name": "x"}))
    empty = tmp_path / "empty"
    empty.mkdir()
    for where in (tmp_path, empty):
        with pytest.raises(CheckUsageError, match=f"no CloudFormation template under {where}"):
            check_paths([where], cwd=tmp_path)


def test_templated_files_are_reported_as_not_checked(tmp_path: Path) -> None:
    _write(tmp_path / "pipeline.yml", "Resources:\n{% for env in envs %}\n  {{ env }}Bucket:\n")
    _write(tmp_path / "erb.yml", "Resources:\n  Bucket:\n    Type: <%= type %>\n  x: [\n")
    _write(tmp_path / "real.yaml", BARE_BUCKET)
    result = check_paths([tmp_path], rules=["DL101"], cwd=tmp_path)
    assert result.templated == ["erb.yml", "pipeline.yml"]
    assert result.errors == [] and result.files == ["real.yaml"]
    only = tmp_path / "only"
    _write(only / "pipeline.yml", "Resources:\n{% for env in envs %}\n")
    with pytest.raises(CheckUsageError, match="1 templated files are not checked"):
        check_paths([only], cwd=tmp_path)


def test_exclude_globs_skip_files_and_folders(tmp_path: Path) -> None:
    _write(tmp_path / "infra" / "bad.yaml", BARE_BUCKET)
    _write(tmp_path / "tests" / "fixtures" / "bad.yaml", BARE_BUCKET)
    _write(tmp_path / "infra" / "skip.template.yaml", BARE_BUCKET)
    result = check_paths(
        [tmp_path], rules=["DL101"], cwd=tmp_path, exclude=["tests", "*.template.yaml"]
    )
    assert result.files == ["infra/bad.yaml"]


def test_the_third_party_profile_leaves_the_house_conventions_out(tmp_path: Path) -> None:
    bad = _write(tmp_path / "bad.yaml", BARE_BUCKET)
    ran = set(check_paths([bad], cwd=tmp_path, profile="third-party").rules)
    assert {"DL701", "DL702", "DL704", "DL506"}.isdisjoint(ran) and "DL101" in ran
    with pytest.raises(CheckUsageError, match="--profile 'house' is not a profile"):
        check_paths([bad], cwd=tmp_path, profile="house")


def test_lines_come_from_the_nodes_not_the_first_mention_of_a_name(tmp_path: Path) -> None:
    text = """\
Resources:
  Policy:
    Type: AWS::S3::BucketPolicy
    Properties:
      Bucket: !Ref Bucket
      PolicyDocument: {Statement: []}
  Bucket:
    Type: AWS::S3::Bucket
    Properties:
      PublicAccessBlockConfiguration:
        BlockPublicAcls: true
        BlockPublicPolicy: false
"""
    template = _write(tmp_path / "t.yaml", text)
    result = check_paths([template], rules=["DL101", "DL103"], cwd=tmp_path)
    lines = {(f.rule_id, f.path): f.line for f in result.findings}
    assert lines == {
        ("DL101", "Properties.BucketEncryption"): 7,  # the resource: the property is missing
        ("DL103", "Properties.PublicAccessBlockConfiguration"): 10,
    }


def test_json_lines_and_a_trailing_comma_are_read(tmp_path: Path) -> None:
    text = '{\n "Resources": {\n  "Bucket": {\n   "Type": "AWS::S3::Bucket",\n  },\n },\n}\n'
    result = check_paths([_write(tmp_path / "t.json", text)], rules=["DL101"], cwd=tmp_path)
    assert result.errors == []
    assert [(f.resource, f.line) for f in result.findings] == [("Bucket", 3)]


def test_rule_options_are_typed_and_unknown_ones_are_refused(tmp_path: Path) -> None:
    long_build = """\
Resources:
  Build:
    Type: AWS::CodeBuild::Project
    Properties: {TimeoutInMinutes: 90}
"""
    template = _write(tmp_path / "t.yaml", long_build)
    config = tmp_path / "deployline.yaml"
    config.write_text("checks:\n  options:\n    DL301: {limit: 120}\n")
    assert check_paths([template], rules=["DL301"], config_path=config).findings == []
    config.write_text("checks:\n  options:\n    DL301: {limit: '120'}\n")
    with pytest.raises(CheckUsageError, match=r"DL301 option 'limit' takes an integer, got '120'"):
        check_paths([template], rules=["DL301"], config_path=config)
    config.write_text("checks:\n  options:\n    DL301: {max: 120}\n")
    with pytest.raises(CheckUsageError, match=r"DL301 has no option 'max' \(its options: limit\)"):
        check_paths([template], rules=["DL301"], config_path=config)


def test_a_cookiecutter_template_that_parses_is_still_templated(tmp_path: Path) -> None:
    text = BARE_BUCKET.replace("${AWS::StackName}-data", "{{cookiecutter.project}}-data")
    _write(tmp_path / "{{cookiecutter.dir}}" / "t.yaml", text)
    _write(tmp_path / "real.yaml", BARE_BUCKET)
    result = check_paths([tmp_path], rules=["DL101"], cwd=tmp_path)
    assert result.templated == ["{{cookiecutter.dir}}/t.yaml"] and result.files == ["real.yaml"]


# ---- a resource another stack of the assembly names ------------------------------------------

_PIPELINE_ELSEWHERE = {
    "Resources": {
        "Pipeline": {
            "Type": "AWS::CodePipeline::Pipeline",
            "Properties": {
                "RoleArn": "arn:aws:iam::111111111111:role/p",
                "ArtifactStores": [
                    {
                        "Region": "eu-west-1",
                        "ArtifactStore": {
                            "Type": "S3",
                            "Location": "svc-artifacts-111111111111-eu-west-1-shared",
                            "EncryptionKey": {
                                "Type": "KMS",
                                "Id": "arn:aws:kms:eu-west-1:111111111111:alias/svc-artifacts",
                            },
                        },
                    }
                ],
                "Stages": [],
            },
        }
    }
}


def _regional_bucket(lifecycle: bool) -> dict[str, object]:
    props: dict[str, object] = {
        "BucketName": "svc-artifacts-111111111111-eu-west-1-shared",
        "BucketEncryption": {
            "ServerSideEncryptionConfiguration": [
                {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}
            ]
        },
        "VersioningConfiguration": {"Status": "Enabled"},
    }
    if lifecycle:
        props["LifecycleConfiguration"] = {
            "Rules": [
                {
                    "Status": "Enabled",
                    "ExpirationInDays": 30,
                    "NoncurrentVersionExpiration": {"NoncurrentDays": 7},
                }
            ]
        }
    return {"Resources": {"Bucket": {"Type": "AWS::S3::Bucket", "Properties": props}}}


def _assembly(root: Path, regional: dict[str, object]) -> Path:
    root.mkdir()
    (root / "pipeline.template.json").write_text(json.dumps(_PIPELINE_ELSEWHERE))
    (root / "regional.template.json").write_text(json.dumps(regional))
    stack = "aws:cloudformation:stack"
    (root / "manifest.json").write_text(
        json.dumps(
            {
                "version": "48.0.0",
                "artifacts": {
                    "pipeline": {
                        "type": stack,
                        "environment": "aws://111111111111/us-east-1",
                        "properties": {"templateFile": "pipeline.template.json"},
                    },
                    "regional": {
                        "type": stack,
                        "environment": "aws://111111111111/eu-west-1",
                        "properties": {"templateFile": "regional.template.json"},
                    },
                },
            }
        )
    )
    return root


def test_a_bucket_another_stack_of_the_assembly_names_is_read_there(tmp_path: Path) -> None:
    good = check_assembly(_assembly(tmp_path / "good", _regional_bucket(True)), rules=["DL202"])
    assert not good.findings and not good.unknown
    bad = check_assembly(_assembly(tmp_path / "bad", _regional_bucket(False)), rules=["DL202"])
    # Both gaps, on the bucket the other stack defines (found while reading the pipeline).
    assert [(f.rule_id, f.resource, f.path) for f in bad.findings] == [
        ("DL202", "Bucket", "Properties.LifecycleConfiguration"),
        ("DL202", "Bucket", "Properties.LifecycleConfiguration.Rules"),
    ]
    assert all(
        "artifact bucket of Pipeline" in f.message or "versioned" in f.message for f in bad.findings
    )
    # Alone, the pipeline's template cannot tell.
    alone = check_files([tmp_path / "good" / "pipeline.template.json"], rules=["DL202"])
    assert [(f.rule_id, f.resource) for f in alone.unknown] == [("DL202", "Pipeline")]
