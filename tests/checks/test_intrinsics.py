"""checks.intrinsics: reading values that may be CloudFormation intrinsics, and the resolver."""

from __future__ import annotations

import pytest

from deployline.checks.intrinsics import (
    Resolver,
    format_path,
    get_path,
    int_of,
    is_intrinsic,
    literal_str,
    ref_like,
    referenced_names,
    render,
)

PARAMETERS = {
    "Env": {"Type": "String", "Default": "prod"},
    "Subnets": {"Type": "CommaDelimitedList", "Default": "a, b"},
    "Free": {"Type": "String"},
}
MAPPINGS = {"Images": {"eu-west-1": {"Build": "aws/codebuild/standard:3.0"}}}
resolver = Resolver(PARAMETERS, MAPPINGS)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"Ref": "Env"}, "prod"),
        ({"Fn::Sub": "app-${Env}"}, "app-prod"),
        ({"Fn::Sub": ["${Name}-${Env}", {"Name": {"Ref": "Env"}}]}, "prod-prod"),
        ({"Fn::Sub": "${!Literal}-${Env}"}, "${Literal}-prod"),
        ({"Fn::Join": ["-", ["a", {"Ref": "Env"}]]}, "a-prod"),
        ({"Fn::Select": [1, {"Ref": "Subnets"}]}, "b"),
        ({"Fn::Select": ["0", {"Fn::Split": [",", "x,y"]}]}, "x"),
        ({"Fn::FindInMap": ["Images", "eu-west-1", "Build"]}, "aws/codebuild/standard:3.0"),
        (
            {"Tags": [{"Key": "E", "Value": {"Ref": "Env"}}]},
            {"Tags": [{"Key": "E", "Value": "prod"}]},
        ),
    ],
)
def test_the_resolver_resolves_what_the_template_holds(value: object, expected: object) -> None:
    assert resolver.value(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        {"Ref": "Free"},  # a parameter without a default
        {"Ref": "AWS::Region"},  # a pseudo parameter
        {"Fn::GetAtt": ["Bucket", "Arn"]},
        {"Fn::Sub": "${Bucket.Arn}/*"},
        {"Fn::FindInMap": ["Images", {"Ref": "AWS::Region"}, "Build"]},
        {"Fn::ImportValue": "shared-bucket"},
        "{{resolve:ssm:/x}}",
    ],
)
def test_what_the_template_does_not_hold_stays_an_intrinsic(value: object) -> None:
    assert resolver.value(value) == value
    assert resolver.candidates(value) is None


def test_if_gives_both_branches_and_no_value_drops_the_property() -> None:
    assert resolver.candidates({"Fn::If": ["C", "a", {"Ref": "Env"}]}) == ["a", "prod"]
    both = resolver.candidates({"K": {"Fn::If": ["C", {"Ref": "AWS::NoValue"}, 1]}})
    assert both == [{"K": 1}, {}]


def test_text_leaves_holes_for_what_does_not_resolve_and_agrees_across_sub_and_join() -> None:
    sub = {"Fn::Sub": "arn:${AWS::Partition}:kms:${AWS::Region}:${AWS::AccountId}:key/${Key}"}
    join = {
        "Fn::Join": [
            ":",
            ["arn", {"Ref": "AWS::Partition"}, "kms", {"Ref": "AWS::Region"},
             {"Ref": "AWS::AccountId"}, {"Fn::Sub": "key/${Key}"}],
        ]
    }  # fmt: skip
    assert resolver.text(sub) == resolver.text(join)
    assert (
        resolver.text(sub)
        == "arn:${AWS::Partition}:kms:${AWS::Region}:${AWS::AccountId}:key/${Key}"
    )
    assert resolver.text({"Fn::Sub": ["${A}/${Env}", {"A": {"Fn::GetAtt": "B.Arn"}}]}) == (
        "${B.Arn}/prod"
    )
    assert resolver.text({"Fn::If": ["C", "a", "b"]}) == "${?}"


def test_small_readers() -> None:
    assert is_intrinsic({"Fn::Sub": "x"}) and is_intrinsic({"Ref": "X"})
    assert is_intrinsic("{{resolve:secretsmanager:s}}") and not is_intrinsic({"a": 1, "b": 2})
    assert literal_str("x") == "x" and literal_str({"Ref": "X"}) is None
    assert int_of("30") == 30 and int_of(True) is None and int_of(2.0) == 2
    assert ref_like({"Fn::Sub": "${Topic}"}) == "Topic" and ref_like({"Fn::Sub": "a${T}"}) is None
    assert referenced_names({"Fn::Sub": ["${A}${B.Arn}${AWS::Region}", {"A": "x"}]}) == {"B"}
    assert render({"Fn::Join": ["", ["a", {"Ref": "B"}]]}) == "a${B}"
    assert (
        format_path(("Properties", "Stages", 2, "Actions", 0)) == "Properties.Stages[2].Actions[0]"
    )
    assert get_path({"a": [{"b": 1}]}, "a", 0, "b") == 1 and get_path({"a": 1}, "a", "b") is None
