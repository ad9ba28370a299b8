"""Shared by the rules that need VPC DNS: the fix that turns DNS attributes on, in the order AWS requires.

AWS takes one attribute per ModifyVpcAttribute call and enables DNS hostnames only once DNS support is on,
so the fix is at most two actions: support first, then hostnames. moto accepts both in one call and in
either order; the order here is ours to keep.
"""

from __future__ import annotations

from ..models import Action, Vpc

SUPPORT = "enableDnsSupport"
HOSTNAMES = "enableDnsHostnames"


def missing_attributes(vpc: Vpc, *, hostnames: bool) -> list[str]:
    """Attributes that are off (support first). Unknown (None) values are not reported as off."""
    out = [SUPPORT] if vpc.dns_support is False else []
    if hostnames and vpc.dns_hostnames is False:
        out.append(HOSTNAMES)
    return out


def unknown_attributes(vpc: Vpc, *, hostnames: bool) -> list[str]:
    out = [SUPPORT] if vpc.dns_support is None else []
    if hostnames and vpc.dns_hostnames is None:
        out.append(HOSTNAMES)
    return out


def enable_actions(vpc: Vpc, attributes: list[str]) -> list[Action]:
    """One `enable_vpc_attribute` action per attribute, support before hostnames."""
    ordered = [a for a in (SUPPORT, HOSTNAMES) if a in attributes]
    return [
        Action(kind="enable_vpc_attribute", resource_id=vpc.id, params={"attribute": a},
               before={a: False}, after={a: True}, summary=f"turn {a} on in {vpc.id}")
        for a in ordered
    ]


def not_owner_reason(vpc: Vpc, account: str) -> str | None:
    """Why vpce-guard cannot change this VPC's attributes (a participant of a shared VPC), or None."""
    if vpc.owner_id and vpc.owner_id != account:
        return f"{vpc.id} is owned by account {vpc.owner_id} (shared VPC); only its owner can change DNS attributes"
    return None
