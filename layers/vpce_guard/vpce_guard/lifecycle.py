"""What a change of a ledger status means outside the ledger: for a Security Hub finding, for a finding event
on the bus, and for the people on the notification topic.

Pure: statuses in, decisions out. Every publisher (Security Hub, EventBridge, SNS) decides here, so the three
agree on what counts as a change, and a sweep that changes nothing publishes nothing.

A (resource, rule) moves between four states, its *lifecycle*:

* ``open``: needs attention (non_compliant, dry_run, failed, flapping, pending, conflict);
* ``exempt``: non-compliant, left alone by an agreed exemption;
* ``passed``: compliant, or fixed (remediated);
* ``gone``: the resource no longer exists or left the rule's scope (not_applicable).

skipped and rejected say that nothing could be judged, so they are no state at all: they neither open nor
close anything, and the next verdict is compared with the last real one as far as the caller knows it.
"""

from __future__ import annotations

from enum import StrEnum

from .models import Status


class Lifecycle(StrEnum):
    OPEN = "open"
    EXEMPT = "exempt"
    PASSED = "passed"
    GONE = "gone"


#: A fix met an owner's edit (AWS shows neither the before-state nor the fix): open, like `failed`.
CONFLICT = Status.CONFLICT.value
OPEN_VALUES = frozenset({Status.NON_COMPLIANT.value, Status.DRY_RUN.value, Status.FAILED.value,
                         Status.FLAPPING.value, Status.PENDING.value, CONFLICT})
_LIFECYCLE = {
    **dict.fromkeys(OPEN_VALUES, Lifecycle.OPEN),
    Status.EXEMPT.value: Lifecycle.EXEMPT,
    Status.COMPLIANT.value: Lifecycle.PASSED,
    Status.REMEDIATED.value: Lifecycle.PASSED,
    Status.NOT_APPLICABLE.value: Lifecycle.GONE,
}
#: Lifecycles that a finding is created for; passed and gone only ever update one that exists.
ATTENTION = frozenset({Lifecycle.OPEN, Lifecycle.EXEMPT})


class EventKind(StrEnum):
    """What a finding event says happened (its `detail.change`)."""

    OPENED = "opened"
    REMEDIATED = "remediated"
    FAILED = "failed"
    FLAPPING = "flapping"
    CONFLICT = "conflict"
    EXEMPTED = "exempted"
    CLOSED = "closed"


def _value(status: Status | str | None) -> str | None:
    if status is None:
        return None
    return status.value if isinstance(status, Status) else str(status)


def lifecycle(status: Status | str | None) -> Lifecycle | None:
    """The lifecycle a status puts a finding in; None for no status or one that judges nothing."""
    value = _value(status)
    return None if value is None else _LIFECYCLE.get(value)


def publishes(previous: Status | str | None, current: Status | str) -> bool:
    """Whether Security Hub should hear of this change: the lifecycle moved, and either a finding exists to
    update (the previous lifecycle was open, exempt or passed) or the new one needs attention. A resource
    first seen compliant, or one that never had a finding and is now gone, makes no Security Hub call."""
    before, after = lifecycle(previous), lifecycle(current)
    if after is None or after == before:
        return False
    if before is None or before is Lifecycle.GONE:
        return after in ATTENTION
    return True


def event_kind(previous: Status | str | None, current: Status | str) -> EventKind | None:
    """The finding event a change puts on the bus (None: no event). Each kind is sent when a (resource, rule)
    enters it: opened (non_compliant or dry_run, from anything not open), remediated, failed, flapping,
    conflict, exempted, and closed (compliant or gone after being open or exempt, without a fix by us)."""
    before_value, value = _value(previous), _value(current)
    if value is None or value == before_value:
        return None
    before, after = lifecycle(previous), lifecycle(current)
    direct = {Status.REMEDIATED.value: EventKind.REMEDIATED, Status.FAILED.value: EventKind.FAILED,
              Status.FLAPPING.value: EventKind.FLAPPING, CONFLICT: EventKind.CONFLICT,
              Status.EXEMPT.value: EventKind.EXEMPTED}
    if value in direct:
        return direct[value]
    if value in (Status.NON_COMPLIANT.value, Status.DRY_RUN.value):
        return EventKind.OPENED if before is not Lifecycle.OPEN else None
    if after in (Lifecycle.PASSED, Lifecycle.GONE) and before in ATTENTION:
        return EventKind.CLOSED
    return None


#: Event kinds a person has to act on: the notification topic receives these.
NEEDS_HUMAN = frozenset({EventKind.FAILED, EventKind.FLAPPING, EventKind.CONFLICT})


def needs_human(previous: Status | str | None, current: Status | str) -> bool:
    """Failed (unfixable findings are recorded failed, with the reason), flapping, or a conflict: only when the
    (resource, rule) enters that status, so a finding that stays failed is announced once."""
    return event_kind(previous, current) in NEEDS_HUMAN
