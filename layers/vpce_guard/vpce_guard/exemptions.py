"""Exemptions: a central registry, in the hub, of what vpce-guard must leave alone, why, for whom and until when.

Why a registry and not tags: a tag is set by the account owner, the very person a guardrail is for. Here an
exemption is an item in a DynamoDB table in the hub that only operators can write (template.yaml: the
functions may only read it; an optional resource policy denies writes to everyone but named admins). A tag
on a resource counts only as a *request*, honoured where a registry entry says so (`tag_request`).

An exemption covers one rule or all (`*`) for one scope:

=========  ===============================  ================================
scope      target                           covers
=========  ===============================  ================================
resource   an id (vpce-…, rtb-…, vpc-…)     that resource in that account
vpc        a VPC id                         the VPC and everything in it
account    a 12-digit account id            every resource of the account
ou         an OU id (ou-…)                  every account below that OU
=========  ===============================  ================================

Every entry has a reason, an owner and an expiry. Expiry is checked at evaluation time (an expired entry
stops applying the second it expires) and is also the table's TTL attribute, so DynamoDB deletes it later.

Table layout (no scan on the hot path): entries for resources, VPCs and accounts sit in the account's
partition, `pk = ACCOUNT#<account>`; OU entries all sit in one partition, `pk = OU`. Deciding about one
account-region is one Query per partition, and OU membership (organizations:ListParents, walked up to the
root) is looked up only when an OU entry exists, then cached.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from aws_lambda_powertools import Logger
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

logger = Logger(service="vpce-guard", child=True)

ALL_RULES = "*"
OU_PARTITION = "OU"
#: Longest exemption the CLI grants; longer needs a new entry (and a new decision) when it runs out.
MAX_DAYS = 366
#: How long an account's OU path is trusted (accounts move between OUs rarely).
OU_CACHE_SECONDS = 3600
#: How long a warm function reuses what it read of the registry (a new exemption applies within this time;
#: expiry is still checked against the clock at every evaluation).
REGISTRY_CACHE_SECONDS = 60

_RESOURCE_ID = re.compile(r"[a-z]+-(?:[0-9a-f]{8}|[0-9a-f]{17})")
_VPC_ID = re.compile(r"vpc-(?:[0-9a-f]{8}|[0-9a-f]{17})")
_ACCOUNT = re.compile(r"[0-9]{12}")
_OU_ID = re.compile(r"ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}")
_RULE_ID = re.compile(r"\*|[a-z0-9][a-z0-9-]{0,127}")


class Scope(StrEnum):
    RESOURCE = "resource"
    VPC = "vpc"
    ACCOUNT = "account"
    OU = "ou"


_TARGET_PATTERN = {Scope.RESOURCE: _RESOURCE_ID, Scope.VPC: _VPC_ID, Scope.ACCOUNT: _ACCOUNT, Scope.OU: _OU_ID}
#: Lower is more specific; the most specific matching entry is the one recorded.
_RANK = {Scope.RESOURCE: 0, Scope.VPC: 1, Scope.ACCOUNT: 2, Scope.OU: 3}


class Exemption(BaseModel):
    """One registry entry."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    scope: Scope
    target: str
    #: Account of a resource or VPC entry (ids are unique per account); equals `target` for account entries.
    account: str | None = None
    rule_id: str = ALL_RULES
    reason: str = Field(min_length=3, max_length=1000)
    owner: str = Field(min_length=1, max_length=256)
    #: Epoch seconds; also the table's TTL attribute.
    expires_at: int
    created_at: str | None = None
    created_by: str | None = None
    #: True: applies only to resources whose owner asked for it with the exemption tag (see docs/operations.md).
    tag_request: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> Exemption:
        if not _TARGET_PATTERN[self.scope].fullmatch(self.target):
            raise ValueError(f"{self.target!r} is not a valid {self.scope.value} id")
        if not _RULE_ID.fullmatch(self.rule_id):
            raise ValueError(f"{self.rule_id!r} is not a rule id (or '*')")
        if self.scope is Scope.ACCOUNT and self.account not in (None, self.target):
            raise ValueError("an account exemption's account is its target")
        if self.scope in (Scope.RESOURCE, Scope.VPC) and not (self.account and _ACCOUNT.fullmatch(self.account)):
            raise ValueError(f"a {self.scope.value} exemption needs the 12-digit account that owns it")
        if self.scope is Scope.OU and self.account is not None:
            raise ValueError("an OU exemption names no account")
        return self

    # -- storage ---------------------------------------------------------------------------------------
    @property
    def pk(self) -> str:
        return OU_PARTITION if self.scope is Scope.OU else f"ACCOUNT#{self.account or self.target}"

    @property
    def sk(self) -> str:
        return f"{self.scope.value}#{self.target}#{self.rule_id}"

    def to_item(self) -> dict[str, Any]:
        item = {"pk": self.pk, "sk": self.sk, **self.model_dump(mode="json", exclude_none=True)}
        if self.scope is Scope.ACCOUNT:
            item["account"] = self.target
        return item

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Exemption:
        data = {k: v for k, v in item.items() if k not in ("pk", "sk")}
        if "expires_at" in data:
            data["expires_at"] = int(data["expires_at"])  # DynamoDB numbers come back as Decimal
        return cls.model_validate(data)

    # -- meaning ---------------------------------------------------------------------------------------
    def active(self, now: datetime) -> bool:
        return now.timestamp() < self.expires_at

    def covers_rule(self, rule_id: str) -> bool:
        return self.rule_id in (ALL_RULES, rule_id)

    @property
    def expires(self) -> str:
        return datetime.fromtimestamp(self.expires_at, UTC).isoformat().replace("+00:00", "Z")

    def describe(self) -> str:
        rule = "all rules" if self.rule_id == ALL_RULES else f"rule {self.rule_id}"
        how = " (requested by tag, allowed by the registry)" if self.tag_request else ""
        return (f"exempt by {self.scope.value} {self.target} from {rule} until {self.expires}{how}: "
                f"{self.reason} (owner {self.owner})")

    def summary(self) -> dict[str, Any]:
        return {"scope": self.scope.value, "target": self.target, "rule_id": self.rule_id, "reason": self.reason,
                "owner": self.owner, "expires": self.expires, "tag_request": self.tag_request}


