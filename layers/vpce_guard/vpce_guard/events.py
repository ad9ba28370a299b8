"""Turn an EventBridge "AWS API Call via CloudTrail" event for EC2 into the resources to re-evaluate.

The event is untrusted input: it arrives on a bus that accepts events from every account of the
organization, its shape depends on the API and on CloudTrail's XML-to-JSON conversion, and whatever ids
we take from it end up in AWS API calls. So this module:

* never raises (`parse_event` returns a disposition for any input, so the handler can always write a
  ledger record and never retries a poison event);
* reads ids only from the keys each API is known to use (never by regex over the whole event), in both
  the wrapped (``{"ModifyVpcEndpointRequest": {...}}``) and flat forms and in both key casings;
* accepts an id only if it looks exactly like an AWS id of the expected kind, and caps list sizes.

It is pure (no boto3): the rules and the planner stay testable without AWS.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vpce_guard.models import Targets, Trigger

__all__ = [
    "ACCOUNT_PATTERN",
    "ACT",
    "CLOUDTRAIL_DETAIL_TYPE",
    "EC2_EVENT_SOURCE",
    "EVENTBRIDGE_SOURCE",
    "ID_PATTERNS",
    "MAX_ACTED_IDS",
    "MAX_IDS",
    "MAX_REASON",
    "REGION_PATTERN",
    "REJECTED",
    "SKIPPED",
    "SUPPORTED_EVENTS",
    "CloudTrailDetail",
    "CloudTrailEvent",
    "ParsedEvent",
    "SessionContext",
    "SessionIssuer",
    "UserIdentity",
    "flatten_items",
    "parse_event",
]

#: API calls whose success can change what the rules see. Anything else reaching us is a pattern mistake.
SUPPORTED_EVENTS: frozenset[str] = frozenset(
    {
        "CreateVpcEndpoint",
        "ModifyVpcEndpoint",
        "DeleteVpcEndpoints",
        "CreateRouteTable",
        "AssociateRouteTable",
        "ReplaceRouteTableAssociation",
        "DisassociateRouteTable",
        "CreateRoute",
        "ReplaceRoute",
        "DeleteRoute",
        "ModifyVpcAttribute",
        "AuthorizeSecurityGroupIngress",
        "RevokeSecurityGroupIngress",
        "ModifySecurityGroupRules",
    }
)

ACT = "act"
SKIPPED = "skipped"
REJECTED = "rejected"

EVENTBRIDGE_SOURCE = "aws.ec2"
CLOUDTRAIL_DETAIL_TYPE = "AWS API Call via CloudTrail"
EC2_EVENT_SOURCE = "ec2.amazonaws.com"

#: More ids than this in one field means the event is not a real API call (EC2 caps these lists far lower).
MAX_IDS = 1000
#: Ids of one kind an event is acted on for. A real change names a handful; an event naming more (a bulk
#: DeleteVpcEndpoints, or a forged one) is acted on for the first MAX_ACTED_IDS and the rest are recorded as not
#: evaluated (the scheduled sweep covers them): the cost of one event stays bounded whatever it names.
MAX_ACTED_IDS = 25
#: Reasons go to the ledger and to log lines: one line, bounded.
MAX_REASON = 500
#: `{"item": [{"items": [...]}]}` nests a couple of levels at most; deeper is garbage, not a shape.
_MAX_DEPTH = 16


def _id_pattern(prefix: str) -> re.Pattern[str]:
    # EC2 ids are the prefix plus 8 (older resources) or 17 lowercase hex digits.
    return re.compile(rf"{re.escape(prefix)}-(?:[0-9a-f]{{8}}|[0-9a-f]{{17}})")


#: Regex per `Targets` field. Use `fullmatch` (``$`` would accept a trailing newline).
ID_PATTERNS: Mapping[str, re.Pattern[str]] = {
    "endpoint_ids": _id_pattern("vpce"),
    "vpc_ids": _id_pattern("vpc"),
    "route_table_ids": _id_pattern("rtb"),
    "association_ids": _id_pattern("rtbassoc"),
    "subnet_ids": _id_pattern("subnet"),
    "security_group_ids": _id_pattern("sg"),
}
ACCOUNT_PATTERN: re.Pattern[str] = re.compile(r"[0-9]{12}")
#: us-east-1, eu-central-2, us-gov-west-1, cn-north-1, us-isob-east-1 …
REGION_PATTERN: re.Pattern[str] = re.compile(r"[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}")

_ID_LABELS = {
    "endpoint_ids": "endpoint id",
    "vpc_ids": "VPC id",
    "route_table_ids": "route table id",
    "association_ids": "route table association id",
    "subnet_ids": "subnet id",
    "security_group_ids": "security group id",
}


# --------------------------------------------------------------------------------------------- models
class _Lenient(BaseModel):
    """CloudTrail adds fields over time (eventVersion 1.08 → 1.11): keep unknown ones, type known ones."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class SessionIssuer(_Lenient):
    type: str | None = None
    principal_id: str | None = Field(None, alias="principalId")
    arn: str | None = None
    account_id: str | None = Field(None, alias="accountId")
    user_name: str | None = Field(None, alias="userName")


