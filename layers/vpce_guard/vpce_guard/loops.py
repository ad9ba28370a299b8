"""Loop protection in code: an event caused by vpce-guard's own write is never acted on.

The EventBridge rule already drops such events (template.yaml, `detail.userIdentity` exclusion); this is
the second fence, for events that reach the function another way (a replay, a manual invoke, a rule
someone else wrote, a pattern edited by hand). A remediator that reacts to its own changes can loop for
ever (users of other tools have paid for millions of invocations that way).

Ours are, matched exactly (a role's name alone proves nothing: any account can create a role of any name):
- the spoke remediation role: a session named `aws.ROLE_SESSION_NAME` of the role `SPOKE_ROLE_NAME` at path
  `/` (CloudTrail's session issuer carries the path), in any account;
- the hub's roles: any role of the hub account under the IAM path the template gives every function role
  (`OWN_ROLE_PATH`), and the running function's own role (from sts:GetCallerIdentity).
A caller that looks like one of these but is not (the spoke role's name at another path or with another
session name, a role under our path in another account) is acted on like anyone, and `lookalike` says why so
the pipeline can alarm: someone may be trying to hide changes behind our name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .models import Trigger

_ASSUMED_ROLE = re.compile(r"arn:aws[a-z-]*:sts::(?P<account>[0-9]{12}):assumed-role/(?P<name>[^/]+)/(?P<session>.+)")
#: The session name vpce-guard gives every spoke role session (aws.ROLE_SESSION_NAME; not imported, so this
#: module stays free of boto3).
SPOKE_SESSION_NAME = "vpce-guard"
#: The spoke template creates its role without a path.
SPOKE_ROLE_PATH = "/"
_ROLE = re.compile(r"arn:aws[a-z-]*:iam::(?P<account>[0-9]{12}):role(?P<path>/(?:[^/]+/)*)(?P<name>[^/]+)")


@dataclass(frozen=True)
class RoleRef:
    account: str
    name: str
    path: str | None = None  # known only from a role ARN (an assumed-role ARN drops the path)
    session: str | None = None  # known only from an assumed-role ARN


def parse_role(arn: str | None) -> RoleRef | None:
    """An assumed-role session ARN or a role ARN → (account, role name[, path]); anything else → None."""
    if not arn:
        return None
    m = _ASSUMED_ROLE.fullmatch(arn)
    if m:
        return RoleRef(m["account"], m["name"], session=m["session"])
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
    actor, issuer = parse_role(trigger.actor_arn), parse_role(trigger.issuer_arn)
    if actor is not None and own.spoke_role_name and _is_spoke_session(actor, issuer, own):
        return (f"change made by the vpce-guard remediation role {actor.name} in {actor.account}; "
                "ignored so a fix never triggers another (no loops)")
    for role in (actor, issuer):
        if role is None or not own.hub_account or role.account != own.hub_account:
            continue
        if role.name in own.hub_role_names:
            return f"change made by vpce-guard: this function's own role {role.name}; ignored to avoid a loop"
        if role.path is not None and own.hub_role_path and role.path == own.hub_role_path:
            return (f"change made by vpce-guard role {role.path}{role.name} of the hub account; "
                    "ignored to avoid a loop")
    return None


def _is_spoke_session(actor: RoleRef | None, issuer: RoleRef | None, own: OwnRoles) -> bool:
    """The spoke role at its path, in a session vpce-guard opened: both ARNs of the event agree on it."""
    return (actor is not None and issuer is not None and actor.account == issuer.account
            and actor.name == issuer.name == own.spoke_role_name
            and issuer.path == SPOKE_ROLE_PATH and actor.session == SPOKE_SESSION_NAME)


def lookalike(trigger: Trigger, own: OwnRoles) -> str | None:
    """Pure: for a change that is not ours, why it looks like ours (None: it does not). Acted on all the same;
    worth an alarm, since a role named like ours in a member account would hide changes from a looser check."""
    if own_change(trigger, own):
        return None
    actor, issuer = parse_role(trigger.actor_arn), parse_role(trigger.issuer_arn)
    for role in (actor, issuer):
        if role is None:
            continue
        if own.spoke_role_name and role.name == own.spoke_role_name:
            return (f"caller {trigger.actor_arn or trigger.issuer_arn} is named like the vpce-guard remediation role "
                    f"but is not it (path {issuer.path if issuer else 'unknown'}, session "
                    f"{actor.session if actor else 'unknown'})")
        if (role.path is not None and own.hub_role_path and role.path == own.hub_role_path
                and own.hub_account and role.account != own.hub_account):
            return f"caller {trigger.issuer_arn} carries vpce-guard's role path {role.path} outside the hub account"
    return None
