"""A sweep unit reads an account-region page by page: endpoints and route tables past the first page are seen
and fixed. moto never pages, so the EC2 client is made to (tests/support/paging.py)."""

from __future__ import annotations

import json
from typing import Any

from devkit.seed import seed_vpc
from tests.support.paging import Paging
from vpce_guard import pipeline, sweep
from vpce_guard.config import Settings

from .conftest import ACCOUNT, REGION, TABLE


def test_sweep_follows_next_token_past_the_first_page(ec2: Any, org_id: str, ledger_table: Any) -> None:
    worlds = [seed_vpc(ec2, REGION, cidr=f"10.{i}.0.0/16", name=f"app{i}") for i in range(3)]
    rt = pipeline.Runtime(Settings(ledger_table=TABLE))
    paging = Paging(page_size=2).install(rt.factory.context(ACCOUNT, REGION).client("ec2"))

    summary = sweep.run_sweep(rt, sweep.SweepSettings(regions=(REGION,)))

    # 6 endpoints, 10 route tables (3 per seeded VPC + the default VPC's main), 4 VPCs: several pages each.
    assert paging.pages("DescribeVpcEndpoints")[:3] == [(None, 2), ("moto-page-2", 2), ("moto-page-4", 2)]
    assert [n for _, n in paging.pages("DescribeRouteTables")] == [2, 2, 2, 2, 2]
    assert [n for _, n in paging.pages("DescribeVpcs")] == [2, 2]
    assert summary.endpoints_seen == 6 and summary.units_failed == 0
    for w in worlds:  # every endpoint, each with every route table of its VPC, wherever the pages cut
        ep = ec2.describe_vpc_endpoints(VpcEndpointIds=[w.ids["s3_endpoint"]])["VpcEndpoints"][0]
        assert set(ep["RouteTableIds"]) == {w.ids["rt1"], w.ids["rt2"], w.ids["main_rt"]}
        assert "VpceGuardDenyOutsideOrg" in json.dumps(json.loads(ep["PolicyDocument"]))
    assert summary.findings_by_rule["gateway-endpoint-route-tables"] == {"remediated": 3}
    assert summary.findings_by_rule["endpoint-policy-org-confined"] == {"remediated": 6}
