"""deployline.yaml: valid files load; every invalid case gives a precise message with its line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from deployline.config import (
    ConfigError,
    DeploylineConfig,
    DeploymentType,
    TrafficShifting,
    json_schema,
    load_config,
    parse_config_text,
)

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "deployline.yaml"

MINIMAL = """\
service: orders
project: shop
source:
  type: github
  repository: acme/orders
  connection_parameter: /deployline/orders/connection-arn
environments:
  - name: staging
    plain_http: true
  - name: production
    deployment: blue_green
    approval: true
    plain_http: true
"""


def problems(text: str) -> list[tuple[int | None, str, str]]:
    with pytest.raises(ConfigError) as info:
        parse_config_text(text, "deployline.yaml")
    return [(p.line, p.field, p.message) for p in info.value.problems]


def only_problem(text: str) -> tuple[int | None, str, str]:
    found = problems(text)
    assert len(found) == 1, found
    return found[0]


def test_example_config_loads_with_two_environments() -> None:
    config = load_config(EXAMPLE)
    assert config.service == "payment-processor"
    staging, production = config.environments
    assert (staging.name, staging.deployment) == ("staging", DeploymentType.ROLLING)
    assert (production.name, production.deployment) == ("production", DeploymentType.BLUE_GREEN)
    assert production.approval and not staging.approval
    assert config.is_production(production) and not config.is_production(staging)


def test_minimal_config_takes_secure_defaults() -> None:
    config = parse_config_text(MINIMAL)
    assert config.build.timeout_minutes == 15
    assert config.build.cache is True
    assert config.security.threshold.value == "high"
    assert config.security.allow_unverified is False
    production = config.environment("production")
    assert config.traffic_shifting(production) is TrafficShifting.CANARY_10_PERCENT_5_MINUTES
    assert config.destroy_on_delete(production) is False
    assert config.destroy_on_delete(config.environment("staging")) is True


def test_blue_green_outside_production_defaults_to_all_at_once() -> None:
    text = MINIMAL.replace("  - name: staging\n", "  - name: staging\n    deployment: blue_green\n")
    config = parse_config_text(text)
    assert config.traffic_shifting(config.environment("staging")) is TrafficShifting.ALL_AT_ONCE


def test_missing_required_field_names_field_and_line() -> None:
    line, field, message = only_problem(MINIMAL.replace("project: shop\n", ""))
    assert (line, field) == (1, "project")
    assert "required" in message


def test_wrong_type_says_what_was_expected_and_found() -> None:
    text = MINIMAL.replace("  - name: staging\n", "  - name: staging\n    desired_count: two\n")
    line, field, message = only_problem(text)
    assert (line, field) == (9, "environments[0].desired_count")
    assert "whole number" in message and "'two'" in message


def test_unknown_key_is_an_error_not_ignored() -> None:
    line, field, message = only_problem(MINIMAL + "notifcations:\n  emails: [a@b.co]\n")
    assert (line, field) == (14, "notifcations")
    assert "not a known field" in message


def test_unknown_nested_key_points_at_its_line() -> None:
    text = MINIMAL.replace("    approval: true\n", "    approval: true\n    aproval_timeout: 3\n")
    line, field, _ = only_problem(text)
    assert (line, field) == (13, "environments[1].aproval_timeout")


@pytest.mark.parametrize(
    ("service", "fragment"),
    [
        ("Orders", "lowercase kebab-case"),
        ("orders_api", "lowercase kebab-case"),
        ("-orders", "lowercase kebab-case"),
        ("a" * 29, "at most 28 characters"),
    ],
)
def test_invalid_service_name_is_rejected(service: str, fragment: str) -> None:
    line, field, message = only_problem(MINIMAL.replace("service: orders", f"service: {service}"))
    assert (line, field) == (1, "service")
    assert fragment in message


def test_invalid_environment_name_is_rejected() -> None:
    line, field, message = only_problem(MINIMAL.replace("name: staging", "name: Staging_1"))
    assert field == "environments[0].name"
    assert line == 8
    assert "kebab-case" in message


def test_duplicate_environment_is_rejected() -> None:
    text = MINIMAL.replace("name: production", "name: staging")
    _, field, message = only_problem(text)
    assert field == "environments"
    assert "'staging' appears twice" in message


def test_reserved_environment_name_is_rejected() -> None:
    _, _, message = only_problem(MINIMAL.replace("name: staging", "name: shared"))
    assert "reserved" in message


def test_invalid_email_is_rejected_with_its_index() -> None:
    line, field, message = only_problem(
        MINIMAL + "notifications:\n  emails: [ops@example.com, not-an-email]\n"
    )
    assert (line, field) == (15, "notifications.emails[1]")
    assert "'not-an-email'" in message


def test_invalid_connection_arn_is_rejected() -> None:
    text = MINIMAL.replace(
        "connection_parameter: /deployline/orders/connection-arn",
        "connection_arn: arn:aws:s3:::bucket",
    )
    line, field, message = only_problem(text)
    assert (line, field) == (6, "source.connection_arn")
    assert "CodeStar connection ARN" in message


def test_github_source_needs_exactly_one_connection() -> None:
    text = MINIMAL.replace("  connection_parameter: /deployline/orders/connection-arn\n", "")
    _, field, message = only_problem(text)
    assert field == "source"
    assert "exactly one of connection_arn or connection_parameter" in message


def test_unknown_source_type_lists_the_choices() -> None:
    _, field, message = only_problem(MINIMAL.replace("type: github", "type: gitlab"))
    assert field == "source"
    assert "'github'" in message and "'s3'" in message and "'codecommit'" in message


def test_yaml_syntax_error_reports_the_line() -> None:
    text = MINIMAL.replace("  branch", "").replace("repository: acme/orders", "repository: [acme")
    line, field, message = only_problem(text)
    assert field == ""
    assert message.startswith("YAML syntax error")
    assert line is not None and 5 <= line <= 8


def test_duplicate_yaml_key_is_an_error() -> None:
    _, _, message = only_problem(MINIMAL + "service: other\n")
    assert "duplicate" in message.lower() or "YAML" in message


def test_empty_file_says_how_to_start() -> None:
    _, _, message = only_problem("")
    assert "deployline init" in message


def test_fargate_cpu_memory_pair_must_exist() -> None:
    text = MINIMAL.replace(
        "  - name: staging\n", "  - name: staging\n    cpu: 256\n    memory: 4096\n"
    )
    _, field, message = only_problem(text)
    assert field == "environments[0]"
    assert "memory 4096 MiB is not offered by Fargate with cpu 256" in message


def test_fails_when_desired_count_is_zero() -> None:
    text = MINIMAL.replace("  - name: staging\n", "  - name: staging\n    desired_count: 0\n")
    _, field, message = only_problem(text)
    assert field == "environments[0].desired_count"
    assert "at least 1" in message


def test_fails_when_min_capacity_exceeds_max() -> None:
    text = MINIMAL.replace(
        "  - name: staging\n",
        "  - name: staging\n    min_capacity: 3\n    max_capacity: 2\n    desired_count: 2\n",
    )
    _, _, message = only_problem(text)
    assert "min_capacity (3) must not exceed max_capacity (2)" in message


def test_blue_green_needs_a_second_listener_port() -> None:
    text = MINIMAL.replace(
        "    approval: true\n", "    approval: true\n    test_listener_port: 80\n"
    )
    _, field, message = only_problem(text)
    assert field == "environments[1]"
    assert "second listener" in message


def test_traffic_shifting_on_rolling_is_rejected() -> None:
    text = MINIMAL.replace(
        "  - name: staging\n", "  - name: staging\n    traffic_shifting: all_at_once\n"
    )
    _, _, message = only_problem(text)
    assert "blue_green only" in message


def test_several_problems_are_reported_together() -> None:
    text = (
        MINIMAL.replace("service: orders", "service: Orders").replace("project: shop\n", "")
        + "bogus: 1\n"
    )
    fields = {field for _, field, _ in problems(text)}
    assert {"service", "project", "bogus"} <= fields


def test_reserved_tags_cannot_be_overridden() -> None:
    _, field, message = only_problem(MINIMAL + "tags:\n  Environment: dev\n")
    assert field == "tags"
    assert "set by deployline" in message


def test_missing_file_error_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.yaml")
    assert "nope.yaml" in str(info.value) and "deployline init" in str(info.value)


def test_example_validates_against_the_published_json_schema() -> None:
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    data = YAML(typ="safe").load(EXAMPLE.read_text())
    jsonschema.validate(json.loads(json.dumps(data)), schema)


def test_json_schema_rejects_unknown_keys_like_the_loader() -> None:
    data = YAML(typ="safe").load(EXAMPLE.read_text())
    data["enviroments"] = data.pop("environments")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, json_schema())


def test_a_test_listener_open_to_the_internet_is_warned_about(tmp_path: Path) -> None:
    import yaml

    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    production = next(e for e in data["environments"] if e["name"] == "production")
    production["test_listener_cidrs"] = ["0.0.0.0/0"]
    path = tmp_path / "deployline.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    config = load_config(path)
    (warning,) = config.warnings()
    assert warning.startswith("environments[1].test_listener_cidrs:")
    assert "0.0.0.0/0" in warning and "'production'" in warning


def test_the_test_listener_is_closed_by_default() -> None:
    production = load_config(EXAMPLE).environment("production")
    assert production.test_listener_cidrs == []


def _example_with(tmp_path: Path, edit: Any) -> Path:
    import yaml

    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    edit(data)
    path = tmp_path / "deployline.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def test_termination_wait_minutes_names_its_replacement(tmp_path: Path) -> None:
    path = _example_with(
        tmp_path, lambda d: d["environments"][1].update(termination_wait_minutes=15)
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    (problem,) = caught.value.problems
    assert problem.field == "environments[1]"
    assert "bake_minutes" in problem.message and problem.line is not None


def test_bake_minutes_defaults_to_ten_in_production_and_zero_elsewhere(tmp_path: Path) -> None:
    def edit(data: dict[str, Any]) -> None:
        data["environments"][0].update(deployment="blue_green")

    config = load_config(_example_with(tmp_path, edit))
    assert [config.bake_minutes(e) for e in config.environments] == [0, 10]


def test_bake_minutes_is_refused_on_a_rolling_environment(tmp_path: Path) -> None:
    path = _example_with(tmp_path, lambda d: d["environments"][0].update(bake_minutes=5))
    with pytest.raises(ConfigError, match="bake_minutes applies to deployment: blue_green"):
        load_config(path)


@pytest.mark.parametrize(
    ("shifting", "strategy", "percent", "minutes"),
    [
        ("all_at_once", "BLUE_GREEN", None, None),
        ("canary_10_percent_5_minutes", "CANARY", 10.0, 5),
        ("canary_10_percent_15_minutes", "CANARY", 10.0, 15),
        ("linear_10_percent_every_1_minute", "LINEAR", 10.0, 1),
        ("linear_10_percent_every_3_minutes", "LINEAR", 10.0, 3),
    ],
)
def test_traffic_shifting_maps_to_an_ecs_strategy(
    shifting: str, strategy: str, percent: float | None, minutes: int | None
) -> None:
    from deployline.config import TrafficShifting

    value = TrafficShifting(shifting)
    assert (value.ecs_strategy, value.step_percent, value.step_minutes) == (
        strategy,
        percent,
        minutes,
    )


def test_an_environment_in_another_account_needs_the_pipeline_account(tmp_path: Path) -> None:
    path = _example_with(tmp_path, lambda d: d["environments"][1].update(account="333333333333"))
    with pytest.raises(ConfigError, match=r"set pipeline.account and pipeline.region"):
        load_config(path)


def test_pipeline_account_and_region_go_together(tmp_path: Path) -> None:
    path = _example_with(tmp_path, lambda d: d.update(pipeline={"account": "111111111111"}))
    with pytest.raises(ConfigError, match=r"pipeline\.account and pipeline\.region go together"):
        load_config(path)


def test_environments_default_to_the_pipeline_account_and_region(tmp_path: Path) -> None:
    def edit(data: dict[str, Any]) -> None:
        data["pipeline"] = {"account": "111111111111", "region": "us-east-1"}
        data["environments"][1].update(account="333333333333", region="eu-west-1")

    config = load_config(_example_with(tmp_path, edit))
    staging, production = config.environments
    assert (config.account_of(staging), config.region_of(staging)) == ("111111111111", "us-east-1")
    assert (config.account_of(production), config.region_of(production)) == (
        "333333333333",
        "eu-west-1",
    )
    assert not config.is_environment_agnostic
    assert load_config(EXAMPLE).is_environment_agnostic


def test_endpoints_mode_away_from_the_registry_region_is_refused(tmp_path: Path) -> None:
    def edit(data: dict[str, Any]) -> None:
        data["pipeline"] = {"account": "111111111111", "region": "us-east-1"}
        data["environments"][1].update(region="eu-west-1", network={"mode": "endpoints"})

    with pytest.raises(ConfigError, match="VPC endpoints reach ECR only in their own region"):
        load_config(_example_with(tmp_path, edit))


def test_the_synth_step_installs_this_deployline_by_default() -> None:
    from deployline import __version__

    assert load_config(EXAMPLE).pipeline.deployline_requirement == f"deployline=={__version__}"


def test_the_example_config_has_no_warnings() -> None:
    assert load_config(EXAMPLE).warnings() == []


# --- HTTPS, web ACL and where alarms go (issue 14, item 3) -------------------------------------


def test_an_environment_without_a_certificate_must_choose_plain_http() -> None:
    text = MINIMAL.replace("    plain_http: true\n  - name: production", "  - name: production")
    line, field, message = only_problem(text)
    assert (line, field) == (8, "environments[0]")
    assert message == (
        "the environment has no certificate: give domain_name with hosted_zone_id (deployline "
        "creates the certificate) or with certificate_arn to serve HTTPS, or set plain_http: "
        "true to serve plain HTTP"
    )


def test_plain_http_is_valid_and_validate_warns_about_it() -> None:
    config = parse_config_text(MINIMAL + "notifications:\n  emails: [oncall@example.com]\n")
    warnings = config.warnings()
    assert [w.split(":", 1)[0] for w in warnings] == [
        "environments[0].plain_http",
        "environments[1].plain_http",
    ]
    assert "'staging' serves plain HTTP" in warnings[0] and "hosted_zone_id" in warnings[0]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            "    domain_name: pay.example.com\n    hosted_zone_id: Z0123456789ABCDEFGHIJ\n",
            "plain_http: true contradicts the certificate of certificate_arn or hosted_zone_id; "
            "remove it",
        ),
        (
            "    hosted_zone_id: Z0123456789ABCDEFGHIJ\n",
            "hosted_zone_id needs domain_name: the name (in that zone) to certify and point at "
            "the load balancer",
        ),
        (
            "    domain_name: pay.example.com\n",
            "domain_name is used with certificate_arn or hosted_zone_id only; add one of them "
            "or remove domain_name",
        ),
        (
            "    domain_name: pay.example.com\n    hosted_zone_id: Z0123456789ABCDEFGHIJ\n"
            "    listener_port: 443\n",
            "listener_port 443 is taken by the HTTPS listener; listener_port is the HTTP port "
            "that redirects to it (use 80)",
        ),
    ],
)
def test_https_settings_that_cannot_work_are_refused(settings: str, message: str) -> None:
    text = MINIMAL.replace("  - name: staging\n", "  - name: staging\n" + settings)
    _, field, found = only_problem(text)
    assert (field, found) == ("environments[0]", message)


def test_a_hosted_zone_id_must_look_like_one() -> None:
    text = MINIMAL.replace(
        "  - name: staging\n    plain_http: true\n",
        "  - name: staging\n    domain_name: pay.example.com\n    hosted_zone_id: example.com\n",
    )
    line, field, message = only_problem(text)
    assert (line, field) == (10, "environments[0].hosted_zone_id")
    assert "a Route 53 hosted zone ID like Z0123456789ABCDEFGHIJ" in message


def test_the_example_serves_https_from_a_certificate_created_in_its_hosted_zone() -> None:
    config = load_config(EXAMPLE)
    assert [(e.domain_name, e.hosted_zone_id, e.plain_http) for e in config.environments] == [
        ("payments-staging.example.com", "Z0123456789ABCDEFGHIJ", False),
        ("payments.example.com", "Z0123456789ABCDEFGHIJ", False),
    ]
    assert all(e.serves_https and e.certificate_arn is None for e in config.environments)


def test_a_web_acl_guards_production_unless_told_otherwise() -> None:
    config = parse_config_text(MINIMAL)
    staging, production = config.environments
    assert (config.waf(staging), config.waf(production)) == (False, True)
    told = parse_config_text(
        MINIMAL.replace("  - name: staging\n", "  - name: staging\n    waf: true\n").replace(
            "    approval: true\n", "    approval: true\n    waf: false\n"
        )
    )
    assert [told.waf(e) for e in told.environments] == [True, False]


TEAM_TOPIC = "arn:aws:sns:us-east-1:111111111111:ops-alerts"


def test_alarms_notify_the_teams_topic_only_where_they_can_reach_it() -> None:
    placed = (
        MINIMAL.replace(
            "project: shop\n",
            "project: shop\npipeline:\n  account: '111111111111'\n  region: us-east-1\n",
        ).replace("    approval: true\n", "    approval: true\n    region: eu-west-1\n")
        + f"notifications:\n  sns_topic_arn: {TEAM_TOPIC}\n"
    )
    config = parse_config_text(placed)
    staging, production = config.environments
    assert config.alarm_topic_arn(staging) == TEAM_TOPIC  # the pipeline's account and region
    assert config.alarm_topic_arn(production) is None  # CloudWatch cannot publish across regions
    alarms = [w for w in config.warnings() if "notify nobody" in w]
    assert len(alarms) == 1 and alarms[0].startswith("environments[1]: the alarms of 'production'")
    # With an address to subscribe, each environment's own topic reaches the team.
    subscribed = parse_config_text(placed + "  emails: [oncall@example.com]\n")
    assert not [w for w in subscribed.warnings() if "notify nobody" in w]


def test_a_config_that_notifies_nobody_is_warned_about() -> None:
    warnings = parse_config_text(MINIMAL).warnings()
    assert warnings[-1].startswith("notifications: nobody is told when the pipeline fails")


# --------------------------------------------------------------------------------------------
# What synth (and AWS at deploy time) would refuse, found by validate with file, line and fix
# --------------------------------------------------------------------------------------------


def _set(text: str, env_line: str, addition: str) -> str:
    """MINIMAL with `addition` (indented lines) after the environment line `env_line`."""
    assert env_line in text
    return text.replace(env_line, env_line + addition, 1)


STAGING = "  - name: staging\n"
#: A digit as \d matches it and AWS does not: ARABIC-INDIC DIGIT ONE.
ARABIC_ONE = "\u0661"


def test_the_last_of_several_environments_needs_approval() -> None:
    text = MINIMAL.replace("    approval: true\n", "")
    line, field, message = only_problem(text)
    assert (line, field) == (10, "environments[1].approval")  # the environment's line
    assert message.startswith("'production' is the last of 2 environments")
    assert "approval: true" in message and "DL405" in message


def test_a_file_wide_dl405_suppression_lets_the_last_environment_go_without_approval() -> None:
    text = MINIMAL.replace("    approval: true\n", "") + (
        "checks:\n  suppress:\n    - {id: dl405, reason: releases are approved in git}\n"
    )
    config = parse_config_text(text)
    assert config.checks.file_wide("DL405")
    assert config.checks.suppress[0].id == "DL405"


def test_a_dl405_suppression_for_one_resource_does_not_waive_the_approval() -> None:
    text = MINIMAL.replace("    approval: true\n", "") + (
        "checks:\n  suppress:\n    - {id: DL405, reason: not this one, resource: Pipeline}\n"
    )
    (_, field, _) = only_problem(text)
    assert field == "environments[1].approval"


def test_one_environment_needs_no_approval() -> None:
    text = MINIMAL.split("  - name: production")[0]
    assert parse_config_text(text).environments[0].approval is False


@pytest.mark.parametrize(
    ("cidr", "fragment"),
    [
        ("10.0.0.0/9", "a VPC CIDR block from /16 to /28"),
        ("10.0.0.0/15", "a VPC CIDR block from /16 to /28"),
        ("10.0.0.0/29", "a VPC CIDR block from /16 to /28"),
        ("10.0.0.0/28", "leaves /29 subnets, and a subnet must be /28 or larger: use a /27"),
    ],
)
def test_a_vpc_cidr_cdk_cannot_split_is_refused(cidr: str, fragment: str) -> None:
    text = _set(MINIMAL, STAGING, f"    network: {{vpc_cidr: {cidr}}}\n")
    line, field, message = only_problem(text)
    assert (line, field) == (9, "environments[0].network.vpc_cidr")
    assert fragment in message


@pytest.mark.parametrize(
    ("network", "ok"),
    [
        ("{vpc_cidr: 10.0.0.0/27}", True),  # public, 2 zones: two /28
        ("{vpc_cidr: 10.0.0.0/27, mode: private}", False),  # four subnets: /29
        ("{vpc_cidr: 10.0.0.0/26, mode: private}", True),
        ("{vpc_cidr: 10.0.0.0/25, mode: private, max_azs: 6}", False),  # twelve: /29
        ("{vpc_cidr: 10.0.0.0/24, mode: private, max_azs: 6}", True),
        # an existing VPC is not split by deployline
        (
            "{vpc_cidr: 10.0.0.0/28, vpc_id: vpc-0abc1234, availability_zones: [us-east-1a, "
            "us-east-1b], public_subnet_ids: [subnet-0abc1234, subnet-0abc1235]}",
            True,
        ),
    ],
)
def test_subnets_of_a_new_vpc_must_be_at_least_a_28(network: str, ok: bool) -> None:
    text = _set(MINIMAL, STAGING, f"    network: {network}\n")
    if ok:
        parse_config_text(text)
    else:
        (_, field, message) = only_problem(text)
        assert field == "environments[0].network.vpc_cidr" and "/28 or larger" in message


def test_at_most_eight_path_filters_of_at_most_255_characters() -> None:
    eight = MINIMAL.replace(
        "  connection_parameter:",
        "  paths: [" + ", ".join(["a" * 255] * 8) + "]\n  connection_parameter:",
    )
    assert len(parse_config_text(eight).source.paths) == 8  # type: ignore[union-attr]
    nine = MINIMAL.replace(
        "  connection_parameter:",
        "  exclude_paths: [a, b, c, d, e, f, g, h, i]\n  connection_parameter:",
    )
    assert only_problem(nine) == (6, "source.exclude_paths", "allows at most 8 item(s), found 9")
    long = MINIMAL.replace(
        "  connection_parameter:", f"  paths: [{'a' * 256}]\n  connection_parameter:"
    )
    (_, field, message) = only_problem(long)
    assert field == "source.paths[0]" and message.startswith("must be at most 255 characters")


def test_an_email_may_not_repeat_in_any_case() -> None:
    text = MINIMAL + "notifications:\n  emails: [ops@example.com, OPS@example.com]\n"
    line, field, message = only_problem(text)
    assert (line, field) == (15, "notifications.emails")
    assert "'OPS@example.com' repeats 'ops@example.com'" in message


@pytest.mark.parametrize(
    "branch",
    ['"ma\\nin"', '"a b"', "a..b", "-x", "x.lock", "x/", "x//y", '"x@{1}"', ".x", "x/.y", "'a~1'"],
)
def test_a_branch_git_would_refuse_is_refused(branch: str) -> None:
    text = MINIMAL.replace(
        "  repository: acme/orders\n", f"  repository: acme/orders\n  branch: {branch}\n"
    )
    line, field, message = only_problem(text)
    assert (line, field) == (6, "source.branch")
    assert message.startswith("expected a git branch name like main")


@pytest.mark.parametrize("branch", ["main", "release/2.1", "feature/a-b_c", "v1.0", "x" * 255])
def test_ordinary_branches_are_accepted(branch: str) -> None:
    text = MINIMAL.replace(
        "  repository: acme/orders\n", f"  repository: acme/orders\n  branch: {branch}\n"
    )
    assert parse_config_text(text).source.branch == branch  # type: ignore[union-attr]


def test_an_s3_source_key_with_spaces_is_refused() -> None:
    text = MINIMAL.replace(
        "  type: github\n  repository: acme/orders\n"
        "  connection_parameter: /deployline/orders/connection-arn\n",
        "  type: s3\n  key: my source.zip\n",
    )
    line, field, message = only_problem(text)
    assert (line, field) == (5, "source.key")
    assert "no spaces, wildcards or leading '/'" in message


# --------------------------------------------------------------------------------------------
# Deploy-time limits (issue 14): values that synthesize but that AWS refuses
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("where", "value", "field"),
    [
        ("pipeline", f"{{account: '{ARABIC_ONE * 12}', region: us-east-1}}", "pipeline.account"),
        ("pipeline", "{account: '111111111111', region: us-east-\u0661}", "pipeline.region"),
        (
            "notifications",
            f"{{sns_topic_arn: 'arn:aws:sns:us-east-1:{ARABIC_ONE * 12}:alerts'}}",
            "notifications.sns_topic_arn",
        ),
    ],
)
def test_only_ascii_digits_where_aws_means_digits(where: str, value: str, field: str) -> None:
    line, found_field, message = only_problem(MINIMAL + f"{where}: {value}\n")
    assert (line, found_field) == (14, field)
    assert message.startswith("expected ")


@pytest.mark.parametrize(
    ("user", "ok"),
    [("1000:1000", True), ("app", True), (f"'{ARABIC_ONE}000'", False), ("'0:0'", False),
     ("root", False), ("'00'", False), ("'1000:0'", True)],
)  # fmt: skip
def test_container_user_is_ascii_and_never_root(user: str, ok: bool) -> None:
    text = _set(MINIMAL, STAGING, f"    container_user: {user}\n")
    if ok:
        parse_config_text(text)
    else:
        line, field, message = only_problem(text)
        assert (line, field) == (9, "environments[0].container_user")
        assert "root and uid 0 are refused" in message


def test_an_owner_that_is_no_tag_value_is_refused() -> None:
    line, field, message = only_problem(MINIMAL + "owner: 'Orders <orders@example.com>'\n")
    assert (line, field) == (14, "owner")
    assert message.startswith("expected a tag value of letters, digits, spaces")


def _tags(count: int) -> str:
    return "tags:\n" + "".join(f"  Key{i}: value\n" for i in range(count))


def test_tags_fit_beside_deployline_s_and_cdk_s_own() -> None:
    from deployline.config import MAX_USER_TAGS

    assert MAX_USER_TAGS == 43  # 50 - Environment, Project, ManagedBy, Service - 3 on subnets
    assert len(parse_config_text(MINIMAL + _tags(43)).tags) == 43
    assert parse_config_text(MINIMAL + "owner: team\n" + _tags(42)).owner == "team"
    line, field, message = only_problem(MINIMAL + "owner: team\n" + _tags(43))
    assert (line, field) == (15, "tags")
    assert "43 tags and the Owner tag are more than 43" in message
    (_, field, message) = only_problem(MINIMAL + _tags(44))
    assert field == "tags" and "at most 43" in message
    # an Owner tag of one's own is the owner's tag: counted once
    parse_config_text(MINIMAL + "owner: team\n" + _tags(42) + "  Owner: someone\n")


def test_a_health_check_path_longer_than_the_load_balancer_takes_is_refused() -> None:
    longest = "/" + "a" * 1023
    ok = _set(MINIMAL, STAGING, f"    health_check_path: {longest}\n")
    assert parse_config_text(ok).environments[0].health_check_path == longest
    line, field, message = only_problem(
        _set(MINIMAL, STAGING, f"    health_check_path: {longest}a\n")
    )
    assert (line, field) == (9, "environments[0].health_check_path")
    assert message.startswith("must be at most 1024 characters")


def _cidrs(count: int) -> str:
    return "[" + ", ".join(f"10.{i // 256}.{i % 256}.0/24" for i in range(count)) + "]"


def test_ingress_cidrs_fit_in_one_security_group_with_every_port_opened() -> None:
    assert len(parse_config_text(_set(MINIMAL, STAGING, f"    ingress_cidrs: {_cidrs(60)}\n"))
               .environments[0].ingress_cidrs) == 60  # fmt: skip
    (_, field, message) = only_problem(_set(MINIMAL, STAGING, f"    ingress_cidrs: {_cidrs(61)}\n"))
    assert (field, message) == (
        "environments[0].ingress_cidrs",
        "allows at most 60 item(s), found 61",
    )
    https = (
        "    certificate_arn: arn:aws:acm:us-east-1:111111111111:certificate/"
        "0123abcd-0123-4567-89ab-0123456789ab\n    domain_name: orders.example.com\n"
    )
    served = MINIMAL.replace(STAGING + "    plain_http: true\n", STAGING)
    assert parse_config_text(_set(served, STAGING, https + f"    ingress_cidrs: {_cidrs(30)}\n"))
    line, field, message = only_problem(
        _set(served, STAGING, https + f"    ingress_cidrs: {_cidrs(31)}\n")
    )
    assert (line, field) == (11, "environments[0].ingress_cidrs")
    assert message == (
        "31 ingress_cidrs x 2 port(s) [80, 443] make 62 inbound rules in the load balancer's "
        "security group, which holds 60: list fewer, wider CIDRs"
    )
    blue_green = "    test_listener_cidrs: " + _cidrs(11) + "\n"
    (_, field, message) = only_problem(
        MINIMAL.replace(
            "    approval: true\n",
            f"    approval: true\n    ingress_cidrs: {_cidrs(50)}\n" + blue_green,
        )
    )
    assert (
        field == "environments[1].ingress_cidrs" and "+ 11 test_listener_cidrs make 61" in message
    )


def test_a_cidr_may_not_repeat() -> None:
    (_, field, message) = only_problem(
        _set(MINIMAL, STAGING, "    ingress_cidrs: [10.0.0.0/8, 10.0.0.0/8]\n")
    )
    assert (
        field == "environments[0].ingress_cidrs"
        and "['10.0.0.0/8'] appear more than once" in message
    )


@pytest.mark.parametrize(
    "url", ["https://user:secret@hooks.example.com/x", "https://token@hooks.example.com"]
)
def test_credentials_in_the_https_endpoint_are_refused(url: str) -> None:
    line, field, message = only_problem(MINIMAL + f"notifications:\n  https_endpoint: {url}\n")
    assert (line, field) == (15, "notifications.https_endpoint")
    assert "without user:password@" in message


def test_an_https_endpoint_may_carry_an_at_sign_in_its_path() -> None:
    text = MINIMAL + "notifications:\n  https_endpoint: https://hooks.example.com/a@b?x=1\n"
    assert (
        parse_config_text(text).notifications.https_endpoint == "https://hooks.example.com/a@b?x=1"
    )


def test_cpu_outside_fargate_s_sizes_is_refused_at_the_field() -> None:
    (line, field, message) = only_problem(_set(MINIMAL, STAGING, "    cpu: 300\n"))
    assert (line, field) == (9, "environments[0].cpu")
    assert message == (
        "cpu must be one of [256, 512, 1024, 2048, 4096, 8192, 16384] Fargate CPU units, got 300"
    )


def test_an_empty_section_takes_its_defaults() -> None:
    config = parse_config_text(MINIMAL + "checks:\nnotifications:\n")
    assert config.checks.suppress == () and config.notifications.emails == []


# --------------------------------------------------------------------------------------------
# checks: one schema for check, validate and synth
# --------------------------------------------------------------------------------------------


def test_checks_takes_what_deployline_check_takes() -> None:
    text = MINIMAL + (
        "checks:\n"
        "  severity_threshold: LOW\n"
        "  suppress:\n"
        "    - {id: ' dl301 ', reason: ok}\n"
        "  options:\n"
        "    dl301: {limit: 30}\n"
        "    DL701: {required_tags: [Team]}\n"
    )
    checks = parse_config_text(text).checks
    assert checks.severity_threshold.value == "low"
    assert [(s.id, s.reason, s.resource) for s in checks.suppress] == [("DL301", "ok", None)]
    assert checks.options == {"DL301": {"limit": 30}, "DL701": {"required_tags": ["Team"]}}


def test_checks_survives_a_dump_and_a_validation() -> None:
    text = MINIMAL + (
        "checks:\n"
        "  severity_threshold: medium\n"
        "  suppress:\n"
        "    - {id: dl301, reason: ok, resource: Build}\n"
        "  options:\n"
        "    DL301: {limit: 30}\n"
    )
    config = parse_config_text(text)
    dumped = config.model_dump(mode="json")
    assert dumped["checks"] == {
        "severity_threshold": "medium",
        "suppress": [{"id": "DL301", "reason": "ok", "resource": "Build"}],
        "options": {"DL301": {"limit": 30}},
    }
    again = DeploylineConfig.model_validate(dumped).checks
    assert (again.severity_threshold, again.suppress, again.options) == (
        config.checks.severity_threshold,
        config.checks.suppress,
        config.checks.options,
    )


def test_checks_refuses_what_deployline_check_refuses_and_typos_it_would_ignore() -> None:
    text = MINIMAL + (
        "checks:\n"
        "  severity_threshold: urgent\n"
        "  suppress:\n"
        "    - {id: DL999, reason: not a rule}\n"
        "    - {id: DL301, reason: '  '}\n"
        "  options:\n"
        "    DL301: {limt: 30}\n"
        "    DL302: {limit: 30}\n"
        "    DL701: {required_tags: Team}\n"
    )
    found = {(line, field): message for line, field, message in problems(text)}
    assert found == {
        (15, "checks.severity_threshold"): (
            "unknown severity 'urgent'; expected one of LOW, MEDIUM, HIGH, CRITICAL"
        ),
        (17, "checks.suppress[0]"): (
            "the suppression names 'DL999', which is no rule (see deployline rules)"
        ),
        (18, "checks.suppress[1]"): (
            "the suppression of DL301 has no reason: say why it is accepted"
        ),
        (20, "checks.options.DL301.limt"): "DL301 has no option 'limt' (its options: limit)",
        (21, "checks.options.DL302.limit"): "DL302 has no option 'limit' (its options: none)",
        (22, "checks.options.DL701.required_tags"): found[
            (22, "checks.options.DL701.required_tags")
        ],
    }
    # the checker's own words, its default included
    assert found[(22, "checks.options.DL701.required_tags")].startswith(
        "DL701 option 'required_tags' takes a list of non-empty strings, got 'Team' (default: "
    )


# --------------------------------------------------------------------------------------------
# The JSON Schema carries every constraint on a single value
# --------------------------------------------------------------------------------------------

_TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs"]) | st.sampled_from("aZ09-_./:@ \u0661"),
    max_size=40,
).map(str.strip)
_CANDIDATES = st.one_of(
    _TEXT,
    st.from_regex(r"[a-z][a-z0-9-]{0,40}", fullmatch=True),
    st.sampled_from(
        ["orders", "OrdersApi", "a" * 29, "10.0.0.0/16", "10.0.0.0/9", "/health", "1000:1000",
         "0", "root", "ops@example.com", "https://a.example.com", "https://u:p@a.example.com",
         "release/2.1", "a..b", "DL301", "dl301", "high", "HIGH", "urgent", "x" * 1025]
    ),
)  # fmt: skip
_SINGLE_VALUE_FIELDS: list[tuple[tuple[str | int, ...], st.SearchStrategy[Any]]] = [
    (("service",), _CANDIDATES),
    (("project",), _CANDIDATES),
    (("owner",), _CANDIDATES),
    (("source", "repository"), _CANDIDATES),
    (("source", "branch"), _CANDIDATES),
    (("source", "connection_parameter"), _CANDIDATES),
    (("environments", 0, "name"), _CANDIDATES),
    (("environments", 0, "health_check_path"), _CANDIDATES),
    (("environments", 0, "container_user"), _CANDIDATES),
    (("environments", 0, "ingress_cidrs", 0), _CANDIDATES),
    (("environments", 0, "network", "vpc_cidr"), _CANDIDATES),
    (("environments", 0, "placeholder_image"), _CANDIDATES),
    (("environments", 0, "cpu"), st.integers(-1, 20_000)),
    (("environments", 0, "container_port"), st.integers(-1, 70_000)),
    (("notifications", "emails", 0), _CANDIDATES),
    (("notifications", "https_endpoint"), _CANDIDATES),
    (("notifications", "sns_topic_arn"), _CANDIDATES),
    (("naming", "prefix"), _CANDIDATES),
    (("pipeline", "bootstrap_qualifier"), _CANDIDATES),
    (("tags", "Team"), _CANDIDATES),
    (("checks", "severity_threshold"), _CANDIDATES),
]


def _minimal_with(path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    data: dict[str, Any] = YAML(typ="safe").load(MINIMAL)
    data["environments"][0]["ingress_cidrs"] = ["0.0.0.0/0"]
    data["notifications"] = {"emails": ["a@example.com"]}
    node: Any = data
    for part in path[:-1]:
        if isinstance(part, str) and part not in node:
            node[part] = {}
        node = node[part]
    node[path[-1]] = value
    return data


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(_SINGLE_VALUE_FIELDS).flatmap(lambda c: st.tuples(st.just(c[0]), c[1])))
def test_the_schema_refuses_exactly_what_validate_refuses_in_a_single_value(
    case: tuple[tuple[str | int, ...], Any],
) -> None:
    """Where validate refuses a value itself (the error names that field), the schema refuses it
    too; and the schema refuses nothing validate accepts. (Rules that relate several values,
    such as cpu and memory, are validate's alone.)"""
    path, value = case
    data = _minimal_with(path, value)
    schema_ok = jsonschema.Draft202012Validator(_SCHEMA).is_valid(data)
    try:
        parse_config_text(json.dumps(data), "deployline.yaml")
    except ConfigError as exc:
        field = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
        at_field = [p for p in exc.problems if p.field == field or p.field.startswith(field + ".")]
        assert not (at_field and schema_ok), f"{field}={value!r}: schema accepts, validate: {exc}"
    else:
        assert schema_ok, f"{path}={value!r}: validate accepts what the schema refuses"


_SCHEMA = json_schema()


def test_the_schema_refuses_a_service_named_orders_api() -> None:
    data = _minimal_with(("service",), "OrdersApi")
    with pytest.raises(jsonschema.ValidationError, match="OrdersApi"):
        jsonschema.validate(data, _SCHEMA)


# --------------------------------------------------------------------------------------------
# checks: never accepted by validate when deployline check refuses it; the same meaning when
# both accept it (the checker's loader is the reference)
# --------------------------------------------------------------------------------------------

_IDS = st.sampled_from(["DL301", "dl301", " DL405 ", "DL999", "", "DL", None, 5])
_REASONS = st.sampled_from(["ok", "", "   ", "reviewed with the team", None, 7])
_ENTRIES = st.one_of(
    st.fixed_dictionaries(
        {"id": _IDS, "reason": _REASONS},
        optional={"resource": st.sampled_from(["BuildProject", "", None, 5])},
    ),
    st.sampled_from(["DL301", None, ["DL301"]]),
)
_CHECKS = st.fixed_dictionaries(
    {},
    optional={
        "severity_threshold": st.sampled_from(["low", "HIGH", " Medium ", "urgent", 3, None]),
        "suppress": st.one_of(st.lists(_ENTRIES, max_size=3), _ENTRIES),
        "options": st.one_of(
            st.none(),
            st.dictionaries(
                st.sampled_from(["DL301", "dl301", "DL999", " DL701", "DL701"]),
                st.sampled_from([{"limit": 30}, {"limt": 1}, "x", {"required_tags": ["Team"]}, {}]),
                max_size=2,
            ),
        ),
    },
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(checks=_CHECKS)
def test_validate_reads_checks_as_the_checker_does(tmp_path: Path, checks: dict[str, Any]) -> None:
    from deployline.checks.model import Severity as CheckSeverity
    from deployline.checks.settings import ConfigReadError, load_checks_config

    path = tmp_path / "deployline.yaml"
    path.write_text(MINIMAL + yaml_dump({"checks": checks}), encoding="utf-8")
    try:
        seen = load_checks_config(path)
        threshold = seen.severity_threshold or CheckSeverity.HIGH
        checker_refuses = bool(seen.problems)
    except (ConfigReadError, ValueError):
        checker_refuses = True
    try:
        config = load_config(path)
    except ConfigError as exc:
        assert all(p.field.startswith("checks") for p in exc.problems), exc
        return
    assert not checker_refuses, f"validate accepts what deployline check refuses: {checks}"
    assert threshold == (config.checks.severity_threshold or CheckSeverity.HIGH)
    assert [(s.id, s.reason, s.resource) for s in seen.suppress] == [
        (s.id, s.reason, s.resource) for s in config.checks.suppress
    ]
    assert seen.options == config.checks.options


def yaml_dump(data: Any) -> str:
    import yaml

    return yaml.safe_dump(data, allow_unicode=True)


def test_replaced_artifacts_cannot_outlive_the_artifacts() -> None:
    """What the artifact store refuses at synth (found by the config fuzz)."""
    text = MINIMAL + "pipeline:\n  artifact_expiry_days: 3\n  noncurrent_expiry_days: 7\n"
    line, field, message = only_problem(text)
    assert (line, field) == (16, "pipeline.noncurrent_expiry_days")
    assert message.startswith("7 days is longer than artifact_expiry_days (3)")


def test_a_certificate_of_another_region_or_account_is_refused_where_known() -> None:
    def with_certificate(arn: str, placement: str = "") -> str:
        served = MINIMAL.replace(STAGING + "    plain_http: true\n", STAGING)
        text = _set(
            served,
            STAGING,
            f"    certificate_arn: {arn}\n    domain_name: orders.example.com\n",
        )
        return text + placement

    cert = "arn:aws:acm:{}:{}:certificate/0123abcd-0123-4567-89ab-0123456789ab"
    home = "pipeline:\n  account: '111111111111'\n  region: eu-west-1\n"
    # environment-agnostic: nothing to compare with (the preflight reads the certificate)
    assert parse_config_text(with_certificate(cert.format("us-east-1", "222222222222")))
    assert parse_config_text(with_certificate(cert.format("eu-west-1", "111111111111"), home))
    line, field, message = only_problem(
        with_certificate(cert.format("us-east-1", "111111111111"), home)
    )
    assert (line, field) == (9, "environments[0].certificate_arn")
    assert message.startswith(
        "the certificate is in region us-east-1, but 'staging' runs in region eu-west-1, and a "
        "load balancer uses certificates of its own account and region only; request or "
        "import the certificate for orders.example.com in eu-west-1"
    )
    (_, field, message) = only_problem(
        with_certificate(cert.format("eu-west-1", "999999999999"), home)
    )
    assert "certificate is in account 999999999999" in message
