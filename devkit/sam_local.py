"""`sam local invoke` for real, against a moto server, on the locally built Lambda image (`make local-invoke`).

What it does, in order (each step is what an operator would type; this module only strings them together):
1. checks that the Docker engine of `scripts/local-image.sh` answers and that the image SAM looks up
   (`public.ecr.aws/lambda/python:3.13-x86_64`) is there; otherwise it says what is missing and exits 2;
2. `sam build` for x86_64 (`LAMBDA_ARCH=x86_64`, `--parameter-overrides Architecture=x86_64`) into
   `.aws-sam/build-x86_64`, skipped when nothing it builds from has changed;
3. starts a moto server on the Docker bridge address, so the container reaches it and nothing outside this
   machine does, and seeds an organization, a VPC with drift and the ledger table;
4. writes the event (an events/ file with the seeded ids) and an `--env-vars` file in SAM's format that points
   the function at moto (`AWS_ENDPOINT_URL`), then runs
   `sam local invoke FUNCTION --skip-pull-image -t .aws-sam/build-x86_64/template.yaml -e … --env-vars …`;
5. checks what SAM printed (SAM exits 0 even when it never reached the container) and what moto now holds,
   prints the function's result and stops the server.

The x86_64 override exists because the local image is built from the host's own Python, on x86_64 hosts:
Lambda itself runs the arm64 build (see docs/deploy.md, "Why python3.13 on arm64").
"""

from __future__ import annotations

import argparse
import hashlib
import ipaddress
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from devkit import template
from devkit.environ import patched_environ
from devkit.moto_server import moto_server
from devkit.seed import render_event, seed_vpc

ROOT = Path(__file__).resolve().parents[1]
SAM = Path(os.environ.get("SAM_CLI", ROOT / ".venv-sam" / "bin" / "sam"))
LOCAL_IMAGE_SCRIPT = ROOT / "scripts" / "local-image.sh"
BUILD_DIR = ROOT / ".aws-sam" / "build-x86_64"
IMAGE = "public.ecr.aws/lambda/python:3.13-x86_64"
REGION = "us-east-1"
TABLE = "vpce-guard-ledger"
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_SESSION_TOKEN": ""}


class NotReady(RuntimeError):
    """Something `sam local invoke` needs here is missing; the message says what and how to get it."""


@dataclass(frozen=True)
class Invocation:
    returncode: int
    stdout: str
    stderr: str
    result: dict[str, Any] | None


def docker_host() -> str:
    """The engine `scripts/local-image.sh` manages, unless DOCKER_HOST says otherwise."""
    if os.environ.get("DOCKER_HOST"):
        return os.environ["DOCKER_HOST"]
    out = subprocess.run(["bash", str(LOCAL_IMAGE_SCRIPT), "env"], capture_output=True, text=True, check=True)
    return out.stdout.strip().removeprefix("export DOCKER_HOST=")


def _docker(*args: str, host: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=False,
                          env={**os.environ, "DOCKER_HOST": host}, timeout=60)


def check_ready(host: str) -> str:
    """Raise NotReady with the reason unless SAM CLI, the engine and the image are here; returns the
    address containers reach the host at (the default bridge's gateway)."""
    if not SAM.exists():
        raise NotReady(f"no SAM CLI at {SAM} (make sam-venv)")
    if _docker("version", "--format", "{{.Server.Version}}", host=host).returncode != 0:
        raise NotReady(f"no Docker engine answers on {host} (make local-image)")
    if _docker("image", "inspect", IMAGE, host=host).returncode != 0:
        raise NotReady(f"image {IMAGE} is absent (make local-image)")
    net = _docker("network", "inspect", "bridge", "--format", "{{json .IPAM.Config}}", host=host)
    if net.returncode != 0:
        raise NotReady(f"the engine has no default bridge network: {net.stderr.strip()}")
    subnet = ipaddress.ip_network(json.loads(net.stdout)[0]["Subnet"])
    return str(subnet.network_address + 1)


