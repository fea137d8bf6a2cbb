"""DL102: pipeline artifacts and S3 sources encrypted with SSE-S3 instead of a KMS key."""

from __future__ import annotations

from collections.abc import Iterator

from deployline.checks.model import Hit, Rule, Severity
from deployline.checks.s3 import encryption_of, pipeline_buckets
from deployline.checks.template import Template


class ArtifactStoreKms(Rule):
    id = "DL102"
    severity = Severity.MEDIUM
    family = "Security"
    seed = "000 §1, 004 Security 1"
    title = "Pipeline artifact store or S3 source not encrypted with a KMS key"
    resource_types = ("AWS::CodePipeline::Pipeline", "AWS::S3::Bucket")
    rationale = (
        "Artifacts carry source code, build outputs and image definitions from stage to stage. "
        "With SSE-S3 (AES256) or the AWS managed aws/s3 key, nobody can restrict or audit who "
        "decrypts them, and cross-account deploy stages cannot be granted access."
    )
    remediation = (
        "Encrypt the artifact and source buckets with SSEAlgorithm aws:kms (or aws:kms:dsse) and a "
        "customer managed key, and give each ArtifactStore an EncryptionKey {Id: <key ARN>, "
        "Type: KMS}."
    )
    fix_example = """\
Pipeline:
  Type: AWS::CodePipeline::Pipeline
  Properties:
    ArtifactStore:
      Type: S3
      Location: !Ref ArtifactBucket
      EncryptionKey: {Id: !GetAtt ArtifactKey.Arn, Type: KMS}
ArtifactBucket:
  Type: AWS::S3::Bucket
  Properties:
    BucketEncryption:
      ServerSideEncryptionConfiguration:
        - ServerSideEncryptionByDefault: {SSEAlgorithm: aws:kms, KMSMasterKeyID: !Ref ArtifactKey}
"""

    def check(self, template: Template) -> Iterator[Hit]:
        for pipeline in template.pipelines:
            for path, store in pipeline.artifact_stores:
                if store.get("EncryptionKey") is None:
                    yield self.hit(
                        pipeline.logical_id,
                        f"{path}.EncryptionKey",
                        "the artifact store has no EncryptionKey: artifacts are encrypted with "
                        "the AWS managed aws/s3 key, which cannot be scoped or shared",
                    )
        reported: set[str] = set()
        for use in pipeline_buckets(template, artifact_stores=True, sources=True):
            bucket = use.bucket
            if bucket is None:
                yield self.unknown(
                    use.pipeline.logical_id,
                    use.path,
                    f"cannot check the encryption of the {use.kind} bucket: {use.lookup.reason}",
                )
                continue
            if bucket.logical_id in reported:
                continue
            reported.add(bucket.logical_id)
            enc = encryption_of(bucket)
            if enc.uses_kms:
                continue
            if enc.unknown:
                yield self.unknown(bucket.logical_id, "Properties.BucketEncryption", enc.unknown)
                continue
            how = (
                f"with {', '.join(enc.algorithms)}"
                if enc.algorithms
                else "by S3's default SSE-S3 (AES256), as it declares no BucketEncryption"
            )
            yield self.hit(
                bucket.logical_id,
                "Properties.BucketEncryption",
                f"bucket is the {use.kind} of {use.pipeline.logical_id} but is encrypted {how}, "
                "not with aws:kms",
            )
