"""Seed moto (in-process or server) with realistic VPC endpoint drift, and map events/ placeholders to it.

The files in events/ use fixed placeholder ids; `render_event` rewrites them to the ids of the resources
seeded here, so the same files serve `sam local invoke`, the demo and the integration tests.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EVENTS_DIR = ROOT / "events"

#: Placeholder ids used in events/*.json (see docs/development.md, "Adding an event file").
PLACEHOLDERS = {
    "vpc": "vpc-0a1b2c3d4e5f60001",
    "s3_endpoint": "vpce-0a1b2c3d4e5f60001",
    "ssm_endpoint": "vpce-0a1b2c3d4e5f60002",
    "rt1": "rtb-0a1b2c3d4e5f60001",
    "rt2": "rtb-0a1b2c3d4e5f60002",
    "subnet1": "subnet-0a1b2c3d4e5f60001",
    "assoc1": "rtbassoc-0a1b2c3d4e5f60001",
    "assoc2": "rtbassoc-0a1b2c3d4e5f60002",
    "sg": "sg-0a1b2c3d4e5f60001",
}
PLACEHOLDER_ACCOUNT = "123456789012"
PLACEHOLDER_REGION = "us-east-1"

FULL_ACCESS_POLICY = json.dumps({
    "Version": "2008-10-17",
    "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}],
})


def confined_policy(org_id: str) -> str:
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Sid": "OrgOnly", "Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*",
                       "Condition": {"StringEquals": {"aws:PrincipalOrgID": org_id}}}],
    })


@dataclass
class SpineWorld:
    """Ids of one seeded VPC: an S3 gateway endpoint with the default policy that misses route table rt2."""

    region: str
    ids: dict[str, str] = field(default_factory=dict)

    def mapping(self) -> dict[str, str]:
        return {PLACEHOLDERS[k]: v for k, v in self.ids.items() if k in PLACEHOLDERS}


def seed_vpc(ec2: Any, region: str, *, cidr: str = "10.0.0.0/16", s3_policy: str | None = None,
             associate_all: bool = False, with_ssm: bool = True, name: str = "app",
             extra_cidrs: tuple[str, ...] = (), vpc_tags: dict[str, str] | None = None,
             dns_support: bool = True, dns_hostnames: bool = False, https_from_vpc: bool = True,
             interface_services: tuple[str, ...] = (), with_s3: bool = True) -> SpineWorld:
    """One VPC with two subnets on their own route tables (rt1, rt2) and an S3 gateway endpoint.

    By default the endpoint keeps AWS's default full-access policy and is associated with rt1 only:
    two violations for the spine's rules to find. The SSM interface endpoint has private DNS on while the
    VPC keeps moto's (and AWS's) default for a new VPC, DNS hostnames off: a violation for the network rules.
    `https_from_vpc` lets the endpoints' security group accept TCP 443 from every CIDR of the VPC;
    `interface_services` adds more interface endpoints (ids `<service>_endpoint`) like the SSM one.
    """
    w = SpineWorld(region)
    tags = [{"Key": "Name", "Value": name}, *({"Key": k, "Value": v} for k, v in (vpc_tags or {}).items())]
    vpc = ec2.create_vpc(CidrBlock=cidr, TagSpecifications=[{"ResourceType": "vpc", "Tags": tags}])["Vpc"]["VpcId"]
    w.ids["vpc"] = vpc
    for extra in extra_cidrs:
        ec2.associate_vpc_cidr_block(VpcId=vpc, CidrBlock=extra)
    # One attribute per call, as AWS requires (moto would take both at once).
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsSupport={"Value": dns_support})
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": dns_hostnames})
    base = cidr.split(".")
    for n in (1, 2):
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock=f"{base[0]}.{base[1]}.{n}.0/24",
                                   AvailabilityZone=f"{region}{'ab'[n - 1]}")["Subnet"]["SubnetId"]
        rt = ec2.create_route_table(VpcId=vpc, TagSpecifications=[
            {"ResourceType": "route-table", "Tags": [{"Key": "Name", "Value": f"{name}-private-{n}"}]}])
        rt_id = rt["RouteTable"]["RouteTableId"]
        assoc = ec2.associate_route_table(RouteTableId=rt_id, SubnetId=subnet)["AssociationId"]
        w.ids[f"subnet{n}"] = subnet
        w.ids[f"rt{n}"] = rt_id
        w.ids[f"assoc{n}"] = assoc
    main = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc]},
                                              {"Name": "association.main", "Values": ["true"]}])["RouteTables"]
    w.ids["main_rt"] = main[0]["RouteTableId"]
    rts = [w.ids["rt1"], w.ids["rt2"], w.ids["main_rt"]] if associate_all else [w.ids["rt1"]]
    kwargs: dict[str, Any] = {"VpcId": vpc, "ServiceName": f"com.amazonaws.{region}.s3",
                              "VpcEndpointType": "Gateway", "RouteTableIds": rts}
    if s3_policy is not None:
        kwargs["PolicyDocument"] = s3_policy
    if with_s3:
        w.ids["s3_endpoint"] = ec2.create_vpc_endpoint(**kwargs)["VpcEndpoint"]["VpcEndpointId"]
    sg = ec2.create_security_group(GroupName=f"{name}-endpoints", Description="interface endpoints",
                                   VpcId=vpc)["GroupId"]
    w.ids["sg"] = sg
    if https_from_vpc:
        ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[{
            "IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
            "IpRanges": [{"CidrIp": c, "Description": "HTTPS to endpoints"} for c in (cidr, *extra_cidrs)]}])
    for service in ("ssm",) * with_ssm + interface_services:
        w.ids[f"{service}_endpoint"] = ec2.create_vpc_endpoint(
            VpcId=vpc, ServiceName=f"com.amazonaws.{region}.{service}", VpcEndpointType="Interface",
            SubnetIds=[w.ids["subnet1"], w.ids["subnet2"]], SecurityGroupIds=[sg], PrivateDnsEnabled=True,
            PolicyDocument=s3_policy or FULL_ACCESS_POLICY,
        )["VpcEndpoint"]["VpcEndpointId"]
    return w


def render_event(name: str, mapping: dict[str, str], *, account: str | None = None,
                 region: str | None = None) -> dict[str, Any]:
    """Load events/<name> and replace placeholder ids (and optionally account/region) with real ones."""
    text = (EVENTS_DIR / (name if name.endswith(".json") else f"{name}.json")).read_text()
    for placeholder, real in mapping.items():
        text = text.replace(placeholder, real)
    if account:
        text = text.replace(PLACEHOLDER_ACCOUNT, account)
    if region:
        text = text.replace(f'"{PLACEHOLDER_REGION}', f'"{region}').replace(f".{PLACEHOLDER_REGION}.", f".{region}.")
    return json.loads(text)


def event_files() -> list[str]:
    return sorted(p.name for p in EVENTS_DIR.glob("*.json"))
