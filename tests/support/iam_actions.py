"""Which IAM actions a template grants, and which AWS operations the code can call.

Two independent readings for the least-privilege tests:

* `granted_actions`: the Allow actions of a function's `Policies` in template.yaml (inline statements and
  the SAM policy templates we know; anything else is reported, never guessed).
* `static_operations`: every boto3 operation the layer and the handlers can call, found in their source
  (client/paginator method names of the services they create clients for, the DynamoDB Table methods,
  the assume-role credential refresher). A superset: it cannot tell which function reaches which code,
  but an action no code can call is certainly extra.

The per-function, exact reading comes from recording the calls a function makes (tests/support/faults.py).
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import botocore.session
from botocore import xform_name

ROOT = Path(__file__).resolve().parents[2]
CODE_DIRS = (ROOT / "layers" / "vpce_guard" / "vpce_guard", ROOT / "functions")

#: botocore service id (hyphenized, as in event names) → IAM service prefix, where they differ.
IAM_PREFIX: dict[str, str] = {"cloudwatch": "cloudwatch", "eventbridge": "events", "sfn": "states",
                              "cloudwatch-logs": "logs"}
#: Service ids (as botocore event names spell them) → the name botocore loads the model by.
_MODEL_NAME: dict[str, str] = {"eventbridge": "events", "sfn": "stepfunctions", "cloudwatch-logs": "logs"}

#: Calls that need no IAM permission (documented: "No permissions are required to perform this operation").
NO_PERMISSION_NEEDED = frozenset({"sts:GetCallerIdentity"})

#: SAM policy templates (https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/
#: serverless-policy-template-list.html), the ones this project could plausibly use.
SAM_POLICY_TEMPLATES: dict[str, tuple[str, ...]] = {
    "DynamoDBCrudPolicy": ("dynamodb:GetItem", "dynamodb:DeleteItem", "dynamodb:PutItem", "dynamodb:Scan",
                           "dynamodb:Query", "dynamodb:UpdateItem", "dynamodb:BatchWriteItem",
                           "dynamodb:BatchGetItem", "dynamodb:DescribeTable", "dynamodb:ConditionCheckItem"),
    "DynamoDBReadPolicy": ("dynamodb:GetItem", "dynamodb:Scan", "dynamodb:Query", "dynamodb:BatchGetItem",
                           "dynamodb:DescribeTable"),
    "DynamoDBWritePolicy": ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:BatchWriteItem"),
    "SQSSendMessagePolicy": ("sqs:SendMessage*",),
    "SQSPollerPolicy": ("sqs:ChangeMessageVisibility", "sqs:ChangeMessageVisibilityBatch", "sqs:DeleteMessage",
                        "sqs:DeleteMessageBatch", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"),
    "EventBridgePutEventsPolicy": ("events:PutEvents",),
    "StepFunctionsExecutionPolicy": ("states:StartExecution",),
    "LambdaInvokePolicy": ("lambda:InvokeFunction",),
    "SNSPublishMessagePolicy": ("sns:Publish",),
    "CloudWatchPutMetricPolicy": ("cloudwatch:PutMetricData",),
}

#: Permissions the Lambda service uses with the function's role for an event source (not our code's calls).
PLATFORM_ACTIONS_BY_EVENT_TYPE: dict[str, frozenset[str]] = {
    "SQS": frozenset({"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes",
                      "sqs:ChangeMessageVisibility", "sqs:ChangeMessageVisibilityBatch", "sqs:DeleteMessageBatch"}),
}


#: Operations authorised by another operation's action (SQS batches need the single-message action).
AUTHORISED_AS: dict[str, str] = {
    "sqs:SendMessageBatch": "sqs:SendMessage",
    "sqs:DeleteMessageBatch": "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
}


def iam_action(service_id: str, operation: str) -> str:
    action = f"{IAM_PREFIX.get(service_id, service_id)}:{operation}"
    return AUTHORISED_AS.get(action, action)


#: What each kind of item in a TransactWriteItems request is authorised as.
_TRANSACT_ACTIONS = {"Put": "dynamodb:PutItem", "Update": "dynamodb:UpdateItem", "Delete": "dynamodb:DeleteItem",
                     "ConditionCheck": "dynamodb:ConditionCheckItem"}


def call_actions(service_id: str, operation: str, params: dict[str, Any]) -> set[str]:
    """The IAM actions one recorded call needs. A DynamoDB transaction is authorised item by item (there is no
    `dynamodb:TransactWriteItems` action): one action per kind of item it holds."""
    if service_id == "dynamodb" and operation == "TransactWriteItems":
        return {_TRANSACT_ACTIONS[kind] for item in params.get("TransactItems", []) for kind in item
                if kind in _TRANSACT_ACTIONS}
    return {iam_action(service_id, operation)}


def _listify(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def policy_statements(function_props: dict[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """The function's policy statements, and what could not be read (managed policies, unknown templates)."""
    statements: list[dict[str, Any]] = []
    unknown: list[str] = []
    for entry in _listify(function_props.get("Policies", [])):
        if isinstance(entry, dict) and "Statement" in entry:
            statements += _listify(entry["Statement"])
        elif isinstance(entry, dict) and len(entry) == 1 and next(iter(entry)) in SAM_POLICY_TEMPLATES:
            name = next(iter(entry))
            statements.append({"Effect": "Allow", "Action": list(SAM_POLICY_TEMPLATES[name]),
                               "Resource": f"<{name}>", "Sid": f"SamTemplate{name}"})
        else:
            unknown.append(repr(entry)[:120])
    return statements, unknown


