"""A sweep fixes what is on every page: endpoints and route tables past the first page of their listings are
seen and fixed (moto never pages; devkit.paging makes its answers page like AWS, with small pages here)."""

from __future__ import annotations

import json
from typing import Any

from devkit.api_calls import count_api_calls
from devkit.paging import aws_paging
from devkit.seed import seed_vpc
from vpce_guard import pipeline, sweep
from vpce_guard.config import Settings

from .conftest import REGION, TABLE

SMALL_PAGES = {("ec2", "DescribeVpcEndpoints"): 2, ("ec2", "DescribeRouteTables"): 2, ("ec2", "DescribeVpcs"): 2}


def test_sweep_fixes_endpoints_and_route_tables_beyond_the_first_page(
        ec2: Any, org_id: str, ledger_table: Any) -> None:
    worlds = [seed_vpc(ec2, REGION, cidr=f"10.{i}.0.0/16", name=f"app{i}") for i in range(3)]
    rt = pipeline.Runtime(Settings(ledger_table=TABLE))

    with aws_paging(SMALL_PAGES), count_api_calls() as calls:
        summary = sweep.run_sweep(rt, sweep.SweepSettings(regions=(REGION,)))

    # 6 endpoints, 10 route tables (3 per seeded VPC + the default VPC's main), 4 VPCs, in pages of 2.
    assert calls.count("ec2", "DescribeRouteTables") == 5, calls.by_operation()
    assert calls.count("ec2", "DescribeVpcEndpoints") >= 3, calls.by_operation()  # + the read-back after fixes
    assert summary.endpoints_seen == 6 and summary.units_failed == 0
    for w in worlds:  # every endpoint, each with every route table of its VPC, wherever the pages cut
        ep = ec2.describe_vpc_endpoints(VpcEndpointIds=[w.ids["s3_endpoint"]])["VpcEndpoints"][0]
        assert set(ep["RouteTableIds"]) == {w.ids["rt1"], w.ids["rt2"], w.ids["main_rt"]}
        assert any(s.get("Sid") == "VpceGuardDenyOutsideOrg" for s in json.loads(ep["PolicyDocument"])["Statement"])
    assert summary.findings_by_rule["gateway-endpoint-route-tables"] == {"remediated": 3}
    assert summary.findings_by_rule["endpoint-policy-org-confined"] == {"remediated": 6}
