"""Smaller SDK data files for the layer: the EC2 and SSM service models cut to the operations vpce-guard calls,
and botocore's endpoints file cut to the services it uses.

Why: at a cold start botocore parses the whole EC2 model (830 operations, 4,400 shapes: about 90 ms of CPU) to
build the first EC2 client, the whole SSM model for the mode overrides (about 14 ms), and its 1.2 MB endpoints
file for the first client of any service (about 27 ms). vpce-guard calls about twenty EC2 operations. The
layer's Makefile writes the cut files into `vpce_guard/_sdk_data/` (from the botocore the project pins, read as
files, never imported), and `aws.new_session` puts that folder first on the shared loader's search path, so
botocore finds them before its own. Without the folder (tests from the source tree, local runs) nothing
changes: the full files are used.

What is kept is decided here, not guessed at build time: `SERVICE_OPERATIONS` lists the operations each cut
model keeps (every IAM action the templates grant on those services must be one of them:
tests/unit/test_sdk_data.py), `ENDPOINT_SERVICES` the services whose endpoint data is kept (every client the
code creates must be one of them). A missing operation fails loudly (the client has no such method), in
tests/tooling/test_layer_build.py before it could in Lambda.

    python -m vpce_guard.sdk_data BOTOCORE_DATA_DIR OUT_DIR     (the layer's Makefile)
"""

from __future__ import annotations

import gzip
import json
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

#: Operations kept per cut service model. Others' models are used whole.
SERVICE_OPERATIONS: Mapping[str, frozenset[str]] = {
    "ec2": frozenset({
        # reads (sweep and events)
        "DescribeRegions", "DescribeVpcEndpoints", "DescribeVpcEndpointServices", "DescribeRouteTables",
        "DescribeVpcs", "DescribeVpcAttribute", "DescribeSubnets", "DescribeSecurityGroups",
        "DescribeSecurityGroupRules", "DescribePrefixLists", "DescribeManagedPrefixLists",
        "DescribeNetworkInterfaces", "DescribeVpcEndpointServiceConfigurations",
        "DescribeVpcEndpointServicePermissions", "DescribeVpcEndpointConnections",
        # fixes
        "ModifyVpcEndpoint", "ModifyVpcAttribute", "CreateVpcEndpoint", "CreateTags",
        "AuthorizeSecurityGroupIngress", "ModifyVpcEndpointServicePermissions",
        "ModifyVpcEndpointServiceConfiguration", "RejectVpcEndpointConnections",
    }),
    "ssm": frozenset({"GetParameter", "GetParameters", "GetParametersByPath"}),
}
#: Services whose entries of the endpoints file are kept (every partition's regions are kept whole).
ENDPOINT_SERVICES: frozenset[str] = frozenset({
    "ec2", "ssm", "sts", "dynamodb", "organizations", "sqs", "sns", "events", "securityhub", "lambda", "logs",
    "monitoring", "xray", "config", "s3", "cloudformation", "iam", "kms", "cloudtrail", "scheduler",
})

DATA_DIR = Path(__file__).resolve().parent / "_sdk_data"


def search_path() -> str | None:
    """The folder of cut data files when the layer ships them (a built layer), else None."""
    return str(DATA_DIR) if (DATA_DIR / "endpoints.json").is_file() else None


def _shape_refs(shape: Mapping[str, Any]) -> Iterable[str]:
    for key in ("member", "key", "value"):
        if key in shape:
            yield shape[key]["shape"]
    for member in shape.get("members", {}).values():
        yield member["shape"]


def cut_service_model(model: Mapping[str, Any], operations: Iterable[str]) -> dict[str, Any]:
    """`model` with only `operations` and the shapes they reach (input, output, errors, transitively).

    Documentation strings go too: botocore reads them only to build docstrings."""
    wanted = sorted(set(operations))
    missing = [op for op in wanted if op not in model["operations"]]
    if missing:
        raise KeyError(f"{model['metadata'].get('serviceId')}: no such operations: {missing}")
    ops = {name: _without(model["operations"][name], "documentation", "documentationUrl") for name in wanted}
    todo = [ref["shape"] for op in ops.values() for ref in (op.get("input"), op.get("output"), *op.get("errors", []))
            if ref]
    shapes: dict[str, Any] = {}
    while todo:
        name = todo.pop()
        if name in shapes:
            continue
        shapes[name] = _undocumented_shape(model["shapes"][name])
        todo.extend(_shape_refs(shapes[name]))
    return {**{k: v for k, v in model.items() if k not in ("operations", "shapes", "documentation")},
            "operations": ops, "shapes": shapes}


def _without(mapping: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if k not in keys}


def _undocumented_shape(shape: Mapping[str, Any]) -> dict[str, Any]:
    out = _without(shape, "documentation")
    if "members" in out:
        out["members"] = {name: _without(ref, "documentation") for name, ref in out["members"].items()}
    return out


def cut_endpoints(endpoints: Mapping[str, Any], services: Iterable[str]) -> dict[str, Any]:
    """The endpoints file with every partition whole except its services: only `services` stay."""
    keep = set(services)
    return {**endpoints, "partitions": [
        {**p, "services": {name: s for name, s in p.get("services", {}).items() if name in keep}}
        for p in endpoints["partitions"]]}


def _read_json(path: Path) -> Any:
    if path.suffix == ".gz":
        return json.loads(gzip.decompress(path.read_bytes()))
    return json.loads(path.read_text())


def _data_file(folder: Path, stem: str) -> Path:
    for candidate in (folder / f"{stem}.json", folder / f"{stem}.json.gz"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(folder / f"{stem}.json")


def write(botocore_data: Path, out: Path) -> list[Path]:
    """Write the cut files from botocore's data folder into `out` (botocore's own layout); returns them."""
    written = []
    for service, operations in sorted(SERVICE_OPERATIONS.items()):
        version = max(p.name for p in (botocore_data / service).iterdir() if p.is_dir())
        model = cut_service_model(_read_json(_data_file(botocore_data / service / version, "service-2")),
                                  operations)
        target = out / service / version / "service-2.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(model, separators=(",", ":")))
        written.append(target)
    target = out / "endpoints.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(cut_endpoints(_read_json(_data_file(botocore_data, "endpoints")),
                                               ENDPOINT_SERVICES), separators=(",", ":")))
    written.append(target)
    return written


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m vpce_guard.sdk_data BOTOCORE_DATA_DIR OUT_DIR")
    for path in write(Path(sys.argv[1]), Path(sys.argv[2])):
        print(path)
