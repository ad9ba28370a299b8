"""A JSON Schema (draft 2020-12) of the AWS Security Finding Format, built from AWS's own API model.

AWS publishes no JSON Schema of ASFF; it publishes the Security Hub API model (botocore's
`securityhub/…/service-2.json`), whose `AwsSecurityFinding` shape is the format BatchImportFindings accepts:
members, required members, types, enums and patterns. This turns that shape into a JSON Schema and adds what
the model states only in its documentation: length limits ("Maximum length of 256"), map limits ("up to 50
key-value pairs … up to 128 characters … up to 2048 characters") and, from the ASFF user guide, the required
Severity and Types, the Types path format and RFC 3339 timestamps.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import botocore.session

#: Attributes the ASFF user guide lists as required beyond the API model's required members.
GUIDE_REQUIRED = ("Severity", "Types")
#: "namespace/category/classifier": the namespaces the ASFF user guide allows for Types.
TYPES_PATTERN = (r"^(Software and Configuration Checks|TTPs|Effects|Unusual Behaviors|Sensitive Data Identifications)"
                 r"(/[^/]+){0,2}$")
#: Members that are timestamps (strings in the model): RFC 3339, as the guide requires.
TIMESTAMPS = frozenset({"CreatedAt", "UpdatedAt", "FirstObservedAt", "LastObservedAt", "ProcessedAt"})

_MAX_LEN = re.compile(r"Maximum (?:length )?of (\d+)(?: length)?")
_MIN_LEN = re.compile(r"Minimum (?:length )?of (\d+)(?: length)?")
_PAIRS = re.compile(r"up to (\d+) key-value pairs")
_KEY_MAX = re.compile(r"key can contain up to (\d+) characters")
_VALUE_MAX = re.compile(r"value can contain up to (\d+) characters")
_ITEMS_MAX = re.compile(r"Maximum number of (\d+) items")


def _text(doc: str | None) -> str:
    return re.sub(r"<[^>]+>", "", doc or "")


def _constraints(doc: str | None) -> dict[str, int]:
    text = _text(doc)
    out: dict[str, int] = {}
    for key, pattern in (("maxLength", _MAX_LEN), ("minLength", _MIN_LEN), ("maxProperties", _PAIRS),
                         ("keyMax", _KEY_MAX), ("valueMax", _VALUE_MAX), ("maxItems", _ITEMS_MAX)):
        m = pattern.search(text)
        if m:
            out[key] = int(m.group(1))
    return out


def _shape_schema(shape: Any, doc: str | None, defs: dict[str, Any]) -> dict[str, Any]:
    limits = _constraints(doc)
    kind = shape.type_name
    if kind == "structure":
        if shape.name not in defs:
            defs[shape.name] = {}  # placeholder: shapes refer to themselves (e.g. Network paths)
            props = {name: _shape_schema(member, member.documentation, defs) for name, member in shape.members.items()}
            defs[shape.name] = {"type": "object", "properties": props, "additionalProperties": False,
                                **({"required": list(shape.required_members)} if shape.required_members else {})}
        return {"$ref": f"#/$defs/{shape.name}"}
    if kind == "list":
        out: dict[str, Any] = {"type": "array", "items": _shape_schema(shape.member, None, defs)}
        if "maxItems" in limits:
            out["maxItems"] = limits["maxItems"]
        return out
    if kind == "map":
        value = _shape_schema(shape.value, None, defs)
        if "valueMax" in limits:
            value = {**value, "maxLength": limits["valueMax"]}
        out = {"type": "object", "additionalProperties": value}
        if "keyMax" in limits:
            out["propertyNames"] = {"maxLength": limits["keyMax"]}
        if "maxProperties" in limits:
            out["maxProperties"] = limits["maxProperties"]
        return out
    if kind == "string":
        out = {"type": "string"}
        meta = shape.metadata
        if meta.get("enum"):
            out["enum"] = list(meta["enum"])
        if meta.get("pattern"):
            out["pattern"] = meta["pattern"]
        for key in ("maxLength", "minLength"):
            if key in limits:
                out[key] = limits[key]
        return out
    if kind in ("integer", "long"):
        out = {"type": "integer"}
        if "min" in shape.metadata:
            out["minimum"] = shape.metadata["min"]
        if "max" in shape.metadata:
            out["maximum"] = shape.metadata["max"]
        return out
    if kind in ("double", "float"):
        return {"type": "number"}
    if kind == "boolean":
        return {"type": "boolean"}
    if kind == "timestamp":
        return {"type": "string", "format": "date-time"}
    return {}


@functools.cache
def asff_schema() -> dict[str, Any]:
    """The schema of one finding (what BatchImportFindings takes in its Findings list)."""
    model = botocore.session.get_session().get_service_model("securityhub")
    defs: dict[str, Any] = {}
    _shape_schema(model.shape_for("AwsSecurityFinding"), None, defs)
    finding = defs["AwsSecurityFinding"]
    finding["required"] = sorted({*finding.get("required", []), *GUIDE_REQUIRED})
    props = finding["properties"]
    props["Types"] = {**props["Types"], "minItems": 1, "maxItems": 50,
                      "items": {"type": "string", "pattern": TYPES_PATTERN}}
    for name in TIMESTAMPS:
        props[name] = {**props[name], "format": "date-time"}
    # The finding's own limits, documented on its members.
    top = model.shape_for("AwsSecurityFinding").members
    for name, member in top.items():
        if member.type_name == "string":
            limits = _constraints(member.documentation)
            props[name] = {**props[name], **{k: v for k, v in limits.items() if k in ("maxLength", "minLength")}}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$ref": "#/$defs/AwsSecurityFinding",
            "$defs": defs}
