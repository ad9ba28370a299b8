"""Make moto's AssumeRole answer like AWS for the spoke role.

moto 5.2.5 hands out credentials for any role ARN, whether or not the role exists and whatever its trust
policy says. AWS refuses both with `AccessDenied`. This gate wraps moto's STS AssumeRole handler so that,
for roles of the given name, the role must exist in IAM of the target account and its trust policy (read
from moto's IAM, i.e. what `templates/spoke.yaml` rendered) must let the caller in, judged by the test IAM
evaluator with the caller's role ARN, account and organization as request context. A refusal is moto's
own AccessDenied error, so the code under test sees exactly the ClientError AWS would give it, on the
real call path (botocore fetching deferred credentials inside the first API call).

Every call through the gate is recorded (caller, role, allowed) for assertions about credential caching.
In-process moto only (`mock_aws`); it patches the STS response class for the duration of a test.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import pytest
from moto.core.exceptions import AccessDeniedError
from moto.iam.exceptions import NotFoundException
from moto.iam.models import iam_backends
from moto.sts import responses as sts_responses

from tests.support.iam_eval import RequestContext, evaluate


@dataclass(frozen=True)
class AssumeCall:
    caller_arn: str
    role_arn: str
    allowed: bool
    reason: str


@dataclass
class AssumeRoleGate:
    role_name: str
    #: account id -> its organization id (None: not in one), for the caller's aws:PrincipalOrgID.
    org_of: Callable[[str], str | None]
    calls: list[AssumeCall] = field(default_factory=list)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> AssumeRoleGate:
        original = sts_responses.TokenResponse.assume_role
        gate = self

        def assume_role(response: Any) -> Any:
            role_arn = unquote(response._get_param("RoleArn") or "")
            if role_arn.rsplit("/", 1)[-1] != gate.role_name:
                return original(response)
            _, caller_arn, caller_account = response.backend.get_caller_identity(
                response.get_access_key(), response.region)
            allowed, reason = gate.decide(caller_arn, caller_account, role_arn)
            gate.calls.append(AssumeCall(caller_arn, role_arn, allowed, reason))
            if not allowed:
                raise AccessDeniedError(user_arn=caller_arn, action=f"sts:AssumeRole on resource: {role_arn}")
            return original(response)

        monkeypatch.setattr(sts_responses.TokenResponse, "assume_role", assume_role)
        return self

    def decide(self, caller_arn: str, caller_account: str, role_arn: str) -> tuple[bool, str]:
        target_account = role_arn.split(":")[4]
        partition = role_arn.split(":")[1]
        try:
            role = iam_backends[target_account][partition].get_role_by_arn(role_arn)
        except NotFoundException:
            return False, "role does not exist"
        trust = role.assume_role_policy_document
        trust = json.loads(unquote(trust)) if isinstance(trust, str) else trust
        principal_arn = _principal_arn(caller_arn)
        ctx = RequestContext.iam(principal_arn, "sts:AssumeRole", resource=role_arn,
                                 org_id=self.org_of(caller_account))
        if evaluate(trust, ctx):
            return True, "trust policy allows the caller"
        return False, "trust policy does not allow the caller"

    def calls_for(self, account: str) -> list[AssumeCall]:
        return [c for c in self.calls if c.role_arn.split(":")[4] == account]


def _principal_arn(caller_arn: str) -> str:
    """`arn:aws:sts::A:assumed-role/NAME/SESSION` -> `arn:aws:iam::A:role/NAME` (what aws:PrincipalArn holds)."""
    parts = caller_arn.split(":", 5)
    if parts[2] == "sts" and parts[5].startswith("assumed-role/"):
        name = parts[5].split("/")[1]
        return f"arn:{parts[1]}:iam::{parts[4]}:role/{name}"
    return caller_arn