class SessionContext(_Lenient):
    session_issuer: SessionIssuer | None = Field(None, alias="sessionIssuer")
    attributes: dict[str, Any] | None = None
    web_id_federation_data: dict[str, Any] | None = Field(None, alias="webIdFederationData")
    source_identity: str | None = Field(None, alias="sourceIdentity")


class UserIdentity(_Lenient):
    """Who made the call. `arn` is missing for some AWS-service and cross-account callers."""

    type: str | None = None
    principal_id: str | None = Field(None, alias="principalId")
    arn: str | None = None
    account_id: str | None = Field(None, alias="accountId")
    access_key_id: str | None = Field(None, alias="accessKeyId")
    user_name: str | None = Field(None, alias="userName")
    session_context: SessionContext | None = Field(None, alias="sessionContext")
    invoked_by: str | None = Field(None, alias="invokedBy")

    def actor_arn(self) -> str | None:
        """The best name for the caller: its ARN, else the role that issued its session, else the service."""
        if self.arn:
            return self.arn
        issuer = self.session_context.session_issuer if self.session_context else None
        if issuer and issuer.arn:
            return issuer.arn
        return self.invoked_by or None


class CloudTrailDetail(_Lenient):
    """The CloudTrail record carried in `detail`. Strict on the fields we act on, lenient on the rest."""

    event_version: str | None = Field(None, alias="eventVersion")
    user_identity: UserIdentity | None = Field(None, alias="userIdentity")
    event_time: str | None = Field(None, alias="eventTime")
    event_source: str = Field(alias="eventSource")
    event_name: str = Field(alias="eventName", min_length=1)
    aws_region: str | None = Field(None, alias="awsRegion")
    source_ip_address: str | None = Field(None, alias="sourceIPAddress")
    user_agent: str | None = Field(None, alias="userAgent")
    request_parameters: dict[str, Any] | None = Field(None, alias="requestParameters")
    response_elements: dict[str, Any] | None = Field(None, alias="responseElements")
    error_code: str | None = Field(None, alias="errorCode")
    error_message: str | None = Field(None, alias="errorMessage")
    request_id: str | None = Field(None, alias="requestID")
    event_id: str | None = Field(None, alias="eventID")
    read_only: bool | None = Field(None, alias="readOnly")
    event_type: str | None = Field(None, alias="eventType")
    management_event: bool | None = Field(None, alias="managementEvent")
    recipient_account_id: str | None = Field(None, alias="recipientAccountId")
    event_category: str | None = Field(None, alias="eventCategory")
    tls_details: dict[str, Any] | None = Field(None, alias="tlsDetails")


