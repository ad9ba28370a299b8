"""Findings in the AWS Security Finding Format (ASFF), for Security Hub's BatchImportFindings and for
`report --format asff`. Pure: a `FindingView` in, one ASFF finding (a dict) out.

Mapping (docs/findings.md has the table for users):
* `Id` is derived from account, region, rule and resource, so every re-evaluation updates one finding.
* `ProductArn` is the account's *default product* in the resource's region: the finding is imported by the
  account it belongs to, through the spoke role (Security Hub's cross-account and cross-region aggregation
  then shows it in the delegated administrator).
* Lifecycle: open → `Compliance.Status` FAILED, `Workflow.Status` NEW; fixed or compliant → PASSED and
  RESOLVED; exempt → FAILED and SUPPRESSED (the exemption's reason in the texts and ProductFields); gone →
  `RecordState` ARCHIVED. Security Hub lets a provider set `Workflow` when it creates a finding; later,
  Workflow belongs to the people triaging it (BatchUpdateFindings, automation rules), and Security Hub itself
  resets it to NEW when a PASSED finding fails again.
* `Severity` and `Types` are also given in `FindingProviderFields`, where AWS asks providers to put them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from .finding_view import FindingView, cut
from .lifecycle import Lifecycle, lifecycle

SCHEMA_VERSION = "2018-10-08"
PRODUCT_NAME = "vpce-guard"
COMPANY_NAME = "vpce-guard"
#: Every finding's type: a namespace/category/classifier path under "Software and Configuration Checks".
FINDING_TYPE = "Software and Configuration Checks/AWS Security Best Practices/VPC Endpoints"
#: BatchImportFindings takes at most this many findings per call.
MAX_BATCH = 100
#: ASFF's documented limits (AwsSecurityFinding in the Security Hub API reference).
ID_MAX, TITLE_MAX, DESCRIPTION_MAX, RECOMMENDATION_MAX, FIELD_VALUE_MAX = 512, 256, 1024, 512, 2048
#: ASFF resource type of each ledger resource_type; `Other` where ASFF has none (VPC endpoints).
RESOURCE_TYPES = {
    "vpc": "AwsEc2Vpc",
    "route-table": "AwsEc2RouteTable",
    "security-group": "AwsEc2SecurityGroup",
    "subnet": "AwsEc2Subnet",
    "endpoint-service": "AwsEc2VpcEndpointService",
    "vpc-endpoint-service": "AwsEc2VpcEndpointService",
}
_COMPLIANCE = {Lifecycle.OPEN: "FAILED", Lifecycle.EXEMPT: "FAILED", Lifecycle.PASSED: "PASSED",
               Lifecycle.GONE: "NOT_AVAILABLE"}
_WORKFLOW = {Lifecycle.OPEN: "NEW", Lifecycle.EXEMPT: "SUPPRESSED", Lifecycle.PASSED: "RESOLVED",
             Lifecycle.GONE: "RESOLVED"}


def product_arn(account: str, region: str, partition: str = "aws") -> str:
    """The account's default product in a region: where a custom product's findings are imported."""
    return f"arn:{partition}:securityhub:{region}:{account}:product/{account}/default"


def finding_id(account: str, region: str, rule_id: str, resource_id: str) -> str:
    """Stable per (account, region, rule, resource): re-evaluations update the finding instead of adding one."""
    raw = f"vpce-guard/{account}/{region}/{rule_id}/{resource_id}"
    if len(raw) <= ID_MAX:
        return raw
    digest = hashlib.sha256(raw.encode()).hexdigest()
    return f"{raw[: ID_MAX - len(digest) - 1]}#{digest}"


def to_asff(view: FindingView) -> dict[str, Any]:
    """One ASFF finding for this verdict (every field Security Hub requires, plus lifecycle and remediation)."""
    stage = lifecycle(view.status) or Lifecycle.OPEN
    severity = {"Label": view.severity, "Original": view.severity}
    fields = {
        "vpce-guard/RuleId": view.rule_id,
        "vpce-guard/Status": view.status,
        "vpce-guard/LedgerKey": f"{view.ledger_pk} {view.ledger_sk}".strip(),
        "vpce-guard/ResourceType": view.resource_type,
    }
    if view.previous_status:
        fields["vpce-guard/PreviousStatus"] = view.previous_status
    if view.vpc_id:
        fields["vpce-guard/VpcId"] = view.vpc_id
    if view.trigger.get("source"):
        fields["vpce-guard/Trigger"] = str(view.trigger.get("event_name") or view.trigger["source"])
    if view.exemption:
        fields["vpce-guard/ExemptionReason"] = str(view.exemption.get("reason") or "")
        fields["vpce-guard/ExemptionExpires"] = str(view.exemption.get("expires") or "")
    resource: dict[str, Any] = {
        "Type": RESOURCE_TYPES.get(view.resource_type, "Other"),
        "Id": view.resource_arn,
        "Partition": view.partition,
        "Region": view.region,
        "Details": {"Other": {k: v for k, v in {"ResourceId": view.resource_id, "VpcId": view.vpc_id,
                                                 "ResourceType": view.resource_type}.items() if v}},
    }
    finding: dict[str, Any] = {
        "SchemaVersion": SCHEMA_VERSION,
        "Id": finding_id(view.account, view.region, view.rule_id, view.resource_id),
        "ProductArn": product_arn(view.account, view.region, view.partition),
        "ProductName": PRODUCT_NAME,
        "CompanyName": COMPANY_NAME,
        "Region": view.region,
        "GeneratorId": view.rule_id,
        "AwsAccountId": view.account,
        "Types": [FINDING_TYPE],
        "CreatedAt": view.time,
        "UpdatedAt": view.time,
        "FirstObservedAt": view.time,
        "LastObservedAt": view.time,
        "Severity": severity,
        "Title": cut(f"{view.title} ({view.resource_id})", TITLE_MAX),
        "Description": cut(f"{view.status}: {view.reason}", DESCRIPTION_MAX),
        "Remediation": {"Recommendation": {"Text": cut(view.remediation(), RECOMMENDATION_MAX)}},
        "ProductFields": {k: cut(v, FIELD_VALUE_MAX) for k, v in fields.items() if v},
        "Resources": [resource],
        "Compliance": {"Status": _COMPLIANCE[stage]},
        "Workflow": {"Status": _WORKFLOW[stage]},
        "RecordState": "ARCHIVED" if stage is Lifecycle.GONE else "ACTIVE",
        "FindingProviderFields": {"Severity": severity, "Types": [FINDING_TYPE]},
    }
    return finding


def batches(findings: Iterable[dict[str, Any]], size: int = MAX_BATCH) -> Iterator[list[dict[str, Any]]]:
    """Findings in calls of at most `size` (BatchImportFindings' limit is 100)."""
    if not 1 <= size <= MAX_BATCH:
        raise ValueError(f"batch size must be 1..{MAX_BATCH}, not {size}")
    batch: list[dict[str, Any]] = []
    for f in findings:
        batch.append(f)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def latest_per_finding(findings: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One finding per Id, the latest by UpdatedAt: a run that changes one (resource, rule) twice (a fix's
    intent, then its outcome) sends only where it ended, and Security Hub never sees an update go back."""
    latest: dict[str, dict[str, Any]] = {}
    for f in findings:
        kept = latest.get(f["Id"])
        if kept is None or f["UpdatedAt"] >= kept["UpdatedAt"]:
            latest[f["Id"]] = f
    return list(latest.values())
