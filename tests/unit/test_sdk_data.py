"""The layer's cut SDK data (vpce_guard.sdk_data) keeps everything the code can call, and the loader that reads
it (aws.DirectLoader) answers exactly as botocore's own.

The cut files are what a cold start parses instead of botocore's whole EC2 model and endpoints file. A missing
operation would break a call in Lambda only, so these tests read what the code can call (tests/support:
every operation named in the source, every service a client is made for, every action the templates grant)
and check the cut keeps it; and they make real calls under moto through a session that reads the cut files.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import boto3
import botocore
import pytest
from botocore.exceptions import UnknownServiceError
from botocore.loaders import Loader
from moto import mock_aws

from devkit import template
from tests.support.iam_actions import granted_actions, policy_statements, services_used, static_operations
from vpce_guard import aws, sdk_data

ROOT = Path(__file__).resolve().parents[2]
BOTOCORE_DATA = Path(botocore.__file__).parent / "data"


@pytest.fixture(scope="module")
def cut_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sdk-data")
    sdk_data.write(BOTOCORE_DATA, out)
    return out


def _granted(service: str) -> set[str]:
    """The operations of `service` that any function or the spoke role of the templates may call."""
    actions: set[str] = set()
    for path in template.TEMPLATES:
        tpl = template.load(path)
        for res in tpl["Resources"].values():
            props = res.get("Properties", {})
            if res["Type"] == "AWS::Serverless::Function":
                actions |= granted_actions(policy_statements(props)[0])
            for doc in ([props["PolicyDocument"]] if "PolicyDocument" in props else []) + \
                    [p.get("PolicyDocument", {}) for p in props.get("Policies", []) if isinstance(p, dict)]:
                stmts = doc.get("Statement", []) if isinstance(doc, dict) else []
                actions |= granted_actions(s for s in stmts if isinstance(s, dict))
    return {a.split(":", 1)[1] for a in actions if isinstance(a, str) and a.startswith(f"{service}:")}


@pytest.mark.parametrize("service", sorted(sdk_data.SERVICE_OPERATIONS))
def test_every_operation_the_code_names_or_the_templates_grant_is_kept(service: str) -> None:
    named = {a.split(":", 1)[1] for a in static_operations() if a.startswith(f"{service}:")}
    kept = sdk_data.SERVICE_OPERATIONS[service]
    assert named <= kept, f"{service}: the code calls {sorted(named - kept)}, which the cut model lacks"
    granted = _granted(service)
    assert granted, f"no {service} action found in the templates: the reading of the templates is broken"
    assert granted <= kept, f"{service}: granted but cut from the model: {sorted(granted - kept)}"


def test_every_service_the_code_makes_a_client_for_keeps_its_endpoints() -> None:
    assert services_used() <= sdk_data.ENDPOINT_SERVICES


def test_the_cut_files_hold_the_kept_operations_and_every_shape_they_reach(cut_dir: Path) -> None:
    for service, operations in sdk_data.SERVICE_OPERATIONS.items():
        (model_file,) = (cut_dir / service).glob("*/service-2.json")
        model = json.loads(model_file.read_text())
        assert set(model["operations"]) == operations
        refs = [r["shape"] for op in model["operations"].values()
                for r in (op.get("input"), op.get("output"), *op.get("errors", [])) if r]
        refs += [m["shape"] for s in model["shapes"].values() for m in s.get("members", {}).values()]
        refs += [s[k]["shape"] for s in model["shapes"].values() for k in ("member", "key", "value") if k in s]
        assert set(refs) <= set(model["shapes"])
    endpoints = json.loads((cut_dir / "endpoints.json").read_text())
    full = json.loads((BOTOCORE_DATA / "endpoints.json").read_text())
    assert [p["regions"] for p in endpoints["partitions"]] == [p["regions"] for p in full["partitions"]]


def test_cutting_refuses_an_operation_the_model_does_not_have() -> None:
    model = {"metadata": {"serviceId": "EC2"}, "operations": {}, "shapes": {}}
    with pytest.raises(KeyError, match="NoSuchCall"):
        sdk_data.cut_service_model(model, ["NoSuchCall"])


def test_the_pinned_botocore_of_the_cut_is_the_projects(tmp_path: Path) -> None:
    pins = {line.split("==")[0].strip(): line.split("==")[1].strip()
            for line in (ROOT / "requirements" / "constraints.txt").read_text().splitlines() if "==" in line}
    layer_pin = (ROOT / "layers" / "vpce_guard" / "sdk-data-requirements.txt").read_text()
    assert f"botocore=={pins['botocore']}" in layer_pin.split()


@pytest.fixture
def cut_loader(cut_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """aws.new_session as a built layer has it: the process's loader reads the cut files first."""
    monkeypatch.setattr(sdk_data, "DATA_DIR", cut_dir)
    monkeypatch.setattr(aws, "_LOADER", None)
    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                 "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    yield
    monkeypatch.setattr(aws, "_LOADER", None)


def test_calls_through_the_cut_files_work_against_moto(cut_loader: None, cut_dir: Path) -> None:
    with mock_aws():
        seeder = boto3.client("ec2", region_name="us-east-1")
        vpc = seeder.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        session = aws.new_session(region_name="us-east-1")
        assert aws._LOADER.search_paths[0] == str(cut_dir)
        ec2 = session.client("ec2", config=aws.RETRY_CONFIG)
        assert set(ec2.meta.service_model.operation_names) == sdk_data.SERVICE_OPERATIONS["ec2"]
        vpcs = [v["VpcId"] for p in ec2.get_paginator("describe_vpcs").paginate() for v in p["Vpcs"]]
        assert vpc in vpcs
        attr = ec2.describe_vpc_attribute(VpcId=vpc, Attribute="enableDnsSupport")
        assert attr["EnableDnsSupport"]["Value"] is True
        ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
        assert not hasattr(ec2, "run_instances")  # cut: vpce-guard never launches anything
        ssm = session.client("ssm")
        ssm_seed = boto3.client("ssm", region_name="us-east-1")
        ssm_seed.put_parameter(Name="/p", Value="{}", Type="String")
        assert ssm.get_parameter(Name="/p")["Parameter"]["Value"] == "{}"
        table = aws.dynamodb(session)
        assert aws.dynamodb(session) is table  # one resource (and client) per session


def test_the_direct_loader_loads_what_botocores_loader_loads_and_refuses_the_same() -> None:
    direct, plain = aws.DirectLoader(), Loader()
    for service, kind in (("sts", "service-2"), ("ec2", "waiters-2"), ("ec2", "paginators-1")):
        assert direct.load_service_model(service, kind) == plain.load_service_model(service, kind)
    with pytest.raises(UnknownServiceError):
        direct.load_service_model("no-such-service", "service-2")
    with pytest.raises(UnknownServiceError):
        direct.load_service_model("sts", "waiters-2")  # a service without that kind of file


def test_the_direct_loader_honours_aws_data_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DATA_PATH", str(tmp_path))
    monkeypatch.setattr(aws, "_LOADER", None)
    try:
        aws.new_session(region_name="us-east-1")
        assert str(tmp_path) in aws._LOADER.search_paths
    finally:
        monkeypatch.setattr(aws, "_LOADER", None)
        os.environ.pop("AWS_DATA_PATH", None)