class CloudTrailEvent(BaseModel):
    """The EventBridge envelope with a typed CloudTrail `detail`.

    Field for field the envelope of Powertools' `EventBridgeModel`, declared here because importing that
    model imports every Powertools parser model (about 70 ms of CPU on each cold start).
    """

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    version: str
    id: str
    source: str
    account: str
    time: datetime
    region: str
    resources: list[str]
    detail_type: str = Field(alias="detail-type")
    detail: CloudTrailDetail
    replay_name: str | None = Field(None, alias="replay-name")


# --------------------------------------------------------------------------------------------- result
@dataclass(frozen=True)
class ParsedEvent:
    """What the handler needs from an event, whatever the event was.

    `disposition` is "act" (targets set), "skipped" (a well-formed event we deliberately ignore: failed
    call, other API, other source) or "rejected" (unreadable or suspicious; targets None). `reason` is
    empty for "act" and one line of at most `MAX_REASON` characters otherwise. `raw_account` and
    `raw_region` are filled whenever the event names a well-formed account/region, even when rejected,
    so the ledger record can still be filed under the right account.
    """

    trigger: Trigger
    targets: Targets | None
    disposition: str
    reason: str
    raw_account: str | None
    raw_region: str | None
    #: Ids the event named beyond MAX_ACTED_IDS of their kind: not evaluated by this event.
    not_acted: tuple[str, ...] = ()


class _Reject(Exception):
    """Internal: the event is unreadable; the message becomes the one-line reason."""


class _Skip(Exception):
    """Internal: the event is well formed but there is nothing to act on; the message is the reason."""


# --------------------------------------------------------------------------------------------- helpers
def flatten_items(value: Any, limit: int | None = None) -> list[Any]:
    """Flatten every list form CloudTrail uses for EC2 into a plain list, in order.

    EC2's XML responses and query-style requests reach CloudTrail as JSON in several shapes, and the same
    parameter can take any of them depending on the API, the SDK and how many values were sent:
    ``{"items": [...]}`` / ``{"item": [...]}`` / ``{"item": {...}}``, ``{"tag": 1, "content": "x"}`` (one
    value of a query list), a JSON list of any of these, a bare value, and ``""`` / ``{}`` / ``null`` for an
    empty set. Dicts that are none of these wrappers are structs and are returned as they are.

    Stops after `limit` items when given (callers pass cap + 1 to detect oversize lists cheaply).
    Raises ValueError when wrappers nest deeper than any real event does.
    """
    out: list[Any] = []
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        if limit is not None and len(out) >= limit:
            break
        node, depth = stack.pop()
        if depth > _MAX_DEPTH:
            raise ValueError("list nested too deeply")
        if node is None or (isinstance(node, str) and node == ""):
            continue
        if isinstance(node, list | tuple):
            children = node if limit is None else node[:limit]
            stack.extend((child, depth + 1) for child in reversed(children))
            continue
        if isinstance(node, dict):
            keys = set(node)
            if "content" in keys and keys <= {"tag", "content"}:
                stack.append((node["content"], depth + 1))
                continue
            if keys and keys <= {"items", "item"}:
                for key in ("item", "items"):  # pushed in reverse: "items" comes out first
                    if key in node:
                        stack.append((node[key], depth + 1))
                continue
            if not keys:
                continue  # `{}` is how CloudTrail writes an empty set
        out.append(node)
    return out


def _key_variants(key: str) -> tuple[str, ...]:
    """`VpcEndpointId` → (`VpcEndpointId`, `vpcEndpointId`).

    Wrapped requests (`ModifyVpcEndpointRequest`) use the first casing, flat ones the second.
    """
    upper = key[:1].upper() + key[1:]
    lower = key[:1].lower() + key[1:]
    return (upper,) if upper == lower else (upper, lower)


def _lookup(node: Mapping[str, Any], key: str) -> list[Any]:
    """Values under `key` in either casing, flattened."""
    found: list[Any] = []
    for variant in _key_variants(key):
        if variant in node:
            found.extend(flatten_items(node[variant], limit=MAX_IDS + 1))
    return found


