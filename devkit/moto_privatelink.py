"""Endpoint-service connections for moto, which simulates the services and their permissions but not who
connected to them.

moto 5.2.5 answers CreateVpcEndpointServiceConfiguration, ModifyVpcEndpointServiceConfiguration (including
AcceptanceRequired), Describe/ModifyVpcEndpointServicePermissions, but DescribeVpcEndpointConnections,
AcceptVpcEndpointConnections and RejectVpcEndpointConnections are not implemented (in-process they raise
NotImplementedError; a moto server answers 500), and an endpoint to a service that requires acceptance is
`available` at once. `install()` adds these three calls to moto, computed from moto's own state, as AWS
documents them:

* a consumer endpoint (in any account) whose ServiceName is one of the caller's services is a connection to
  it; its owner is the consumer's account, its state the endpoint's state;
* an endpoint created to a service with AcceptanceRequired is `pendingAcceptance` until the owner accepts it
  (`available`) or rejects it (`rejected`); the consumer's DescribeVpcEndpoints shows the same state;
* Accept/Reject name endpoints by id; an id that is not a connection to the service comes back in
  `Unsuccessful` (InvalidVpcEndpointId.NotFound), the call itself succeeds; an unknown service fails the call.

Used wherever the project runs against moto (devkit/moto_extensions.py installs it): the in-process tests,
the benchmarks, and the moto server of the demo and the end-to-end tests. Response shapes not produced here
(paging, other errors) are tested with botocore's Stubber.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

_INSTALLED = False
_LOCK = threading.Lock()

PENDING = "pendingAcceptance"


def _backends_in(region: str) -> Iterator[Any]:
    """Every account's EC2 backend of one region that exists already (none is created by looking)."""
    from moto.ec2.models import ec2_backends

    for account_backends in list(ec2_backends.values()):
        backend = dict.get(account_backends, region)
        if backend is not None:
            yield backend


def _service_named(region: str, service_name: str) -> Any:
    for backend in _backends_in(region):
        for config in backend.configurations.values():
            if config.service_name == service_name:
                return config
    return None


def _connections_to(config: Any, region: str) -> list[Any]:
    return [ep for backend in _backends_in(region) for ep in list(backend.vpc_end_points.values())
            if ep.service_name == config.service_name]


def _connection(ep: Any, config: Any) -> dict[str, Any]:
    return {"ServiceId": config.id, "VpcEndpointId": ep.id, "VpcEndpointOwner": ep.ec2_backend.account_id,
            "VpcEndpointState": ep.state, "CreationTimestamp": ep.creation_timestamp,
            "DnsEntries": ep.dns_entries or [], "NetworkLoadBalancerArns": list(config.network_load_balancer_arns),
            "GatewayLoadBalancerArns": list(config.gateway_load_balancer_arns), "IpAddressType": "ipv4",
            "VpcEndpointConnectionId": f"vpce-con-{ep.id.removeprefix('vpce-')}",
            "VpcEndpointRegion": config.ec2_backend.region_name}


def describe_vpc_endpoint_connections(self: Any) -> Any:
    from moto.core.responses import ActionResult

    filters = self._filters_from_querystring()
    wanted = {k: set(v) for k, v in filters.items()}
    out = []
    for config in self.ec2_backend.configurations.values():
        if "service-id" in wanted and config.id not in wanted["service-id"]:
            continue
        for ep in _connections_to(config, self.region):
            row = _connection(ep, config)
            if ("vpc-endpoint-id" in wanted and ep.id not in wanted["vpc-endpoint-id"]) or (
                    "vpc-endpoint-owner" in wanted and row["VpcEndpointOwner"] not in wanted["vpc-endpoint-owner"]) or (
                    "vpc-endpoint-state" in wanted and ep.state not in wanted["vpc-endpoint-state"]):
                continue
            out.append(row)
    return ActionResult({"VpcEndpointConnections": out})


def _decide(self: Any, new_state: str) -> Any:
    from moto.core.responses import ActionResult
    from moto.ec2.exceptions import UnknownVpcEndpointService

    service_id = self._get_param("ServiceId")
    config = self.ec2_backend.configurations.get(service_id)
    if config is None:
        raise UnknownVpcEndpointService(service_id)
    connected = {ep.id: ep for ep in _connections_to(config, self.region)}
    unsuccessful = []
    for endpoint_id in self._get_param("VpcEndpointIds", []):
        ep = connected.get(endpoint_id)
        if ep is None:
            unsuccessful.append({"ResourceId": endpoint_id, "Error": {
                "Code": "InvalidVpcEndpointId.NotFound",
                "Message": f"The Vpc Endpoint Id '{endpoint_id}' does not exist"}})
        elif new_state == "available" and ep.state != PENDING:
            unsuccessful.append({"ResourceId": endpoint_id, "Error": {
                "Code": "InvalidState", "Message": f"Endpoint {endpoint_id} is {ep.state}, not {PENDING}"}})
        else:
            ep.state = new_state
    return ActionResult({"Unsuccessful": unsuccessful})


def accept_vpc_endpoint_connections(self: Any) -> Any:
    return _decide(self, "available")


def reject_vpc_endpoint_connections(self: Any) -> Any:
    return _decide(self, "rejected")


def install() -> None:
    """Add the connection calls to moto (idempotent; affects every moto mock and server in this process)."""
    global _INSTALLED
    with _LOCK:
        if _INSTALLED:
            return
        from moto.ec2.models.vpcs import VPCBackend
        from moto.ec2.responses.vpc_service_configuration import VPCEndpointServiceConfiguration

        for fn in (describe_vpc_endpoint_connections, accept_vpc_endpoint_connections,
                   reject_vpc_endpoint_connections):
            setattr(VPCEndpointServiceConfiguration, fn.__name__, fn)
        create = VPCBackend.create_vpc_endpoint

        def create_vpc_endpoint(self: Any, *args: Any, **kwargs: Any) -> Any:
            ep = create(self, *args, **kwargs)
            config = _service_named(self.region_name, ep.service_name)
            if config is not None and config.acceptance_required:
                ep.state = PENDING
            return ep

        VPCBackend.create_vpc_endpoint = create_vpc_endpoint  # type: ignore[method-assign]
        _INSTALLED = True

