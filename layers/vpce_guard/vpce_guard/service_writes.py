"""The writes of the endpoint-service rules, and the read-back that verifies each one (remediate.py calls them).

Every write is a delta that names exactly what it changes, so it is safe against a concurrent edit by
someone else: it can never put back a principal or a setting another person changed since our read.

* `remove_allowed_principal`: ModifyVpcEndpointServicePermissions RemoveAllowedPrincipals=[that principal];
* `require_acceptance`: ModifyVpcEndpointServiceConfiguration AcceptanceRequired=true;
* `reject_connection`: RejectVpcEndpointConnections VpcEndpointIds=[that endpoint].

The read-back asks AWS for exactly what the write aimed at: is that principal gone from the allowed list,
is acceptance required, is that endpoint's connection rejected (or gone)? One DescribeVpcEndpointServiceConfigurations
for every service touched, one DescribeVpcEndpointServicePermissions per service a principal was removed from,
one DescribeVpcEndpointConnections for every service a connection was rejected on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from .aws import AwsContext, side_by_side
from .endpoint_services import GONE_SERVICE_STATES, ServiceReader
from .inventory import Inventory
from .models import Action, AllowedPrincipal, EndpointConnection, ServiceConfiguration

REMOVE_PRINCIPAL = "remove_allowed_principal"
REQUIRE_ACCEPTANCE = "require_acceptance"
REJECT_CONNECTION = "reject_connection"
KINDS = frozenset({REMOVE_PRINCIPAL, REQUIRE_ACCEPTANCE, REJECT_CONNECTION})

#: A rejected connection: refused, or no longer there at all.
_REJECTED_STATES = frozenset({"rejected", "deleted", "deleting", "expired", "failed"})


def _remove_allowed_principal(ec2: Any, action: Action) -> None:
    ec2.modify_vpc_endpoint_service_permissions(ServiceId=action.resource_id,
                                                RemoveAllowedPrincipals=[action.params["principal"]])


def _require_acceptance(ec2: Any, action: Action) -> None:
    if action.params.get("acceptance_required") is not True:
        raise ValueError("vpce-guard only ever turns acceptance on")
    ec2.modify_vpc_endpoint_service_configuration(ServiceId=action.resource_id, AcceptanceRequired=True)


def _reject_connection(ec2: Any, action: Action) -> None:
    """RejectVpcEndpointConnections answers 200 even when it rejected nothing: its `Unsuccessful` list says
    which endpoints it could not reject, and why. That is this write's error."""
    answer = ec2.reject_vpc_endpoint_connections(ServiceId=action.resource_id,
                                                 VpcEndpointIds=[action.params["endpoint_id"]])
    failed = answer.get("Unsuccessful") or []
    if failed:
        error = failed[0].get("Error") or {}
        raise ClientError({"Error": {"Code": error.get("Code", "Unsuccessful"),
                                     "Message": f"{failed[0].get('ResourceId')}: {error.get('Message', '')}"}},
                          "RejectVpcEndpointConnections")


WRITERS: dict[str, Callable[[Any, Action], dict[str, Any] | None]] = {
    REMOVE_PRINCIPAL: _remove_allowed_principal,
    REQUIRE_ACCEPTANCE: _require_acceptance,
    REJECT_CONNECTION: _reject_connection,
}


@dataclass
class ServiceReadBack:
    """What AWS shows of the services the writes touched (`remediate.ReadBack` holds one)."""

    services: dict[str, ServiceConfiguration] = field(default_factory=dict)
    principals: dict[str, tuple[AllowedPrincipal, ...] | None] = field(default_factory=dict)
    connections: dict[str, list[EndpointConnection]] = field(default_factory=dict)

    @classmethod
    def read(cls, ctx: AwsContext, actions: Iterable[Action]) -> ServiceReadBack:
        mine = [a for a in actions if a.kind in KINDS]
        out = cls()
        if not mine:
            return out
        reader = ServiceReader(Inventory(ctx))
        found, _ = reader.configurations({a.resource_id for a in mine})
        out.services = {s.id: s for s in found}
        removed_from = sorted({a.resource_id for a in mine if a.kind == REMOVE_PRINCIPAL} & set(out.services))
        out.principals = dict(zip(removed_from, side_by_side(reader.allowed_principals, removed_from), strict=True))
        rejected_on = {a.resource_id for a in mine if a.kind == REJECT_CONNECTION} & set(out.services)
        if rejected_on:
            out.connections = reader.connections(rejected_on)
        return out

    def state(self, action: Action) -> dict[str, Any]:
        """The part of the service the action is about, as AWS shows it now."""
        service = self.services.get(action.resource_id)
        if service is None or service.state in GONE_SERVICE_STATES:
            return {"deleted": True}
        if action.kind == REMOVE_PRINCIPAL:
            listed = self.principals.get(action.resource_id)
            if listed is None:
                return {"deleted": True}
            names = sorted(p.principal for p in listed)
            return {"principal": action.params["principal"], "allowed": action.params["principal"] in names,
                    "allowed_principals": names}
        if action.kind == REQUIRE_ACCEPTANCE:
            return {"acceptance_required": service.acceptance_required}
        endpoint = action.params["endpoint_id"]
        connection = next((c for c in self.connections.get(action.resource_id, []) if c.endpoint_id == endpoint), None)
        return {"endpoint_id": endpoint, "state": connection.state if connection else None}

    def unchanged(self, action: Action) -> bool:
        """Is what this delta acts on still as it was planned on (read right before the write)? Only that part:
        the principal still allowed, acceptance still off, the request still pending. Other principals or
        connections changing meanwhile do not matter to a delta that names its own."""
        observed = self.state(action)
        if observed.get("deleted"):
            return False
        if action.kind == REMOVE_PRINCIPAL:
            return observed.get("allowed") is True
        if action.kind == REQUIRE_ACCEPTANCE:
            return observed.get("acceptance_required") is not True
        if action.kind == REJECT_CONNECTION:
            return observed.get("state") == action.before.get("state")
        return False

    def reached(self, action: Action) -> bool:
        observed = self.state(action)
        if action.kind == REMOVE_PRINCIPAL:
            return observed.get("allowed") is False
        if action.kind == REQUIRE_ACCEPTANCE:
            return observed.get("acceptance_required") is True
        if action.kind == REJECT_CONNECTION:
            return "endpoint_id" in observed and (observed["state"] is None or observed["state"] in _REJECTED_STATES)
        return False
