"""A small, test-only IAM evaluator for VPC endpoint policies.

It answers "would this endpoint policy let this request through?" the way IAM decides it: an
explicit Deny wins, otherwise a matching Allow is needed. It is written independently of
``vpce_guard.policy`` (no shared code) so the property tests compare two separate readings of IAM
semantics: the static analysis must never call a policy compliant that this evaluator shows
letting an outsider in.

Deliberate simplifications (none matters for endpoint-policy questions about who gets in):
policy variables (``${...}``) are taken literally; Numeric/Date/IpAddress operators are unknown
and so make a condition false; Federated/CanonicalUser principals never match; missing
Action/Resource elements match everything.

Request-context model (see :meth:`RequestContext.context_keys`): anonymous requests carry no
principal keys at all, AWS service principals carry ``aws:PrincipalIsAWSService = true`` and
``aws:PrincipalServiceName`` but no account or organization keys, IAM principals carry account,
ARN, ``aws:PrincipalIsAWSService = false`` and, when their account is in an organization,
``aws:PrincipalOrgID``.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

_AWS_DEFAULT_POLICY = {
    "Version": "2008-10-17",
    "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}],
}


@dataclass(frozen=True)
class RequestContext:
    """One request through the endpoint: who, what, on which resource, plus extra context keys.

    ``extra`` maps condition keys (any case) to a string or a list of strings, e.g.
    ``{"aws:PrincipalOrgPaths": ["o-a/r-1/ou-1/"], "aws:ResourceOrgID": "o-a"}``; it overrides
    the keys derived from the fields.
    """

    action: str
    resource: str = "*"
    principal_arn: str | None = None
    principal_account: str | None = None
    principal_org_id: str | None = None
    principal_is_aws_service: bool = False
    service_principal: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def iam(
        cls,
        principal_arn: str,
        action: str,
        resource: str = "*",
        org_id: str | None = None,
        **extra: Any,
    ) -> RequestContext:
        """A signed request by an IAM user/role/root; the account comes from the ARN."""
        return cls(
            action=action,
            resource=resource,
            principal_arn=principal_arn,
            principal_account=principal_arn.split(":")[4],
            principal_org_id=org_id,
            extra=_extra_keys(extra),
        )

    @classmethod
    def service(cls, service_principal: str, action: str, resource: str = "*", **extra: Any) -> RequestContext:
        """A request made directly by an AWS service principal (e.g. ``ec2.amazonaws.com``)."""
        return cls(
            action=action,
            resource=resource,
            principal_is_aws_service=True,
            service_principal=service_principal,
            extra=_extra_keys(extra),
        )

    @classmethod
    def anonymous(cls, action: str, resource: str = "*", **extra: Any) -> RequestContext:
        """An unsigned request (e.g. a public S3 object read through a gateway endpoint)."""
        return cls(action=action, resource=resource, extra=_extra_keys(extra))

    @property
    def is_anonymous(self) -> bool:
        return self.principal_arn is None and self.principal_account is None and self.service_principal is None

    @property
    def is_service(self) -> bool:
        return self.principal_is_aws_service or self.service_principal is not None

    def context_keys(self) -> dict[str, list[str]]:
        """Condition keys present in this request, lower-cased, each with its list of values."""
        keys: dict[str, list[str]] = {}
        if self.principal_arn is not None:
            keys["aws:principalarn"] = [self.principal_arn]
        if self.principal_account is not None:
            keys["aws:principalaccount"] = [self.principal_account]
        if self.principal_org_id is not None:
            keys["aws:principalorgid"] = [self.principal_org_id]
        if self.service_principal is not None:
            keys["aws:principalservicename"] = [self.service_principal]
        if not self.is_anonymous:
            keys["aws:principalisawsservice"] = ["true" if self.is_service else "false"]
        for key, value in self.extra.items():
            keys[key.lower()] = [str(v) for v in value] if isinstance(value, (list, tuple)) else [str(value)]
        return keys


def _extra_keys(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """``org_paths=[...]`` / ``resource_org_id=...`` shortcuts, plus a raw ``keys={...}`` dict."""
    extra: dict[str, Any] = dict(kwargs.get("keys") or {})
    if "org_paths" in kwargs:
        extra["aws:PrincipalOrgPaths"] = list(kwargs["org_paths"])
    if "resource_org_id" in kwargs:
        extra["aws:ResourceOrgID"] = kwargs["resource_org_id"]
    unknown = set(kwargs) - {"keys", "org_paths", "resource_org_id"}
    if unknown:
        raise TypeError(f"unknown RequestContext shortcut(s): {sorted(unknown)}")
    return extra


# --------------------------------------------------------------------------------------------
# Matching
# --------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def _glob_regex(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    parts = []
    for ch in pattern:
        if ch == "*":
            parts.append(".*")
        elif ch == "?":
            parts.append(".")
        else:
            parts.append(re.escape(ch))
    flags = (re.IGNORECASE | re.DOTALL) if ignore_case else re.DOTALL
    return re.compile("".join(parts), flags)


def glob_match(pattern: str, value: str, ignore_case: bool = False) -> bool:
    """IAM wildcard match: ``*`` any run of characters, ``?`` exactly one."""
    return _glob_regex(pattern, ignore_case).fullmatch(value) is not None


def _arn_match(pattern: str, value: str) -> bool:
    """ArnLike/ArnEquals: the six colon-separated ARN fields are matched one by one."""
    pattern_fields = pattern.split(":", 5)
    value_fields = value.split(":", 5)
    if len(pattern_fields) != 6 or len(value_fields) != 6:
        return glob_match(pattern, value)
    return all(glob_match(p, v) for p, v in zip(pattern_fields, value_fields, strict=True))


def _values(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _principal_matches(principal: Any, ctx: RequestContext) -> bool:
    if principal == "*":
        return True
    if isinstance(principal, str):
        principal = {"AWS": principal}
    if not isinstance(principal, dict):
        return False
    for kind, names in principal.items():
        for name in _values(names):
            if kind == "AWS":
                if name == "*":
                    return True  # documented as equivalent to "Principal": "*"
                if ctx.is_service:
                    continue
                account = _account_principal(name)
                if account is not None:
                    if ctx.principal_account == account:
                        return True
                elif ctx.principal_arn is not None and ctx.principal_arn == name:
                    return True
            elif (
                kind == "Service"
                and ctx.service_principal is not None
                and ctx.service_principal.lower() == str(name).lower()
            ):
                return True
    return False


def _account_principal(name: str) -> str | None:
    """``"123456789012"`` and ``"arn:aws:iam::123456789012:root"`` both mean "the whole account"."""
    if re.fullmatch(r"\d{12}", name):
        return name
    match = re.fullmatch(r"arn:aws[a-z-]*:iam::(\d{12}):root", name)
    return match.group(1) if match else None


def _statement_principal_matches(stmt: dict, ctx: RequestContext) -> bool:
    if "Principal" in stmt:
        return _principal_matches(stmt["Principal"], ctx)
    if "NotPrincipal" in stmt:
        return not _principal_matches(stmt["NotPrincipal"], ctx)
    return True


def _element_matches(stmt: dict, element: str, value: str, ignore_case: bool) -> bool:
    if element in stmt:
        return any(glob_match(str(p), value, ignore_case) for p in _values(stmt[element]))
    if "Not" + element in stmt:
        return not any(glob_match(str(p), value, ignore_case) for p in _values(stmt["Not" + element]))
    return True


# --------------------------------------------------------------------------------------------
# Conditions
# --------------------------------------------------------------------------------------------


def _string_equals(ctx_value: str, policy_value: str) -> bool:
    return ctx_value == policy_value


def _string_equals_ignore_case(ctx_value: str, policy_value: str) -> bool:
    return ctx_value.lower() == policy_value.lower()


def _string_like(ctx_value: str, policy_value: str) -> bool:
    return glob_match(policy_value, ctx_value)


def _bool(ctx_value: str, policy_value: str) -> bool:
    return ctx_value.lower() == policy_value.lower()


#: base operator (lower case) -> (positive comparison, negated?)
_OPERATORS = {
    "stringequals": (_string_equals, False),
    "stringnotequals": (_string_equals, True),
    "stringequalsignorecase": (_string_equals_ignore_case, False),
    "stringnotequalsignorecase": (_string_equals_ignore_case, True),
    "stringlike": (_string_like, False),
    "stringnotlike": (_string_like, True),
    "bool": (_bool, False),
    "arnequals": (lambda c, p: _arn_match(p, c), False),
    "arnlike": (lambda c, p: _arn_match(p, c), False),
    "arnnotequals": (lambda c, p: _arn_match(p, c), True),
    "arnnotlike": (lambda c, p: _arn_match(p, c), True),
}


def condition_holds(operator: str, key: str, policy_values: Any, keys: Mapping[str, list[str]]) -> bool:
    """Evaluate one ``operator: {key: values}`` entry against the request's context keys.

    Missing key: ``...IfExists`` -> true; ``ForAllValues:`` -> true (empty set); ``ForAnyValue:``
    -> false; negated operators (StringNotEquals, ArnNotLike, ...) -> true; others -> false.
    Unknown operators -> false.
    """
    name = operator.lower()
    set_operator = ""
    for prefix in ("foranyvalue:", "forallvalues:"):
        if name.startswith(prefix):
            set_operator, name = prefix[:-1], name[len(prefix) :]
    wanted = [_text(v) for v in _values(policy_values)]
    present = keys.get(key.lower())

    if name == "null" and not set_operator:
        return bool(wanted) and all((present is None) == (w.lower() == "true") for w in wanted)

    if_exists = name.endswith("ifexists")
    if if_exists:
        name = name[: -len("ifexists")]
    if name not in _OPERATORS:
        return False
    compare, negated = _OPERATORS[name]

    if present is None:
        if if_exists or set_operator == "forallvalues":
            return True
        if set_operator == "foranyvalue":
            return False
        return negated

    def one(ctx_value: str) -> bool:
        hit = any(compare(ctx_value, w) for w in wanted)
        return not hit if negated else hit

    if set_operator == "forallvalues":
        return all(one(v) for v in present)
    if set_operator == "foranyvalue":
        return any(one(v) for v in present)
    hit = any(compare(v, w) for v in present for w in wanted)
    return not hit if negated else hit


def _conditions_hold(stmt: dict, keys: Mapping[str, list[str]]) -> bool:
    for operator, block in (stmt.get("Condition") or {}).items():
        for key, values in block.items():
            if not condition_holds(operator, key, values, keys):
                return False
    return True


# --------------------------------------------------------------------------------------------
# Decision
# --------------------------------------------------------------------------------------------


def statement_applies(stmt: dict, ctx: RequestContext, keys: Mapping[str, list[str]] | None = None) -> bool:
    """Does this statement (Allow or Deny) match the request?"""
    return (
        _statement_principal_matches(stmt, ctx)
        and _element_matches(stmt, "Action", ctx.action, ignore_case=True)
        and _element_matches(stmt, "Resource", ctx.resource, ignore_case=False)
        and _conditions_hold(stmt, keys if keys is not None else ctx.context_keys())
    )


def evaluate(policy: dict | str | None, ctx: RequestContext) -> bool:
    """Would the endpoint let this request through? ``None``/``""`` is AWS's default (allow all)."""
    if policy is None or (isinstance(policy, str) and not policy.strip()):
        policy = _AWS_DEFAULT_POLICY
    elif isinstance(policy, str):
        policy = json.loads(policy)
    statements = policy["Statement"]
    if isinstance(statements, dict):
        statements = [statements]
    keys = ctx.context_keys()
    allowed = False
    for stmt in statements:
        if not statement_applies(stmt, ctx, keys):
            continue
        if stmt["Effect"] == "Deny":
            return False
        allowed = True
    return allowed
