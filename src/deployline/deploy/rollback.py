"""rollback: redeploy an earlier image of one environment, the way the pipeline deploys one.

The image comes from the deployment history (the records the recorder wrote: an environment's
successful deployments, each with its image tag and commit). It reaches the service through the
environment stack's `ImageTag` parameter, deployed with the CDK CLI: CloudFormation stays the one
owner of what runs (docs/delivery.md).

Only the image changes: the stack's deployed template must equal the one synthesized from the
local deployline.yaml (else the rollback would also deploy unpushed configuration changes), unless
the caller accepts that (`with_local_config`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from deployline.config import DeploylineConfig
from deployline.contract import IMAGE_TAG_PARAMETER
from deployline.deploy.assembly import StackArtifact
from deployline.deploy.aws import Aws, describe
from deployline.deploy.operations import DeployError, read_deployed, shared_namer
from deployline.naming import Kind
from deployline.runtime import records
from deployline.runtime.clients import error_code
from deployline.runtime.records import DeploymentRecord

#: The shortest commit prefix --to accepts. Default: 4 characters.
MIN_PREFIX = 4
#: How far back the history is read. Default: from 2000 on (the whole table).
HISTORY_START = "2000-01-01T00:00:00Z"


def history_table(config: DeploylineConfig) -> str:
    """The deployment history table (in the pipeline's account and region)."""
    return shared_namer(config).name("deployments", Kind.DYNAMODB_TABLE)


def image_repository(config: DeploylineConfig) -> str:
    """The pipeline's image repository."""
    return shared_namer(config).name("images", Kind.ECR_REPOSITORY)


def read_history(dynamodb: Any, table: str, environment: str) -> list[DeploymentRecord]:
    """Every record of `environment`, newest first, with its execution's shared fields."""
    items = records.query_environment(dynamodb, table, environment, since=HISTORY_START)
    shared = records.get_pipeline_records(
        dynamodb, table, {str(i["execution_id"]) for i in items if i.get("execution_id")}
    )
    return records.join_records(items, shared)


def _label(record: DeploymentRecord) -> str:
    when = record.started_at.strftime("%Y-%m-%d %H:%M") if record.started_at else "?"
    commit = (record.commit_sha or "")[:12] or "?"
    return f"{record.image_tag} (commit {commit}, {when})"


def choose_record(
    history: Sequence[DeploymentRecord],
    *,
    environment: str,
    current_tag: str | None,
    to: str | None = None,
) -> DeploymentRecord:
    """The deployment to go back to, from `history` (newest first).

    With `to` (a commit SHA or image tag, or a prefix of at least MIN_PREFIX characters): the
    newest successful deployment of that image. Without: the newest successful deployment older
    than the newest deployment of the running image (`current_tag`), with another image.
    Raises DeployError naming the candidates.
    """
    good = [r for r in history if r.succeeded and r.image_tag]
    if not good:
        raise DeployError(
            f"the deployment history has no successful deployment of {environment} with an "
            "image: nothing to roll back to (`deployline history --env "
            f"{environment}` lists what was recorded)"
        )
    if to is not None:
        return _matching(good, environment=environment, to=to)
    newest_current = next((r for r in history if current_tag and r.image_tag == current_tag), None)
    older = [
        r
        for r in good
        if r.image_tag != current_tag and (newest_current is None or _before(r, newest_current))
    ]
    if not older:
        raise DeployError(
            f"no successful deployment of {environment} before the running image "
            f"{current_tag or '(placeholder)'}; choose one with --to: "
            + ", ".join(_label(r) for r in good[:5])
        )
    return older[0]


def _before(record: DeploymentRecord, other: DeploymentRecord) -> bool:
    if record.started_at is None or other.started_at is None:
        return False
    return record.started_at < other.started_at


def _matching(good: list[DeploymentRecord], *, environment: str, to: str) -> DeploymentRecord:
    wanted = to.strip().lower()
    if len(wanted) < MIN_PREFIX:
        raise DeployError(
            f"--to must be a commit SHA or image tag of at least {MIN_PREFIX} characters, "
            f"got {to!r}"
        )
    found = [
        r
        for r in good
        if (r.image_tag or "").lower().startswith(wanted)
        or (r.commit_sha or "").lower().startswith(wanted)
    ]
    tags = list(dict.fromkeys(r.image_tag for r in found))
    if len(tags) > 1:
        raise DeployError(
            f"--to {to} matches {len(tags)} images; give more of the commit: "
            + ", ".join(_label(r) for r in found)
        )
    if not found:
        raise DeployError(
            f"no successful deployment of {environment} ran commit or image {to!r}; recent "
            "ones: " + ", ".join(_label(r) for r in good[:5])
        )
    return found[0]


# ---- what is deployed ---------------------------------------------------------------------


def template_changes(deployed: dict[str, Any], synthesized: dict[str, Any]) -> list[str]:
    """What differs between two templates, one entry per resource, parameter, output or
    section: `Resources.ServiceTaskDefinition (changed)`."""
    changes: list[str] = []
    for section in sorted(set(deployed) | set(synthesized)):
        old, new = deployed.get(section), synthesized.get(section)
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict):
            for key in sorted(set(old) | set(new)):
                if key not in old:
                    changes.append(f"{section}.{key} (added)")
                elif key not in new:
                    changes.append(f"{section}.{key} (removed)")
                elif old[key] != new[key]:
                    changes.append(f"{section}.{key} (changed)")
        else:
            changes.append(f"{section} (changed)")
    return changes


