"""Read template.yaml (or any template of the repository: `path=`) the way SAM does, so tests, the demo and the
local runner cannot drift from it.

Gives: each function's handler module and environment (Globals merged, Refs to parameters and resources
resolved), the layer folder, and the ledger table's properties as DynamoDB CreateTable arguments.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "template.yaml"
#: The member-account stack the hub's StackSet rolls out.
SPOKE_TEMPLATE = ROOT / "templates" / "spoke.yaml"
#: Every CloudFormation template of the repository (linted and validated alike).
TEMPLATES = (TEMPLATE, SPOKE_TEMPLATE)
#: SDK settings the template declares empty only so that `sam local invoke --env-vars` may set them (SAM
#: overrides declared variables only). Empty means "not set": `function_spec` leaves them out, so the
#: caller's own value (a moto server's AWS_ENDPOINT_URL) is never clobbered by "".
DECLARED_FOR_SAM_LOCAL = frozenset({"AWS_ENDPOINT_URL"})


class _CfnLoader(yaml.SafeLoader):
    """YAML loader that understands CloudFormation's short-form intrinsic functions."""


def _intrinsic(loader: _CfnLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if tag_suffix == "Ref" else f"Fn::{tag_suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if tag_suffix == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _intrinsic)


def load(path: Path = TEMPLATE) -> dict[str, Any]:
    return yaml.load(path.read_text(), Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    code_dir: Path
    handler_module: str
    handler_name: str
    environment: dict[str, str]
    layer_dirs: tuple[Path, ...]
    properties: dict[str, Any]

    def load_handler(self) -> Callable[..., Any]:
        """Import the handler as Lambda would: code dir and layer dirs on sys.path, module by file."""
        for d in (*self.layer_dirs, self.code_dir):
            if str(d) not in sys.path:
                sys.path.insert(0, str(d))
        mod_name = f"_vpce_guard_fn_{self.logical_id}"
        spec = importlib.util.spec_from_file_location(mod_name, self.code_dir / f"{self.handler_module}.py")
        assert spec and spec.loader
        module: ModuleType = importlib.util.module_from_spec(spec)
        sys.modules[mod_name] = module
        spec.loader.exec_module(module)
        return getattr(module, self.handler_name)


def parameter_values(tpl: dict[str, Any], overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    values = {k: str(v.get("Default", "")) for k, v in tpl.get("Parameters", {}).items()}
    values.update(overrides or {})
    return values


def conditions(tpl: dict[str, Any], overrides: Mapping[str, str] | None = None,
               resources: Mapping[str, str] | None = None) -> dict[str, bool]:
    """The template's Conditions evaluated for these parameter values (Fn::Equals/Not/And/Or over Refs to
    parameters and pseudo parameters)."""
    params = {**_pseudo(resources or {}), **parameter_values(tpl, overrides)}
    raw = tpl.get("Conditions", {})
    out: dict[str, bool] = {}

    def value(node: Any) -> Any:
        if isinstance(node, dict) and len(node) == 1:
            (key, arg), = node.items()
            if key == "Ref":
                return params[arg]
            if key == "Condition":
                return truth(raw[arg])
            if key == "Fn::Equals":
                return str(value(arg[0])) == str(value(arg[1]))
            if key == "Fn::Not":
                return not truth(arg[0])
            if key == "Fn::And":
                return all(truth(a) for a in arg)
            if key == "Fn::Or":
                return any(truth(a) for a in arg)
            raise ValueError(f"condition function {key} is not supported here")
        return node

    def truth(node: Any) -> bool:
        result = value(node)
        if not isinstance(result, bool):
            raise ValueError(f"not a condition: {node!r}")
        return result

    for name, node in raw.items():
        out[name] = truth(node)
    return out


def resolve_if(value: Any, conds: Mapping[str, bool]) -> Any:
    """Replace every Fn::If by its branch for these conditions; AWS::NoValue branches drop out of lists."""
    no_value = object()

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            if set(node) == {"Fn::If"}:
                name, yes, no = node["Fn::If"]
                return walk(yes if conds[name] else no)
            if node == {"Ref": "AWS::NoValue"}:
                return no_value
            out = {k: walk(v) for k, v in node.items()}
            return {k: v for k, v in out.items() if v is not no_value}
        if isinstance(node, list):
            return [x for x in (walk(v) for v in node) if x is not no_value]
        return node

    result = walk(value)
    return None if result is no_value else result


def list_parameters(tpl: dict[str, Any]) -> frozenset[str]:
    """Parameters whose Ref is a list (CommaDelimitedList, List<…>)."""
    return frozenset(k for k, v in tpl.get("Parameters", {}).items()
                     if str(v.get("Type", "")).startswith(("CommaDelimitedList", "List<")))


def _pseudo(resources: Mapping[str, str]) -> dict[str, str]:
    return {"AWS::Region": resources.get("AWS::Region", "us-east-1"),
            "AWS::AccountId": resources.get("AWS::AccountId", "123456789012"),
            "AWS::Partition": resources.get("AWS::Partition", "aws"),
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": resources.get("AWS::StackName", "vpce-guard")}


def resolve(value: Any, params: Mapping[str, str], resources: Mapping[str, str],
            list_params: Collection[str] = ()) -> Any:
    """Resolve Ref/GetAtt/Sub/Join/Select against parameters, pseudo parameters and given physical
    resource names (enough for environment variables and IAM/bus policies). A Ref to a parameter named in
    `list_params` gives a list (its value split on commas), as CloudFormation does."""
    def again(v: Any) -> Any:
        return resolve(v, params, resources, list_params)

    if isinstance(value, dict) and len(value) == 1:
        (key, arg), = value.items()
        if key == "Ref":
            if arg in params:
                if arg in list_params:
                    return [p.strip() for p in params[arg].split(",") if p.strip()]
                return params[arg]
            if arg in resources:
                return resources[arg]
            pseudo = _pseudo(resources)
            if arg in pseudo:
                return pseudo[arg]
            raise KeyError(f"cannot resolve Ref {arg!r}: pass its physical name")
        if key == "Fn::GetAtt":
            name = f"{arg[0]}.{arg[1]}" if isinstance(arg, list) else str(arg)
            if name in resources:
                return resources[name]
            raise KeyError(f"cannot resolve GetAtt {name!r}: pass its value")
        if key == "Fn::Sub":
            text, local = (arg, {}) if isinstance(arg, str) else (arg[0], again(arg[1]))
            names = {**_pseudo(resources), **params, **resources, **local}

            def sub(match: re.Match[str]) -> str:
                if match.group(1) not in names:
                    raise KeyError(f"cannot resolve ${{{match.group(1)}}} in Fn::Sub")
                return str(names[match.group(1)])

            return re.sub(r"\$\{([^}!]+)\}", sub, text)
        if key == "Fn::Join":
            sep, items = arg
            resolved = again(items)
            flat: list[str] = []
            for item in resolved if isinstance(resolved, list) else [resolved]:
                flat += [str(i) for i in item] if isinstance(item, list) else [str(item)]
            return sep.join(flat)
        if key == "Fn::Select":
            index, items = again(arg)
            return items[int(index)]
    if isinstance(value, dict):
        return {k: again(v) for k, v in value.items()}
    if isinstance(value, list):
        return [again(v) for v in value]
    return value


def resource_properties(logical_id: str, *, path: Path = TEMPLATE, overrides: Mapping[str, str] | None = None,
                        resources: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A resource's Properties with every intrinsic resolved, as CloudFormation would hand them to the
    service (the policies tests evaluate are then exactly what would be deployed)."""
    tpl = load(path)
    props = tpl["Resources"][logical_id].get("Properties", {})
    props = resolve_if(props, conditions(tpl, overrides, resources))
    return resolve(props, parameter_values(tpl, overrides), resources or {}, list_parameters(tpl))


def functions(tpl: dict[str, Any] | None = None) -> list[str]:
    tpl = tpl or load()
    return [k for k, v in tpl["Resources"].items() if v["Type"] == "AWS::Serverless::Function"]


def function_spec(logical_id: str, *, resources: Mapping[str, str], overrides: Mapping[str, str] | None = None,
                  tpl: dict[str, Any] | None = None) -> FunctionSpec:
    """Everything needed to run a function in-process exactly as template.yaml wires it."""
    tpl = tpl or load()
    res = tpl["Resources"][logical_id]
    if res["Type"] != "AWS::Serverless::Function":
        raise ValueError(f"{logical_id} is not an AWS::Serverless::Function")
    props = res["Properties"]
    glob = tpl.get("Globals", {}).get("Function", {})
    params = parameter_values(tpl, overrides)
    env_raw = {**glob.get("Environment", {}).get("Variables", {}),
               **props.get("Environment", {}).get("Variables", {})}
    # Tables not named explicitly get the names `tables_for(<ledger>)` gives them (create them with
    # `create_tables(client, tables_for(<ledger>))`), so callers that name only the ledger keep working.
    if "LedgerTable" in resources:
        resources = {**tables_for(resources["LedgerTable"], tpl), **messaging_for(resources["LedgerTable"], tpl,
                                                                                  overrides, resources), **resources}
    env_raw = resolve_if(env_raw, conditions(tpl, overrides, resources))
    env = {k: str(resolve(v, params, resources, list_parameters(tpl))) for k, v in env_raw.items()}
    env = {k: v for k, v in env.items() if v or k not in DECLARED_FOR_SAM_LOCAL}
    module, _, name = props.get("Handler", glob.get("Handler", "")).rpartition(".")
    layer_dirs = []
    for layer in props.get("Layers", glob.get("Layers", [])):
        ref = layer.get("Ref") if isinstance(layer, dict) else None
        if ref and tpl["Resources"].get(ref, {}).get("Type") == "AWS::Serverless::LayerVersion":
            layer_dirs.append(ROOT / tpl["Resources"][ref]["Properties"]["ContentUri"])
    return FunctionSpec(logical_id, ROOT / props["CodeUri"], module, name, env, tuple(layer_dirs), props)


def table_create_kwargs(logical_id: str, table_name: str, tpl: dict[str, Any] | None = None) -> dict[str, Any]:
    """CreateTable arguments from the template's own AWS::DynamoDB::Table properties."""
    tpl = tpl or load()
    props = tpl["Resources"][logical_id]["Properties"]
    kwargs: dict[str, Any] = {
        "TableName": table_name,
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
    }
    if props.get("GlobalSecondaryIndexes"):
        kwargs["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
    if props.get("SSESpecification"):
        kwargs["SSESpecification"] = {"Enabled": bool(props["SSESpecification"].get("SSEEnabled"))}
    return kwargs


def create_table(client: Any, logical_id: str, table_name: str, tpl: dict[str, Any] | None = None) -> None:
    """Create the table as the template declares it, including TTL and point-in-time recovery."""
    tpl = tpl or load()
    props = tpl["Resources"][logical_id]["Properties"]
    client.create_table(**table_create_kwargs(logical_id, table_name, tpl))
    client.get_waiter("table_exists").wait(TableName=table_name, WaiterConfig={"Delay": 0.05, "MaxAttempts": 100})
    ttl = props.get("TimeToLiveSpecification")
    if ttl:
        client.update_time_to_live(TableName=table_name, TimeToLiveSpecification={
            "AttributeName": ttl["AttributeName"], "Enabled": bool(ttl["Enabled"])})
    if props.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled"):
        client.update_continuous_backups(TableName=table_name, PointInTimeRecoverySpecification={
            "PointInTimeRecoveryEnabled": True})


def dynamodb_tables(tpl: dict[str, Any] | None = None) -> list[str]:
    """Logical ids of every DynamoDB table the template declares (ledger, exemptions, idempotency, …)."""
    tpl = tpl or load()
    return [k for k, v in tpl["Resources"].items() if v["Type"] == "AWS::DynamoDB::Table"]


def tables_for(ledger_table: str, tpl: dict[str, Any] | None = None) -> dict[str, str]:
    """A physical name for every table, given the ledger's: the ledger keeps its name, every other table is
    `<ledger>-<LogicalId>`. Usable as `function_spec(resources=...)` and `create_tables(...)`."""
    return {logical: ledger_table if logical == "LedgerTable" else f"{ledger_table}-{logical}"
            for logical in dynamodb_tables(tpl)}


def messaging_for(ledger_table: str, tpl: dict[str, Any] | None = None, overrides: Mapping[str, str] | None = None,
                  resources: Mapping[str, str] | None = None) -> dict[str, str]:
    """Physical names of the hub bus and the notification topic, given the ledger's (as `tables_for` names the
    tables): the bus keeps its template name, the topic is `<ledger>-NotificationsTopic` in the pseudo
    parameters' account and region. Usable as `function_spec(resources=...)` and `create_messaging(...)`."""
    tpl = tpl or load()
    pseudo = _pseudo(resources or {})
    bus = resolve(tpl["Resources"]["HubEventBus"]["Properties"]["Name"], parameter_values(tpl, overrides), {})
    topic = (f"arn:{pseudo['AWS::Partition']}:sns:{pseudo['AWS::Region']}:{pseudo['AWS::AccountId']}:"
             f"{ledger_table}-NotificationsTopic")
    return {"HubEventBus": str(bus), "NotificationsTopic": topic}


def create_messaging(session: Any, names: Mapping[str, str], **client_kwargs: Any) -> None:
    """Create the hub bus and the notification topic (encrypted with a key of its own) as the template declares
    them, under the names `messaging_for` gives, so a run's finding events and notifications have somewhere to go.
    `client_kwargs` go to every client (endpoint_url, region_name, credentials)."""
    session.client("events", **client_kwargs).create_event_bus(Name=names["HubEventBus"])
    kms = session.client("kms", **client_kwargs)
    key = kms.create_key(Description="vpce-guard notification topic")["KeyMetadata"]["KeyId"]
    session.client("sns", **client_kwargs).create_topic(Name=names["NotificationsTopic"].rsplit(":", 1)[1],
                                                        Attributes={"DisplayName": "vpce-guard", "KmsMasterKeyId": key})


def create_tables(client: Any, names: Mapping[str, str], tpl: dict[str, Any] | None = None) -> None:
    """Create every table in `names` (logical id → physical name) as the template declares it."""
    tpl = tpl or load()
    for logical, physical in names.items():
        create_table(client, logical, physical, tpl)


def table_env(names: Mapping[str, str], tpl: dict[str, Any] | None = None) -> dict[str, str]:
    """The environment variables that name tables (LEDGER_TABLE, EXEMPTIONS_TABLE, IDEMPOTENCY_TABLE, …), or the
    other resources in `names` (the bus and topic of `messaging_for`), set to these physical names: what to pass
    as --env-vars where SAM resolves a resource's Ref to its logical id."""
    tpl = tpl or load()
    env: dict[str, Any] = dict(tpl.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {}))
    for res in tpl["Resources"].values():
        if res["Type"] == "AWS::Serverless::Function":
            env.update(res["Properties"].get("Environment", {}).get("Variables", {}))
    return {var: names[ref["Ref"]] for var, ref in env.items()
            if isinstance(ref, dict) and ref.get("Ref") in tpl["Resources"] and ref["Ref"] in names}
