"""The two real templates deployed into LocalStack the way an operator deploys them: `sam deploy`.

The hub is the x86_64 build of template.yaml (`.aws-sam/build-x86_64`); the spoke is templates/spoke.yaml as
is, deployed as a plain stack in the member account because LocalStack accepts the hub's StackSet as a no-op.
SAM CLI reaches LocalStack through AWS_ENDPOINT_URL, and the account is chosen by the access key id (LocalStack
files requests under the 12-digit access key id they are signed with).
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, WaiterError

ROOT = Path(__file__).resolve().parents[2]
SAM = ROOT / ".venv-sam" / "bin" / "sam"
REGION = "us-east-1"
HUB_STACK = "vpce-guard"
SPOKE_STACK = "vpce-guard-spoke"
#: LocalStack accepts any signature; the access key id names the account.
SECRET = "rehearsal"  # noqa: S105 - not a credential
HUB_FUNCTION_ROLES = ("OnChangeFunctionRole", "SweepWorkerFunctionRole", "RollbackFunctionRole")


class DeployError(RuntimeError):
    """A stack did not deploy; the message has the end of SAM CLI's output."""


def session(account: str) -> boto3.Session:
    """A session LocalStack files under `account` (its access key id)."""
    return boto3.Session(aws_access_key_id=account, aws_secret_access_key=SECRET, region_name=REGION)


def client(endpoint: str, account: str, service: str, **kw: Any) -> Any:
    return session(account).client(service, endpoint_url=endpoint,
                                             config=Config(retries={"mode": "standard", "max_attempts": 3}), **kw)


def sam_deploy(endpoint: str, account: str, *, template: Path, stack: str, parameters: dict[str, str],
               capabilities: str, log: Path) -> float:
    """`sam deploy` without prompts; returns its duration. Raises DeployError with SAM's last lines."""
    import time

    cmd = [str(SAM), "deploy", "--template-file", str(template), "--stack-name", stack, "--region", REGION,
           "--capabilities", *capabilities.split(), "--no-confirm-changeset", "--no-fail-on-empty-changeset",
           "--resolve-s3", "--parameter-overrides", *(f"{k}={v}" for k, v in parameters.items())]
    env = {**os.environ, "AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": account,
           "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_DEFAULT_REGION": REGION, "SAM_CLI_TELEMETRY": "0"}
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        env.pop(name, None)
    started = time.monotonic()
    with log.open("ab") as out:
        out.write(("$ " + " ".join(cmd).replace(str(ROOT) + "/", "") + "\n").encode())
        out.flush()
        proc = subprocess.run(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=env, timeout=900, check=False)
    if proc.returncode != 0:
        tail = [ln for ln in log.read_text(errors="replace").splitlines() if "Uploading to" not in ln][-12:]
        raise DeployError(f"sam deploy of {stack} failed (exit {proc.returncode}):\n" + "\n".join(tail))
    return time.monotonic() - started


@dataclass(frozen=True)
class Hub:
    outputs: dict[str, str]
    function_role_arns: tuple[str, ...]
    functions: dict[str, str]  # logical id → function name


def describe_hub(endpoint: str, account: str) -> Hub:
    cfn = client(endpoint, account, "cloudformation")
    stack = cfn.describe_stacks(StackName=HUB_STACK)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    resources = {r["LogicalResourceId"]: r for r in
                 cfn.get_paginator("list_stack_resources").paginate(StackName=HUB_STACK).build_full_result()[
                     "StackResourceSummaries"]}
    iam = client(endpoint, account, "iam")
    roles = tuple(iam.get_role(RoleName=resources[r]["PhysicalResourceId"].split("/")[-1])["Role"]["Arn"]
                  for r in HUB_FUNCTION_ROLES)
    functions = {k: v["PhysicalResourceId"] for k, v in resources.items()
                 if v["ResourceType"] == "AWS::Lambda::Function"}
    return Hub(outputs, roles, functions)


def delete_stack(endpoint: str, account: str, stack: str) -> str:
    """Delete a stack and wait; returns its last status (DELETE_COMPLETE when all went well)."""
    cfn = client(endpoint, account, "cloudformation")
    try:
        cfn.delete_stack(StackName=stack)
        cfn.get_waiter("stack_delete_complete").wait(StackName=stack, WaiterConfig={"Delay": 2, "MaxAttempts": 150})
    except (ClientError, WaiterError) as exc:  # reported; the teardown goes on
        return f"delete refused: {exc}"
    return "DELETE_COMPLETE"
