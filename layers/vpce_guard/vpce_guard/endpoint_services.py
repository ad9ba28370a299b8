"""Reads for the provider side of PrivateLink: the endpoint services an account offers, who may connect to
them, and who did.

An endpoint service belongs to the account that publishes it (through a Network or Gateway Load Balancer),
not to a VPC, so it is read per account-region: every service in a sweep, the named ones for an event. Three
reads, each batched as far as AWS allows:

* DescribeVpcEndpointServiceConfigurations: the services (by id, 200 a call, or all of them, by page);
* DescribeVpcEndpointServicePermissions: the allowed principals of ONE service a call (AWS has no batch form),
  so these go out side by side;
* DescribeVpcEndpointConnections: the connections of all the services at once (a `service-id` filter).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from botocore.exceptions import ClientError

from .aws import side_by_side
from .inventory import Inventory, _chunks, _is_not_found, _paginate, _tags
from .models import AllowedPrincipal, EndpointConnection, ServiceConfiguration, Targets

#: Snapshot parts (rules.SNAPSHOT_PARTS) this module reads: the services with their allowed principals, and
#: their connections.
CONFIGURATIONS = "service_configurations"
CONNECTIONS = "service_connections"
PARTS = frozenset({CONFIGURATIONS, CONNECTIONS})

#: Service states in which nobody can connect any more and nothing can be changed.
GONE_SERVICE_STATES = frozenset({"deleting", "deleted", "failed"})


def service_from_api(raw: dict[str, Any]) -> ServiceConfiguration:
    types = [t.get("ServiceType") for t in raw.get("ServiceType") or () if t.get("ServiceType")]
    return ServiceConfiguration(
        id=raw["ServiceId"],
        name=raw.get("ServiceName", ""),
        state=str(raw.get("ServiceState", "")).lower(),
        type=types[0] if types else "Interface",
        owner_id=raw.get("Owner"),
        acceptance_required=raw.get("AcceptanceRequired"),
        tags=_tags(raw.get("Tags")),
    )


def principal_from_api(raw: dict[str, Any]) -> AllowedPrincipal:
    return AllowedPrincipal(principal=raw.get("Principal", ""), principal_type=raw.get("PrincipalType"))


def connection_from_api(raw: dict[str, Any]) -> EndpointConnection:
    created = raw.get("CreationTimestamp")
    return EndpointConnection(
        endpoint_id=raw.get("VpcEndpointId", ""),
        owner=raw.get("VpcEndpointOwner"),
        state=str(raw.get("VpcEndpointState", "")).lower(),
        created=created.isoformat() if hasattr(created, "isoformat") else created,
    )


class ServiceReader:
    """The endpoint services of one account-region, read through its `Inventory`'s EC2 client."""

    def __init__(self, inv: Inventory) -> None:
        self.ec2 = inv.ec2

    def configurations(self, ids: Iterable[str] | None) -> tuple[list[ServiceConfiguration], list[str]]:
        """The named services (None: all of them); ids that no longer exist come back in the second list."""
        if ids is None:
            return [service_from_api(s) for s in _paginate(
                self.ec2, "describe_vpc_endpoint_service_configurations", "ServiceConfigurations")], []
        found: list[ServiceConfiguration] = []
        missing: list[str] = []
        for batch in _chunks(sorted(set(ids))):
            try:
                found += [service_from_api(s) for s in _paginate(
                    self.ec2, "describe_vpc_endpoint_service_configurations", "ServiceConfigurations",
                    ServiceIds=batch)]
            except ClientError as exc:
                if not _is_not_found(exc):
                    raise
                # One unknown id fails the whole call: ask for each id of this (rare) batch on its own.
                for one in batch:
                    try:
                        found += [service_from_api(s) for s in _paginate(
                            self.ec2, "describe_vpc_endpoint_service_configurations", "ServiceConfigurations",
                            ServiceIds=[one])]
                    except ClientError as inner:
                        if not _is_not_found(inner):
                            raise
                        missing.append(one)
        return found, missing

    def allowed_principals(self, service_id: str) -> tuple[AllowedPrincipal, ...] | None:
        """Who may connect to one service (None: the service is gone)."""
        try:
            return tuple(principal_from_api(p) for p in _paginate(
                self.ec2, "describe_vpc_endpoint_service_permissions", "AllowedPrincipals", ServiceId=service_id))
        except ClientError as exc:
            if _is_not_found(exc):
                return None
            raise

    def connections(self, service_ids: Iterable[str]) -> dict[str, list[EndpointConnection]]:
        """Connections to these services (every state AWS still lists), by service id."""
        out: dict[str, list[EndpointConnection]] = {}
        for batch in _chunks(sorted(set(service_ids))):
            for raw in _paginate(self.ec2, "describe_vpc_endpoint_connections", "VpcEndpointConnections",
                                 Filters=[{"Name": "service-id", "Values": batch}]):
                out.setdefault(raw.get("ServiceId", ""), []).append(connection_from_api(raw))
        return out


def concerned(targets: Targets, parts: frozenset[str]) -> bool:
    """Whether `targets` concern endpoint services the rules read: a sweep's every one, or those an event names."""
    return CONFIGURATIONS in parts and bool(targets.everything or targets.service_ids)


def read_services(inv: Inventory, targets: Targets, parts: frozenset[str]) -> tuple[
        dict[str, ServiceConfiguration], list[str]]:
    """The services `targets` concern (every one for a sweep, the named ones for an event), with their allowed
    principals and, when `parts` asks, their connections; and the named ids that no longer exist."""
    if not concerned(targets, parts):
        return {}, []
    reader = ServiceReader(inv)
    services, missing = reader.configurations(None if targets.everything else targets.service_ids)
    live = [s for s in services if s.state not in GONE_SERVICE_STATES]
    principals = side_by_side(reader.allowed_principals, [s.id for s in live])
    allowed = {s.id: p for s, p in zip(live, principals, strict=True)}
    connections = reader.connections(allowed) if CONNECTIONS in parts and live else {}
    out: dict[str, ServiceConfiguration] = {}
    for s in services:
        update: dict[str, Any] = {}
        if s.id in allowed and allowed[s.id] is not None:
            update["allowed_principals"] = allowed[s.id]
            if CONNECTIONS in parts:
                update["connections"] = tuple(connections.get(s.id, ()))
        out[s.id] = s.model_copy(update=update) if update else s
    return out, missing
