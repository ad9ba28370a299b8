"""template.yaml's safety fences, read from the template itself so that every function and rule added later is
held to them too: retries and dead letters everywhere, an alarm per function, alarms that notify a topic (the
operator's own, else the notification topic), read-only exemptions for the functions, and one role path shared by
the roles, code and pattern."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from devkit import template

TPL = template.load()
RESOURCES: dict[str, Any] = TPL["Resources"]
GLOBAL_FN: dict[str, Any] = TPL["Globals"]["Function"]
FUNCTIONS = [k for k, v in RESOURCES.items() if v["Type"] == "AWS::Serverless::Function"]
ALARMS = {k: v["Properties"] for k, v in RESOURCES.items() if v["Type"] == "AWS::CloudWatch::Alarm"}
RULE_EVENT_TYPES = {"EventBridgeRule", "CloudWatchEvent", "Schedule", "ScheduleV2"}


def _rule_targets() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for name, res in RESOURCES.items():
        if res["Type"] == "AWS::Serverless::Function":
            for ev_name, ev in res["Properties"].get("Events", {}).items():
                if ev["Type"] in RULE_EVENT_TYPES:
                    out.append((f"{name}.{ev_name}", ev["Properties"]))
        elif res["Type"] == "AWS::Events::Rule":
            out += [(f"{name}.{t.get('Id')}", t) for t in res["Properties"].get("Targets", [])]
    return out


@pytest.mark.parametrize(("where", "target"), _rule_targets(), ids=[w for w, _ in _rule_targets()])
def test_every_rule_target_has_a_retry_policy_and_a_dead_letter_queue(where: str, target: dict[str, Any]) -> None:
    assert target.get("RetryPolicy"), f"{where}: no RetryPolicy"
    assert target.get("DeadLetterConfig", {}).get("Arn"), f"{where}: no DeadLetterConfig"


@pytest.mark.parametrize("fn", FUNCTIONS)
def test_every_function_sends_failed_async_invocations_somewhere(fn: str) -> None:
    config = RESOURCES[fn]["Properties"].get("EventInvokeConfig") or GLOBAL_FN.get("EventInvokeConfig")
    assert config and config["DestinationConfig"]["OnFailure"]["Destination"], fn


@pytest.mark.parametrize("fn", FUNCTIONS)
def test_every_function_has_an_errors_alarm(fn: str) -> None:
    assert any(a["Namespace"] == "AWS/Lambda" and a["MetricName"] == "Errors"
               and {"Name": "FunctionName", "Value": {"Ref": fn}} in a["Dimensions"] for a in ALARMS.values()), fn


def test_every_queue_that_collects_failures_has_a_depth_alarm() -> None:
    queues = {k for k, v in RESOURCES.items() if v["Type"] == "AWS::SQS::Queue"}
    watched = {d["Value"]["Fn::GetAtt"][0] for a in ALARMS.values() if a["Namespace"] == "AWS/SQS"
               for d in a["Dimensions"] if d["Name"] == "QueueName"}
    failure_queues = {q for q in queues if "DeadLetter" in q or "Failures" in q or "Dlq" in q}
    assert failure_queues and failure_queues <= watched


@pytest.mark.parametrize("alarm", sorted(ALARMS))
def test_alarms_notify_the_given_topic_or_else_the_notification_topic(alarm: str) -> None:
    expected = [{"Fn::If": ["HasAlarmTopic", {"Ref": "AlarmTopicArn"}, {"Ref": "NotificationsTopic"}]}]
    assert ALARMS[alarm]["AlarmActions"] == expected == ALARMS[alarm].get("OKActions", expected)
    assert TPL["Conditions"]["HasAlarmTopic"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmTopicArn"}, ""]}]}


def test_the_dashboard_is_valid_json_once_substituted() -> None:
    body = RESOURCES["OperationsDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    widgets = json.loads(re.sub(r"\$\{[^}]+\}", "x", body))["widgets"]
    assert {w["type"] for w in widgets} == {"metric", "alarm"}
    alarm_refs = set(re.findall(r"\$\{(\w+)\.Arn\}", body))
    assert alarm_refs == set(ALARMS), "the alarm widget shows every alarm"


def _statements(fn: str) -> list[dict[str, Any]]:
    """Every statement the function can get, opt-in grants included (each Fn::If taken both ways)."""
    out: list[dict[str, Any]] = []
    for truth in (False, True):
        conds = dict.fromkeys(TPL.get("Conditions", {}), truth)
        props = template.resolve_if(RESOURCES[fn]["Properties"], conds)
        out += [s for p in props.get("Policies", []) if isinstance(p, dict) for s in p.get("Statement", [])]
    return out


@pytest.mark.parametrize("fn", FUNCTIONS)
def test_functions_can_read_exemptions_but_never_write_them(fn: str) -> None:
    for s in _statements(fn):
        resources = s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]
        if {"Fn::GetAtt": ["ExemptionsTable", "Arn"]} in resources or "*" in resources:
            actions = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
            assert all(a in {"dynamodb:Query", "dynamodb:GetItem"} or not a.startswith("dynamodb:")
                       for a in actions), (fn, s)


def test_one_role_path_for_roles_code_and_pattern() -> None:
    path = GLOBAL_FN["RolePath"]
    assert GLOBAL_FN["Environment"]["Variables"]["OWN_ROLE_PATH"] == path == {"Fn::Sub": "/${AWS::StackName}/"}
    on_change = RESOURCES["OnChangeFunction"]["Properties"]["Events"]["EndpointOrRouteChange"]["Properties"]
    issuer = on_change["Pattern"]["detail"]["userIdentity"]["$or"][1]["sessionContext"]["sessionIssuer"]
    assert issuer["arn"][0]["anything-but"]["prefix"]["Fn::Sub"].endswith(":role/${AWS::StackName}/")
    assert issuer["userName"] == [{"anything-but": {"Ref": "SpokeRoleName"}}]
    assert GLOBAL_FN["Environment"]["Variables"]["SPOKE_ROLE_NAME"] == {"Ref": "SpokeRoleName"}


def test_the_exemptions_table_keeps_its_history_and_expires_entries() -> None:
    table = RESOURCES["ExemptionsTable"]
    assert table["DeletionPolicy"] == "Retain"
    assert table["Properties"]["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert table["Properties"]["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    statements = table["Properties"]["ResourcePolicy"]["PolicyDocument"]["Statement"]
    writes = statements[1]["Fn::If"]
    assert writes[0] == "HasExemptionAdmins", "only named admins write entries, when named"
    assert writes[1]["Effect"] == "Deny" and "dynamodb:PutItem" in writes[1]["Action"]


@pytest.mark.parametrize("table", ["LedgerTable", "ExemptionsTable"])
def test_the_audit_tables_cannot_be_deleted_by_accident(table: str) -> None:
    assert RESOURCES[table]["DeletionPolicy"] == "Retain"
    assert RESOURCES[table]["Properties"]["DeletionProtectionEnabled"] is True


def test_the_exemptions_policy_protects_the_table_and_itself_whatever_the_parameters() -> None:
    """Deletion protection is only as strong as who may turn it off: outside this stack's own updates, nobody
    may delete the table, turn protection off, or replace or remove the policy that says so."""
    [protect] = [s for s in RESOURCES["ExemptionsTable"]["Properties"]["ResourcePolicy"]["PolicyDocument"]["Statement"]
                 if s.get("Sid") == "ProtectTableAndThisPolicy"]
    assert protect["Effect"] == "Deny" and protect["Principal"] == "*"
    assert set(protect["Action"]) == {"dynamodb:DeleteTable", "dynamodb:UpdateTable", "dynamodb:PutResourcePolicy",
                                      "dynamodb:DeleteResourcePolicy"}
    assert protect["Condition"] == {"ForAllValues:StringNotEquals": {"aws:CalledVia": "cloudformation.amazonaws.com"}}


def test_endpoint_creation_is_limited_to_aws_services_in_hub_and_spoke() -> None:
    """The opt-in creation of required endpoints must never create one to an endpoint service some account
    publishes (ec2:VpceServiceOwner)."""
    spoke = template.load(template.ROOT / "templates" / "spoke.yaml")

    def statements(node: Any) -> list[dict[str, Any]]:
        if isinstance(node, dict):
            own = [node] if node.get("Sid") == "CreateEndpointsToAwsServicesOnly" else []
            return own + [s for v in node.values() for s in statements(v)]
        if isinstance(node, list):
            return [s for v in node for s in statements(v)]
        return []

    for tpl in (TPL, spoke):
        found = statements(tpl["Resources"])
        assert found, "the opt-in creation grant is where the role is"
        for stmt in found:
            assert stmt["Condition"] == {"StringEquals": {"ec2:VpceServiceOwner": "amazon"}}
            assert all("vpc-endpoint" in json.dumps(r) for r in stmt["Resource"])


def test_writes_to_the_mode_overrides_parameter_raise_an_alarm() -> None:
    """Writing {"*": "off"} to the overrides parameter would turn vpce-guard off without a deploy: every write
    is matched by a rule on SSM's Parameter Store Change events, and an alarm watches the rule's matches."""
    from moto.events.models import EventPattern

    parameter = template.parameter_values(TPL)["ModeOverridesParameter"]
    rule = RESOURCES["ModeOverridesChangedRule"]["Properties"]
    pattern = json.loads(json.dumps(rule["EventPattern"]).replace('{"Ref": "ModeOverridesParameter"}',
                                                                  json.dumps(parameter)))
    matcher = EventPattern.load(json.dumps(pattern))

    def change(name: str) -> dict[str, Any]:
        return {"source": "aws.ssm", "detail-type": "Parameter Store Change",
                "detail": {"name": name, "type": "String", "operation": "Update"}}

    assert matcher.matches_event(change(parameter))
    assert not matcher.matches_event(change("/someone/else"))
    alarm = ALARMS["ModeOverridesChangedAlarm"]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/Events", "MatchedEvents")
    assert alarm["Dimensions"] == [{"Name": "RuleName", "Value": {"Ref": "ModeOverridesChangedRule"}}]
    assert alarm["Threshold"] == 1 and alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"


@pytest.mark.parametrize("metric", ["mode_overrides_invalid", "own_role_lookalike", "conflict"])
def test_every_alert_the_code_emits_has_an_alarm(metric: str) -> None:
    assert any(a["Namespace"] == "VpceGuard" and a["MetricName"] == metric for a in ALARMS.values()), metric
