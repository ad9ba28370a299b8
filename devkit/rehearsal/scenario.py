"""What the rehearsal does to the deployed stacks: drift in the member account, CloudTrail-shaped events on the
buses, and the checks that the deployed functions fixed the drift and recorded it in the stack's ledger.

The drift is `devkit.seed.seed_vpc`'s (the same world the demo and the tests use): an S3 gateway endpoint with
AWS's default full-access policy that misses one of the VPC's route tables, and an SSM interface endpoint with
private DNS in a VPC whose DNS hostnames are off. The events are events/ files with the seeded ids, put on a
bus as CloudTrail would have EventBridge deliver them: `source` aws.ec2, `detail-type` "AWS API Call via
CloudTrail", the CloudTrail record as `detail`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from boto3.dynamodb.conditions import Key

from devkit.seed import SpineWorld, render_event


def cloudtrail_entry(event_file: str, world: SpineWorld, *, account: str, bus: str) -> dict[str, Any]:
    """A PutEvents entry carrying an events/ file's CloudTrail record for the seeded resources, as happening now
    (EventBridge sets the envelope - id, account, time, region - from the call)."""
    event = render_event(event_file, world.mapping(), account=account, region=world.region)
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    event["detail"]["eventTime"] = now
    return {"Source": event["source"], "DetailType": event["detail-type"], "Detail": json.dumps(event["detail"]),
            "EventBusName": bus, "Time": datetime.now(UTC)}


def put(events: Any, entry: dict[str, Any]) -> str:
    out = events.put_events(Entries=[entry])
    if out["FailedEntryCount"]:
        raise RuntimeError(f"PutEvents refused the event: {out['Entries']}")
    return out["Entries"][0]["EventId"]


@dataclass(frozen=True)
class EndpointView:
    """What the member account's EC2 says about the seeded resources now."""

    policy: str
    route_tables: frozenset[str]
    dns_hostnames: bool

    def confined_to(self, org_id: str) -> bool:
        """The policy names the organization in an aws:PrincipalOrgID condition (vpce-guard's fix; the
        seeded default policy has no condition at all)."""
        return "aws:PrincipalOrgID" in self.policy and org_id in self.policy


def view(ec2: Any, world: SpineWorld) -> EndpointView:
    ep = ec2.describe_vpc_endpoints(VpcEndpointIds=[world.ids["s3_endpoint"]])["VpcEndpoints"][0]
    dns = ec2.describe_vpc_attribute(VpcId=world.ids["vpc"], Attribute="enableDnsHostnames")
    return EndpointView(ep.get("PolicyDocument") or "", frozenset(ep.get("RouteTableIds", [])),
                        bool(dns["EnableDnsHostnames"]["Value"]))


def ledger_states(table: Any, account: str, region: str, resource: str) -> dict[str, str]:
    """rule id → current status, from the ledger's state items of one resource."""
    items = table.query(KeyConditionExpression=Key("pk").eq(f"RES#{account}#{region}#{resource}")
                        & Key("sk").begins_with("STATE#"))["Items"]
    return {it["sk"].removeprefix("STATE#"): str(it.get("status")) for it in items}


def ledger_history(table: Any, account: str, region: str, resource: str) -> list[dict[str, Any]]:
    return table.query(KeyConditionExpression=Key("pk").eq(f"RES#{account}#{region}#{resource}")
                       & Key("sk").begins_with("EVAL#"))["Items"]


def queue_depths(sqs: Any, queues: dict[str, str]) -> dict[str, int]:
    """name → messages in the queue, visible or in flight."""
    out = {}
    for name, url in queues.items():
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        out[name] = int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])
    return out


def wait_for(check: Callable[[], tuple[bool, str]], *, timeout: float,
             interval: float = 2.0) -> tuple[bool, str, float]:
    """Poll `check` (→ done, what it saw) until done or timeout; returns (done, last view, seconds waited)."""
    started = time.monotonic()
    done, seen = check()
    while not done and time.monotonic() - started < timeout:
        time.sleep(interval)
        done, seen = check()
    return done, seen, time.monotonic() - started
