"""Where the pipeline's source comes from, and how a change starts it.

Three kinds of source, none of them with a token or a poll:

- `ConnectionSource`: GitHub, GitLab or Bitbucket through a CodeStar (CodeConnections) connection.
  A CodePipeline V2 trigger starts the pipeline on pushes to the branch, optionally only when the
  push touches given file paths (monorepos).
- `BucketSource`: a zip in a versioned, KMS-encrypted S3 bucket (created unless one is given); an
  EventBridge rule on the bucket's "Object Created" events starts the pipeline.
- `CodeCommitRepositorySource`: an existing CodeCommit repository; an EventBridge rule on pushes to
  the branch starts the pipeline.

Artifact format: the source is handed to the build as a zip (no git metadata: the commit ID
reaches the build as the source action's `CommitId` variable), unless `full_clone=True`, which
passes a reference CodeBuild clones (`CODEBUILD_CLONE_REF`) for builds that need git history.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from aws_cdk import RemovalPolicy, Token
from aws_cdk import aws_codecommit as codecommit
from aws_cdk import aws_codepipeline as codepipeline
from aws_cdk import aws_codepipeline_actions as actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from deployline import defaults
from deployline.constructs import compliance
from deployline.constructs.pipeline_roles import ActionRole, EventsRole, write_artifacts
from deployline.naming import Kind, Namer

#: The namespace of the source action's variables, e.g. `#{SourceVariables.CommitId}`.
SOURCE_NAMESPACE = "SourceVariables"
SOURCE_ACTION_NAME = "Source"
_REPO = re.compile(r"^[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)+$")
_S3_KEY = re.compile(r"^[^\s*?]{1,1024}$")


@dataclass(frozen=True, kw_only=True)
class ConnectionSource:
    """A Git repository reached through a CodeStar connection (never an OAuth token).

    Attributes:
        connection_arn: the connection's ARN; may be a token (a CfnParameter, an SSM value).
        repository: `owner/name` (GitLab: `group/subgroup/name`).
        branch: Default: main.
        file_paths: globs; only pushes that touch one start the pipeline. Default: any path.
        exclude_file_paths: globs whose changes alone never start it. Default: none.
        full_clone: hand CodeBuild a git clone instead of a zip. Default: false.
    """

    connection_arn: str
    repository: str
    branch: str = "main"
    file_paths: Sequence[str] = field(default_factory=tuple)
    exclude_file_paths: Sequence[str] = field(default_factory=tuple)
    full_clone: bool = False


@dataclass(frozen=True, kw_only=True)
class BucketSource:
    """A zip uploaded to S3.

    Attributes:
        bucket: an existing bucket; it must be versioned and send events to EventBridge.
            Default: deployline creates one (versioned, KMS-encrypted, EventBridge on).
        object_key: the zip's key. Default: source.zip.
    """

    bucket: s3.IBucket | None = None
    object_key: str = "source.zip"


@dataclass(frozen=True, kw_only=True)
class CodeCommitRepositorySource:
    """An existing CodeCommit repository.

    Attributes:
        repository: the repository (e.g. `codecommit.Repository.from_repository_name(...)`).
        branch: Default: main.
        full_clone: hand CodeBuild a git clone instead of a zip. Default: false.
    """

    repository: codecommit.IRepository
    branch: str = "main"
    full_clone: bool = False


PipelineSource = ConnectionSource | BucketSource | CodeCommitRepositorySource


def _check_branch(branch: str) -> None:
    if Token.is_unresolved(branch):
        return
    if not branch or branch.startswith(("/", "-")) or " " in branch or ".." in branch:
        raise ValueError(f"branch must be a git branch name like 'main', got {branch!r}")


def validate_source(source: PipelineSource) -> None:
    """Raise ValueError naming the field, the value and the fix."""
    if isinstance(source, ConnectionSource):
        if not Token.is_unresolved(source.repository) and not _REPO.match(source.repository):
            raise ValueError(
                f"repository must be 'owner/name' (GitLab: 'group/subgroup/name'), "
                f"got {source.repository!r}"
            )
        if not Token.is_unresolved(source.connection_arn) and not re.match(
            r"^arn:aws[a-z-]*:(codestar-connections|codeconnections):", source.connection_arn
        ):
            raise ValueError(
                "connection_arn must be a CodeStar connection ARN "
                "(arn:aws:codestar-connections:<region>:<account>:connection/<id>), "
                f"got {source.connection_arn!r}"
            )
        _check_branch(source.branch)
        for what, globs in (
            ("file_paths", source.file_paths),
            ("exclude_file_paths", source.exclude_file_paths),
        ):
            if isinstance(globs, str):
                raise ValueError(f"{what} must be a list of globs, got the string {globs!r}")
            if len(globs) > 8:
                raise ValueError(
                    f"{what} allows at most 8 globs (a CodePipeline trigger limit), "
                    f"got {len(globs)}"
                )
            for glob in globs:
                if not glob or len(glob) > 255:
                    raise ValueError(f"{what} entries must be 1-255 characters, got {glob!r}")
    elif isinstance(source, BucketSource):
        if not Token.is_unresolved(source.object_key) and (
            not _S3_KEY.match(source.object_key) or source.object_key.startswith("/")
        ):
            raise ValueError(
                "object_key must be an S3 key without wildcards or a leading '/', "
                f"like 'source.zip', got {source.object_key!r}"
            )
    elif isinstance(source, CodeCommitRepositorySource):
        _check_branch(source.branch)
    else:
        raise ValueError(
            "source must be a ConnectionSource, BucketSource or CodeCommitRepositorySource, "
            f"got {type(source).__name__}"
        )


class PipelineSourceAction(Construct):
    """The source action of a pipeline, its role, and what starts the pipeline.

    Attributes:
        action: the source action (name `Source`, variables namespace `SourceVariables`).
        output: the source artifact.
        role: the action's role.
        bucket: the source bucket (BucketSource only), else None.
        rule: the EventBridge rule that starts the pipeline (S3 only), else None.
        revision_variable: the variable that names the revision: `CommitId` for Git sources,
            `VersionId` for S3.
        full_clone: whether the build receives a git clone rather than a zip.
        clone_statements: what a CodeBuild project that reads the source needs to clone it
            (empty unless `full_clone`).
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        source: PipelineSource,
        pipeline: codepipeline.Pipeline,
        artifact_bucket: s3.IBucket,
        key: kms.IKey,
        namer: Namer,
        removal: RemovalPolicy = RemovalPolicy.RETAIN,
        access_logs_bucket: s3.IBucket | None = None,
    ) -> None:
        """
        Args:
            source: where the code comes from.
            pipeline: the pipeline (its role assumes the action's role; rules start it).
            artifact_bucket: the pipeline's artifact bucket.
            key: the pipeline CMK (artifacts; the source bucket deployline creates).
            namer: physical names.
            removal: for the source bucket deployline creates. Default: RETAIN.
            access_logs_bucket: server access logs of the created source bucket. Default: none.
        """
        super().__init__(scope, id)
        validate_source(source)
        self.output = codepipeline.Artifact("Source")
        self.bucket: s3.IBucket | None = None
        self.rule: events.Rule | None = None
        self.full_clone = False
        self.clone_statements: list[iam.PolicyStatement] = []
        self._pipeline, self._namer = pipeline, namer
        self._artifact_bucket, self._key = artifact_bucket, key
        if isinstance(source, ConnectionSource):
            self._from_connection(source)
        elif isinstance(source, BucketSource):
            self._from_bucket(source, removal, access_logs_bucket)
        else:
            self._from_codecommit(source)

    # ---- one method per kind of source ----------------------------------------------------

    def _from_connection(self, source: ConnectionSource) -> None:
        """A CodeStar connection; a V2 trigger on pushes to the branch starts the pipeline."""
        self.full_clone = source.full_clone
        self.revision_variable = "CommitId"
        # Connections created since 2024 are `codeconnections`; both names work.
        use_connection = ["codestar-connections:UseConnection", "codeconnections:UseConnection"]
        if source.full_clone:
            self.clone_statements.append(
                iam.PolicyStatement(
                    sid="CloneSource", actions=use_connection, resources=[source.connection_arn]
                )
            )
        self._role(
            iam.PolicyStatement(
                sid="UseConnection", actions=use_connection, resources=[source.connection_arn]
            ),
            put_acl=True,
        )
        owner, _, repo = source.repository.rpartition("/")
        action = actions.CodeStarConnectionsSourceAction(
            action_name=SOURCE_ACTION_NAME,
            connection_arn=source.connection_arn,
            owner=owner,
            repo=repo,
            branch=source.branch,
            output=self.output,
            code_build_clone_output=source.full_clone,
            variables_namespace=SOURCE_NAMESPACE,
            role=self.role.for_action,
        )
        self._add_stage(action)
        self._pipeline.add_trigger(
            provider_type=codepipeline.ProviderType.CODE_STAR_SOURCE_CONNECTION,
            git_configuration=codepipeline.GitConfiguration(
                source_action=action,
                push_filter=[
                    codepipeline.GitPushFilter(
                        branches_includes=[source.branch],
                        file_paths_includes=list(source.file_paths) or None,
                        file_paths_excludes=list(source.exclude_file_paths) or None,
                    )
                ],
            ),
        )

    def _from_bucket(
        self,
        source: BucketSource,
        removal: RemovalPolicy,
        access_logs_bucket: s3.IBucket | None,
    ) -> None:
        """A zip in S3; an EventBridge rule on its uploads starts the pipeline."""
        self.revision_variable = "VersionId"
        bucket = source.bucket or self._source_bucket(removal, access_logs_bucket)
        self.bucket = bucket
        read_source = [
            iam.PolicyStatement(
                sid="ReadSource",
                actions=["s3:GetObject", "s3:GetObjectVersion"],
                resources=[bucket.arn_for_objects(source.object_key)],
            ),
            iam.PolicyStatement(
                sid="CheckSourceBucket",
                actions=["s3:GetBucketVersioning", "s3:GetBucketLocation"],
                resources=[bucket.bucket_arn],
            ),
        ]
        if bucket.encryption_key is not None and bucket.encryption_key is not self._key:
            read_source.append(
                iam.PolicyStatement(
                    sid="DecryptSource",
                    actions=["kms:Decrypt"],
                    resources=[bucket.encryption_key.key_arn],
                )
            )
        self._role(*read_source)
        self._add_stage(
            actions.S3SourceAction(
                action_name=SOURCE_ACTION_NAME,
                bucket=bucket,
                bucket_key=source.object_key,
                output=self.output,
                trigger=actions.S3Trigger.NONE,  # the EventBridge rule below starts it
                variables_namespace=SOURCE_NAMESPACE,
                role=self.role.for_action,
            )
        )
        self.rule = events.Rule(
            self,
            "OnUpload",
            rule_name=self._namer.name("source-upload", Kind.EVENT_RULE),
            description=f"deployline: start the pipeline when {source.object_key} changes",
            event_pattern=events.EventPattern(
                source=["aws.s3"],
                detail_type=["Object Created"],
                detail={
                    "bucket": {"name": [bucket.bucket_name]},
                    "object": {"key": [source.object_key]},
                },
            ),
            targets=[
                targets.CodePipeline(self._pipeline, event_role=self._events_role().for_target)
            ],
        )

    def _from_codecommit(self, source: CodeCommitRepositorySource) -> None:
        """A CodeCommit repository; an EventBridge rule on pushes to the branch starts it."""
        self.full_clone = source.full_clone
        self.revision_variable = "CommitId"
        repo_arn = source.repository.repository_arn
        if source.full_clone:
            self.clone_statements.append(
                iam.PolicyStatement(
                    sid="CloneSource", actions=["codecommit:GitPull"], resources=[repo_arn]
                )
            )
        self._role(
            iam.PolicyStatement(
                sid="ReadRepository",
                actions=[
                    "codecommit:GetBranch",
                    "codecommit:GetCommit",
                    "codecommit:UploadArchive",
                    "codecommit:GetUploadArchiveStatus",
                    "codecommit:CancelUploadArchive",
                    *(["codecommit:GetRepository"] if source.full_clone else []),
                ],
                resources=[repo_arn],
            )
        )
        self._add_stage(
            actions.CodeCommitSourceAction(
                action_name=SOURCE_ACTION_NAME,
                repository=source.repository,
                branch=source.branch,
                output=self.output,
                code_build_clone_output=source.full_clone,
                trigger=actions.CodeCommitTrigger.EVENTS,
                event_role=self._events_role().for_target,
                variables_namespace=SOURCE_NAMESPACE,
                role=self.role.for_action,
            )
        )

    # ---- what the kinds share -------------------------------------------------------------

    def _role(self, *reads: iam.PolicyStatement, put_acl: bool = False) -> None:
        """The action's role: read the source, write the source artifact."""
        self.role = ActionRole(
            self,
            "Role",
            role_name=self._namer.name("source-action", Kind.IAM_ROLE),
            pipeline_role=self._pipeline.role,
            description="deployline: the pipeline's source action",
            statements=[
                *reads,
                *write_artifacts(self._artifact_bucket, self._key, put_acl=put_acl),
            ],
        )

    def _events_role(self) -> EventsRole:
        """The role EventBridge starts the pipeline with."""
        return EventsRole(
            self,
            "EventsRole",
            role_name=self._namer.name("source-events", Kind.IAM_ROLE),
            pipeline_arn=self._pipeline.pipeline_arn,
        )

    def _add_stage(self, action: codepipeline.IAction) -> None:
        self.action = action
        self._pipeline.add_stage(stage_name="Source", actions=[action])

    def _source_bucket(
        self, removal: RemovalPolicy, access_logs_bucket: s3.IBucket | None
    ) -> s3.IBucket:
        """The versioned, KMS-encrypted bucket deployline creates, sending events to EventBridge."""
        prefix = self._namer.bucket_prefix("source")
        bucket = defaults.secure_bucket(
            self,
            "Bucket",
            bucket_name=defaults.bucket_name(prefix),
            key=self._key,
            removal=removal,
            versioned=True,
            # The current zip is the pipeline's input: it never expires; old versions do.
            expiry_days=None,
            noncurrent_expiry_days=defaults.ARTIFACT_EXPIRY_DAYS,
            server_access_logs_bucket=access_logs_bucket,
            server_access_logs_prefix="source/" if access_logs_bucket else None,
        )
        # Uploads reach EventBridge through the bucket's own property. (aws-cdk's
        # event_bridge_enabled would add a notifications custom-resource Lambda with an
        # AWS managed policy to the stack.)
        cfn_bucket = bucket.node.default_child
        if not isinstance(cfn_bucket, s3.CfnBucket):
            raise TypeError(f"{bucket.node.path} has no CfnBucket to enable EventBridge on")
        cfn_bucket.add_property_override(
            "NotificationConfiguration.EventBridgeConfiguration.EventBridgeEnabled", True
        )
        compliance.accept(
            bucket,
            "S3BucketReplicationEnabled",
            f"the source bucket {prefix}-<account>-<region> holds "
            "copies of the source you upload, versioned: your repository or build "
            "system keeps the original, so a copy in another region would hold nothing "
            "that cannot be uploaded again",
        )
        return bucket

    def variable(self, name: str) -> str:
        """`#{SourceVariables.<name>}`: a source variable for action configurations."""
        return f"#{{{SOURCE_NAMESPACE}.{name}}}"

    @property
    def revision(self) -> str:
        """The variable naming the revision that started the execution."""
        return self.variable(self.revision_variable)
