"""The ECR repository the pipeline pushes its images to."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Token
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_kms as kms
from constructs import Construct

#: Default: keep the 20 most recent tagged images.
DEFAULT_KEEP_IMAGES = 20
#: Untagged images (layers left behind by a re-tag or a failed push) expire after a day.
UNTAGGED_EXPIRY_DAYS = 1
_MAX_KEEP_IMAGES = 1000


class ImageRepository(Construct):
    """A private ECR repository with every guard on.

    KMS encryption with the caller's CMK, scan on push, immutable tags (a tag names one image,
    forever: what was tested is what ships), a lifecycle policy that expires untagged images
    after a day and keeps the last `keep_images` tagged ones, and an explicit removal policy.

    Attributes:
        repository: the ECR repository.
        repository_uri: its URI (`<account>.dkr.ecr.<region>.amazonaws.com/<name>`, a token).
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        repository_name: str,
        key: kms.IKey,
        keep_images: int = DEFAULT_KEEP_IMAGES,
        removal: RemovalPolicy = RemovalPolicy.RETAIN,
    ) -> None:
        """
        Args:
            repository_name: the physical name, e.g. `payment-processor-images-shared`.
            key: the CMK that encrypts the images.
            keep_images: how many tagged images to keep. Default: 20.
            removal: Default: RETAIN (images outlive the stack). With DESTROY the repository
                is emptied on delete.
        """
        super().__init__(scope, id)
        if not Token.is_unresolved(keep_images) and not 1 <= keep_images <= _MAX_KEEP_IMAGES:
            raise ValueError(
                f"keep_images must be between 1 and {_MAX_KEEP_IMAGES}, got {keep_images}; "
                "set pipeline.ecr_keep_images to a value in that range"
            )
        self.repository = ecr.Repository(
            self,
            "Repository",
            repository_name=repository_name,
            encryption=ecr.RepositoryEncryption.KMS,
            encryption_key=key,
            image_scan_on_push=True,
            image_tag_mutability=ecr.TagMutability.IMMUTABLE,
            removal_policy=removal,
            empty_on_delete=removal == RemovalPolicy.DESTROY,
            lifecycle_rules=[
                ecr.LifecycleRule(
                    rule_priority=1,
                    description=f"Expire untagged images after {UNTAGGED_EXPIRY_DAYS} day",
                    tag_status=ecr.TagStatus.UNTAGGED,
                    max_image_age=Duration.days(UNTAGGED_EXPIRY_DAYS),
                ),
                ecr.LifecycleRule(
                    rule_priority=2,
                    description=f"Keep the last {keep_images} tagged images",
                    tag_status=ecr.TagStatus.TAGGED,
                    tag_pattern_list=["*"],
                    max_image_count=keep_images,
                ),
            ],
        )
        self.repository_uri: str = self.repository.repository_uri
