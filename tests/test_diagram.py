"""`deployline diagram`: Mermaid and SVG drawings of the pipeline in a synthesized template.

Hand-written templates (JSON and CloudFormation YAML with short-form intrinsics) pin the layout
rules; one synth of the example deployline.yaml (module-scoped) checks the default path, which
synthesizes in a temporary directory.
"""

from __future__ import annotations

import json
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from deployline.cli import app, register_commands
from deployline.diagram import (
    DiagramError,
    Format,
    kind,
    load_pipelines,
    pipelines_in,
    render,
    to_mermaid,
    to_svg,
)

ROOT = Path(__file__).resolve().parents[1]
SVG = "{http://www.w3.org/2000/svg}"
runner = CliRunner()
register_commands(["diagram"])


def _action(name: str, category: str, provider: str, run_order: int = 1) -> dict[str, Any]:
    return {
        "Name": name,
        "ActionTypeId": {
            "Category": category,
            "Owner": "AWS",
            "Provider": provider,
            "Version": "1",
        },
        "RunOrder": run_order,
        "Configuration": {"ProjectName": {"Ref": "Project"}},
    }


STAGES: list[dict[str, Any]] = [
    {"Name": "Source", "Actions": [_action("Source", "Source", "CodeStarSourceConnection")]},
    {"Name": "Build", "Actions": [_action("BuildImage", "Build", "CodeBuild")]},
    {
        "Name": "Test",
        "Actions": [
            _action("UnitTests", "Test", "CodeBuild", 1),
            _action("SecurityScan", "Test", "CodeBuild", 1),
            _action("SecurityGate", "Invoke", "Lambda", 2),
        ],
    },
    {
        "Name": "Deploy-staging",
        "OnFailure": {"Result": "ROLLBACK"},
        "Actions": [
            _action("Deploy", "Deploy", "ECS", 1),
            _action("Validate", "Invoke", "Lambda", 2),
        ],
    },
    {"Name": "Approve-production", "Actions": [_action("Approve", "Approval", "Manual")]},
    {
        "Name": "Deploy-production",
        "OnFailure": {"Result": "ROLLBACK"},
        "Actions": [
            _action("Deploy", "Deploy", "CodeDeployToECS", 1),
            _action("Validate", "Invoke", "Lambda", 2),
        ],
    },
]


def template(
    stages: list[dict[str, Any]] = STAGES, name: str = "shop-pipeline-shared"
) -> dict[str, Any]:
    return {
        "Resources": {
            "Key": {"Type": "AWS::KMS::Key", "Properties": {}},
            "Pipeline": {
                "Type": "AWS::CodePipeline::Pipeline",
                "Properties": {"Name": name, "PipelineType": "V2", "Stages": stages},
            },
        }
    }


def write(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["diagram", *args])
    # Bad input is an error message and exit code, never a traceback.
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output  # stdout and stderr, as a terminal shows them


def subgraph_titles(mermaid: str) -> list[str]:
    return re.findall(r'^\s*subgraph S\d+\["([^"]+)"\]', mermaid, flags=re.MULTILINE)


def node_labels(mermaid: str) -> list[str]:
    return re.findall(r'^\s{4}\w+(?:\[|\{\{)"([^<"]+)<br/>', mermaid, flags=re.MULTILINE)


# ---- Mermaid -------------------------------------------------------------------------------


def test_mermaid_lists_every_stage_in_order_and_marks_rollback() -> None:
    (pipeline,) = pipelines_in(template())
    assert subgraph_titles(to_mermaid(pipeline)) == [
        "Source",
        "Build",
        "Test",
        "Deploy-staging (rolls back on failure)",
        "Approve-production",
        "Deploy-production (rolls back on failure)",
    ]


def test_mermaid_lists_every_action_in_stage_and_run_order() -> None:
    (pipeline,) = pipelines_in(template())
    assert node_labels(to_mermaid(pipeline)) == [
        "Source",
        "BuildImage",
        "UnitTests",
        "SecurityScan",
        "SecurityGate",
        "Deploy",
        "Validate",
        "Approve",
        "Deploy",
        "Validate",
    ]


def test_mermaid_puts_the_parallel_pair_on_one_rank_before_the_gate() -> None:
    text = to_mermaid(pipelines_in(template())[0])
    assert "    Test__UnitTests & Test__SecurityScan --> Test__SecurityGate\n" in text
    # the build fans out to both, so neither waits for the other
    assert "  Build__BuildImage --> Test__UnitTests & Test__SecurityScan\n" in text
    assert "  Test__SecurityGate --> Deploy_staging__Deploy\n" in text


