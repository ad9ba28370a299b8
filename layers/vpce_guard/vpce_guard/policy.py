"""VPC endpoint policies: is every Allow confined to our organization, and the fix when it is not.

Pure functions only (no boto3, no I/O), so the rule engine, the planner and the tests can all call
them freely and the property tests can hammer them with thousands of generated policies.

Design choices, and why:

* **Judge statements the way IAM evaluates them.** A statement's conditions are ANDed, so one
  confining condition (say ``aws:PrincipalOrgID``) confines the statement whatever else sits next
  to it (``aws:ResourceOrgID``, ``ArnLike`` on a tag, ...). Key-by-key checks are what gave other
  tools their false positives on AWS's own data-perimeter policies.
* **Be conservative only in the safe direction.** When we cannot prove that an Allow is confined,
  we call it open. The worst outcome is then an extra, harmless Deny statement, never an endpoint
  reported compliant while outsiders can use it.
* **The fix only ever adds.** :func:`confine` appends one Deny statement and never edits or removes
  what the account owner wrote, so it can only take access away from principals outside the allowed
  organizations (and never from AWS service principals, which endpoints legitimately carry).
* **AWS-owned resources may be exempt, and only by exact bucket.** Instances in private subnets
  install packages through the S3 endpoint without credentials (yum/dnf read the Amazon Linux
  repositories anonymously), so a perimeter that denies anonymous callers everywhere breaks patching.
  Callers pass the exempt resource ARNs (``aws_owned_resource_arns``); an Allow that reaches only
  those is not an opening, and the guard leaves them out (``NotResource``). Each pattern must name
  one bucket without wildcards (:func:`check_aws_owned_pattern`): a wildcard in a bucket name would
  exempt buckets anyone can create, and make the endpoint a way out for data.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

GUARD_SID: str = "VpceGuardDenyOutsideOrg"
#: Hard AWS limit on an endpoint policy document, whitespace included; not adjustable.
MAX_POLICY_CHARS: int = 20480

#: What AWS applies when an endpoint has no policy (and what DescribeVpcEndpoints shows for it).
_DEFAULT_POLICY: dict[str, Any] = {
    "Version": "2008-10-17",
    "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}],
}

_ORG_ID_KEY = "aws:principalorgid"
_ORG_PATHS_KEY = "aws:principalorgpaths"
_ACCOUNT_KEY = "aws:principalaccount"
_PRINCIPAL_ARN_KEY = "aws:principalarn"
_IS_SERVICE_KEY = "aws:principalisawsservice"

#: Characters that make a pattern match more than its literal text: IAM wildcards, and the start
#: of a policy variable (``${aws:username}``), whose value we cannot know.
_WILDCARD_CHARS = frozenset("*?$")


#: An exempt pattern: an S3 ARN whose bucket name is spelled out in full (lower-case letters, digits, dots,
#: hyphens; 3 to 63 characters), optionally followed by an object-key pattern that may use ``*``/``?``.
#: Policy variables (``${...}``) and whitespace are refused: their meaning is not the text we can check.
_AWS_OWNED_PATTERN_RE = re.compile(r"arn:aws(?:-[a-z]+)*:s3:::[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](?:/[^\s$]*)?")


class PolicyError(ValueError):
    """The text is not JSON, or the JSON is not an IAM policy document we can reason about."""


@dataclass(frozen=True)
class PolicyVerdict:
    """Result of :func:`analyse`.

    ``reasons`` holds one human-readable line per open Allow statement, so a finding can tell the
    account owner exactly which statement to look at; it is empty when ``compliant``.
    ``notes`` holds one line per Allow that counts as confined only because everything it opens to
    outsiders is an exempt AWS-owned resource, so the ledger says why such a policy passed.
    """

    compliant: bool
    reasons: tuple[str, ...]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ConfineResult:
    """Result of :func:`confine`.

    ``document`` is the compact JSON to write when ``changed``; ``refused`` says why no fix can be
    written (the document is never truncated to make it fit).
    """

    changed: bool
    document: str | None
    refused: str | None = None


# --------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------


def _first_line(exc: BaseException, limit: int = 200) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:limit]


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``json`` hook: refuse duplicate keys instead of silently keeping the last one.

    IAM's own handling of duplicate keys is not something we can mirror reliably, and judging a
    policy by a different reading than AWS's could call an open policy compliant.
    """
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise PolicyError(f"duplicate key {key!r} in policy JSON")
        seen[key] = value
    return seen


