"""The floor of case 5: only the reads that deciding every rule needs, in a fresh process, nothing else.

`python -m benchmarks.floor_once` with AWS_ENDPOINT_URL set; prints JSON with the wall time from interpreter
start. No tool can sweep all rules on this server faster than this: it lists the endpoints, route tables and
VPCs (one page each here) and reads DNS support of every VPC holding an endpoint (one DescribeVpcAttribute
each: AWS has no batch form), eight at a time as vpce-guard does, and it evaluates nothing and records
nothing. Set against Cloud Custodian's run, it shows how much of a target is left to the tool at all.
"""

from __future__ import annotations

import json
import sys
import time

PROCESS_START = time.perf_counter()


def main() -> int:
    from concurrent.futures import ThreadPoolExecutor

    import boto3

    ec2 = boto3.client("ec2")
    endpoints = [e for page in ec2.get_paginator("describe_vpc_endpoints").paginate() for e in page["VpcEndpoints"]]
    tables = [t for page in ec2.get_paginator("describe_route_tables").paginate() for t in page["RouteTables"]]
    vpcs = [v for page in ec2.get_paginator("describe_vpcs").paginate() for v in page["Vpcs"]]
    holding = sorted({e["VpcId"] for e in endpoints})
    with ThreadPoolExecutor(max_workers=8) as pool:
        support = list(pool.map(lambda v: ec2.describe_vpc_attribute(VpcId=v, Attribute="enableDnsSupport"),
                                holding))
    print(json.dumps({"seconds": round(time.perf_counter() - PROCESS_START, 3), "endpoints": len(endpoints),
                      "route_tables": len(tables), "vpcs": len(vpcs), "dns_reads": len(support)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