def test_mermaid_names_deploy_kinds_and_draws_the_approval_as_a_hexagon() -> None:
    text = to_mermaid(pipelines_in(template())[0])
    assert 'Deploy_staging__Deploy["Deploy<br/><small>ECS rolling deploy</small>"]' in text
    assert 'Deploy_production__Deploy["Deploy<br/><small>CodeDeploy blue/green</small>"]' in text
    assert 'Approve_production__Approve{{"Approve<br/><small>manual approval</small>"}}' in text
    assert "  class Approve_production__Approve approval\n" in text


def test_run_orders_are_sorted_not_taken_in_listing_order() -> None:
    stages = [
        {"Name": "Source", "Actions": [_action("Src", "Source", "S3")]},
        {
            "Name": "Check",
            "Actions": [
                _action("Last", "Invoke", "Lambda", 3),
                _action("First", "Test", "CodeBuild", 1),
                _action("Middle", "Test", "CodeBuild", 2),
            ],
        },
    ]
    text = to_mermaid(pipelines_in(template(stages))[0])
    assert node_labels(text) == ["Src", "First", "Middle", "Last"]
    assert "Check__First --> Check__Middle" in text and "Check__Middle --> Check__Last" in text


def test_yaml_template_with_short_form_intrinsics_is_read(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.yaml"
    path.write_text(
        """
Resources:
  Pipeline:
    Type: AWS::CodePipeline::Pipeline
    Properties:
      Name: !Sub "${AWS::StackName}-pipeline"
      RoleArn: !GetAtt Role.Arn
      Stages:
        - Name: Source
          Actions:
            - Name: Fetch
              ActionTypeId: {Category: Source, Owner: AWS, Provider: CodeCommit, Version: "1"}
        - Name: Ship
          Actions:
            - Name: Roll
              ActionTypeId: {Category: Deploy, Owner: AWS, Provider: ECS, Version: "1"}
              Configuration: {ClusterName: !ImportValue cluster}
""",
        encoding="utf-8",
    )
    (pipeline,) = load_pipelines(path)
    assert pipeline.name == "Pipeline"  # the Name is an intrinsic: the logical ID stands in
    assert [s.name for s in pipeline.stages] == ["Source", "Ship"]
    assert [kind(a) for s in pipeline.stages for a in s.actions] == [
        "CodeCommit source",
        "ECS rolling deploy",
    ]


# ---- SVG -----------------------------------------------------------------------------------


def svg_actions(svg: str) -> list[ET.Element]:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    return [g for g in root.iter(f"{SVG}g") if g.get("class") == "action"]


def test_svg_parses_and_contains_every_action_name_once_per_action() -> None:
    svg = to_svg(pipelines_in(template())[0])
    groups = svg_actions(svg)
    expected = [a["Name"] for s in STAGES for a in s["Actions"]]
    # in drawing order, each box shows the action's name and then what it does
    assert ["".join(g.itertext()) for g in groups] == [
        "SourceGit source (connection)",
        "BuildImageCodeBuild build",
        "UnitTestsCodeBuild test",
        "SecurityScanCodeBuild test",
        "SecurityGateLambda check",
        "DeployECS rolling deploy",
        "ValidateLambda check",
        "Approvemanual approval",
        "DeployCodeDeploy blue/green",
        "ValidateLambda check",
    ]
    assert [g.get("data-action") for g in groups] == expected
    stages = [
        g.get("data-stage") for g in ET.fromstring(svg).iter(f"{SVG}g") if g.get("data-stage")
    ]
    assert stages == [s["Name"] for s in STAGES]


def box_x(group: ET.Element) -> float:
    rect = group.find(f"{SVG}rect")
    assert rect is not None
    return float(rect.get("x", "nan"))


def test_svg_stacks_parallel_actions_in_one_column_and_orders_columns_left_to_right() -> None:
    groups = svg_actions(to_svg(pipelines_in(template())[0]))
    by_name = {g.get("data-action"): g for g in groups[:5]}  # Source .. SecurityGate
    assert box_x(by_name["UnitTests"]) == box_x(by_name["SecurityScan"])
    assert box_x(by_name["SecurityGate"]) > box_x(by_name["UnitTests"])
    xs = [box_x(g) for g in groups]
    firsts = [xs[0], xs[1], xs[2], xs[4], xs[5], xs[6], xs[7], xs[8], xs[9]]
    assert firsts == sorted(firsts)  # every later column sits to the right


def test_svg_escapes_names() -> None:
    stages = [{"Name": "A&B <stage>", "Actions": [_action('x"<y>&z', "Build", "CodeBuild")]}]
    svg = to_svg(pipelines_in(template(stages, name="a<b>&c"))[0])
    (group,) = svg_actions(svg)
    assert group.get("data-action") == 'x"<y>&z'


# ---- command -------------------------------------------------------------------------------


def test_command_writes_svg_and_mermaid_files_from_a_template(tmp_path: Path) -> None:
    path = write(tmp_path / "p.template.json", template())
    code, out = invoke("--template", str(path), "--format", "svg", "-o", str(tmp_path / "p.svg"))
    assert code == 0, out
    assert len(svg_actions((tmp_path / "p.svg").read_text(encoding="utf-8"))) == 10
    code, out = invoke("-t", str(path), "-o", str(tmp_path / "out" / "p.mmd"))
    assert code == 0, out
    assert (tmp_path / "out" / "p.mmd").read_text(encoding="utf-8").startswith("%% shop-pipeline")


def test_command_reads_a_cdk_out_directory_with_from(tmp_path: Path) -> None:
    write(tmp_path / "svc-staging.template.json", {"Resources": {"Q": {"Type": "AWS::SQS::Queue"}}})
    write(tmp_path / "svc-pipeline.template.json", template())
    code, out = invoke("--from", str(tmp_path))
    assert code == 0, out
    assert "Test__UnitTests & Test__SecurityScan --> Test__SecurityGate" in out


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file or directory"),
        ("{not json", "not a valid template"),
        (json.dumps({"Resources": {"Q": {"Type": "AWS::SQS::Queue"}}}), "no AWS::CodePipeline"),
        (json.dumps({"AWSTemplateFormatVersion": "2010-09-09"}), "no Resources section"),
        (
            json.dumps({"Resources": {"P": {"Type": "AWS::CodePipeline::Pipeline"}}}),
            "has no Stages",
        ),
    ],
)
def test_bad_template_exits_2_with_a_clear_error(
    tmp_path: Path, content: str | None, message: str
) -> None:
    path = tmp_path / "t.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    code, out = invoke("--template", str(path))
    assert code == 2
    assert out.startswith("error: ") and message in out and str(path) in out
    assert "Traceback" not in out


