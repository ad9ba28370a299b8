"""The safety wiring of template.yaml, checked against moto and the real handlers: the event pattern drops our
own calls and nobody else's, the metrics the handlers emit are the ones the alarms watch, and the mode
overrides are read through Powertools Parameters with a cache."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.parameters import SSMProvider

from devkit import template
from devkit.seed import SpineWorld, render_event
from tests.support.botocore_hooks import CallCounter, FailTimes, ec2_error, install
from vpce_guard.config import Mode
from vpce_guard.modes import ModeResolver

from .conftest import ACCOUNT, REGION, Invoke

OTHER = "444455556666"
SPOKE_ROLE = template.parameter_values(template.load())["SpokeRoleName"]


def _identity(kind: str, arn: str | None = None, issuer: str | None = None, user_name: str | None = None
              ) -> dict[str, Any]:
    ident: dict[str, Any] = {"type": kind}
    if arn:
        ident["arn"] = arn
    if issuer:
        ident["sessionContext"] = {"sessionIssuer": {"type": "Role", "arn": issuer, "userName": user_name}}
    return ident


IDENTITIES = {
    # acted on
    "network-admin-role": (True, _identity("AssumedRole", f"arn:aws:sts::{OTHER}:assumed-role/NetworkAdmin/alice",
                                           f"arn:aws:iam::{OTHER}:role/NetworkAdmin", "NetworkAdmin")),
    "iam-user": (True, _identity("IAMUser", f"arn:aws:iam::{OTHER}:user/bob")),
    "root": (True, _identity("Root", f"arn:aws:iam::{OTHER}:root")),
    "aws-service": (True, {"type": "AWSService", "invokedBy": "ec2.amazonaws.com"}),
    "look-alike-name": (True, _identity("AssumedRole", f"arn:aws:sts::{OTHER}:assumed-role/{SPOKE_ROLE}2/x",
                                        f"arn:aws:iam::{OTHER}:role/{SPOKE_ROLE}2", f"{SPOKE_ROLE}2")),
    "our-path-other-account": (True, _identity("AssumedRole", f"arn:aws:sts::{OTHER}:assumed-role/fn-role/x",
                                               f"arn:aws:iam::{OTHER}:role/vpce-guard/fn-role", "fn-role")),
    "spoke-name-at-another-path": (True, _identity(
        "AssumedRole", f"arn:aws:sts::{OTHER}:assumed-role/{SPOKE_ROLE}/vpce-guard",
        f"arn:aws:iam::{OTHER}:role/ops/{SPOKE_ROLE}", SPOKE_ROLE)),
    "spoke-role-in-another-session": (True, _identity(
        "AssumedRole", f"arn:aws:sts::{OTHER}:assumed-role/{SPOKE_ROLE}/mallory",
        f"arn:aws:iam::{OTHER}:role/{SPOKE_ROLE}", SPOKE_ROLE)),
    # ours: dropped
    "spoke-remediation-role": (False, _identity(
        "AssumedRole", f"arn:aws:sts::{OTHER}:assumed-role/{SPOKE_ROLE}/vpce-guard",
        f"arn:aws:iam::{OTHER}:role/{SPOKE_ROLE}", SPOKE_ROLE)),
    "hub-function-role": (False, _identity(
        "AssumedRole", f"arn:aws:sts::{ACCOUNT}:assumed-role/vpce-guard-OnChangeFunctionRole-AB12/fn",
        f"arn:aws:iam::{ACCOUNT}:role/vpce-guard/vpce-guard-OnChangeFunctionRole-AB12",
        "vpce-guard-OnChangeFunctionRole-AB12")),
}


def test_the_event_pattern_drops_vpce_guards_own_calls_and_nobody_elses(aws_env: None) -> None:
    tpl = template.load()
    raw = tpl["Resources"]["OnChangeFunction"]["Properties"]["Events"]["EndpointOrRouteChange"]["Properties"]["Pattern"]
    pattern = template.resolve(raw, template.parameter_values(tpl), {"AWS::AccountId": ACCOUNT})
    events, sqs = boto3.client("events", region_name=REGION), boto3.client("sqs", region_name=REGION)
    queue = sqs.create_queue(QueueName="matched")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="on-change", EventPattern=json.dumps(pattern))
    events.put_targets(Rule="on-change", Targets=[{"Id": "q", "Arn": queue_arn}])

    base = render_event("modify-vpc-endpoint.json", {})
    entries = []
    for name, (_, identity) in IDENTITIES.items():
        detail = {**base["detail"], "userIdentity": identity, "eventID": name}
        entries.append({"Source": base["source"], "DetailType": base["detail-type"], "Detail": json.dumps(detail)})
    assert events.put_events(Entries=entries)["FailedEntryCount"] == 0

    arrived: set[str] = set()
    while msgs := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
        for m in msgs:
            arrived.add(json.loads(m["Body"])["detail"]["eventID"])
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
    assert arrived == {name for name, (acted, _) in IDENTITIES.items() if acted}


def test_the_metrics_the_handler_emits_are_the_ones_the_alarms_and_dashboard_watch(
        invoke: Invoke, world: SpineWorld, ledger_table: Any, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    install(monkeypatch, "before-send.ec2.ModifyVpcEndpoint",
            FailTimes(1, lambda r: ec2_error(r, "UnauthorizedOperation", "not authorized", 403)))
    invoke(render_event("modify-vpc-endpoint.json", world.mapping()))

    blobs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    emitted = {(d["Namespace"], m["Name"], tuple(sorted(dims)), tuple(blob[k] for k in sorted(dims)))
               for blob in blobs for d in blob["_aws"]["CloudWatchMetrics"] for dims in d["Dimensions"]
               for m in d["Metrics"]}
    tpl = template.load()
    alarms = {k: v["Properties"] for k, v in tpl["Resources"].items() if v["Type"] == "AWS::CloudWatch::Alarm"}
    failed = alarms["RemediationFailedAlarm"]
    watched = (failed["Namespace"], failed["MetricName"], tuple(sorted(d["Name"] for d in failed["Dimensions"])),
               tuple(d["Value"] for d in sorted(failed["Dimensions"], key=lambda d: d["Name"])))
    assert watched in emitted, f"alarm watches {watched}; handler emitted {sorted(emitted)}"
    flapping = alarms["FlappingAlarm"]
    assert (flapping["Namespace"], flapping["Dimensions"]) == (failed["Namespace"], failed["Dimensions"])
    per_rule = {(e[1], e[3][0]) for e in emitted if e[2] == ("rule_id", "service")}
    ours = {"endpoint-policy-org-confined", "gateway-endpoint-route-tables"}
    # One of the two fixes failed (the first attempted), the other went through: a per-rule count of each.
    assert {status for status, rule in per_rule if rule in ours} == {"failed", "remediated"}
    assert {rule for _, rule in per_rule} >= ours
    body = tpl["Resources"]["OperationsDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    assert "{VpceGuard,rule_id,service}" in body


def test_mode_overrides_are_read_through_a_cache_and_a_missing_parameter_means_none(
        aws_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    counter = CallCounter().install(monkeypatch)
    now = [0.0]
    resolver = ModeResolver(Mode.ENFORCE, "/vpce-guard/mode-overrides",
                            lambda: SSMProvider(boto3_client=boto3.client("ssm", region_name=REGION)),
                            max_age=60, clock=lambda: now[0])
    assert [resolver.mode_for(r) for r in ("a", "b", "a")] == [Mode.ENFORCE] * 3
    assert counter.calls["ssm.GetParameter"] == 1, "a missing parameter is asked for once per max_age"

    ssm = boto3.client("ssm", region_name=REGION)
    ssm.put_parameter(Name="/vpce-guard/mode-overrides", Type="String", Value='{"a": "dry_run", "*": "off"}')
    now[0] = 61.0
    assert (resolver.mode_for("a"), resolver.mode_for("b")) == (Mode.DRY_RUN, Mode.OFF)
    assert resolver.mode_for("a") is Mode.DRY_RUN
    assert counter.calls["ssm.GetParameter"] == 2, "then cached by Powertools"

    ssm.put_parameter(Name="/vpce-guard/mode-overrides", Type="String", Value='{"a": "enforce!"}', Overwrite=True)
    fresh = ModeResolver(Mode.ENFORCE, "/vpce-guard/mode-overrides",
                         lambda: SSMProvider(boto3_client=boto3.client("ssm", region_name=REGION)))
    assert fresh.mode_for("b") is Mode.DRY_RUN, "an unusable document turns enforce into dry_run"
