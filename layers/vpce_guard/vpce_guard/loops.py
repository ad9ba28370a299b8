"""Loop protection in code: an event caused by vpce-guard's own write is never acted on.

The EventBridge rule already drops such events (template.yaml, `detail.userIdentity` exclusion); this is
the second fence, for events that reach the function another way (a replay, a manual invoke, a rule
someone else wrote, a pattern edited by hand). A remediator that reacts to its own changes can loop for
ever (users of other tools have paid for millions of invocations that way).

Ours are: the function's own role (from sts:GetCallerIdentity), any role of the hub account under the IAM
path the template gives every function role (`OWN_ROLE_PATH`, e.g. the rollback function's role), and the
spoke remediation role (`SPOKE_ROLE_NAME`) in any account.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .models import Trigger

_ASSUMED_ROLE = re.compile(r"arn:aws[a-z-]*:sts::(?P<account>[0-9]{12}):assumed-role/(?P<name>[^/]+)/.+")
_ROLE = re.compile(r"arn:aws[a-z-]*:iam::(?P<account>[0-9]{12}):role(?P<path>/(?:[^/]+/)*)(?P<name>[^/]+)")


@dataclass(frozen=True)
class RoleRef:
    account: str
    name: str
    path: str | None = None  # known only from a role ARN (an assumed-role ARN drops the path)


def parse_role(arn: str | None) -> RoleRef | None:
    """An assumed-role session ARN or a role ARN → (account, role name[, path]); anything else → None."""
    if not arn:
        return None
    m = _ASSUMED_ROLE.fullmatch(arn)
    if m:
        return RoleRef(m["account"], m["name"])
    m = _ROLE.fullmatch(arn)
    if m:
        return RoleRef(m["account"], m["name"], m["path"])
    return None


@dataclass(frozen=True)
class OwnRoles:
    hub_account: str | None
    #: Role names of the hub functions known for certain (the running function's own role).
    hub_role_names: frozenset[str] = frozenset()
    #: IAM path every hub function role carries (template Globals RolePath).
    hub_role_path: str = "/vpce-guard/"
    spoke_role_name: str = ""


def own_change(trigger: Trigger, own: OwnRoles) -> str | None:
    """Pure: why this event was caused by vpce-guard itself, or None if it was not."""
    for arn in (trigger.actor_arn, trigger.issuer_arn):
        role = parse_role(arn)
        if role is None:
            continue
        if own.spoke_role_name and role.name == own.spoke_role_name:
            return (f"change made by the vpce-guard remediation role {role.name} in {role.account}; "
                    "ignored so a fix never triggers another (no loops)")
        if own.hub_account and role.account == own.hub_account:
            if role.name in own.hub_role_names:
                return f"change made by vpce-guard: this function's own role {role.name}; ignored to avoid a loop"
            if role.path is not None and own.hub_role_path and role.path == own.hub_role_path:
                return (f"change made by vpce-guard role {role.path}{role.name} of the hub account; "
                        "ignored to avoid a loop")
    return None