def granted_actions(statements: Iterable[dict[str, Any]]) -> set[str]:
    out: set[str] = set()
    for stmt in statements:
        if stmt.get("Effect") == "Allow":
            out |= {str(a) for a in _listify(stmt.get("Action", []))}
    return out


def allows(granted: Iterable[str], action: str) -> bool:
    """IAM action matching: case-insensitive, `*` and `?` wildcards."""
    import fnmatch

    return any(fnmatch.fnmatchcase(action.lower(), g.lower()) for g in granted)


@functools.cache
def _operations(service_id: str) -> dict[str, str]:
    """snake_case method name → OperationName, for one service."""
    model = botocore.session.get_session().get_service_model(_MODEL_NAME.get(service_id, service_id))
    return {xform_name(op): op for op in model.operation_names}


def _source_files() -> list[Path]:
    return sorted(p for d in CODE_DIRS for p in d.rglob("*.py"))


def services_used(files: Iterable[Path] | None = None) -> set[str]:
    """Service names passed as literals to `.client(...)` / `.resource(...)`."""
    found: set[str] = set()
    for path in files or _source_files():
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("client", "resource") and node.args
                    and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                found.add(node.args[0].value)
    return found


def static_operations(files: Iterable[Path] | None = None) -> set[str]:
    """IAM actions of every operation the code names: method calls and string literals (paginators)."""
    files = list(files or _source_files())
    services = services_used(files)
    names: set[str] = set()
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute):
                names.add(node.attr)
            elif isinstance(node, ast.Name):
                names.add(node.id)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                names.add(node.value)
    actions: set[str] = set()
    for service in services:
        ops = _operations(service)
        actions |= {iam_action(service, ops[n]) for n in names & ops.keys()}
    if "dynamodb" in services and "batch_writer" in names:
        actions.add("dynamodb:BatchWriteItem")  # boto3's Table.batch_writer() sends BatchWriteItem
    if "dynamodb" in services and "transact_write_items" in names:
        # A transaction is authorised item by item: each Put/Update/Delete/ConditionCheck needs its own action.
        actions |= {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem"}
    if "dynamodb" in services and "transact_get_items" in names:
        actions.add("dynamodb:GetItem")
    if "create_assume_role_refresher" in names:
        actions.add("sts:AssumeRole")  # botocore's refresher calls AssumeRole on the STS client it is given
    # Powertools utilities call AWS on our behalf, with clients we hand them or that they create.
    if "SSMProvider" in names:
        actions.add("ssm:GetParameter")  # Parameters: SSMProvider.get
    if "DynamoDBPersistenceLayer" in names:  # Idempotency: put (conditional), get, update, delete its records
        actions |= {"dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"}
    return actions