def tag_requests(tags: Mapping[str, str], tag_key: str, rule_id: str) -> bool:
    """Does the resource's exemption tag ask for this rule? Value `true`/`all`/`*`, or rule ids, comma-separated."""
    value = tags.get(tag_key)
    if value is None:
        return False
    wanted = {part.strip().lower() for part in value.split(",") if part.strip()}
    return bool(wanted & {"true", "all", ALL_RULES, rule_id})


def match(entries: Iterable[Exemption], *, rule_id: str, account: str, resource_id: str, vpc_id: str | None,
          ou_path: tuple[str, ...], tags: Mapping[str, str], now: datetime,
          tag_key: str = "vpce-guard:exempt") -> Exemption | None:
    """Pure: the exemption that covers this (rule, resource) now, or None.

    The most specific scope wins (resource, then VPC, then account, then the nearest OU); among equals, an
    entry for this rule beats one for all rules, then the later expiry.
    """
    best: tuple[tuple[int, bool, int], Exemption] | None = None
    for e in entries:
        if not e.active(now) or not e.covers_rule(rule_id):
            continue
        if e.scope is Scope.RESOURCE:
            hit, rank = e.account == account and e.target == resource_id, 0
        elif e.scope is Scope.VPC:
            hit, rank = e.account == account and e.target in (vpc_id, resource_id), 1
        elif e.scope is Scope.ACCOUNT:
            hit, rank = e.target == account, 2
        else:
            hit = e.target in ou_path
            rank = _RANK[Scope.OU] + (ou_path.index(e.target) if hit else 0)
        if not hit or (e.tag_request and not tag_requests(tags, tag_key, rule_id)):
            continue
        key = (rank, e.rule_id == ALL_RULES, -e.expires_at)
        if best is None or key < best[0]:
            best = (key, e)
    return best[1] if best else None


# ------------------------------------------------------------------------------------------------ OU paths
_OU_PATHS: dict[str, tuple[float, tuple[str, ...]]] = {}


def ou_path(org: Any, account: str, *, clock: Callable[[], float] = time.monotonic) -> tuple[str, ...]:
    """The OUs above an account, nearest first (organizations:ListParents up to the root), cached an hour."""
    cached = _OU_PATHS.get(account)
    if cached is not None and clock() - cached[0] < OU_CACHE_SECONDS:
        return cached[1]
    path: list[str] = []
    child = account
    for _ in range(8):  # OUs nest at most five deep below the root
        parents = org.list_parents(ChildId=child).get("Parents", [])
        if not parents or parents[0].get("Type") == "ROOT":
            break
        child = parents[0]["Id"]
        path.append(child)
    _OU_PATHS[account] = (clock(), tuple(path))
    return tuple(path)