def test_empty_cdk_out_and_missing_config_exit_2(tmp_path: Path) -> None:
    code, out = invoke("--from", str(tmp_path))
    assert code == 2 and "no *.template.json" in out
    code, out = invoke("--config", str(tmp_path / "deployline.yaml"))
    assert code == 2 and "no such file" in out


def test_several_pipelines_need_a_choice(tmp_path: Path) -> None:
    write(tmp_path / "a.template.json", template(name="one"))
    write(tmp_path / "b.template.json", template(name="two"))
    code, out = invoke("--from", str(tmp_path))
    assert code == 2 and "several pipelines found (one, two)" in out
    code, out = invoke("--from", str(tmp_path), "--pipeline", "two")
    assert code == 0 and out.startswith("%% two:")
    code, out = invoke("--from", str(tmp_path), "--pipeline", "three")
    assert code == 2 and "no pipeline named 'three'" in out


def test_invalid_config_exits_2_naming_the_field(tmp_path: Path) -> None:
    config = tmp_path / "deployline.yaml"
    text = (ROOT / "deployline.yaml").read_text(encoding="utf-8")
    config.write_text(text.replace("timeout_minutes: 15", "timeout_minutes: 500"), "utf-8")
    code, out = invoke("--config", str(config))
    assert code == 2
    assert "timeout_minutes" in out and "Traceback" not in out


def test_render_rejects_nothing_it_can_read() -> None:
    (pipeline,) = pipelines_in(template())
    assert render(pipeline, Format.mermaid) == to_mermaid(pipeline)
    assert render(pipeline, Format.svg) == to_svg(pipeline)
    with pytest.raises(DiagramError, match="stage 0 of Pipeline is not a mapping"):
        pipelines_in(template(["Source"]))  # type: ignore[list-item]


# ---- the example, synthesized --------------------------------------------------------------


@pytest.fixture(scope="module")
def example_mermaid(tmp_path_factory: pytest.TempPathFactory) -> str:
    work = tmp_path_factory.mktemp("diagram-example")
    shutil.copy(ROOT / "deployline.yaml", work / "deployline.yaml")
    code, out = invoke("--config", str(work / "deployline.yaml"))
    assert code == 0, out
    return out


def test_example_config_is_synthesized_and_drawn(example_mermaid: str) -> None:
    titles = subgraph_titles(example_mermaid)
    assert titles[:3] == ["Source", "Build", "Test"]
    assert "Test__UnitTests & Test__SecurityScan --> Test__SecurityGate" in example_mermaid
    assert "Git source (connection)" in example_mermaid
    # Every deploy stage drawn validates after deploying; staging's (CloudFormation create or
    # update) rolls back on failure, production's (the approved change set) does not.
    deploys = [t for t in titles[3:] if t.startswith("Deploy-")]
    assert [t.split()[0] for t in deploys] == ["Deploy-staging", "Deploy-production"]
    assert deploys[0].endswith("(rolls back on failure)")
    assert not deploys[1].endswith("(rolls back on failure)")
    for title in deploys:
        env = title.split()[0].replace("-", "_")
        assert f"{env}__Deploy --> {env}__Validate" in example_mermaid