def require_parameter(stack: StackArtifact) -> None:
    """The synthesized stack takes ImageTag; raises DeployError otherwise."""
    if IMAGE_TAG_PARAMETER not in stack.parameters():
        raise DeployError(
            f"stack {stack.stack_name} has no {IMAGE_TAG_PARAMETER} parameter: this deployline "
            "cannot set its image; upgrade deployline (pipeline.deployline_requirement) and "
            "deploy once through the pipeline"
        )


def require_image(ecr: Any, repository: str, tag: str) -> None:
    """The tag is still in the repository (its lifecycle rule expires old images)."""
    try:
        ecr.describe_images(repositoryName=repository, imageIds=[{"imageTag": tag}])
    except Exception as exc:
        code = error_code(exc)
        if code == "ImageNotFoundException":
            raise DeployError(
                f"image {repository}:{tag} is no longer in the repository (its lifecycle keeps "
                "the newest pipeline.ecr_keep_images images): choose a newer one with --to, or "
                "push the commit again to rebuild it"
            ) from None
        if code == "RepositoryNotFoundException":
            raise DeployError(
                f"image repository {repository} does not exist: deploy the pipeline stack first"
            ) from None
        raise describe(exc, f"looking up image {repository}:{tag}") from None


@dataclass(frozen=True)
class RollbackPlan:
    """What a rollback will do."""

    environment: str
    stack: StackArtifact
    current_tag: str | None
    target: DeploymentRecord
    #: Differences between the deployed and the synthesized template (deployed with the image).
    changes: tuple[str, ...]

    @property
    def parameters(self) -> dict[str, dict[str, str]]:
        assert self.target.image_tag is not None
        return {self.stack.stack_name: {IMAGE_TAG_PARAMETER: self.target.image_tag}}


def plan_rollback(
    config: DeploylineConfig,
    environment: str,
    stack: StackArtifact,
    aws: Aws,
    *,
    to: str | None = None,
    with_local_config: bool = False,
) -> RollbackPlan:
    """Read the deployed stack and the history, choose the image, check it still exists.
    Raises DeployError (or AwsError) with what to do instead."""
    require_parameter(stack)
    cloudformation = aws.stack_client("cloudformation", stack, role="lookup")
    deployed = read_deployed(cloudformation, stack.stack_name)
    if deployed is None:
        raise DeployError(
            f"stack {stack.stack_name} is not deployed: there is nothing to roll back "
            "(`deployline deploy` creates it)"
        )
    current_tag = deployed.parameters.get(IMAGE_TAG_PARAMETER)
    changes = template_changes(deployed.template, stack.template())
    if changes and not with_local_config:
        raise DeployError(
            f"{stack.stack_name} as deployed differs from what {config.service}'s local "
            f"deployline.yaml synthesizes ({'; '.join(changes[:8])}"
            f"{'; ...' if len(changes) > 8 else ''}): a rollback changes only the image. Push "
            "the change so the pipeline deploys it, or pass --with-local-config to deploy it "
            "with the rollback"
        )
    home = config.pipeline.region or aws.region
    table = history_table(config)
    try:
        history = read_history(aws.client("dynamodb", region=home), table, environment)
    except Exception as exc:
        if error_code(exc) == "ResourceNotFoundException":
            raise DeployError(
                f"the deployment history table {table} does not exist in {home}: deploy the "
                "pipeline stack first (`deployline deploy`)"
            ) from None
        raise describe(exc, f"reading the deployment history ({table})") from None
    target = choose_record(history, environment=environment, current_tag=current_tag, to=to)
    assert target.image_tag is not None
    require_image(aws.client("ecr", region=home), image_repository(config), target.image_tag)
    return RollbackPlan(
        environment=environment,
        stack=stack,
        current_tag=current_tag,
        target=target,
        changes=tuple(changes),
    )
