"""Stand-in for AWS Organizations, which LocalStack's community edition does not have ("not included in your
license plan"): a moto server holding one organization, the hub account as its management account and one
member account, reached by the deployed functions through `AWS_ENDPOINT_URL_ORGANIZATIONS` (botocore's
per-service endpoint setting), which LocalStack gives every function container (LAMBDA_DOCKER_FLAGS) without
touching the functions' configuration.

What vpce-guard asks Organizations, deployed: the sweep's ListAccounts (the accounts to sweep) and, only with
exemptions scoped to OUs, ListParents. DescribeOrganization is not asked: the hub is deployed with
AllowedOrgIds set to the stand-in's organization id.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import boto3

from devkit.moto_server import moto_server

HUB_ACCOUNT = "000000000000"  # LocalStack's default account: where the hub stack is deployed
#: moto accepts any signature; the access key id names the account.
SECRET = "stand-in"  # noqa: S105 - not a credential


@dataclass(frozen=True)
class Organization:
    url: str
    org_id: str
    root_id: str
    hub_account: str
    member_account: str

    def client(self) -> object:
        return boto3.client("organizations", endpoint_url=self.url, region_name="us-east-1",
                            aws_access_key_id=self.hub_account, aws_secret_access_key=SECRET)


@contextmanager
def organization(host: str) -> Iterator[Organization]:
    """An organization on a moto server bound to `host` (the Docker bridge address, so that the function
    containers reach it and nothing outside this machine does); stopped on exit."""
    with moto_server(host=host, env={"MOTO_ACCOUNT_ID": HUB_ACCOUNT}) as url:
        org = boto3.client("organizations", endpoint_url=url, region_name="us-east-1",
                           aws_access_key_id=HUB_ACCOUNT, aws_secret_access_key=SECRET)
        org_id = org.create_organization(FeatureSet="ALL")["Organization"]["Id"]
        status = org.create_account(Email="member@example.com", AccountName="rehearsal-member")
        member = status["CreateAccountStatus"]["AccountId"]
        root_id = org.list_roots()["Roots"][0]["Id"]
        accounts = {a["Id"] for a in org.list_accounts()["Accounts"]}
        if accounts != {HUB_ACCOUNT, member}:
            raise RuntimeError(f"the stand-in organization holds {sorted(accounts)}, not the hub and one member")
        yield Organization(url, org_id, root_id, HUB_ACCOUNT, member)