def _clip(text: str, limit: int) -> str:
    """One line, at most `limit` characters: reasons and trigger fields go into logs and DynamoDB."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _show(value: Any) -> str:
    """A short, escaped rendering of a bad value for a reason (never the whole value)."""
    if isinstance(value, str):
        return repr(value[:64] + ("…" if len(value) > 64 else ""))
    return f"<{type(value).__name__}>"


def _raw_str(mapping: Any, key: str, limit: int = 256) -> str | None:
    value = mapping.get(key) if isinstance(mapping, dict) else None
    return _clip(value, limit) if isinstance(value, str) and value else None


def _well_formed(value: Any, pattern: re.Pattern[str]) -> str | None:
    return value if isinstance(value, str) and pattern.fullmatch(value) else None


# --------------------------------------------------------------------------------------------- id rules
_REQUEST = "request"
_RESPONSE = "response"


@dataclass(frozen=True)
class _Pick:
    """Ids for `field` under `path` (keys from the request or response root, wrapped or flat)."""

    field: str
    side: str
    path: tuple[str, ...]


@dataclass(frozen=True)
class _Rule:
    picks: tuple[_Pick, ...]
    #: At least one of these fields must end up non-empty, else the event tells us nothing to evaluate.
    required: tuple[str, ...]


def _route_table_only() -> _Rule:
    return _Rule((_Pick("route_table_ids", _REQUEST, ("RouteTableId",)),), ("route_table_ids",))


_RULES: Mapping[str, _Rule] = {
    # CreateVpcEndpoint: the new id is only in the response; when the response is missing (CloudTrail
    # drops large ones) the VPC still lets the rules find the endpoint.
    "CreateVpcEndpoint": _Rule(
        (
            _Pick("endpoint_ids", _RESPONSE, ("VpcEndpoint", "VpcEndpointId")),
            _Pick("vpc_ids", _REQUEST, ("VpcId",)),
            _Pick("vpc_ids", _RESPONSE, ("VpcEndpoint", "VpcId")),
        ),
        ("endpoint_ids", "vpc_ids"),
    ),
    "ModifyVpcEndpoint": _Rule((_Pick("endpoint_ids", _REQUEST, ("VpcEndpointId",)),), ("endpoint_ids",)),
    "DeleteVpcEndpoints": _Rule((_Pick("endpoint_ids", _REQUEST, ("VpcEndpointId",)),), ("endpoint_ids",)),
    "CreateRouteTable": _Rule(
        (
            _Pick("route_table_ids", _RESPONSE, ("RouteTable", "RouteTableId")),
            _Pick("vpc_ids", _REQUEST, ("VpcId",)),
            _Pick("vpc_ids", _RESPONSE, ("RouteTable", "VpcId")),
        ),
        ("route_table_ids", "vpc_ids"),
    ),
    "AssociateRouteTable": _Rule(
        (
            _Pick("route_table_ids", _REQUEST, ("RouteTableId",)),
            _Pick("subnet_ids", _REQUEST, ("SubnetId",)),
        ),
        ("route_table_ids",),
    ),
    "ReplaceRouteTableAssociation": _Rule(
        (
            _Pick("route_table_ids", _REQUEST, ("RouteTableId",)),
            _Pick("association_ids", _REQUEST, ("AssociationId",)),
            _Pick("association_ids", _RESPONSE, ("NewAssociationId",)),
        ),
        ("route_table_ids", "association_ids"),
    ),
    # DisassociateRouteTable names only the association; the subnet and table are looked up later.
    "DisassociateRouteTable": _Rule(
        (
            _Pick("association_ids", _REQUEST, ("AssociationId",)),
            _Pick("subnet_ids", _REQUEST, ("SubnetId",)),
            _Pick("subnet_ids", _RESPONSE, ("SubnetId",)),
            _Pick("route_table_ids", _REQUEST, ("RouteTableId",)),
            _Pick("route_table_ids", _RESPONSE, ("RouteTableId",)),
        ),
        ("association_ids",),
    ),
    "CreateRoute": _route_table_only(),
    "ReplaceRoute": _route_table_only(),
    "DeleteRoute": _route_table_only(),
    "ModifyVpcAttribute": _Rule((_Pick("vpc_ids", _REQUEST, ("VpcId",)),), ("vpc_ids",)),
    # A request may name the group by groupName (default VPC); the response's rule set has its id.
    "AuthorizeSecurityGroupIngress": _Rule(
        (
            _Pick("security_group_ids", _REQUEST, ("GroupId",)),
            _Pick("security_group_ids", _RESPONSE, ("SecurityGroupRuleSet", "GroupId")),
        ),
        ("security_group_ids",),
    ),
    "RevokeSecurityGroupIngress": _Rule(
        (
            _Pick("security_group_ids", _REQUEST, ("GroupId",)),
            _Pick("security_group_ids", _RESPONSE, ("RevokedSecurityGroupRuleSet", "GroupId")),
        ),
        ("security_group_ids",),
    ),
    "ModifySecurityGroupRules": _Rule(
        (_Pick("security_group_ids", _REQUEST, ("GroupId",)),), ("security_group_ids",)
    ),
}
if set(_RULES) != SUPPORTED_EVENTS:  # a table/constant mismatch is a programming error: fail at import
    raise RuntimeError("events._RULES and SUPPORTED_EVENTS disagree")


def _roots(section: dict[str, Any] | None, wrapper: str) -> list[dict[str, Any]]:
    """Where to look: the `<Api>Request`/`<Api>Response` wrapper (newer APIs) and the flat section."""
    if not section:
        return []
    roots: list[dict[str, Any]] = []
    for variant in _key_variants(wrapper):
        inner = section.get(variant)
        if isinstance(inner, dict):
            roots.append(inner)
    roots.append(section)
    return roots


def _pick(roots: list[dict[str, Any]], path: tuple[str, ...], field: str) -> list[str]:
    nodes: list[Any] = list(roots)
    for key in path[:-1]:
        nodes = [child for node in nodes if isinstance(node, dict) for child in _lookup(node, key)]
        nodes = [node for node in nodes if isinstance(node, dict)]
    leaf = path[-1]
    values: list[Any] = []
    for node in nodes:
        if isinstance(node, dict):
            values.extend(_lookup(node, leaf))
    if len(values) > MAX_IDS:
        raise _Reject(f"too many {_ID_LABELS[field]}s (more than {MAX_IDS})")
    ids: list[str] = []
    pattern = ID_PATTERNS[field]
    for value in values:
        candidate = value
        if isinstance(value, dict):
            # Old-style sets {"items": [{"groupId": "sg-…"}]}: the id sits one level down, same key.
            inner = [v for key in _key_variants(leaf) if key in value for v in flatten_items(value[key], 2)]
            candidate = inner[0] if len(inner) == 1 else value
        if not isinstance(candidate, str) or not pattern.fullmatch(candidate):
            raise _Reject(f"invalid {_ID_LABELS[field]} {_show(candidate)} in {'.'.join(path)}")
        ids.append(candidate)
    return ids


def _dedupe(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


def _failed_ids(detail: CloudTrailDetail) -> set[str]:
    """Ids a multi-id call reports it did not act on (`unsuccessful`: unknown ids, or ones it could not change):
    nothing changed for them, so there is nothing to re-check. Read leniently: only well-formed ids count."""
    name = detail.event_name
    ids: set[str] = set()
    for root in _roots(detail.response_elements, f"{name}Response"):
        for item in _lookup(root, "Unsuccessful"):
            if isinstance(item, dict):
                ids |= {v for v in _lookup(item, "ResourceId") if isinstance(v, str)}
    return ids


def _extract(detail: CloudTrailDetail) -> dict[str, tuple[str, ...]]:
    """Ids per `Targets` field for a supported event; raises _Reject when they are missing or malformed."""
    name = detail.event_name
    rule = _RULES[name]
    roots = {
        _REQUEST: _roots(detail.request_parameters, f"{name}Request"),
        _RESPONSE: _roots(detail.response_elements, f"{name}Response"),
    }
    collected: dict[str, list[str]] = {}
    for pick in rule.picks:
        collected.setdefault(pick.field, []).extend(_pick(roots[pick.side], pick.path, pick.field))
    failed = _failed_ids(detail)
    fields = {field: _dedupe(i for i in ids if i not in failed) for field, ids in collected.items() if ids}
    if failed and not any(fields.values()):
        raise _Skip(f"{name} changed nothing: AWS reported every id it names as unsuccessful")
    fields = {field: ids for field, ids in fields.items() if ids}
    for field, ids in fields.items():
        if len(ids) > MAX_IDS:
            raise _Reject(f"too many {_ID_LABELS[field]}s (more than {MAX_IDS})")
    if not any(fields.get(field) for field in rule.required):
        wanted = " or ".join(_ID_LABELS[field] for field in rule.required)
        raise _Reject(f"no {wanted} in {name} event")
    return fields


def _validation_summary(error: ValidationError) -> str:
    """`detail.eventName: Field required; account: Input should be a valid string` — no input values."""
    parts = []
    for item in error.errors(include_url=False, include_input=False)[:5]:
        location = ".".join(str(part) for part in item.get("loc", ())) or "event"
        parts.append(f"{location}: {item.get('msg', 'invalid')}")
    more = error.error_count() - len(parts)
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)


# --------------------------------------------------------------------------------------------- entry point
def _trigger(event: dict[str, Any]) -> Trigger:
    """Built from the raw dict so that even a rejected event names itself in the ledger."""
    detail = event.get("detail")
    detail = detail if isinstance(detail, dict) else {}
    identity = detail.get("userIdentity")
    identity = identity if isinstance(identity, dict) else {}
    context = identity.get("sessionContext")
    issuer = context.get("sessionIssuer") if isinstance(context, dict) else None
    actor = (
        _raw_str(identity, "arn", 2048) or _raw_str(issuer, "arn", 2048) or _raw_str(identity, "invokedBy")
    )
    return Trigger(
        source="event",
        event_id=_raw_str(event, "id") or _raw_str(detail, "eventID"),
        event_name=_raw_str(detail, "eventName", 128),
        actor_arn=actor,
        event_time=_raw_str(detail, "eventTime", 64) or _raw_str(event, "time", 64),
        issuer_arn=_raw_str(issuer, "arn", 2048),
    )


def _raw_place(event: dict[str, Any]) -> tuple[str | None, str | None]:
    detail = event.get("detail")
    detail = detail if isinstance(detail, dict) else {}
    # The envelope's account first: EventBridge sets it, so a forged `detail` cannot file its record
    # under another account.
    account = _well_formed(event.get("account"), ACCOUNT_PATTERN) or _well_formed(
        detail.get("recipientAccountId"), ACCOUNT_PATTERN
    )
    region = _well_formed(detail.get("awsRegion"), REGION_PATTERN) or _well_formed(
        event.get("region"), REGION_PATTERN
    )
    return account, region


def _decide(event: dict[str, Any]) -> tuple[str, str, Targets | None]:
    source = event.get("source")
    if isinstance(source, str) and source != EVENTBRIDGE_SOURCE:
        return SKIPPED, f"not an EC2 event (source {_show(source)})", None
    detail_type = event.get("detail-type")
    if isinstance(detail_type, str) and detail_type != CLOUDTRAIL_DETAIL_TYPE:
        return SKIPPED, f"not a CloudTrail API call (detail-type {_show(detail_type)})", None

    try:
        parsed = CloudTrailEvent.model_validate(event)
    except ValidationError as error:
        return REJECTED, f"cannot read event: {_validation_summary(error)}", None
    detail = parsed.detail

    if detail.event_source != EC2_EVENT_SOURCE:
        return SKIPPED, f"not an EC2 API call (eventSource {_show(detail.event_source)})", None
    if detail.error_code:
        code = detail.error_code.strip() or repr(detail.error_code)
        message = f": {detail.error_message}" if detail.error_message else ""
        return SKIPPED, f"call failed: {code}{message}", None
    if detail.event_name not in SUPPORTED_EVENTS:
        return SKIPPED, f"unsupported event name {_show(detail.event_name)}", None

    # recipientAccountId is the account that owns the resources; the envelope's account is the bus's
    # view of the sender. They agree for events forwarded from member accounts; prefer CloudTrail's.
    # `detail` is whatever the sender wrote, while EventBridge itself sets the envelope's account to the
    # account the event came from: an event claiming another account is a forgery (a member account
    # steering the hub into a third account), never acted on.
    # The envelope's account and region are required and must agree with the record's: an event without them
    # (or naming another account or region in `detail`) cannot be told apart from one steering the hub.
    if not ACCOUNT_PATTERN.fullmatch(parsed.account):
        return REJECTED, f"invalid or missing envelope account {_show(parsed.account)}", None
    account = detail.recipient_account_id or parsed.account
    if not ACCOUNT_PATTERN.fullmatch(account):
        return REJECTED, f"invalid account id {_show(account)}", None
    if account != parsed.account:
        return REJECTED, (f"recipientAccountId {_show(account)} is not the account the event came from "
                          f"({_show(parsed.account)})"), None
    if not REGION_PATTERN.fullmatch(parsed.region):
        return REJECTED, f"invalid or missing envelope region {_show(parsed.region)}", None
    region = detail.aws_region or parsed.region
    if not REGION_PATTERN.fullmatch(region):
        return REJECTED, f"invalid region {_show(region)}", None
    if region != parsed.region:
        return REJECTED, (f"awsRegion {_show(region)} is not the region the event came from "
                          f"({_show(parsed.region)})"), None

    try:
        fields = _extract(detail)
    except _Reject as error:
        return REJECTED, str(error), None
    except _Skip as error:
        return SKIPPED, str(error), None
    except ValueError as error:  # flatten_items on absurd nesting
        return REJECTED, f"cannot read event: {error}", None
    return ACT, "", Targets(account=account, region=region, **fields)


def _bounded(targets: Targets) -> tuple[Targets, tuple[str, ...]]:
    """At most MAX_ACTED_IDS ids of each kind; the rest are returned apart."""
    kept: dict[str, tuple[str, ...]] = {}
    rest: list[str] = []
    for field in ID_PATTERNS:
        ids: tuple[str, ...] = getattr(targets, field)
        kept[field] = ids[:MAX_ACTED_IDS]
        rest += ids[MAX_ACTED_IDS:]
    return (targets.model_copy(update=kept) if rest else targets), tuple(rest)


def parse_event(event: Any) -> ParsedEvent:
    """Classify one Lambda input. Never raises: a crash here would retry a poison event forever."""
    if not isinstance(event, dict):
        return ParsedEvent(
            trigger=Trigger(source="event"),
            targets=None,
            disposition=REJECTED,
            reason=f"cannot read event: expected a JSON object, got {type(event).__name__}",
            raw_account=None,
            raw_region=None,
        )
    try:
        trigger = _trigger(event)
    except Exception:  # defensive: Trigger only gets clipped strings, but this must never crash
        trigger = Trigger(source="event")
    try:
        raw_account, raw_region = _raw_place(event)
    except Exception:
        raw_account, raw_region = None, None
    try:
        disposition, reason, targets = _decide(event)
    except RecursionError:
        disposition, reason, targets = REJECTED, "cannot read event: nested too deeply", None
    except Exception as error:  # the contract is "never raises"; the reason says what broke
        disposition, reason, targets = REJECTED, f"cannot read event: {type(error).__name__}", None
    not_acted: tuple[str, ...] = ()
    if targets is not None:
        targets, not_acted = _bounded(targets)
    return ParsedEvent(
        trigger=trigger,
        targets=targets,
        disposition=disposition,
        reason=_clip(reason, MAX_REASON),
        raw_account=raw_account,
        raw_region=raw_region,
        not_acted=not_acted,
    )
