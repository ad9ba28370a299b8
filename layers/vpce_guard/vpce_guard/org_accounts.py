"""Is this account in the organization? Asked of AWS Organizations (DescribeAccount) from the hub.

The endpoint-service rules judge principals by account: `arn:aws:iam::<account>:root` is an insider only if
that account belongs to an allowed organization. Configured accounts (`OrgAccountIds`), the account being
evaluated and named partners need no question; every other account is looked up once:

* DescribeAccount answers with the account's ARN, `arn:aws:organizations::<management>:account/<org id>/<id>`,
  so the organization comes with it; AccountNotFoundException means "not in this organization";
* members are cached for an hour per process (accounts rarely leave an organization, and a warm function
  should not ask again on every event);
* non-members are never cached: an account can join the organization at any time, and a stale "outsider"
  could make the opt-in fix remove an insider. An outsider costs one call per evaluation, which is the
  drift case, rare by design;
* when Organizations cannot be asked (the hub is neither the management account nor a delegated
  administrator, or Organizations is not in use), the accounts stay unknown and the rules say so and never
  act on them.

DescribeAccount only knows the hub's own organization: accounts of another allowed organization must be
listed in OrgAccountIds (or as partners) to count as insiders.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from .aws import is_transient, side_by_side
from .models import Snapshot

if TYPE_CHECKING:
    from .rules import RuleContext

#: Seconds a member account is remembered.
MEMBER_CACHE_SECONDS = 3600.0

_MEMBERS: dict[str, tuple[float, str]] = {}
_LOCK = threading.Lock()


class _Unanswerable(Exception):
    """Organizations refused the question itself (permissions, not in use): no account can be answered."""


def organizations_of(org: Callable[[], Any], accounts: Iterable[str], *,
                     clock: Callable[[], float] = time.monotonic) -> tuple[dict[str, str | None], str | None]:
    """For each account: its organization id (a member of the hub's organization) or None (not a member).
    Accounts that could not be looked up are left out, and the second value says why."""
    wanted = sorted(set(accounts))
    out: dict[str, str | None] = {}
    now = clock()
    with _LOCK:
        for account in wanted:
            cached = _MEMBERS.get(account)
            if cached is not None and now - cached[0] < MEMBER_CACHE_SECONDS:
                out[account] = cached[1]
    unknown = [a for a in wanted if a not in out]
    if not unknown:
        return out, None
    try:
        client = org()
        answers = side_by_side(lambda account: _ask(client, account), unknown)
    except _Unanswerable as exc:
        return out, str(exc)
    except ClientError as exc:
        if is_transient(exc):
            raise  # the run fails and is retried, rather than judging principals it could not look up
        return out, f"organizations:DescribeAccount failed: {exc}"
    with _LOCK:
        for account, org_id in zip(unknown, answers, strict=True):
            out[account] = org_id
            if org_id is not None:
                _MEMBERS[account] = (now, org_id)
    return out, None


def _ask(client: Any, account: str) -> str | None:
    try:
        arn = client.describe_account(AccountId=account)["Account"]["Arn"]
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "AccountNotFoundException":
            return None
        if code in ("AccessDeniedException", "AWSOrganizationsNotInUseException"):
            raise _Unanswerable(f"cannot ask AWS Organizations whether accounts are members ({code}): "
                                "list them in OrgAccountIds or EndpointServicePartners") from exc
        raise
    # arn:aws:organizations::<management account>:account/<org id>/<account id>
    parts = str(arn).split(":", 5)[-1].split("/")
    return parts[1] if len(parts) == 3 and parts[0] == "account" else None


def with_account_orgs(snapshot: Snapshot, ctx: RuleContext, org: Callable[[], Any]) -> Snapshot:
    """The snapshot with the organization of every account its endpoint services name that the configuration
    cannot place (none to place: unchanged, no call)."""
    from .rules._service_principals import accounts_to_look_up

    accounts = accounts_to_look_up(snapshot, ctx)
    if not accounts:
        return snapshot
    found, unread = organizations_of(org, accounts)
    return snapshot.model_copy(update={"account_orgs": found, "account_orgs_unread": unread})


def reset_caches() -> None:
    """For tests and in-process runs: forget the members remembered."""
    with _LOCK:
        _MEMBERS.clear()
