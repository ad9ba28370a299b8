"""The operator commands through the command line (`vpce-guard rollback` / `python -m vpce_guard.admin`), on the
real handler's fixes under moto: the hub's region is --region, the resource's --resource-region; a rollback
that restores exits 0, one that is refused prints why and exits 3."""

from __future__ import annotations

import json
from typing import Any

import pytest
from boto3.dynamodb.conditions import Key

from devkit.seed import SpineWorld, render_event
from tests.support.printed import printed_json
from vpce_guard import admin

from .conftest import ACCOUNT, REGION, TABLE, TABLES, Invoke

POLICY_RULE = "endpoint-policy-org-confined"


def _policy(ec2: Any, endpoint_id: str) -> str:
    return ec2.describe_vpc_endpoints(VpcEndpointIds=[endpoint_id])["VpcEndpoints"][0]["PolicyDocument"]


def test_rollback_on_the_command_line_restores_then_refuses_a_second_time(
        invoke: Invoke, ec2: Any, world: SpineWorld, ledger_table: Any, capsys: pytest.CaptureFixture[str]) -> None:
    endpoint = world.ids["s3_endpoint"]
    original = _policy(ec2, endpoint)
    invoke(render_event("modify-vpc-endpoint.json", world.mapping()))
    [fix] = [i for i in ledger_table.query(KeyConditionExpression=Key("pk").eq(f"RES#{ACCOUNT}#{REGION}#{endpoint}")
                                           & Key("sk").begins_with("EVAL#"))["Items"] if i["rule_id"] == POLICY_RULE]
    assert _policy(ec2, endpoint) != original
    capsys.readouterr()
    argv = ["rollback", "--account", ACCOUNT, "--resource-region", REGION, "--resource-id", endpoint,
            "--record-sk", fix["sk"], "--reason", "INC-1", "--region", REGION, "--ledger-table", TABLE,
            "--exemptions-table", TABLES["ExemptionsTable"]]

    assert admin.main(argv) == 0
    assert printed_json(capsys)["status"] == "restored"
    assert _policy(ec2, endpoint) == original

    assert admin.main(argv) == admin.EXIT_ROLLBACK_NOT_DONE, "the resource no longer shows the fix's after-state"
    out = printed_json(capsys)
    assert out["status"] == "refused" and "changed since" in out["reason"]


def test_the_hub_tables_come_from_the_option_then_the_named_stack_then_the_environment_then_the_default_stack(
        aws_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    import argparse

    import boto3

    from vpce_guard import cli

    cfn = boto3.client("cloudformation", region_name=REGION)
    for stack, table in (("vpce-guard", "default-stack-ledger"), ("hub", "named-stack-ledger")):
        cfn.create_stack(StackName=stack, TemplateBody=json.dumps({
            "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
            "Outputs": {"LedgerTableName": {"Value": table}}}))

    def ledger(**given: str) -> str:
        args = argparse.Namespace(**{"region": REGION, "profile": None, "ledger_table": None, "stack": None,
                                     **given})
        return cli.Context(args).table("ledger")

    monkeypatch.setenv("LEDGER_TABLE", "env-ledger")
    assert ledger(ledger_table="option-ledger", stack="hub") == "option-ledger"
    assert ledger(stack="hub") == "named-stack-ledger"
    assert ledger() == "env-ledger"
    monkeypatch.delenv("LEDGER_TABLE")
    assert ledger() == "default-stack-ledger"
    with pytest.raises(cli.CliError, match="no stack 'nope' in us-east-1"):
        ledger(stack="nope")
