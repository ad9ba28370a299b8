"""Builders for hand-made snapshots of one VPC, shared by the network rule tests (pure: no AWS)."""

from __future__ import annotations

from typing import Any

from vpce_guard.models import Endpoint, IngressRule, RouteTable, SecurityGroup, Snapshot, Subnet, Vpc
from vpce_guard.rules import RuleContext

ACCOUNT = "111122223333"
OTHER_ACCOUNT = "444455556666"
REGION = "eu-west-1"
ORG = "o-abcdefghij"
CTX = RuleContext(allowed_org_ids=frozenset({ORG}))


def vpc(dns_support: bool | None = True, dns_hostnames: bool | None = True, *, cidrs: tuple[str, ...] = ("10.0.0.0/16",),
        owner: str = ACCOUNT, tags: dict[str, str] | None = None, vpc_id: str = "vpc-1") -> Vpc:
    return Vpc(id=vpc_id, owner_id=owner, cidrs=cidrs, dns_support=dns_support, dns_hostnames=dns_hostnames,
               tags=tags or {})


def interface(service: str, ep_id: str | None = None, *, private_dns: bool = True, state: str = "available",
              owner: str = ACCOUNT, subnets: tuple[str, ...] = ("subnet-a", "subnet-b"),
              groups: tuple[str, ...] = ("sg-1",), vpc_id: str = "vpc-1", policy: str | None = None) -> Endpoint:
    return Endpoint(id=ep_id or f"vpce-{service}", vpc_id=vpc_id, type="Interface",
                    service_name=f"com.amazonaws.{REGION}.{service}", state=state, owner_id=owner,
                    private_dns_enabled=private_dns, subnet_ids=subnets, security_group_ids=groups,
                    policy_document=policy)


def gateway(service: str = "s3", ep_id: str | None = None, *, route_tables: tuple[str, ...] = (),
            state: str = "available", owner: str = ACCOUNT, vpc_id: str = "vpc-1",
            policy: str | None = None) -> Endpoint:
    return Endpoint(id=ep_id or f"vpce-gw-{service}", vpc_id=vpc_id, type="Gateway",
                    service_name=f"com.amazonaws.{REGION}.{service}", state=state, owner_id=owner,
                    route_table_ids=route_tables, private_dns_enabled=True, policy_document=policy)


def https_group(*cidrs: str, group_id: str = "sg-1", owner: str = ACCOUNT, **rule: Any) -> SecurityGroup:
    spec = {"protocol": "tcp", "from_port": 443, "to_port": 443, "cidrs": cidrs, **rule}
    return SecurityGroup(id=group_id, vpc_id="vpc-1", owner_id=owner, ingress=(IngressRule(**spec),))


SUBNETS = {
    "subnet-a": Subnet(id="subnet-a", vpc_id="vpc-1", availability_zone="eu-west-1a", availability_zone_id="euw1-az1"),
    "subnet-b": Subnet(id="subnet-b", vpc_id="vpc-1", availability_zone="eu-west-1b", availability_zone_id="euw1-az2"),
    "subnet-a2": Subnet(id="subnet-a2", vpc_id="vpc-1", availability_zone="eu-west-1a",
                        availability_zone_id="euw1-az1"),
}


def snap(*endpoints: Endpoint, vpcs: tuple[Vpc, ...] = (), complete: bool = True,
         route_tables: tuple[RouteTable, ...] = (), groups: tuple[SecurityGroup, ...] = (),
         prefix_lists: dict[str, str] | None = None, **extra: Any) -> Snapshot:
    vpcs = vpcs or (vpc(),)
    return Snapshot(
        account=ACCOUNT, region=REGION, endpoints={e.id: e for e in endpoints}, vpcs={v.id: v for v in vpcs},
        route_tables={rt.id: rt for rt in route_tables}, security_groups={g.id: g for g in groups},
        subnets=SUBNETS, prefix_lists=prefix_lists or {},
        vpcs_with_all_endpoints=frozenset(v.id for v in vpcs) if complete else frozenset(), **extra,
    )
