"""Seed an AWS Organization in moto (in-process or server): a hub, member accounts with VPC endpoint drift in
several regions, and in each member the spoke remediation role exactly as templates/spoke.yaml declares it.

moto keeps state per account behind assumed-role credentials, so each member here is a real separate
account: its VPCs, roles and fixes are invisible to the others. Setting a member up goes through
`OrganizationAccountAccessRole`, the admin role AWS Organizations creates in accounts it creates; the hub's
functions reach members only through the spoke role.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.session import get_session

from devkit import template
from devkit.seed import SpineWorld, seed_vpc

SETUP_ROLE = "OrganizationAccountAccessRole"
SPOKE_ROLE_NAME = "vpce-guard-spoke"
#: Role names of the hub functions that act in members (SAM names them <stack>-<Function>Role-<suffix>).
HUB_FUNCTION_ROLES = ("vpce-guard-OnChangeFunctionRole", "vpce-guard-SweepWorkerFunctionRole")


#: One botocore data loader for every session made here: parsing the EC2 service model costs ~0.3 s, once.
_LOADER = get_session().get_component("data_loader")


def credentials_env(creds: dict[str, Any]) -> dict[str, str]:
    return {"AWS_ACCESS_KEY_ID": creds["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"],
            "AWS_SESSION_TOKEN": creds["SessionToken"]}


def _core_session() -> Any:
    core = get_session()
    core.register_component("data_loader", _LOADER)
    return core


def assume(role_arn: str, session_name: str = "vpce-guard-setup") -> dict[str, Any]:
    """Credentials for a role, asked for with the environment's credentials."""
    sts = boto3.Session(botocore_session=_core_session()).client("sts")
    return sts.assume_role(RoleArn=role_arn, RoleSessionName=session_name)["Credentials"]


def session_for(creds: dict[str, Any], region: str | None = None) -> boto3.Session:
    return boto3.Session(botocore_session=_core_session(), aws_access_key_id=creds["AccessKeyId"],
                         aws_secret_access_key=creds["SecretAccessKey"], aws_session_token=creds["SessionToken"],
                         region_name=region)


def admin_session(account: str, region: str | None = None) -> boto3.Session:
    """Setup access to a member account (not what vpce-guard uses)."""
    return session_for(assume(f"arn:aws:iam::{account}:role/{SETUP_ROLE}"), region)


def hub_role_arn(hub_account: str, name: str) -> str:
    return f"arn:aws:iam::{hub_account}:role/{name}"


def hub_function_env(hub_account: str, role_name: str = HUB_FUNCTION_ROLES[1]) -> dict[str, str]:
    """The environment a hub function runs with: credentials of its own execution role, as Lambda gives them."""
    return credentials_env(assume(hub_role_arn(hub_account, role_name), f"{role_name}-session"))


def spoke_role_properties(*, org_id: str, hub_account: str, member_account: str, hub_principal_arns: Sequence[str],
                          role_name: str = SPOKE_ROLE_NAME) -> dict[str, Any]:
    """RemediationRole of templates/spoke.yaml with the parameters the hub's StackSet passes."""
    return template.resource_properties("RemediationRole", path=template.SPOKE_TEMPLATE, overrides={
        "OrganizationId": org_id, "HubAccountId": hub_account,
        "HubPrincipalArns": ",".join(hub_principal_arns), "RemediationRoleName": role_name,
    }, resources={"AWS::AccountId": member_account})


def create_spoke_role(iam: Any, props: dict[str, Any]) -> str:
    """Create the role (trust policy and inline policies) in the account `iam` belongs to."""
    arn = iam.create_role(RoleName=props["RoleName"],
                          AssumeRolePolicyDocument=json.dumps(props["AssumeRolePolicyDocument"]),
                          Description=props.get("Description", ""),
                          MaxSessionDuration=props.get("MaxSessionDuration", 3600))["Role"]["Arn"]
    for policy in props.get("Policies", []):
        iam.put_role_policy(RoleName=props["RoleName"], PolicyName=policy["PolicyName"],
                            PolicyDocument=json.dumps(policy["PolicyDocument"]))
    return arn


@dataclass
class OrgWorld:
    org_id: str
    hub: str
    members: list[str]
    regions: tuple[str, ...]
    hub_principal_arns: list[str]
    spoke_role_name: str = SPOKE_ROLE_NAME
    #: (account, region) -> the seeded VPC (an open S3 gateway endpoint missing route tables, an open SSM one)
    vpcs: dict[tuple[str, str], SpineWorld] = field(default_factory=dict)
    _sessions: dict[tuple[str, str], boto3.Session] = field(default_factory=dict, repr=False)
    _ec2: dict[tuple[str, str], Any] = field(default_factory=dict, repr=False)

    @property
    def accounts(self) -> list[str]:
        return [self.hub, *self.members]

    def session(self, account: str, region: str) -> boto3.Session:
        """The test's own view of an account (the hub: default credentials; members: the setup role)."""
        key = (account, region)
        if key not in self._sessions:
            if account == self.hub:
                self._sessions[key] = boto3.Session(region_name=region, botocore_session=_core_session())
            else:
                self._sessions[key] = admin_session(account, region)
        return self._sessions[key]

    def ec2(self, account: str, region: str) -> Any:
        key = (account, region)
        if key not in self._ec2:
            self._ec2[key] = self.session(account, region).client("ec2")
        return self._ec2[key]

    def add_member(self, name: str, *, with_spoke_role: bool = True, seed: bool = True) -> str:
        """A new account joins: created in the organization, spoke role (as the StackSet would), drift."""
        org = boto3.client("organizations", region_name=self.regions[0])
        status = org.create_account(AccountName=name, Email=f"{name}@example.com")["CreateAccountStatus"]
        account = status["AccountId"]
        self.members.append(account)
        if with_spoke_role:
            self.install_spoke_role(account)
        if seed:
            for region in self.regions:
                self.vpcs[(account, region)] = seed_vpc(self.ec2(account, region), region, name=f"{name}-{region}")
        return account

    def install_spoke_role(self, account: str) -> str:
        props = spoke_role_properties(org_id=self.org_id, hub_account=self.hub, member_account=account,
                                      hub_principal_arns=self.hub_principal_arns, role_name=self.spoke_role_name)
        return create_spoke_role(self.session(account, self.regions[0]).client("iam"), props)


def seed_org(*, members: int = 2, regions: Sequence[str] = ("us-east-1", "eu-west-1"), seed_hub: bool = True,
             spoke_role_name: str = SPOKE_ROLE_NAME) -> OrgWorld:
    """An organization whose management account is the hub (moto's default account), `members` member
    accounts with the spoke role, and drift seeded in every account and region."""
    org = boto3.client("organizations", region_name=regions[0])
    described = org.create_organization(FeatureSet="ALL")["Organization"]
    hub = described["MasterAccountId"]
    world = OrgWorld(org_id=described["Id"], hub=hub, members=[], regions=tuple(regions),
                     hub_principal_arns=[hub_role_arn(hub, r) for r in HUB_FUNCTION_ROLES],
                     spoke_role_name=spoke_role_name)
    if seed_hub:
        for region in regions:
            world.vpcs[(hub, region)] = seed_vpc(world.ec2(hub, region), region, name=f"hub-{region}")
    for i in range(members):
        world.add_member(f"member{i + 1}")
    return world
