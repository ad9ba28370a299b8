"""Would an endpoint policy let this one request through? A small IAM evaluator for one question the rules ask.

`policy.py` answers "is every Allow confined to the organization?" by reading statements; some checks need
the opposite direction, "is this particular request still allowed?" (Patch Manager must keep reading
`arn:aws:s3:::aws-ssm-<region>/*` through a restricted S3 endpoint). This module decides that the way IAM
does for one policy: an explicit Deny wins, otherwise a matching Allow is needed.

Derived from the test suite's reference evaluator (tests/support/iam_eval.py), which stays the reference:
tests/unit/test_policy_eval.py checks that both agree on generated policies. Same deliberate
simplifications: policy variables are taken literally; Numeric/Date/IpAddress operators are unknown and
make a condition false (so an Allow that depends on them is not counted: a missing permission is reported
rather than assumed); Federated/CanonicalUser principals never match.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .policy import parse_policy


@dataclass(frozen=True)
class Request:
    """One request through the endpoint. `keys` adds or overrides condition keys (any case)."""

    action: str
    resource: str = "*"
    principal_arn: str | None = None
    principal_account: str | None = None
    principal_org_id: str | None = None
    service_principal: str | None = None
    keys: Mapping[str, str | list[str]] = field(default_factory=dict)

    @property
    def is_service(self) -> bool:
        return self.service_principal is not None

    @property
    def is_anonymous(self) -> bool:
        return self.principal_arn is None and self.principal_account is None and self.service_principal is None

    def context_keys(self) -> dict[str, list[str]]:
        """Condition keys present in the request (lower-cased), as IAM would populate them."""
        out: dict[str, list[str]] = {}
        if self.principal_arn is not None:
            out["aws:principalarn"] = [self.principal_arn]
        if self.principal_account is not None:
            out["aws:principalaccount"] = [self.principal_account]
        if self.principal_org_id is not None:
            out["aws:principalorgid"] = [self.principal_org_id]
        if self.service_principal is not None:
            out["aws:principalservicename"] = [self.service_principal]
        if not self.is_anonymous:
            out["aws:principalisawsservice"] = ["true" if self.is_service else "false"]
        for key, value in self.keys.items():
            out[key.lower()] = [str(v) for v in value] if isinstance(value, list | tuple) else [str(value)]
        return out


def allows(doc: str | dict | None, request: Request) -> bool:
    """True when the policy lets the request through. Raises policy.PolicyError for unreadable documents."""
    statements = parse_policy(doc)["Statement"]
    statements = [statements] if isinstance(statements, dict) else statements
    keys = request.context_keys()
    allowed = False
    for stmt in statements:
        if not _applies(stmt, request, keys):
            continue
        if stmt["Effect"] == "Deny":
            return False
        allowed = True
    return allowed


# ------------------------------------------------------------------------------------------------ matching
@functools.lru_cache(maxsize=2048)
def _glob(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body, (re.IGNORECASE | re.DOTALL) if ignore_case else re.DOTALL)


def _glob_match(pattern: str, value: str, ignore_case: bool = False) -> bool:
    return _glob(pattern, ignore_case).fullmatch(value) is not None


def _arn_match(pattern: str, value: str) -> bool:
    p, v = pattern.split(":", 5), value.split(":", 5)
    if len(p) != 6 or len(v) != 6:
        return _glob_match(pattern, value)
    return all(_glob_match(a, b) for a, b in zip(p, v, strict=True))


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def _account_principal(name: str) -> str | None:
    if re.fullmatch(r"\d{12}", name):
        return name
    match = re.fullmatch(r"arn:aws[a-z-]*:iam::(\d{12}):root", name)
    return match.group(1) if match else None


def _principal_matches(principal: Any, req: Request) -> bool:
    if principal == "*":
        return True
    if isinstance(principal, str):
        principal = {"AWS": principal}
    if not isinstance(principal, dict):
        return False
    for kind, names in principal.items():
        for name in _list(names):
            if kind == "AWS":
                if name == "*":
                    return True
                if req.is_service:
                    continue
                account = _account_principal(name)
                if (account is not None and req.principal_account == account) or (
                        account is None and req.principal_arn == name):
                    return True
            elif kind == "Service" and req.service_principal and req.service_principal.lower() == str(name).lower():
                return True
    return False


def _element(stmt: dict, element: str, value: str, ignore_case: bool) -> bool:
    if element in stmt:
        return any(_glob_match(str(p), value, ignore_case) for p in _list(stmt[element]))
    if "Not" + element in stmt:
        return not any(_glob_match(str(p), value, ignore_case) for p in _list(stmt["Not" + element]))
    return True


# ------------------------------------------------------------------------------------------------ conditions
def _text(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


_OPERATORS: dict[str, tuple[Any, bool]] = {
    "stringequals": (lambda c, p: c == p, False),
    "stringnotequals": (lambda c, p: c == p, True),
    "stringequalsignorecase": (lambda c, p: c.lower() == p.lower(), False),
    "stringnotequalsignorecase": (lambda c, p: c.lower() == p.lower(), True),
    "stringlike": (lambda c, p: _glob_match(p, c), False),
    "stringnotlike": (lambda c, p: _glob_match(p, c), True),
    "bool": (lambda c, p: c.lower() == p.lower(), False),
    "arnequals": (lambda c, p: _arn_match(p, c), False),
    "arnlike": (lambda c, p: _arn_match(p, c), False),
    "arnnotequals": (lambda c, p: _arn_match(p, c), True),
    "arnnotlike": (lambda c, p: _arn_match(p, c), True),
}


def _condition_holds(operator: str, key: str, policy_values: Any, keys: Mapping[str, list[str]]) -> bool:
    name = operator.lower()
    set_op = ""
    for prefix in ("foranyvalue:", "forallvalues:"):
        if name.startswith(prefix):
            set_op, name = prefix[:-1], name[len(prefix):]
    wanted = [_text(v) for v in _list(policy_values)]
    present = keys.get(key.lower())
    if name == "null" and not set_op:
        return bool(wanted) and all((present is None) == (w.lower() == "true") for w in wanted)
    if_exists = name.endswith("ifexists")
    if if_exists:
        name = name[: -len("ifexists")]
    if name not in _OPERATORS:
        return False
    compare, negated = _OPERATORS[name]
    if present is None:
        if if_exists or set_op == "forallvalues":
            return True
        return False if set_op == "foranyvalue" else negated

    def one(value: str) -> bool:
        hit = any(compare(value, w) for w in wanted)
        return not hit if negated else hit

    if set_op == "forallvalues":
        return all(one(v) for v in present)
    if set_op == "foranyvalue":
        return any(one(v) for v in present)
    hit = any(compare(v, w) for v in present for w in wanted)
    return not hit if negated else hit


def _applies(stmt: dict, req: Request, keys: Mapping[str, list[str]]) -> bool:
    if "Principal" in stmt:
        principal_ok = _principal_matches(stmt["Principal"], req)
    elif "NotPrincipal" in stmt:
        principal_ok = not _principal_matches(stmt["NotPrincipal"], req)
    else:
        principal_ok = True
    return (
        principal_ok
        and _element(stmt, "Action", req.action, ignore_case=True)
        and _element(stmt, "Resource", req.resource, ignore_case=False)
        and all(_condition_holds(op, key, values, keys)
                for op, block in (stmt.get("Condition") or {}).items() for key, values in block.items())
    )
