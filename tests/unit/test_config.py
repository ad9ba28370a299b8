"""Configuration errors name the variable; values are parsed once."""

from __future__ import annotations

import re

import pytest

from devkit import template
from vpce_guard.config import (
    DEFAULT_AWS_OWNED_RESOURCE_ARNS,
    ConfigError,
    Mode,
    Perimeter,
    Settings,
    aws_owned_resources_in,
)


def test_csv_org_ids_and_mode_are_parsed() -> None:
    s = Settings.from_env({"LEDGER_TABLE": "t-1", "ALLOWED_ORG_IDS": " o-abcdefghij , o-0123456789", "MODE": "DRY_RUN"})
    assert s.allowed_org_ids == ("o-abcdefghij", "o-0123456789")
    assert s.mode is Mode.DRY_RUN


def test_bad_org_id_error_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="ALLOWED_ORG_IDS"):
        Settings.from_env({"LEDGER_TABLE": "t-1", "ALLOWED_ORG_IDS": "123456789012"})


def test_missing_table_error_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="LEDGER_TABLE"):
        Settings.from_env({})


def test_unknown_mode_is_rejected() -> None:
    with pytest.raises(ConfigError, match="MODE"):
        Settings.from_env({"LEDGER_TABLE": "t-1", "MODE": "yolo"})


# AWS_OWNED_RESOURCE_ARNS -------------------------------------------------------------------------------------

def test_aws_owned_resources_default_to_the_amazon_linux_repositories() -> None:
    s = Settings.from_env({"LEDGER_TABLE": "t-1"})
    assert s.aws_owned_resource_arns == DEFAULT_AWS_OWNED_RESOURCE_ARNS
    assert aws_owned_resources_in(s.aws_owned_resource_arns, "eu-west-1") == (
        "arn:aws:s3:::packages.eu-west-1.amazonaws.com/*",
        "arn:aws:s3:::repo.eu-west-1.amazonaws.com/*",
        "arn:aws:s3:::amazonlinux.eu-west-1.amazonaws.com/*",
        "arn:aws:s3:::amazonlinux-2-repos-eu-west-1/*",
        "arn:aws:s3:::al2023-repos-eu-west-1-de612dc2/*",
    )


def test_template_default_is_the_same_list() -> None:
    """The template passes its parameter default to the function; it must say what the code defaults to."""
    default = template.load()["Parameters"]["AwsOwnedResourceArns"]["Default"]
    assert tuple(default.split(",")) == DEFAULT_AWS_OWNED_RESOURCE_ARNS
    env = template.function_spec("OnChangeFunction", resources={"LedgerTable": "t-1"}).environment
    assert Settings.from_env(env).aws_owned_resource_arns == DEFAULT_AWS_OWNED_RESOURCE_ARNS


def test_empty_aws_owned_resources_turn_the_exemption_off() -> None:
    assert Settings.from_env({"LEDGER_TABLE": "t-1", "AWS_OWNED_RESOURCE_ARNS": ""}).aws_owned_resource_arns == ()
    assert Settings.from_env({"LEDGER_TABLE": "t-1", "AWS_OWNED_RESOURCE_ARNS": " , "}).aws_owned_resource_arns == ()


def test_aws_owned_resources_are_a_comma_separated_list() -> None:
    s = Settings.from_env({
        "LEDGER_TABLE": "t-1",
        "AWS_OWNED_RESOURCE_ARNS": " arn:aws:s3:::al2023-repos-<region>-de612dc2/* ,arn:aws:s3:::amazoncloudwatch-agent/*",
    })
    assert s.aws_owned_resource_arns == ("arn:aws:s3:::al2023-repos-<region>-de612dc2/*",
                                         "arn:aws:s3:::amazoncloudwatch-agent/*")


@pytest.mark.parametrize("value", [
    "*",
    "arn:aws:s3:::al2023-repos-*/*",  # a wildcard in a bucket name: anyone can create such a bucket
    "arn:aws:s3:::amazonlinux.*.amazonaws.com/*",
    "arn:aws:s3:::cloudformation-custom-resource-response-<RegionWithoutDashes>/*",  # only <region> is filled in
    "arn:aws:s3:::al2023-repos-<Region>-de612dc2/*",
    "arn:aws:dynamodb:<region>:111122223333:table/x",
    "arn:aws:s3:::amazoncloudwatch-agent/*,arn:aws:s3:::*",
])
def test_bad_aws_owned_resources_error_names_the_variable(value: str) -> None:
    with pytest.raises(ConfigError, match="AWS_OWNED_RESOURCE_ARNS"):
        Settings.from_env({"LEDGER_TABLE": "t-1", "AWS_OWNED_RESOURCE_ARNS": value})


# ------------------------------------------------------------------------------------------- endpoint services
def test_perimeter_and_endpoint_service_opt_ins_default_to_the_safe_side() -> None:
    s = Settings.from_env({"LEDGER_TABLE": "ledger"})
    assert s.perimeter is Perimeter.IDENTITY
    assert (s.remove_outside_principals, s.reject_outside_connections, s.endpoint_service_partners) == (False, False, ())


def test_perimeter_partners_and_opt_ins_are_read() -> None:
    s = Settings.from_env({"LEDGER_TABLE": "ledger", "PERIMETER": "Identity+Resource",
                           "REMOVE_OUTSIDE_PRINCIPALS": "true", "REJECT_OUTSIDE_CONNECTIONS": "TRUE",
                           "ENDPOINT_SERVICE_PARTNERS": "555566667777, arn:aws:iam::444455556666:role/integration"})
    assert s.perimeter is Perimeter.IDENTITY_AND_RESOURCE
    assert s.remove_outside_principals and s.reject_outside_connections
    assert s.endpoint_service_partners == ("555566667777", "arn:aws:iam::444455556666:role/integration")


@pytest.mark.parametrize(("variable", "value", "message"), [
    ("PERIMETER", "resource", "PERIMETER"),
    ("ENDPOINT_SERVICE_PARTNERS", "*", "'*' cannot be a partner"),
    ("ENDPOINT_SERVICE_PARTNERS", "arn:aws:iam::*:root", "ENDPOINT_SERVICE_PARTNERS"),
    ("ENDPOINT_SERVICE_PARTNERS", "partner-co", "ENDPOINT_SERVICE_PARTNERS"),
    ("REMOVE_OUTSIDE_PRINCIPALS", "yes please", "REMOVE_OUTSIDE_PRINCIPALS"),
])
def test_bad_endpoint_service_settings_name_the_variable(variable: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        Settings.from_env({"LEDGER_TABLE": "ledger", variable: value})


def test_the_template_accepts_exactly_the_partners_the_settings_accept() -> None:
    pattern = re.compile(template.load()["Parameters"]["EndpointServicePartners"]["AllowedPattern"])
    for good in ("", "555566667777", "555566667777,arn:aws:iam::444455556666:role/team/integration"):
        assert pattern.fullmatch(good), good
        Settings.from_env({"LEDGER_TABLE": "ledger", "ENDPOINT_SERVICE_PARTNERS": good})
    for bad in ("*", "arn:aws:iam::*:root", "5555", "555566667777,"):
        assert not pattern.fullmatch(bad), bad
