"""Case 2 (sweep of one account-region at 10, 100 and 1,000 endpoints) and case 3 (ledger batching).

The fleet: N/10 VPCs, each with 10 route tables (the main one and nine more) and 10 endpoints: S3 and
DynamoDB gateway endpoints on every route table, and eight interface endpoints (ssm, ssmmessages,
ec2messages, kms, logs, sts, secretsmanager, ecr.api). Every endpoint policy is confined to the organization
except one in ten, which has AWS's default full-access policy: a sweep in enforce mode fixes those.
moto's answers are paged like AWS's (devkit.paging), so a listing of 1,000 route tables costs ten calls.

The unit is what the sweep fans out: `pipeline.run_targets(rt, Targets(account, region, everything=True),
Trigger(source="sweep"))`, timed warm (the cold-start lookups, counted separately, are one DescribeOrganization
and one DescribeVpcEndpointServices page). Wall time in-process includes moto's own work; the time spent
inside AWS calls is reported next to it, so our own share is visible.
"""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

from devkit.api_calls import ApiCalls, count_api_calls
from devkit.paging import aws_paging
from devkit.seed import FULL_ACCESS_POLICY, confined_policy

from .harness import ACCOUNT, REGION, moto_world, patient_with_moto, ratio
from .lower_bounds import needed_reads, sweep_bound

SIZES = (10, 100, 1000)
INTERFACE_SERVICES = ("ssm", "ssmmessages", "ec2messages", "kms", "logs", "sts", "secretsmanager", "ecr.api")
OPEN_EVERY = 10


def seed_fleet(ec2: Any, org_id: str, n_endpoints: int) -> dict[str, int]:
    """N endpoints over N route tables (N/10 VPCs of 10 each); every tenth policy is open."""
    n_vpcs = max(1, n_endpoints // 10)
    confined = confined_policy(org_id)
    counter = 0
    open_count = 0

    def policy() -> str:
        nonlocal counter, open_count
        counter += 1
        if counter % OPEN_EVERY == 0:
            open_count += 1
            return FULL_ACCESS_POLICY
        return confined

    for v in range(n_vpcs):
        cidr = f"10.{v // 256}.{v % 256}.0/24" if n_vpcs > 1 else "10.0.0.0/24"
        vpc = ec2.create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock=cidr)["Subnet"]["SubnetId"]
        main = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["RouteTables"][0]
        rts = [main["RouteTableId"]] + [ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
                                        for _ in range(9)]
        for service in ("s3", "dynamodb"):
            ec2.create_vpc_endpoint(VpcId=vpc, ServiceName=f"com.amazonaws.{REGION}.{service}",
                                    VpcEndpointType="Gateway", RouteTableIds=rts, PolicyDocument=policy())
        for service in INTERFACE_SERVICES:
            ec2.create_vpc_endpoint(VpcId=vpc, ServiceName=f"com.amazonaws.{REGION}.{service}",
                                    VpcEndpointType="Interface", SubnetIds=[subnet], PrivateDnsEnabled=True,
                                    PolicyDocument=policy())
    route_tables = len(ec2.describe_route_tables()["RouteTables"])
    vpcs = len(ec2.describe_vpcs()["Vpcs"])
    return {"vpcs": vpcs, "vpcs_with_endpoints": n_vpcs, "endpoints": n_vpcs * 10, "route_tables": route_tables,
            "open_policies": open_count}


