"""The pipeline model (checks.pipeline): what deploys, what updates the pipeline itself, and
what a multi-account cloud assembly tells the rules (stack names and environments)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from deployline.checks.api import check_paths
from deployline.checks.engine import template_from_text
from deployline.checks.pipeline import Deploy, parse_pipelines
from deployline.checks.template import StackContext, Template

ASSEMBLY = Path(__file__).resolve().parent.parent / "fixtures" / "assemblies" / "multi-account"
PIPELINE = ASSEMBLY / "orders-pipeline.template.json"
CASE = Path(__file__).resolve().parent.parent / "fixtures" / "templates" / "cases"


def _deploys(template: Template) -> dict[str, Deploy]:
    (pipeline,) = parse_pipelines(template)
    return {a.label: a.deploy for a in pipeline.actions if a.deploy is not Deploy.NONE}


def test_cloudformation_modes_decide_what_deploys_and_own_stack_is_a_self_update() -> None:
    text = (CASE / "pipeline_deploys.yaml").read_text()
    template = template_from_text(text, "pipeline_deploys.yaml")
    pipelines = {p.logical_id: p for p in template.pipelines}
    deployline = {a.label: a.deploy for a in pipelines["Deployline"].actions}
    assert deployline["UpdatePipeline/SelfUpdate"] is Deploy.SELF_UPDATE
    assert deployline["Approve-production/Plan"] is Deploy.NONE  # CHANGE_SET_REPLACE
    assert deployline["Deploy-production/Deploy"] is Deploy.ENVIRONMENT  # CHANGE_SET_EXECUTE
    assert deployline["Deploy-staging/Deploy"] is Deploy.ENVIRONMENT  # CREATE_UPDATE
    assert deployline["Build/Synth"] is Deploy.NONE  # deployline synth + cdk-assets publish
    assert [s.name for s in pipelines["Deployline"].deploy_stages] == [
        "Deploy-staging",
        "Deploy-production",
    ]
    assert pipelines["DeleteOnly"].deploy_actions == []
    codebuild = {a.label: a.deploy_reason for a in pipelines["CodeBuildDeploys"].deploy_actions}
    assert codebuild == {
        "Staging/DeployStaging": "its buildspec runs aws cloudformation",
        "Production/DeployProduction": "its buildspec runs kubectl",
    }


def test_the_assembly_names_the_stack_so_a_literal_own_stack_name_is_a_self_update() -> None:
    text = PIPELINE.read_text()
    lone = template_from_text(text, "lone.json")
    # Alone, nothing says which stack holds the pipeline: both updates count as deploys.
    assert _deploys(lone) == {
        "UpdatePipeline/SelfUpdate": Deploy.ENVIRONMENT,
        "UpdatePipeline/SelfMutate": Deploy.ENVIRONMENT,  # cdk -a . deploy orders-pipeline
        "Deploy-staging/Deploy": Deploy.ENVIRONMENT,
        "Deploy-production/Deploy": Deploy.ENVIRONMENT,
    }
    in_assembly = Template(
        file="p.json",
        data=lone.data,
        text=text,
        context=StackContext(stack_name="orders-pipeline"),
    )
    assert _deploys(in_assembly) == {
        "UpdatePipeline/SelfUpdate": Deploy.SELF_UPDATE,
        "UpdatePipeline/SelfMutate": Deploy.SELF_UPDATE,
        "Deploy-staging/Deploy": Deploy.ENVIRONMENT,
        "Deploy-production/Deploy": Deploy.ENVIRONMENT,
    }


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("npx cdk deploy --all --require-approval never", Deploy.ENVIRONMENT),
        ("cdk -a . deploy orders-pipeline --verbose", Deploy.SELF_UPDATE),
        ("cdk deploy orders-pipeline orders-staging", Deploy.ENVIRONMENT),
        ('echo "run cdk deploy later"', Deploy.NONE),
        ("npx cdk-assets --path cdk.out/a.assets.json publish", Deploy.NONE),
        ("aws ecs update-service --cluster c --service s", Deploy.ENVIRONMENT),
        ("helm upgrade --install orders ./chart", Deploy.ENVIRONMENT),
        ("pip install helm-docs && terraform plan", Deploy.NONE),
    ],
)
def test_codebuild_buildspec_commands_that_deploy(command: str, expected: Deploy) -> None:
    text = f"""
Resources:
  Project:
    Type: AWS::CodeBuild::Project
    Properties:
      Source:
        Type: CODEPIPELINE
        BuildSpec: |
          version: 0.2
          phases: {{build: {{commands: ['{command.replace("'", "''")}']}}}}
  Pipeline:
    Type: AWS::CodePipeline::Pipeline
    Properties:
      Stages:
        - Name: Run
          Actions:
            - Name: Run
              ActionTypeId: {{Category: Build, Owner: AWS, Provider: CodeBuild, Version: "1"}}
              Configuration: {{ProjectName: !Ref Project}}
"""
    data = template_from_text(text).data
    template = Template(file="t", data=data, context=StackContext(stack_name="orders-pipeline"))
    assert _deploys(template).get("Run/Run", Deploy.NONE) is expected


def test_a_multi_account_assembly_declares_its_accounts_and_regions_for_dl130() -> None:
    result = check_paths([ASSEMBLY], rules=["DL130", "DL401", "DL402", "DL405"])
    assert result.errors == []
    assert [(f.rule_id, f.resource, f.path) for f in result.findings] == [
        ("DL130", "Repository", "Properties.RepositoryPolicyText.Statement[0].Principal.AWS[2]")
    ]
    assert "444444444444" in result.findings[0].message
    assert result.unknown == []


def test_outside_an_assembly_literals_are_findings_except_regions_codepipeline_takes_by_name(
    tmp_path: Path,
) -> None:
    shutil.copy(PIPELINE, tmp_path / "pipeline.json")
    result = check_paths([tmp_path / "pipeline.json"], rules=["DL130"], cwd=tmp_path)
    paths = {(f.resource, f.path) for f in result.findings}
    assert ("Pipeline", "Properties.Stages[4].Actions[0].RoleArn") in paths
    assert ("Pipeline", "Properties.RoleArn") in paths
    assert not any(p.endswith("].Region") for _, p in paths)  # ArtifactStores and actions
    assert len(paths) == 15
