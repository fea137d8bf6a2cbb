"""The change summary an approver sees: change sets described through moto's CloudFormation, and
the shapes DescribeChangeSet returns for replacements, access changes, empty and failed change
sets (moto models only some of them; those are given as API responses).

CodePipeline's PutJobSuccessResult/PutJobFailureResult go to botocore's Stubber.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.stub import ANY, Stubber

from deployline import contract
from deployline.runtime import change_summary
from deployline.runtime.change_summary import Change, Summary, SummaryParams
from deployline.runtime.jobs import PipelineJob

from .conftest import CallLog, make_client

TEMPLATE = """
Parameters:
  ImageTag:
    Type: String
    Default: ""
Resources:
  Alerts:
    Type: AWS::SNS::Topic
    Properties:
      TopicName: !Sub "alerts-${ImageTag}"
"""
WITH_ROLE = (
    TEMPLATE
    + """
  AppRole:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Statement:
          - Effect: Allow
            Principal: {Service: ecs-tasks.amazonaws.com}
            Action: sts:AssumeRole
"""
)


@pytest.fixture
def pipeline() -> Iterator[tuple[Any, Stubber, CallLog]]:
    client = make_client("codepipeline", "http://127.0.0.1:9")
    log = CallLog(client)
    with Stubber(client) as stub:
        yield client, stub, log
        stub.assert_no_pending_responses()


def job(params: dict[str, Any] | str) -> PipelineJob:
    raw = params if isinstance(params, str) else json.dumps(params)
    data = {"actionConfiguration": {"configuration": {"UserParameters": raw}}}
    return PipelineJob.from_event({"CodePipeline.job": {"id": "job-7", "data": data}})


def test_the_image_parameter_is_the_contracts() -> None:
    assert change_summary.IMAGE_TAG_PARAMETER == contract.IMAGE_TAG_PARAMETER


def test_a_planned_change_set_is_summarized_into_variables_for_the_approval(
    moto_url: str, pipeline: Any
) -> None:
    cloudformation = make_client("cloudformation", moto_url)
    stack = f"svc-service-production-{uuid.uuid4().hex[:6]}"
    cloudformation.create_stack(
        StackName=stack,
        TemplateBody=TEMPLATE,
        Parameters=[{"ParameterKey": "ImageTag", "ParameterValue": "aaa111"}],
    )
    cloudformation.create_change_set(
        StackName=stack,
        ChangeSetName="deployline-pipeline",
        TemplateBody=WITH_ROLE,
        Parameters=[{"ParameterKey": "ImageTag", "ParameterValue": "bbb222"}],
        Capabilities=["CAPABILITY_NAMED_IAM"],
    )
    client, stub, log = pipeline
    stub.add_response(
        "put_job_success_result",
        {},
        {"jobId": "job-7", "executionDetails": ANY, "outputVariables": ANY},
    )

    outcome = change_summary.run(
        job({"stack_name": stack, "change_set_name": "deployline-pipeline"}),
        codepipeline=client,
        cloudformation_for=lambda _: cloudformation,
    )

    assert outcome.result == "succeeded"
    (call,) = log.named("PutJobSuccessResult")
    variables = call["outputVariables"]
    details = call["executionDetails"]["summary"].splitlines()
    # The counts are what DescribeChangeSet lists (moto lists the renamed topic as an Add).
    adds = [line for line in details if line.startswith("Add ")]
    assert variables["ADDED"] == str(len(adds)) and variables["SUMMARY"].startswith(
        f"{len(adds)} added"
    )
    assert variables["IAM"] == "1"
    assert variables["IMAGE_TAG"] == "bbb222"
    assert "IAM/access: AppRole" in variables["SUMMARY"]
    assert "image aaa111 -> bbb222" in variables["SUMMARY"]
    assert "Add AppRole (AWS::IAM::Role, access)" in call["executionDetails"]["summary"]


def _resource(action: str, logical_id: str, type_: str, **extra: Any) -> dict[str, Any]:
    return {
        "Type": "Resource",
        "ResourceChange": {
            "Action": action,
            "LogicalResourceId": logical_id,
            "ResourceType": type_,
            **extra,
        },
    }


class FakeCloudFormation:
    """DescribeChangeSet pages and DescribeStacks as the API shapes them."""

    def __init__(self, pages: list[dict[str, Any]], deployed_tag: str | None = "old1") -> None:
        self.pages = pages
        self.deployed_tag = deployed_tag
        self.calls: list[dict[str, Any]] = []

    def describe_change_set(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        index = int(kwargs.get("NextToken", "0"))
        page = dict(self.pages[index])
        if index + 1 < len(self.pages):
            page["NextToken"] = str(index + 1)
        return page

    def describe_stacks(self, **_: Any) -> dict[str, Any]:
        parameters = (
            [{"ParameterKey": "ImageTag", "ParameterValue": self.deployed_tag}]
            if self.deployed_tag is not None
            else []
        )
        return {"Stacks": [{"StackStatus": "UPDATE_COMPLETE", "Parameters": parameters}]}


PARAMS = SummaryParams(stack_name="svc-production", change_set_name="deployline-pipeline")


def test_replacements_and_access_changes_are_named_across_every_page() -> None:
    task = _resource(
        "Modify",
        "TaskDefinition",
        "AWS::ECS::TaskDefinition",
        Replacement="True",
        Details=[{"Target": {"Attribute": "Properties", "Name": "ContainerDefinitions"}}],
    )
    policy = _resource(
        "Modify",
        "BucketPolicy",
        "AWS::S3::BucketPolicy",
        Replacement="False",
    )
    key = _resource(
        "Modify",
        "Key",
        "AWS::KMS::Key",
        Replacement="False",
        Details=[{"Target": {"Attribute": "Properties", "Name": "KeyPolicy"}}],
    )
    gone = _resource("Remove", "OldQueue", "AWS::SQS::Queue")
    fake = FakeCloudFormation(
        [
            {
                "Status": "CREATE_COMPLETE",
                "Changes": [task, policy],
                "Parameters": [{"ParameterKey": "ImageTag", "ParameterValue": "new2"}],
            },
            {"Status": "CREATE_COMPLETE", "Changes": [key, gone]},
        ]
    )

    summary = change_summary.describe(fake, PARAMS)

    assert [c["NextToken"] for c in fake.calls if "NextToken" in c] == ["1"]
    assert summary.line() == (
        "0 added, 3 modified, 1 removed; replaced: TaskDefinition; IAM/access: BucketPolicy, "
        "Key; image old1 -> new2"
    )
    assert summary.variables()["REPLACED"] == "1"
    assert summary.variables()["REMOVED"] == "1"


def test_an_empty_change_set_is_no_changes() -> None:
    fake = FakeCloudFormation(
        [
            {
                "Status": "FAILED",
                "StatusReason": "The submitted information didn't contain changes. Submit "
                "different information to create a change set.",
            }
        ]
    )
    summary = change_summary.describe(fake, PARAMS)
    assert summary.line() == "no changes"
    assert summary.variables()["ADDED"] == "0"


def test_a_change_set_that_failed_otherwise_fails_the_job_with_its_reason(pipeline: Any) -> None:
    fake = FakeCloudFormation([{"Status": "FAILED", "StatusReason": "Template format error"}])
    client, stub, log = pipeline
    stub.add_response("put_job_failure_result", {}, {"jobId": "job-7", "failureDetails": ANY})

    outcome = change_summary.run(
        job({"stack_name": "svc-production", "change_set_name": "deployline-pipeline"}),
        codepipeline=client,
        cloudformation_for=lambda _: fake,
    )

    assert outcome.result == "failed"
    (call,) = log.named("PutJobFailureResult")
    assert "FAILED: Template format error" in call["failureDetails"]["message"]


def test_a_change_set_still_being_created_is_waited_for_with_a_token(pipeline: Any) -> None:
    fake = FakeCloudFormation([{"Status": "CREATE_IN_PROGRESS"}])
    client, stub, _ = pipeline
    stub.add_response(
        "put_job_success_result",
        {},
        {"jobId": "job-7", "continuationToken": ANY, "executionDetails": ANY},
    )
    waits: list[float] = []

    outcome = change_summary.run(
        job({"stack_name": "svc-production", "change_set_name": "deployline-pipeline"}),
        codepipeline=client,
        cloudformation_for=lambda _: fake,
        attempts=3,
        wait=2.0,
        sleep=waits.append,
    )

    assert outcome.result == "continued"
    assert waits == [2.0, 2.0]
    assert len(fake.calls) == 3


def test_a_new_stack_shows_the_placeholder_before_the_first_image() -> None:
    fake = FakeCloudFormation(
        [
            {
                "Status": "CREATE_COMPLETE",
                "Changes": [_resource("Add", "Service", "AWS::ECS::Service")],
                "Parameters": [{"ParameterKey": "ImageTag", "ParameterValue": "first1"}],
            }
        ],
        deployed_tag=None,
    )
    summary = change_summary.describe(fake, PARAMS)
    assert summary.line().endswith("image (placeholder) -> first1")


def test_the_summary_line_fits_the_approval_message() -> None:
    many = [
        Change("Add", f"Resource{i:03d}WithALongLogicalId", "AWS::IAM::Role", access=True)
        for i in range(60)
    ]
    line = Summary(changes=many).line()
    assert len(line) <= change_summary.MAX_SUMMARY_VARIABLE
    assert "and 56 more" in line


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("{}", "UserParameters.stack_name is required"),
        ('{"stack_name": "s"}', "UserParameters.change_set_name is required"),
        (
            '{"stack_name": "s", "change_set_name": "c", "role_arn": "lookup"}',
            "role_arn must be an IAM role ARN",
        ),
        ('{"stack_name": "s", "change_set_name": "c", "extra": 1}', "unknown UserParameters"),
    ],
)
def test_malformed_parameters_fail_the_job(pipeline: Any, raw: str, expected: str) -> None:
    client, stub, log = pipeline
    stub.add_response("put_job_failure_result", {}, {"jobId": "job-7", "failureDetails": ANY})

    outcome = change_summary.run(job(raw), codepipeline=client, cloudformation_for=lambda _: None)

    assert outcome.result == "failed"
    assert expected in log.named("PutJobFailureResult")[0]["failureDetails"]["message"]
