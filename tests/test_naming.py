"""Names: `{service}-{type}-{env}`, kebab-case, cut to each AWS limit with a stable hash."""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys

import pytest

from deployline.naming import Kind, Namer, fit, kebab, short_hash, tags

KEBAB = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


def test_name_follows_service_type_env_pattern() -> None:
    assert (
        Namer("payment-processor", "staging").name("deploy") == "payment-processor-deploy-staging"
    )


def test_prefix_comes_first() -> None:
    assert Namer("orders", "prod", prefix="acme").name("cluster") == "acme-orders-cluster-prod"


def test_type_is_kebab_cased() -> None:
    assert Namer("orders", "prod").name("Build_Logs") == "orders-build-logs-prod"


@pytest.mark.parametrize(
    "kind",
    [
        Kind.S3_BUCKET,
        Kind.IAM_ROLE,
        Kind.LAMBDA_FUNCTION,
        Kind.LOAD_BALANCER,
        Kind.TARGET_GROUP,
        Kind.EVENT_RULE,
        Kind.CODEPIPELINE,
    ],
    ids=lambda k: k.kind,
)
def test_long_names_are_cut_to_the_limit_with_a_hash(kind) -> None:  # type: ignore[no-untyped-def]
    namer = Namer("a-very-long-service-name-for-payments", "production", prefix="acme-corp")
    name = namer.name("blue-target-group-for-the-api", kind)
    full = (
        "acme-corp-a-very-long-service-name-for-payments-blue-target-group-for-the-api-production"
    )
    assert len(name) <= kind.limit
    assert KEBAB.match(name)
    if len(full) > kind.limit:
        # the environment stays at the end, after a hash of the whole name
        assert name.endswith("-" + short_hash(full) + "-production")
        assert name.startswith("acme-corp-a")
    else:
        assert name == full


def test_short_names_are_not_changed() -> None:
    assert fit("orders-tg-prod", 32) == "orders-tg-prod"


#: Prints the names of a few long names cut to their limits, one a line (run in fresh
#: interpreters below).
_CUT_NAMES = """
from deployline.naming import Kind, Namer, fit
long = "a-very-long-service-name-for-payments"
print(Namer(long, "production").name("target-group-blue", Kind.TARGET_GROUP))
namer = Namer(long, "production", prefix="acme-corp")
for kind in (Kind.TARGET_GROUP, Kind.S3_BUCKET, Kind.IAM_ROLE, Kind.LOAD_BALANCER):
    print(namer.name("blue-target-group-for-the-api", kind))
print(fit("orders-" * 10, 32))
"""


def _cut_names(hash_seed: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", _CUT_NAMES],
        env={**os.environ, "PYTHONHASHSEED": hash_seed},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.splitlines()


def test_cutting_is_stable_across_processes_and_releases() -> None:
    """A deployed resource keeps its name from one synth to the next: the hash in a cut name may
    not depend on the process (Python's hash() of a str is salted per process), nor change
    between releases (a new name replaces the resource)."""
    first, second = _cut_names("1"), _cut_names("2")
    assert first == second
    assert first == [
        "a-very-long-se-b578d8-production",
        "acme-corp-a-ve-afa00b-production",
        "acme-corp-a-very-long-service-name-for-paymen-afa00b-production",
        "acme-corp-a-very-long-service-name-for-payment-afa00b-production",
        "acme-corp-a-ve-afa00b-production",
        "orders-orders-orders-orde-d2d628",
    ]


def test_names_are_unique_across_environments_and_services() -> None:
    services = [
        "payment-processor",
        "payment-processor-eu",
        "a-very-long-service-name-for-payments",
    ]
    envs = ["staging", "production", "prod", "dev", "qa"]
    types = ["tg-blue", "tg-green", "alb", "cluster", "service"]
    for kind in (Kind.TARGET_GROUP, Kind.S3_BUCKET, Kind.IAM_ROLE):
        names = [Namer(s, e).name(t, kind) for s, e, t in itertools.product(services, envs, types)]
        assert len(set(names)) == len(names), kind.kind


def test_bucket_prefix_leaves_room_for_account_and_region() -> None:
    prefix = Namer("a-very-long-service-name-for-payments", "production").bucket_prefix("artifacts")
    # "-" + 12-digit account + "-" + the longest region name (ap-southeast-4 and the like: 14)
    assert len(prefix) + 1 + 12 + 1 + 14 <= Kind.S3_BUCKET.limit


def test_invalid_service_is_rejected() -> None:
    with pytest.raises(ValueError, match="service must be lowercase kebab-case, got 'Orders'"):
        Namer("Orders", "prod")


def test_kebab() -> None:
    assert kebab("Payment_Processor  API") == "payment-processor-api"


def test_tags_carry_the_required_keys_and_user_tags() -> None:
    result = tags(
        service="orders",
        project="shop",
        env="prod",
        extra={"CostCenter": "42"},
        owner="team@example.com",
    )
    assert result == {
        "CostCenter": "42",
        "Owner": "team@example.com",
        "Environment": "prod",
        "Project": "shop",
        "ManagedBy": "deployline",
        "Service": "orders",
    }