def _check_string_or_list(stmt_no: int, stmt: dict[str, Any], element: str) -> None:
    if element not in stmt:
        return
    value = stmt[element]
    items = value if isinstance(value, list) else [value]
    if not all(isinstance(item, str) for item in items):
        raise PolicyError(f"statement {stmt_no}: {element} must be a string or a list of strings")


def _check_statement(stmt_no: int, stmt: Any) -> None:
    """Shape checks for what the analysis relies on; anything looser would be guessed at."""
    if not isinstance(stmt, dict):
        raise PolicyError(f"statement {stmt_no} is not a JSON object")
    if stmt.get("Effect") not in ("Allow", "Deny"):
        raise PolicyError(f"statement {stmt_no}: Effect must be 'Allow' or 'Deny', not {stmt.get('Effect')!r}")
    for element in ("Action", "NotAction", "Resource", "NotResource"):
        _check_string_or_list(stmt_no, stmt, element)
    for element in ("Principal", "NotPrincipal"):
        if element not in stmt:
            continue
        principal = stmt[element]
        if isinstance(principal, str):
            continue
        if not isinstance(principal, dict):
            raise PolicyError(f"statement {stmt_no}: {element} must be '*' or an object")
        for values in principal.values():
            items = values if isinstance(values, list) else [values]
            if not all(isinstance(item, str) for item in items):
                raise PolicyError(f"statement {stmt_no}: {element} values must be strings")
    if "Condition" in stmt:
        condition = stmt["Condition"]
        if not isinstance(condition, dict) or not all(isinstance(b, dict) for b in condition.values()):
            raise PolicyError(f"statement {stmt_no}: Condition must map operators to objects")


def parse_policy(doc: str | dict | None) -> dict:
    """Return the policy as a fresh ``dict`` (the caller may mutate it freely).

    ``None`` or an empty string mean "no policy", which AWS treats as full access, so they become
    the AWS default policy rather than an error: such endpoints are the most open of all.
    Raises :class:`PolicyError` for bad JSON or anything that is not a policy document.
    """
    if doc is None or (isinstance(doc, str) and not doc.strip()):
        return json.loads(json.dumps(_DEFAULT_POLICY))
    if isinstance(doc, str):
        try:
            parsed = json.loads(doc, object_pairs_hook=_reject_duplicate_keys)
        except PolicyError:
            raise
        except ValueError as exc:  # JSONDecodeError, and numbers longer than Python converts (4,300 digits)
            raise PolicyError(f"policy is not valid JSON: {_first_line(exc)}") from exc
        except RecursionError as exc:
            raise PolicyError("policy is not readable: nested too deeply") from exc
    elif isinstance(doc, dict):
        try:
            # A JSON round trip both deep-copies and proves the dict can be written back to AWS.
            parsed = json.loads(json.dumps(doc))
        except (TypeError, ValueError) as exc:
            raise PolicyError(f"policy is not JSON-serialisable: {_first_line(exc)}") from exc
        except RecursionError as exc:
            raise PolicyError("policy is not readable: nested too deeply") from exc
    else:
        raise PolicyError(f"policy must be a JSON string or a dict, not {type(doc).__name__}")
    if not isinstance(parsed, dict):
        raise PolicyError("policy JSON must be an object")
    if "Statement" not in parsed:
        raise PolicyError("policy has no Statement")
    statements = parsed["Statement"]
    if isinstance(statements, dict):
        _check_statement(0, statements)
    elif isinstance(statements, list):
        for number, stmt in enumerate(statements):
            _check_statement(number, stmt)
    else:
        raise PolicyError("Statement must be an object or a list of objects")
    return parsed


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def _statements(policy: dict) -> list[dict]:
    statements = policy["Statement"]
    return [statements] if isinstance(statements, dict) else list(statements)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _id_set(ids: Iterable[str] | str | None) -> frozenset[str]:
    """Normalise an id collection; a bare string is one id (iterating it would give characters)."""
    if ids is None:
        return frozenset()
    if isinstance(ids, str):
        ids = [ids]
    return frozenset(i.strip() for i in ids if isinstance(i, str) and i.strip())


