"""template.yaml's side of where findings go: the Security Hub switch, the finding events' bus, and the encrypted
notification topic that the alarms share, read from the template as CloudFormation would resolve it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from devkit import template
from tests.support.iam_eval import RequestContext, evaluate
from vpce_guard.rules import all_rules

ROOT = Path(__file__).resolve().parents[2]
TPL = template.load()
HUB = "111111111111"
PUBLISHERS = ("OnChangeFunction", "SweepWorkerFunction")


def _statements(function: str, **overrides: str) -> list[dict[str, Any]]:
    props = template.resolve_if(TPL["Resources"][function]["Properties"], template.conditions(TPL, overrides))
    return [s for p in props.get("Policies", []) if isinstance(p, dict) for s in p.get("Statement", [])]


def _actions(stmt: dict[str, Any]) -> set[str]:
    a = stmt.get("Action", [])
    return {a} if isinstance(a, str) else set(a)


def test_security_hub_is_off_by_default_and_the_functions_are_told_the_switch() -> None:
    assert TPL["Parameters"]["SecurityHubFindings"]["Default"] == "false"
    env = template.function_spec("OnChangeFunction", resources={"LedgerTable": "t"}).environment
    assert env["SECURITY_HUB_FINDINGS"] == "false"
    env = template.function_spec("OnChangeFunction", resources={"LedgerTable": "t"},
                                 overrides={"SecurityHubFindings": "true"}).environment
    assert env["SECURITY_HUB_FINDINGS"] == "true"
    assert env["FINDINGS_EVENT_BUS"] == TPL["Parameters"]["HubEventBusName"]["Default"]
    assert env["NOTIFICATIONS_TOPIC_ARN"].startswith("arn:aws:sns:")


def test_publishers_may_put_events_on_the_hub_bus_and_publish_to_the_topic_only() -> None:
    for function in PUBLISHERS:
        statements = _statements(function)
        [events] = [s for s in statements if "events:PutEvents" in _actions(s)]
        assert _actions(events) == {"events:PutEvents"} and events["Resource"] == {"Fn::GetAtt": ["HubEventBus", "Arn"]}
        [sns] = [s for s in statements if "sns:Publish" in _actions(s)]
        assert _actions(sns) == {"sns:Publish"} and sns["Resource"] == {"Ref": "NotificationsTopic"}
        [kms] = [s for s in statements if any(a.startswith("kms:") for a in _actions(s))]
        assert _actions(kms) == {"kms:GenerateDataKey", "kms:Decrypt"}
        assert kms["Resource"] == {"Fn::GetAtt": ["NotificationsKey", "Arn"]}
        assert kms["Condition"] == {"StringEquals": {"kms:ViaService": {
            "Fn::Sub": "sns.${AWS::Region}.${AWS::URLSuffix}"}}}, "the key only through SNS"


def test_the_notification_topic_is_encrypted_with_a_rotated_key_alarms_can_use() -> None:
    topic = template.resource_properties("NotificationsTopic", resources={"NotificationsKey": "key-1"})
    assert topic["KmsMasterKeyId"] == "key-1"
    key = template.resource_properties("NotificationsKey", resources={"AWS::AccountId": HUB})
    assert key["EnableKeyRotation"] is True
    policy = key["KeyPolicy"]
    alarm = RequestContext.service("cloudwatch.amazonaws.com", "kms:GenerateDataKey", "*")
    assert not evaluate(policy, alarm), "the service alone, without its source account, is not enough"
    [cloudwatch] = [s for s in policy["Statement"] if s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}]
    assert cloudwatch["Condition"] == {"StringEquals": {"aws:SourceAccount": HUB}}
    assert set(cloudwatch["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey"}
    assert not evaluate(policy, RequestContext.service("sns.amazonaws.com", "kms:ScheduleKeyDeletion", "*"))
    assert not evaluate(policy, RequestContext.anonymous("kms:Decrypt"))


def test_an_email_is_subscribed_only_when_given() -> None:
    sub = TPL["Resources"]["NotificationEmailSubscription"]
    assert sub["Condition"] == "HasNotificationEmail"
    assert not template.conditions(TPL)["HasNotificationEmail"]
    assert template.conditions(TPL, {"NotificationEmail": "secops@example.com"})["HasNotificationEmail"]
    props = template.resource_properties("NotificationEmailSubscription",
                                         overrides={"NotificationEmail": "secops@example.com"},
                                         resources={"NotificationsTopic": "arn:aws:sns:us-east-1:1:t"})
    assert props == {"TopicArn": "arn:aws:sns:us-east-1:1:t", "Protocol": "email", "Endpoint": "secops@example.com"}
    pattern = re.compile(TPL["Parameters"]["NotificationEmail"]["AllowedPattern"])
    assert pattern.fullmatch("") and pattern.fullmatch("secops@example.com")
    assert not pattern.fullmatch("not an address")


def test_the_topic_is_an_output_for_subscribing_chatbot_or_https() -> None:
    assert TPL["Outputs"]["NotificationsTopicArn"]["Value"] == {"Ref": "NotificationsTopic"}


def test_the_documented_severity_table_is_the_registrys() -> None:
    text = (ROOT / "docs" / "findings.md").read_text()
    table = text.split("<!-- severity-table -->", 1)[1].split("\n\n", 1)[0]
    documented = dict(re.findall(r"^\| `([a-z0-9-]+)` \| ([A-Z]+) \|", table, flags=re.M))
    assert documented == {r.id: r.severity for r in all_rules()}, "docs/findings.md severity table"
