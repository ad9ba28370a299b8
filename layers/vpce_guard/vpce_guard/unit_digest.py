"""The digest of an account-region: what lets a repeat sweep skip reading the ledger back.

A sweep re-checks a whole account-region, and nearly always finds it as the last sweep did. To write only what
changed it must know the current state of every (resource, rule) it evaluated (hundreds of state items, read
100 to a BatchGetItem), and to close the findings it no longer sees it must list what is open (a Query). When
nothing changed, both reads only confirm what the last sweep already knew.

So each account-region has one small item, `pk = UNIT#<account>#<region>`, `sk = DIGEST`:

- `version`: a counter that every ledger write of a state item of that account-region adds one to, in the same
  transaction as the state items (ledger.Ledger._transact). It cannot be skipped: a state item cannot change
  without it.
- `digest`: a hash of what a sweep's evaluations were ((resource, rule) → status and reason), stored with
  `digest_version` and `verified_at` by a sweep that read every state item back and wrote what changed, on the
  condition that `version` is exactly what it read plus its own writes: nobody else wrote a state item of the
  account-region meanwhile. A sweep whose state write was refused (a newer observation is stored) or that left
  an unseen finding open because it was written after the sweep began stores none.

A later sweep that reads the item (one GetItem, consistent) and finds `version == digest_version` and the same
digest for its own evaluations knows, without reading them, that every state item is what it would compare
against, and that nothing is open that it did not see (the sweep that stored the digest closed the rest, and
nothing was written since). It then writes only its checks items. Anything else (a different digest, an event
or an operator having written since, a fix to make, a resource gone, a digest older than DIGEST_MAX_AGE) takes
the full path, which stores a new digest.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

#: The sort key of an account-region's digest item.
DIGEST_SK = "DIGEST"
#: A digest this old is not trusted: the sweep after reads every state item back anyway (defence in depth against
#: edits made to the table by hand, which do not count in `version`).
DIGEST_MAX_AGE = timedelta(days=7)
#: Changes when what the digest covers changes, so that a digest of another format never matches.
DIGEST_FORMAT = "v1"


class Evaluation(Protocol):
    """What the digest covers of a ledger record (ledger.LedgerRecord has these)."""

    pk: str
    rule_id: str
    reason: str

    @property
    def current_status(self) -> Any: ...


def unit_pk(account: str, region: str) -> str:
    """The partition of an account-region's digest item."""
    return f"UNIT#{account}#{region}"


def digest_of(evaluations: Iterable[Evaluation]) -> str:
    """A hash of the evaluations' (resource, rule) → (status, reason), independent of their order."""
    lines = sorted(f"{e.pk}\x1f{e.rule_id}\x1f{getattr(e.current_status, 'value', e.current_status)}\x1f{e.reason}"
                   for e in evaluations)
    h = hashlib.sha256(DIGEST_FORMAT.encode())
    for line in lines:
        h.update(b"\x1e" + line.encode())
    return h.hexdigest()


@dataclass(frozen=True)
class UnitDigest:
    """An account-region's digest item as read (all zero and empty when there is none yet)."""

    version: int = 0
    digest: str | None = None
    digest_version: int | None = None
    verified_at: datetime | None = None

    @classmethod
    def from_item(cls, item: Mapping[str, Any] | None) -> UnitDigest:
        if not item:
            return cls()
        verified = item.get("verified_at")
        return cls(version=int(item.get("version", 0)), digest=item.get("digest"),
                   digest_version=int(item["digest_version"]) if "digest_version" in item else None,
                   verified_at=datetime.fromisoformat(str(verified).replace("Z", "+00:00")) if verified else None)

    def vouches_for(self, digest: str, now: datetime) -> bool:
        """Whether the ledger's state items of the account-region are known to be what `digest` says, and nothing
        else is open: the same digest, stored by a sweep that read them back, no state written since, recent."""
        return (self.digest == digest and self.digest_version == self.version and self.verified_at is not None
                and now - self.verified_at <= DIGEST_MAX_AGE)