def check_aws_owned_pattern(pattern: str) -> None:
    """Raise ``ValueError`` unless ``pattern`` may be exempt from the org perimeter.

    Accepted: ``arn:<partition>:s3:::<bucket>`` or ``arn:<partition>:s3:::<bucket>/<key pattern>``
    with the bucket name spelled out (no ``*``, ``?`` or ``${...}``). S3 bucket names are global and
    first come, first served: ``arn:aws:s3:::al2023-repos-*/*`` would also exempt a bucket an outsider
    creates under that prefix, and let anyone inside the VPC copy data to it with foreign credentials.
    """
    if not isinstance(pattern, str) or not _AWS_OWNED_PATTERN_RE.fullmatch(pattern):
        raise ValueError(
            f"{pattern!r} is not an S3 resource ARN with a literal bucket name "
            "(arn:aws:s3:::<bucket> or arn:aws:s3:::<bucket>/<key pattern>; no wildcard in the bucket name)"
        )


def _exempt_set(patterns: Iterable[str] | str | None) -> frozenset[str]:
    """The exempt resource patterns, each checked (a bare string is one pattern)."""
    exempt = _id_set(patterns)
    for pattern in exempt:
        check_aws_owned_pattern(pattern)
    return exempt


def _within_any(pattern: str, outers: Iterable[str]) -> bool:
    return any(_pattern_within(pattern, outer) for outer in outers)


def _split_operator(operator: str) -> tuple[str, str, bool]:
    """``'ForAnyValue:StringEqualsIfExists'`` -> ``('foranyvalue', 'stringequals', True)``."""
    name = operator.lower()
    prefix = ""
    if ":" in name:
        prefix, name = name.split(":", 1)
    if_exists = name.endswith("ifexists")
    if if_exists:
        name = name[: -len("ifexists")]
    return prefix, name, if_exists


def _conditions(stmt: dict) -> list[tuple[str, str, list[Any]]]:
    """Flatten a Condition block to ``(operator, lower-cased key, values)`` triples.

    Every triple must hold for the statement to apply (IAM ANDs operators and keys), which is why
    finding a single confining triple is enough to call the statement confined.
    """
    triples = []
    for operator, block in (stmt.get("Condition") or {}).items():
        for key, values in block.items():
            triples.append((operator, key.lower(), _as_list(values)))
    return triples


