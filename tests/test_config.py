"""deployline.yaml: valid files load; every invalid case gives a precise message with its line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from ruamel.yaml import YAML

from deployline.config import (
    ConfigError,
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
