"""checks.template: the parsed template's indexes, lookups, resolution and lines."""

from __future__ import annotations

from deployline.checks.engine import template_from_text
from deployline.checks.template import split_path

TEXT = """\
Parameters:
  LogsName: {Type: String, Default: build-logs}
Resources:
  Policy:
    Type: AWS::IAM::Policy
    Properties:
      Roles: [!Ref Role]
      PolicyDocument: {Statement: []}
  Role:
    Type: AWS::IAM::Role
    Properties:
      Tags: [{Key: Environment, Value: Production}]
  Logs:
    Type: AWS::Logs::LogGroup
    Properties: {LogGroupName: build-logs}
  Computed:
    Type: AWS::Logs::LogGroup
    Properties: {LogGroupName: !Sub "${AWS::StackName}-logs"}
"""
template = template_from_text(TEXT, "t.yaml")


def test_indexes_types_references_and_tags() -> None:
    assert [r.logical_id for r in template.of_type("AWS::Logs::LogGroup")] == ["Logs", "Computed"]
    assert template.types == {"AWS::IAM::Policy", "AWS::IAM::Role", "AWS::Logs::LogGroup"}
    assert template.references["Policy"] == {"Role"}
    assert template.resources["Role"].is_production


def test_named_finds_by_reference_literal_name_or_a_parameter_default() -> None:
    kinds = ("AWS::Logs::LogGroup",)
    assert template.named({"Ref": "Logs"}, kinds, "LogGroupName").resource is not None
    assert template.named("build-logs", kinds, "LogGroupName").resource.logical_id == "Logs"
    assert template.named({"Ref": "LogsName"}, kinds, "LogGroupName").resource.logical_id == "Logs"
    could = template.named("prod-logs", kinds, "LogGroupName")
    assert could.resource is None and not could.external and "computed" in could.reason
    elsewhere = template.named("other", ("AWS::IAM::Role",), "RoleName")
    assert elsewhere.external and "no AWS::IAM::Role" in elsewhere.reason


def test_lines_come_from_the_nodes_of_a_property_path() -> None:
    assert split_path("Properties.Tags[0].Value") == ["Properties", "Tags", 0, "Value"]
    assert template.line_at("Role", "Properties.Tags[0]") == 12
    assert template.line_at("Role", "Properties.Missing") == 9  # the resource itself
    assert template.line_at("Logs", "") == 13