def reset_caches() -> None:
    """For tests: forget cached OU paths."""
    _OU_PATHS.clear()


# ------------------------------------------------------------------------------------------------ registry
@dataclass
class AccountExemptions:
    """Everything that may exempt something in one account, as data for the planner."""

    account: str
    entries: list[Exemption]
    ou_path: tuple[str, ...] = ()


class ExemptionRegistry:
    """Reads (functions) and writes (operators, through `vpce_guard.admin`) the exemptions table."""

    def __init__(self, table: Any, org_client: Callable[[], Any] | None = None, *,
                 max_age: float = REGISTRY_CACHE_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.table = table
        self._org_client = org_client
        self._max_age = max_age
        self._clock = clock
        self._cache: dict[str, tuple[float, list[Exemption]]] = {}

    def for_account(self, account: str) -> AccountExemptions:
        """Entries of the account's partition plus the OU entries that cover it (at most two Queries, each
        reused for `max_age` seconds, plus the cached OU walk when an OU entry exists)."""
        entries = list(self._cached(f"ACCOUNT#{account}"))
        ou_entries = self._cached(OU_PARTITION)
        path: tuple[str, ...] = ()
        if ou_entries and self._org_client is not None:
            path = ou_path(self._org_client(), account)
            entries += [e for e in ou_entries if e.target in path]
        return AccountExemptions(account, entries, path)

    def _cached(self, pk: str) -> list[Exemption]:
        now = self._clock()
        hit = self._cache.get(pk)
        if hit is not None and now - hit[0] < self._max_age:
            return hit[1]
        entries = self._partition(pk)
        self._cache[pk] = (now, entries)
        return entries

    def put(self, exemption: Exemption) -> None:
        """Add or renew (same scope, target and rule: the entry is replaced)."""
        self.table.put_item(Item=exemption.to_item())

    def expire(self, exemption: Exemption, *, now: datetime, by: str) -> Exemption:
        """End an exemption now (kept, with who ended it, until the TTL removes it)."""
        moment = int(now.timestamp())
        self.table.update_item(
            Key={"pk": exemption.pk, "sk": exemption.sk},
            UpdateExpression="SET expires_at = :now, expired_by = :by",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues={":now": moment, ":by": by},
        )
        return exemption.model_copy(update={"expires_at": moment})

    def get(self, scope: Scope, target: str, rule_id: str, account: str | None = None) -> Exemption | None:
        probe = Exemption.model_construct(scope=scope, target=target, rule_id=rule_id, account=account)
        item = self.table.get_item(Key={"pk": probe.pk, "sk": probe.sk}, ConsistentRead=True).get("Item")
        return Exemption.from_item(item) if item else None

    def list(self, account: str | None = None) -> list[Exemption]:
        """One account's entries (Query), or every entry (Scan: an operator listing a small table)."""
        if account:
            return self._partition(f"ACCOUNT#{account}")
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {}
        while True:
            resp = self.table.scan(**kwargs)
            items += resp.get("Items", [])
            if "LastEvaluatedKey" not in resp:
                break
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
        return [e for e in (self._parse(i) for i in items) if e is not None]

    def _partition(self, pk: str) -> list[Exemption]:
        from boto3.dynamodb.conditions import Key

        kwargs: dict[str, Any] = {"KeyConditionExpression": Key("pk").eq(pk)}
        out: list[Exemption] = []
        while True:
            resp = self.table.query(**kwargs)
            out += [e for e in (self._parse(i) for i in resp.get("Items", [])) if e is not None]
            if "LastEvaluatedKey" not in resp:
                return out
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    @staticmethod
    def _parse(item: Mapping[str, Any]) -> Exemption | None:
        try:
            return Exemption.from_item(item)
        except ValidationError as exc:
            # Written around the CLI: say so loudly; it cannot exempt anything until it is fixed.
            logger.error("ignoring a malformed exemption", extra={"pk": item.get("pk"), "sk": item.get("sk"),
                                                                  "error": str(exc)})
            return None
