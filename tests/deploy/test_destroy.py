"""destroy's pieces against moto: deleting what a stack kept (buckets emptied of every version
first, log groups, KMS keys scheduled), load balancer deletion protection, and the verification
that tells left, kept and scheduled apart."""

from __future__ import annotations

from typing import Any

import pytest

from deployline.deploy.destroy import (
    StackResource,
    delete_resource,
    disable_deletion_protection,
    empty_bucket,
    resource_arn,
    verify,
)

from .conftest import ACCOUNT, REGION, Moto

TAGS = [
    {"Key": "Service", "Value": "orders"},
    {"Key": "Environment", "Value": "prod"},
    {"Key": "ManagedBy", "Value": "deployline"},
]


def clients(moto: Moto) -> Any:
    return lambda service: moto.client(service)


def test_a_versioned_bucket_is_emptied_of_every_version_and_marker(moto: Moto) -> None:
    s3 = moto.client("s3")
    s3.create_bucket(Bucket="orders-logs", CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_bucket_versioning(Bucket="orders-logs", VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket="orders-logs", Key="a.log", Body=b"1")
    s3.put_object(Bucket="orders-logs", Key="a.log", Body=b"2")
    s3.delete_object(Bucket="orders-logs", Key="a.log")
    assert empty_bucket(s3, "orders-logs") == 3
    assert delete_resource(clients(moto), "arn:aws:s3:::orders-logs") == "deleted (emptied first)"
    assert "orders-logs" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_a_log_group_is_deleted_and_a_key_scheduled(moto: Moto) -> None:
    logs, kms = moto.client("logs"), moto.client("kms")
    logs.create_log_group(logGroupName="/deployline/orders/prod/app")
    key = kms.create_key()["KeyMetadata"]["Arn"]
    group = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/deployline/orders/prod/app"
    assert delete_resource(clients(moto), group) == "deleted"
    assert logs.describe_log_groups()["logGroups"] == []
    done = delete_resource(clients(moto), key)
    assert done.startswith("scheduled for deletion on 20")
    assert kms.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "PendingDeletion"


def test_a_kind_deployline_does_not_delete_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^deployline does not delete arn:aws:sqs:"):
        delete_resource(None, f"arn:aws:sqs:{REGION}:{ACCOUNT}:orders-dlq")


def test_physical_ids_of_kept_resources_become_arns() -> None:
    def arn(kind: str, physical: str) -> str:
        resource = StackResource("Logical", kind, physical, retained=True)
        return resource_arn(resource, partition="aws", account=ACCOUNT, region=REGION)

    assert arn("AWS::S3::Bucket", "orders-logs") == "arn:aws:s3:::orders-logs"
    assert arn("AWS::Logs::LogGroup", "/x/app") == (
        f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/x/app"
    )
    assert arn("AWS::KMS::Key", "1234abcd") == f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd"
    assert arn("AWS::SQS::Queue", "arn:aws:sqs:eu-west-1:1:q") == "arn:aws:sqs:eu-west-1:1:q"


def test_deletion_protection_is_turned_off_only_where_it_is_on(moto: Moto) -> None:
    ec2, elbv2 = moto.client("ec2"), moto.client("elbv2")
    vpc = ec2.create_vpc(CidrBlock="10.8.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.8.{n}.0/24", AvailabilityZone=f"{REGION}{z}")[
            "Subnet"
        ]["SubnetId"]
        for n, z in ((1, "a"), (2, "b"))
    ]
    arns = [
        elbv2.create_load_balancer(Name=name, Subnets=subnets)["LoadBalancers"][0][
            "LoadBalancerArn"
        ]
        for name in ("orders-prod", "orders-staging")
    ]
    elbv2.modify_load_balancer_attributes(
        LoadBalancerArn=arns[0],
        Attributes=[{"Key": "deletion_protection.enabled", "Value": "true"}],
    )
    resources = [
        StackResource(f"Lb{n}", "AWS::ElasticLoadBalancingV2::LoadBalancer", arn, False)
        for n, arn in enumerate(arns)
    ]
    assert disable_deletion_protection(elbv2, resources) == [arns[0]]
    attributes = elbv2.describe_load_balancer_attributes(LoadBalancerArn=arns[0])["Attributes"]
    assert {"Key": "deletion_protection.enabled", "Value": "false"} in attributes


def test_verification_tells_left_kept_and_scheduled_apart(moto: Moto) -> None:
    logs, kms, sqs = moto.client("logs"), moto.client("kms"), moto.client("sqs")
    tags = {t["Key"]: t["Value"] for t in TAGS}
    logs.create_log_group(logGroupName="/deployline/orders/prod/kept", tags=tags)
    logs.create_log_group(logGroupName="/deployline/orders/prod/other", tags=tags)
    sqs.create_queue(QueueName="orders-staging-queue", tags={**tags, "Environment": "staging"})
    key = kms.create_key(Tags=[{"TagKey": t["Key"], "TagValue": t["Value"]} for t in TAGS])
    kms.schedule_key_deletion(KeyId=key["KeyMetadata"]["KeyId"], PendingWindowInDays=7)
    group = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/deployline/orders/prod"
    result = verify(
        clients(moto),
        stack_name="orders-service-prod",
        service="orders",
        environment="prod",
        resources=[StackResource("Role", "AWS::IAM::Role", "orders-gone-role", False)],
        kept=[f"{group}/kept"],
    )
    assert result.stack_gone
    assert [(x.arn, x.state) for x in result.leftovers] == [
        (key["KeyMetadata"]["Arn"], "scheduled"),
        (f"{group}/kept", "kept"),
        (f"{group}/other", "left"),
    ]
    assert not result.clean
