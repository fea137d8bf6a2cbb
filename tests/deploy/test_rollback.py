"""Which earlier image a rollback chooses from the deployment history, and how it tells a stack
whose deployed template differs from the local config."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from deployline.deploy.operations import DeployError
from deployline.deploy.rollback import choose_record, template_changes
from deployline.runtime.records import DeploymentRecord

START = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def record(
    n: int, tag: str, status: str = "succeeded", *, rolled_back: bool = False
) -> DeploymentRecord:
    return DeploymentRecord(
        execution_id=f"exec-{n}",
        environment="production",
        status=status,
        started_at=START + timedelta(hours=n),
        image_tag=tag,
        commit_sha=f"{tag}{'0' * (40 - len(tag))}",
        rolled_back=rolled_back,
    )


#: Newest first, as read_history returns them.
HISTORY = [
    record(5, "e5e5e5e", "failed"),
    record(4, "d4d4d4d", rolled_back=True),
    record(3, "c3c3c3c"),
    record(2, "b2b2b2b"),
    record(1, "a1a1a1a"),
]


def choose(current: str | None, to: str | None = None) -> str | None:
    chosen = choose_record(HISTORY, environment="production", current_tag=current, to=to)
    return chosen.image_tag


def test_the_previous_successful_image_before_the_running_one() -> None:
    assert choose("c3c3c3c") == "b2b2b2b"


def test_failed_and_rolled_back_deployments_are_never_chosen() -> None:
    """d4 was rolled back and e5 failed: CloudFormation put c3 back, so c3 runs; go to b2."""
    assert choose("c3c3c3c") == "b2b2b2b"
    assert choose(None) == "c3c3c3c"


def test_after_a_rollback_the_next_goes_further_back_not_forward() -> None:
    """b2 runs after a rollback from c3: the next rollback goes to a1, never forward to c3."""
    assert choose("b2b2b2b") == "a1a1a1a"


def test_nothing_before_the_oldest_image_names_the_candidates() -> None:
    with pytest.raises(DeployError) as caught:
        choose("a1a1a1a")
    message = str(caught.value)
    assert message.startswith(
        "no successful deployment of production before the running image a1a1a1a; choose one "
        "with --to: c3c3c3c (commit c3c3c3c00000, 2026-11-01 12:00)"
    )


def test_to_takes_a_commit_prefix_or_an_image_tag() -> None:
    assert choose("c3c3c3c", to="A1A1") == "a1a1a1a"
    assert choose("c3c3c3c", to="b2b2b2b") == "b2b2b2b"


def test_to_refuses_a_failed_or_unknown_commit() -> None:
    with pytest.raises(DeployError, match=r"no successful deployment of production ran commit"):
        choose("c3c3c3c", to="e5e5")
    with pytest.raises(DeployError, match=r"at least 4 characters, got 'a1'"):
        choose("c3c3c3c", to="a1")


def test_an_ambiguous_prefix_lists_the_matches() -> None:
    history = [record(2, "abcd1234"), record(1, "abcd9876")]
    with pytest.raises(DeployError) as caught:
        choose_record(history, environment="production", current_tag=None, to="abcd")
    assert str(caught.value).startswith("--to abcd matches 2 images; give more of the commit: ")


def test_an_empty_history_says_there_is_nothing_to_roll_back_to() -> None:
    with pytest.raises(DeployError, match=r"^the deployment history has no successful deploy"):
        choose_record([record(1, "a1a1a1a", "failed")], environment="production", current_tag=None)


def test_template_changes_name_each_resource_that_differs() -> None:
    deployed = {
        "Parameters": {"ImageTag": {"Type": "String"}},
        "Resources": {
            "Task": {"Type": "AWS::ECS::TaskDefinition", "Properties": {"Cpu": "256"}},
            "Old": {"Type": "AWS::SNS::Topic"},
            "Same": {"Type": "AWS::SQS::Queue"},
        },
        "Description": "one",
    }
    synthesized = {
        "Parameters": {"ImageTag": {"Type": "String"}},
        "Resources": {
            "Task": {"Type": "AWS::ECS::TaskDefinition", "Properties": {"Cpu": "512"}},
            "New": {"Type": "AWS::SNS::Topic"},
            "Same": {"Type": "AWS::SQS::Queue"},
        },
        "Description": "two",
    }
    assert template_changes(deployed, synthesized) == [
        "Description (changed)",
        "Resources.New (added)",
        "Resources.Old (removed)",
        "Resources.Task (changed)",
    ]
    assert template_changes(deployed, deployed) == []
