"""Findings as OCSF Compliance Finding events (class 2003, category Findings), for `report --format ocsf`:
the same verdicts a SIEM or a data lake (Amazon Security Lake among them) reads in the Open Cybersecurity
Schema Framework. Pure: a `FindingView` in, one OCSF event (a dict) out, valid against OCSF SCHEMA_VERSION with
the `cloud` profile (tests/unit/test_finding_formats.py validates it against the published schema).

Mapping: `finding_info.uid` is the ASFF finding Id (the same finding in both exports); `compliance.control`
is the rule; `compliance.status_id` Pass/Fail; `status_id` New (open), Suppressed (exempt), Resolved (fixed or
compliant), Archived (gone); `activity_id` Create for a first verdict, Close once passed or gone, else Update.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .asff import FINDING_TYPE, finding_id
from .finding_view import FindingView
from .lifecycle import Lifecycle, lifecycle

SCHEMA_VERSION = "1.5.0"
CLASS_UID, CLASS_NAME = 2003, "Compliance Finding"
CATEGORY_UID, CATEGORY_NAME = 2, "Findings"
PRODUCT = {"name": "vpce-guard", "vendor_name": "vpce-guard"}
STANDARD = "vpce-guard VPC endpoint rules"

ACTIVITY = {1: "Create", 2: "Update", 3: "Close"}
SEVERITY_ID = {"INFORMATIONAL": 1, "LOW": 2, "MEDIUM": 3, "HIGH": 4, "CRITICAL": 5}
#: Finding status_id by lifecycle: 1 New, 3 Suppressed, 4 Resolved, 5 Archived.
STATUS = {Lifecycle.OPEN: (1, "New"), Lifecycle.EXEMPT: (3, "Suppressed"), Lifecycle.PASSED: (4, "Resolved"),
          Lifecycle.GONE: (5, "Archived")}
#: compliance.status_id by lifecycle: 1 Pass, 3 Fail, 0 Unknown.
COMPLIANCE = {Lifecycle.OPEN: (3, "Fail"), Lifecycle.EXEMPT: (3, "Fail"), Lifecycle.PASSED: (1, "Pass"),
              Lifecycle.GONE: (0, "Unknown")}
#: CloudFormation-style type of each ledger resource_type.
RESOURCE_TYPES = {
    "vpc-endpoint": "AWS::EC2::VPCEndpoint",
    "vpc": "AWS::EC2::VPC",
    "route-table": "AWS::EC2::RouteTable",
    "security-group": "AWS::EC2::SecurityGroup",
    "subnet": "AWS::EC2::Subnet",
    "endpoint-service": "AWS::EC2::VPCEndpointService",
    "vpc-endpoint-service": "AWS::EC2::VPCEndpointService",
}


def epoch_millis(stamp: str) -> int:
    """OCSF timestamps are milliseconds since the epoch; the ledger's are RFC 3339 UTC."""
    return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000)


def to_ocsf(view: FindingView) -> dict[str, Any]:
    stage = lifecycle(view.status) or Lifecycle.OPEN
    if stage in (Lifecycle.PASSED, Lifecycle.GONE):
        activity = 3
    elif view.previous_status is None or lifecycle(view.previous_status) in (None, Lifecycle.GONE):
        activity = 1
    else:
        activity = 2
    status_id, status = STATUS[stage]
    compliance_id, compliance = COMPLIANCE[stage]
    millis = epoch_millis(view.time)
    severity = view.severity
    unmapped: dict[str, Any] = {"status": view.status, "ledger_pk": view.ledger_pk, "ledger_sk": view.ledger_sk}
    if view.previous_status:
        unmapped["previous_status"] = view.previous_status
    if view.exemption:
        unmapped["exemption"] = view.exemption
    if view.error:
        unmapped["error"] = view.error
    resource: dict[str, Any] = {
        "uid": view.resource_arn,
        "name": view.resource_id,
        "type": RESOURCE_TYPES.get(view.resource_type, view.resource_type or "Other"),
        "region": view.region,
        "cloud_partition": view.partition,
    }
    if view.vpc_id:
        resource["data"] = {"vpc_id": view.vpc_id}
    return {
        "class_uid": CLASS_UID,
        "class_name": CLASS_NAME,
        "category_uid": CATEGORY_UID,
        "category_name": CATEGORY_NAME,
        "activity_id": activity,
        "activity_name": ACTIVITY[activity],
        "type_uid": CLASS_UID * 100 + activity,
        "type_name": f"{CLASS_NAME}: {ACTIVITY[activity]}",
        "time": millis,
        "severity_id": SEVERITY_ID[severity],
        "severity": severity.title(),
        "status_id": status_id,
        "status": status,
        "message": f"{view.title} ({view.resource_id}): {view.reason}",
        "metadata": {
            "version": SCHEMA_VERSION,
            "product": PRODUCT,
            "profiles": ["cloud"],
            "uid": f"{view.ledger_pk}|{view.ledger_sk}",
        },
        "cloud": {
            "provider": "AWS",
            "region": view.region,
            "cloud_partition": view.partition,
            "account": {"uid": view.account, "type_id": 10, "type": "AWS Account"},
        },
        "finding_info": {
            "uid": finding_id(view.account, view.region, view.rule_id, view.resource_id),
            "title": view.title,
            "desc": view.reason,
            "types": [FINDING_TYPE],
            "created_time": millis,
            "modified_time": millis,
            "product": PRODUCT,
        },
        "compliance": {
            "control": view.rule_id,
            "standards": [STANDARD],
            "status": compliance,
            "status_id": compliance_id,
            "status_details": [view.reason],
        },
        "resources": [resource],
        "remediation": {"desc": view.remediation()},
        "unmapped": {"vpce_guard": unmapped},
    }