def _build_inputs_digest() -> str:
    h = hashlib.sha256()
    tpl = template.load()
    dirs = {ROOT / "template.yaml"}
    for res in tpl["Resources"].values():
        uri = res.get("Properties", {}).get("CodeUri") or res.get("Properties", {}).get("ContentUri")
        if isinstance(uri, str):
            dirs.add(ROOT / uri)
    for d in sorted(dirs):
        files = [d] if d.is_file() else sorted(p for p in d.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
        for f in files:
            h.update(str(f.relative_to(ROOT)).encode())
            h.update(f.read_bytes())
    return h.hexdigest()


def build_x86_64() -> None:
    """`sam build` for the local image's architecture; a stamp of the inputs skips an unchanged rebuild."""
    stamp = BUILD_DIR / ".inputs-sha256"
    digest = _build_inputs_digest()
    fresh = stamp.exists() and stamp.read_text() == digest and (BUILD_DIR / "template.yaml").exists()
    if fresh and not [p for p in BUILD_DIR.rglob("*.so") if "aarch64" in p.name]:
        print(f"sam build: {BUILD_DIR.relative_to(ROOT)} is up to date", file=sys.stderr)
        return
    # --no-cached: SAM's cache is keyed by the sources, not by LAMBDA_ARCH, and would hand over arm64 wheels.
    cmd = [str(SAM), "build", "--no-cached", "--parameter-overrides", "Architecture=x86_64",
           "--build-dir", str(BUILD_DIR)]
    print("$ LAMBDA_ARCH=x86_64 sam " + " ".join(cmd[1:]).replace(str(ROOT) + "/", ""), file=sys.stderr)
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False,
                          env={**os.environ, "LAMBDA_ARCH": "x86_64", "SAM_CLI_TELEMETRY": "0"})
    if proc.returncode != 0:
        raise RuntimeError(f"sam build failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    wrong = [p.name for p in BUILD_DIR.rglob("*.so") if "aarch64" in p.name]
    if wrong:
        raise RuntimeError(f"the x86_64 build holds arm64 binaries: {wrong}")
    stamp.write_text(digest)


def last_json_object(text: str) -> dict[str, Any] | None:
    """SAM prints the function's logs, then its return value; the value is the last line that is JSON."""
    for raw in reversed(text.strip().splitlines()):
        line = raw.strip()
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(value, dict):
                return value
    return None


def sam_local_invoke(function: str, event_file: Path, env_vars_file: Path, *, host: str,
                     credentials: dict[str, str], timeout: int = 300) -> Invocation:
    cmd = [str(SAM), "local", "invoke", function, "--skip-pull-image",
           "--template", str(BUILD_DIR / "template.yaml"), "--event", str(event_file),
           "--env-vars", str(env_vars_file), "--parameter-overrides", "Architecture=x86_64", "--region", REGION]
    print("$ " + " ".join(["sam", *cmd[1:]]).replace(str(ROOT) + "/", ""), file=sys.stderr)
    env = {**os.environ, **credentials, "DOCKER_HOST": host, "SAM_CLI_TELEMETRY": "0", "AWS_DEFAULT_REGION": REGION}
    env.pop("AWS_PROFILE", None)
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False, env=env, timeout=timeout)
    return Invocation(proc.returncode, proc.stdout, proc.stderr, last_json_object(proc.stdout))


@dataclass(frozen=True)
class Outcome:
    """What one `sam local invoke` against a freshly seeded moto server did, read back from moto."""

    invocation: Invocation
    org_id: str
    endpoint: str
    policy_changed: bool
    route_tables_before: int
    route_tables_after: int
    ledger_items: int

    @property
    def ok(self) -> bool:
        result = self.invocation.result or {}
        return result.get("disposition") == "act" and self.policy_changed and self.ledger_items > 0


def invoke_against_moto(function: str, event_name: str, *, host: str, gateway: str) -> Outcome:
    """Seed a moto server on the bridge, run `sam local invoke` with an events/ file, read moto back."""
    build_x86_64()
    with patched_environ(), moto_server(host=gateway) as url, \
            tempfile.TemporaryDirectory(prefix="vpce-guard-sam-local-") as tmp:
        os.environ.update({**FAKE_CREDENTIALS, "AWS_ENDPOINT_URL": url, "AWS_DEFAULT_REGION": REGION})
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
            os.environ.pop(name, None)
        print(f"moto server: {url} (bound to the Docker bridge, reachable from the container)", file=sys.stderr)
        org_id = boto3.client("organizations").create_organization(FeatureSet="ALL")["Organization"]["Id"]
        ec2 = boto3.client("ec2")
        world = seed_vpc(ec2, REGION, name="sam-local")
        template.create_tables(boto3.client("dynamodb"), template.tables_for(TABLE))
        template.create_messaging(boto3.Session(), template.messaging_for(TABLE))
        endpoint = world.ids["s3_endpoint"]
        before = ec2.describe_vpc_endpoints(VpcEndpointIds=[endpoint])["VpcEndpoints"][0]

        event_file = Path(tmp) / Path(event_name).name
        event_file.write_text(json.dumps(render_event(event_name, world.mapping()), indent=2))
        env_vars_file = Path(tmp) / "env.json"
        env_vars_file.write_text(json.dumps(
            {function: {"AWS_ENDPOINT_URL": url, **template.table_env(
                {**template.tables_for(TABLE), **template.messaging_for(TABLE)})}}, indent=2))
        inv = sam_local_invoke(function, event_file, env_vars_file, host=host,
                               credentials={k: v for k, v in FAKE_CREDENTIALS.items() if v})
        after = ec2.describe_vpc_endpoints(VpcEndpointIds=[endpoint])["VpcEndpoints"][0]
        items = boto3.resource("dynamodb").Table(TABLE).scan(Select="COUNT")["Count"]
    return Outcome(inv, org_id, endpoint, before.get("PolicyDocument") != after.get("PolicyDocument"),
                   len(before.get("RouteTableIds", [])), len(after.get("RouteTableIds", [])), items)


def run(function: str, event_name: str) -> int:
    host = docker_host()
    try:
        gateway = check_ready(host)
    except NotReady as exc:
        print(f"sam local invoke cannot run here: {exc}", file=sys.stderr)
        return 2
    out = invoke_against_moto(function, event_name, host=host, gateway=gateway)
    print(out.invocation.stderr[-4000:], file=sys.stderr)
    if out.invocation.result is None:
        print(f"sam local invoke printed no result (exit {out.invocation.returncode}); its output is above",
              file=sys.stderr)
        return 1
    print(json.dumps(out.invocation.result, indent=2))
    print(f"organization {out.org_id}; endpoint {out.endpoint}: policy changed in moto: {out.policy_changed}; "
          f"route tables {out.route_tables_before} → {out.route_tables_after}; ledger items: {out.ledger_items}",
          file=sys.stderr)
    return 0 if out.ok else 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--function", default="OnChangeFunction")
    p.add_argument("--event", default="modify-vpc-endpoint.json", help="a file name in events/")
    args = p.parse_args(argv)
    return run(args.function, args.event)


if __name__ == "__main__":
    sys.exit(main())