def _is_true(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _is_false(value: Any) -> bool:
    return value is False or (isinstance(value, str) and value.lower() == "false")


def _has_wildcard(text: str) -> bool:
    return any(ch in _WILDCARD_CHARS for ch in text)


def _literal_prefix(pattern: str) -> str:
    """The part of a pattern before its first wildcard: every string it matches starts with it."""
    for index, ch in enumerate(pattern):
        if ch in _WILDCARD_CHARS:
            return pattern[:index]
    return pattern


def _account_of(principal: str) -> str | None:
    """Account id named by a Principal ``AWS`` value or an ARN, or None when it names no one account."""
    if len(principal) == 12 and principal.isdigit():
        return principal
    parts = principal.split(":", 5)
    if len(parts) == 6 and parts[0] == "arn" and not any(_has_wildcard(p) for p in parts[:5]):
        account = parts[4]
        if len(account) == 12 and account.isdigit():
            return account
    return None


# --------------------------------------------------------------------------------------------
# Is an Allow statement confined?
# --------------------------------------------------------------------------------------------


def _confining_condition(
    operator: str, key: str, values: list[Any], orgs: frozenset[str], accounts: frozenset[str]
) -> bool:
    """True when this one condition alone keeps out every principal of a foreign organization.

    IfExists and ForAllValues never confine: both are true when the key is missing, and it is
    missing for anonymous callers and for principals in accounts outside any organization.
    """
    prefix, base, if_exists = _split_operator(operator)
    if if_exists or prefix not in ("", "foranyvalue") or not values:
        return False
    if not all(isinstance(v, str) for v in values):
        return base == "bool" and key == _IS_SERVICE_KEY and prefix == "" and all(_is_true(v) for v in values)
    orgs_lower = {o.lower() for o in orgs}
    if key == _ORG_ID_KEY:
        if base == "stringequals":
            return all(v in orgs for v in values)
        if base == "stringequalsignorecase":
            return all(v.lower() in orgs_lower for v in values)
        if base == "stringlike":  # StringLike without wildcards is plain equality
            return all(not _has_wildcard(v) and v in orgs for v in values)
        return False
    if key == _ORG_PATHS_KEY:
        # A path is "<org-id>/r-.../ou-.../": a value that spells out our org id and its slash
        # before any wildcard can only match paths inside our organization.
        if base in ("stringequals", "stringlike"):
            return all(any(_literal_prefix(v).startswith(o + "/") for o in orgs) for v in values)
        if base == "stringequalsignorecase":
            return all(any(v.lower().startswith(o + "/") for o in orgs_lower) for v in values)
        return False
    if key == _ACCOUNT_KEY and accounts:
        if base in ("stringequals", "stringequalsignorecase"):
            return all(v in accounts for v in values)
        if base == "stringlike":
            return all(not _has_wildcard(v) and v in accounts for v in values)
        return False
    if key == _PRINCIPAL_ARN_KEY and accounts:
        # The account field of the ARN pins the principal to one account (ARN operators compare
        # field by field; for string operators _account_of insists the whole prefix is literal).
        if base in ("arnequals", "arnlike", "stringequals", "stringlike"):
            return all(_account_of(v) in accounts for v in values)
        return False
    if key == _IS_SERVICE_KEY and base == "bool" and prefix == "":
        return all(_is_true(v) for v in values)
    return False


def _conditions_confine(stmt: dict, orgs: frozenset[str], accounts: frozenset[str]) -> bool:
    return any(_confining_condition(op, key, values, orgs, accounts) for op, key, values in _conditions(stmt))


def _principal_confines(stmt: dict, accounts: frozenset[str]) -> bool:
    """An explicit Principal of AWS services and/or accounts of our organization confines."""
    if "NotPrincipal" in stmt or not isinstance(stmt.get("Principal"), dict) or not stmt["Principal"]:
        return False
    for principal_type, values in stmt["Principal"].items():
        names = _as_list(values)
        if not names:
            return False
        if principal_type == "Service":
            continue
        if principal_type == "AWS" and all(_account_of(name) in accounts for name in names):
            continue
        return False  # "*", foreign accounts, Federated, CanonicalUser, unknown types
    return True


def _grants_to_everyone(principal: Any) -> bool:
    return principal == "*" or (isinstance(principal, dict) and "*" in _as_list(principal.get("AWS")))


def _pattern_within(inner: str, outer: str) -> bool:
    """Does ``outer`` match every string ``inner`` matches? Only easy cases, else False (safe)."""
    if outer in ("*", inner):
        return True
    if outer.endswith("*") and not _has_wildcard(outer[:-1]):
        return _literal_prefix(inner).startswith(outer[:-1])
    return False


def _element_covered(
    deny: dict, allow: dict, element: str, ignore_case: bool, exempt: frozenset[str] = frozenset()
) -> bool:
    """Does the Deny's Action/Resource include everything the Allow's Action/Resource grants?

    For Resource, an allowed pattern that lies within an exempt pattern needs no covering: what
    outsiders keep there is what the exemption allows them anyway.
    """
    fold = str.lower if ignore_case else str
    outer = [fold(p) for p in _as_list(deny.get(element))]
    if "*" in outer:
        return True
    if element not in allow:  # NotAction / NotResource / missing element grant too much to list
        return False
    return all(
        any(_pattern_within(fold(p), o) for o in outer) or _within_any(p, exempt) for p in _as_list(allow[element])
    )


def _deny_condition_is_org_check(deny: dict, orgs: frozenset[str]) -> bool:
    """Is the Deny's Condition nothing but "caller is outside the allowed organizations"?

    Accepted: StringNotEquals[IgnoreCase][IfExists] on aws:PrincipalOrgID with allowed ids only,
    optionally with BoolIfExists aws:PrincipalIsAWSService false. Anything else (an account
    exception list, a tag, a source IP) may exempt outsiders, so such a Deny does not count.
    Plain ``Bool`` on aws:PrincipalIsAWSService does not count either: that key is absent from
    anonymous requests, so the whole Deny would not apply to them.
    No Condition at all is a deny-everyone, which certainly keeps outsiders out.
    """
    if not deny.get("Condition"):
        return True
    orgs_lower = {o.lower() for o in orgs}
    has_org_check = False
    for operator, key, values in _conditions(deny):
        prefix, base, if_exists = _split_operator(operator)
        if prefix:
            return False
        if key == _ORG_ID_KEY and base == "stringnotequals":
            if not all(isinstance(v, str) and v in orgs for v in values):
                return False
            has_org_check = True
        elif key == _ORG_ID_KEY and base == "stringnotequalsignorecase":
            if not all(isinstance(v, str) and v.lower() in orgs_lower for v in values):
                return False
            has_org_check = True
        elif key == _IS_SERVICE_KEY and base == "bool" and if_exists and values and all(map(_is_false, values)):
            continue
        else:
            return False
    return has_org_check


def _not_resource_within_exempt(deny: dict, exempt: frozenset[str]) -> bool:
    """A Deny with NotResource leaves outsiders exactly the resources it lists; fine when all are exempt.

    An empty NotResource list is not counted: how AWS reads it is not documented.
    """
    spared = _as_list(deny["NotResource"])
    return bool(spared) and all(isinstance(p, str) and _within_any(p, exempt) for p in spared)


def _deny_covers(deny: dict, allow: dict, orgs: frozenset[str], exempt: frozenset[str] = frozenset()) -> bool:
    """Does this Deny take away from every outsider whatever the Allow grants them (exempt resources aside)?

    A statement carrying both an element and its Not- form (e.g. Resource and NotResource) is invalid in
    IAM and how it would be read is not documented, so such a Deny never counts as covering anything.
    """
    if any(element in deny and f"Not{element}" in deny for element in ("Action", "Resource", "Principal")):
        return False
    if "NotPrincipal" in deny or not _grants_to_everyone(deny.get("Principal")):
        return False
    if "NotAction" in deny:
        return False
    if "NotResource" in deny:
        resources_covered = _not_resource_within_exempt(deny, exempt)
    else:
        resources_covered = _element_covered(deny, allow, "Resource", ignore_case=False, exempt=exempt)
    return (
        resources_covered
        and _element_covered(deny, allow, "Action", ignore_case=True)
        and _deny_condition_is_org_check(deny, orgs)
    )


def _only_exempt_resources(allow: dict, exempt: frozenset[str]) -> bool:
    """Does the Allow name only resources within the exempt patterns (so it opens nothing else)?"""
    if not exempt or "Resource" not in allow:  # NotResource / no Resource grant more than we can list
        return False
    resources = _as_list(allow["Resource"])
    return bool(resources) and all(_within_any(p, exempt) for p in resources)


def _allow_is_confined(
    allow: dict,
    denies: list[dict],
    orgs: frozenset[str],
    accounts: frozenset[str],
    exempt: frozenset[str] = frozenset(),
) -> bool:
    return (
        _conditions_confine(allow, orgs, accounts)
        or _principal_confines(allow, accounts)
        or _only_exempt_resources(allow, exempt)
        or any(_deny_covers(deny, allow, orgs, exempt) for deny in denies)
    )


# --------------------------------------------------------------------------------------------
# Reasons
# --------------------------------------------------------------------------------------------


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _describe_list(values: list[Any], limit: int = 5) -> str:
    shown = ", ".join(f"'{v}'" for v in values[:limit])
    return shown + (f" and {len(values) - limit} more" if len(values) > limit else "")


def _describe_open(number: int, stmt: dict) -> str:
    label = _statement_label(number, stmt)
    if "NotPrincipal" in stmt:
        who = f"every principal except {_compact(stmt['NotPrincipal'])}"
    elif "Principal" not in stmt:
        who = "any principal (no Principal element)"
    elif stmt["Principal"] == "*":
        who = "principal '*'"
    else:
        who = f"principal {_compact(stmt['Principal'])}"
    if "NotAction" in stmt:
        what = f"every action except {_describe_list(_as_list(stmt['NotAction']))}"
    elif "Action" not in stmt:
        what = "any action (no Action element)"
    else:
        actions = _as_list(stmt["Action"])
        what = f"action '{actions[0]}'" if len(actions) == 1 else f"actions {_describe_list(actions)}"
    return f"{label} allows {who} {what} without an aws:PrincipalOrgID condition"


def _statement_label(number: int, stmt: dict) -> str:
    label = f"statement {number}"
    if isinstance(stmt.get("Sid"), str) and stmt["Sid"]:
        label += f" (Sid '{stmt['Sid']}')"
    return label


def _describe_exempt(number: int, stmt: dict) -> str:
    return (
        f"{_statement_label(number, stmt)} is open to principals outside the organization only on "
        "AWS-owned resources exempt from the perimeter"
    )


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def analyse(
    doc: str | dict | None,
    allowed_org_ids: Iterable[str],
    org_account_ids: Iterable[str] = (),
    *,
    aws_owned_resource_arns: Iterable[str] = (),
) -> PolicyVerdict:
    """Is every Allow statement confined to principals of ``allowed_org_ids``?

    An Allow is confined when any of these holds: one of its conditions pins the caller's org
    (aws:PrincipalOrgID / aws:PrincipalOrgPaths) or account (aws:PrincipalAccount,
    aws:PrincipalArn, with ``org_account_ids``), or requires an AWS service principal; its
    Principal names only AWS services and/or accounts in ``org_account_ids``; every Resource it
    names lies within ``aws_owned_resource_arns``; or a Deny in the same policy removes from
    callers outside the allowed organizations everything it grants outside those resources.
    Whatever an Allow says about actions, a Resource outside the exempt patterns (or a NotResource,
    or no Resource at all) means it is judged as before.
    With no ``allowed_org_ids`` no org condition can confine, yet the verdict stays meaningful
    (service and account confinement still count), so unlike :func:`confine` this does not raise.
    Raises :class:`PolicyError` when the document cannot be read and ``ValueError`` for an exempt
    pattern :func:`check_aws_owned_pattern` refuses.
    """
    policy = parse_policy(doc)
    orgs = _id_set(allowed_org_ids)
    accounts = _id_set(org_account_ids)
    exempt = _exempt_set(aws_owned_resource_arns)
    statements = _statements(policy)
    denies = [s for s in statements if s["Effect"] == "Deny"]
    reasons: list[str] = []
    notes: list[str] = []
    for number, stmt in enumerate(statements):
        if stmt["Effect"] != "Allow":
            continue
        if not _allow_is_confined(stmt, denies, orgs, accounts, exempt):
            reasons.append(_describe_open(number, stmt))
        elif exempt and not _allow_is_confined(stmt, denies, orgs, accounts):
            notes.append(_describe_exempt(number, stmt))
    return PolicyVerdict(compliant=not reasons, reasons=tuple(reasons), notes=tuple(notes))


def guard_statement(allowed_org_ids: Iterable[str], aws_owned_resource_arns: Iterable[str] = ()) -> dict:
    """The Deny statement :func:`confine` appends.

    ``IfExists`` on the org check makes it deny callers with no organization at all (anonymous,
    standalone accounts); ``BoolIfExists`` on aws:PrincipalIsAWSService exempts AWS service
    principals, which have no org id but must keep working through the endpoint.
    With ``aws_owned_resource_arns`` it denies everything except those resources (``NotResource``),
    so anonymous package downloads from AWS-owned buckets keep working; without, every resource.
    """
    orgs = _id_set(allowed_org_ids)
    if not orgs:
        raise ValueError("allowed_org_ids is empty: there is no organization to confine the policy to")
    exempt = _exempt_set(aws_owned_resource_arns)
    resources: dict[str, Any] = {"NotResource": sorted(exempt)} if exempt else {"Resource": "*"}
    return {
        "Sid": GUARD_SID,
        "Effect": "Deny",
        "Principal": "*",
        "Action": "*",
        **resources,
        "Condition": {
            "StringNotEqualsIfExists": {"aws:PrincipalOrgID": sorted(orgs)},
            "BoolIfExists": {"aws:PrincipalIsAWSService": "false"},
        },
    }


def _free_sid(statements: list[dict]) -> str:
    """GUARD_SID, or GUARD_SID2, 3, ... when an older statement already uses it (we never edit it)."""
    taken = {s.get("Sid") for s in statements if isinstance(s.get("Sid"), str)}
    if GUARD_SID not in taken:
        return GUARD_SID
    number = 2
    while f"{GUARD_SID}{number}" in taken:
        number += 1
    return f"{GUARD_SID}{number}"


def confine(
    doc: str | dict | None,
    allowed_org_ids: Iterable[str],
    org_account_ids: Iterable[str] = (),
    *,
    aws_owned_resource_arns: Iterable[str] = (),
) -> ConfineResult:
    """Make the policy compliant by appending :func:`guard_statement`; no-op when already compliant.

    Every existing statement is kept as it is, so nothing an insider or an AWS service could do
    before is taken away. ``aws_owned_resource_arns`` (the caller passes them for S3 endpoints
    only) are left out of the guard and out of the judgement, as in :func:`analyse`; requests on
    them are allowed or denied exactly as before the fix. Returns ``refused`` (and no document)
    when the result would not fit in an endpoint policy. Raises ``ValueError`` when
    ``allowed_org_ids`` is empty or an exempt pattern is refused, and :class:`PolicyError` when the
    document cannot be read.
    """
    orgs = _id_set(allowed_org_ids)
    if not orgs:
        raise ValueError("allowed_org_ids is empty: there is no organization to confine the policy to")
    accounts = _id_set(org_account_ids)  # once: the caller may have passed a one-shot iterator
    exempt = _exempt_set(aws_owned_resource_arns)
    policy = parse_policy(doc)
    if analyse(policy, orgs, accounts, aws_owned_resource_arns=exempt).compliant:
        return ConfineResult(changed=False, document=None)

    statements = _statements(policy)
    guard = guard_statement(orgs, exempt)
    guard["Sid"] = _free_sid(statements)
    fixed = dict(policy)  # keeps Version (or its absence) and any other top-level key, in order
    fixed["Statement"] = [*statements, guard]

    after = analyse(fixed, orgs, accounts, aws_owned_resource_arns=exempt)
    if not after.compliant:  # cannot happen with this Deny; refuse rather than write a half-fix
        return ConfineResult(
            changed=False, document=None, refused="the guard statement did not confine: " + "; ".join(after.reasons)
        )
    text = _compact(fixed)
    if len(text) > MAX_POLICY_CHARS:
        return ConfineResult(
            changed=False,
            document=None,
            refused=(
                f"the confined policy would be {len(text):,} characters, over the "
                f"{MAX_POLICY_CHARS:,}-character endpoint policy limit"
            ),
        )
    return ConfineResult(changed=True, document=text)


def same_policy(a: str | dict | None, b: str | dict | None) -> bool:
    """Are two policies the same document? Used to detect "changed since we read it".

    Compared as parsed JSON, so whitespace and key order do not count but anything else does
    (including statement order and ``"*"`` vs ``["*"]``): a false "changed" only makes us skip a
    write, a false "same" would overwrite someone's edit. Unreadable documents are the same only
    when they are identical.
    """
    try:
        return _canonical(parse_policy(a)) == _canonical(parse_policy(b))
    except PolicyError:
        return type(a) is type(b) and a == b


def _canonical(policy: dict) -> str:
    return json.dumps(policy, sort_keys=True, separators=(",", ":"))