def _one_size(n: int, mode: str = "enforce") -> dict[str, Any]:
    from vpce_guard import aws, pipeline
    from vpce_guard.config import Settings
    from vpce_guard.models import Targets, Trigger

    from .harness import TABLE

    # A moto server process: this process's CPU time is then the sweep's own (our code and botocore).
    patient_with_moto()
    with moto_world(server=True) as mw:
        fleet = seed_fleet(mw.ec2, mw.org_id, n)
        with aws_paging():
            rt = pipeline.Runtime(Settings(ledger_table=TABLE, mode=mode))
            targets = Targets(account=ACCOUNT, region=REGION, everything=True)
            # moto copies the whole table for every TransactWriteItems: the first sweep's state writes go one at
            # a time, or they queue past the client's read timeout on a loaded machine (its time is not a target).
            aws.CONCURRENCY, parallel = 1, aws.CONCURRENCY
            try:
                with count_api_calls() as cold:
                    start = time.perf_counter()
                    first = pipeline.run_targets(rt, targets, Trigger(source="sweep"))
                    cold_seconds = time.perf_counter() - start
            finally:
                aws.CONCURRENCY = parallel
            # Warm: a second unit on the same (now fixed) fleet, then re-open the same policies to time a
            # warm unit that has the same work to do as the cold one.
            _reopen(mw.ec2, first)
            with count_api_calls() as warm:
                start, cpu = time.perf_counter(), time.process_time()
                result = pipeline.run_targets(rt, targets, Trigger(source="sweep"))
                seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    to_fix = sum(1 for o in result.outcomes if o.status.value == "remediated")
    reads = needed_reads()
    state_keys = len({(o.resource_id or o.finding.resource_id, o.finding.rule_id) for o in result.outcomes})
    bound = sweep_bound(endpoints=fleet["endpoints"], route_tables=fleet["route_tables"], vpcs=fleet["vpcs"],
                        vpcs_with_endpoints=fleet["vpcs_with_endpoints"], ledger_items=result.ledger_items,
                        reads=reads, to_fix=to_fix, state_keys=state_keys, vouched=result.digest == "vouched")
    reads_calls = sum(n for (s, o), n in warm.calls.items() if s != "dynamodb")
    reads_bound = sum(n for op, n in bound.calls.items() if not op.startswith("dynamodb:"))
    return {
        "endpoints": fleet["endpoints"], "route_tables": fleet["route_tables"], "vpcs": fleet["vpcs"],
        "open_policies": fleet["open_policies"], "remediated": to_fix,
        "statuses": dict(result.summary()["counts"]),
        "calls": warm.total, "bound": bound.total, "ratio": ratio(warm.total, bound.total),
        "ec2_calls": reads_calls, "ec2_bound": reads_bound, "ec2_ratio": ratio(reads_calls, reads_bound),
        "by_operation": warm.by_operation(), "bound_detail": dict(bound.calls),
        "cold_calls": cold.total, "cold_extra": _extra(cold, warm),
        "seconds": round(seconds, 3), "seconds_in_aws_calls": round(warm.seconds_in_calls(), 3),
        "seconds_own": round(seconds - warm.seconds_in_calls(), 3), "cold_seconds": round(cold_seconds, 3),
        # CPU of this process: the sweep's own work (rules, records, botocore), none of moto's.
        "cpu_seconds": round(cpu, 3),
        "ledger": _ledger(warm, result.ledger_items),
    }


def _reopen(ec2: Any, first: Any) -> None:
    for o in first.outcomes:
        if o.finding.rule_id == "endpoint-policy-org-confined" and o.status.value == "remediated":
            ec2.modify_vpc_endpoint(VpcEndpointId=o.finding.resource_id, PolicyDocument=FULL_ACCESS_POLICY)


def _extra(cold: ApiCalls, warm: ApiCalls) -> dict[str, int]:
    return {f"{s}:{o}": n for (s, o), n in sorted((cold.calls - warm.calls).items())}


def _ledger(calls: ApiCalls, items: int) -> dict[str, Any]:
    """Every BatchWriteItem of the unit: the pending records written ahead of fixes, then the outcomes."""
    n = calls.count("dynamodb", "BatchWriteItem")
    sent = sum(calls.batch_write_items)
    return {"items": sent, "outcome_items": items, "batch_write_calls": n,
            "items_per_call": round(sent / n, 2) if n else None, "full_batches": calls.batch_write_items.count(25),
            "batch_sizes": sorted(set(calls.batch_write_items))}


def run(sizes: tuple[int, ...] = SIZES) -> dict[str, Any]:
    rows = [_one_size(n) for n in sizes]
    for prev, row in itertools.pairwise(rows):
        scale = row["endpoints"] / prev["endpoints"]
        row["growth"] = {
            "resources": scale,
            "calls": round(row["calls"] / prev["calls"], 2),
            "seconds": round(row["seconds"] / prev["seconds"], 2) if prev["seconds"] else None,
            "seconds_own": round(row["seconds_own"] / prev["seconds_own"], 2) if prev["seconds_own"] > 0 else None,
            "cpu_seconds": round(row["cpu_seconds"] / prev["cpu_seconds"], 2) if prev["cpu_seconds"] > 0 else None,
        }
    return {"reads_needed": sorted(needed_reads()), "sizes": rows}


if __name__ == "__main__":
    print(json.dumps(run((10, 100)), indent=2))
