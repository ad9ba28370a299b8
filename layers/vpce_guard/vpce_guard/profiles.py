"""Endpoint profiles: named sets of VPC endpoints that a VPC must have (rule `vpc-required-endpoints`).

A profile says what a workload needs to reach AWS privately, e.g. Session Manager needs the ssm,
ssmmessages and ec2messages interface endpoints with private DNS. Which profiles a VPC must satisfy:

* the `DefaultProfiles` parameter applies to every VPC;
* a VPC tag `vpce-guard:profiles` (the key is configurable) **replaces** the default for that VPC:
  `ssm-session-manager,s3-gateway` selects those two, an empty value or `none` selects none (an opt-out).

Pure data and pure functions (no boto3), so the rule stays a function of the snapshot.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

PROFILE_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
#: Tag values that select no profile at all (an explicit opt-out from the default).
NONE_VALUES = frozenset({"", "none", "-"})
_SEPARATORS = re.compile(r"[,\s+/]+")


class EndpointRequirement(BaseModel):
    """One endpoint a profile needs: the service's short name (`ssm`, `s3`) and the endpoint type."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    service: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]{0,62}$")
    #: `Any`: either type satisfies it (S3 can be reached through a gateway or an interface endpoint).
    type: Literal["Gateway", "Interface", "Any"] = "Interface"
    #: The interface endpoint must have private DNS on (so the service's public name resolves to it).
    private_dns: bool = False

    @model_validator(mode="after")
    def _private_dns_is_an_interface_setting(self) -> EndpointRequirement:
        if self.private_dns and self.type == "Gateway":
            raise ValueError(f"{self.service}: private_dns applies to interface endpoints only")
        return self

    def satisfied_by(self, endpoint_type: str, short_name: str) -> bool:
        return short_name == self.service and self.type in ("Any", endpoint_type)

    def create_type(self) -> str:
        """The type to create when missing (`Any` S3/DynamoDB: the free gateway endpoint)."""
        if self.type != "Any":
            return self.type
        return "Gateway" if self.service in ("s3", "dynamodb") else "Interface"

    def label(self) -> str:
        return f"{self.service} ({self.type.lower() if self.type != 'Any' else 'any type'})"


class Profile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    description: str = ""
    endpoints: tuple[EndpointRequirement, ...] = ()
    #: S3 object ARNs (`{region}` is replaced) that a restricted S3 endpoint policy must still let a principal
    #: of the organization read (s3:GetObject).
    s3_policy_must_allow: tuple[str, ...] = ()

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not PROFILE_NAME_RE.match(v):
            raise ValueError(f"profile name {v!r} must be lowercase letters, digits and dashes")
        return v

    @field_validator("s3_policy_must_allow")
    @classmethod
    def _s3_arns(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = [arn for arn in v if not arn.startswith("arn:aws:s3:::")]
        if bad:
            raise ValueError(f"not S3 ARNs: {bad}")
        return v


def _ssm(private_dns: bool = True) -> tuple[EndpointRequirement, ...]:
    return tuple(EndpointRequirement(service=s, type="Interface", private_dns=private_dns)
                 for s in ("ssm", "ssmmessages", "ec2messages"))


#: Profiles shipped with vpce-guard.
SHIPPED: Mapping[str, Profile] = {
    p.name: p
    for p in (
        Profile(name="s3-gateway", description="S3 through a gateway endpoint (no NAT traffic for S3)",
                endpoints=(EndpointRequirement(service="s3", type="Gateway"),)),
        Profile(name="ssm-session-manager",
                description="Session Manager to instances in private subnets: ssm, ssmmessages and ec2messages "
                            "interface endpoints with private DNS",
                endpoints=_ssm()),
        Profile(name="patch-manager",
                description="Patch Manager in private subnets: the Session Manager endpoints plus an S3 endpoint "
                            "whose policy still lets instances read the patch baseline snapshots and SSM buckets",
                endpoints=(*_ssm(), EndpointRequirement(service="s3", type="Any")),
                s3_policy_must_allow=("arn:aws:s3:::patch-baseline-snapshot-{region}/*",
                                      "arn:aws:s3:::aws-ssm-{region}/*")),
        Profile(name="secrets-manager", description="Secrets Manager through an interface endpoint with private DNS",
                endpoints=(EndpointRequirement(service="secretsmanager", type="Interface", private_dns=True),)),
    )
}


class ProfileError(ValueError):
    """Custom profiles that cannot be read."""


def catalogue(custom_json: str = "") -> dict[str, Profile]:
    """Shipped profiles plus the custom ones (JSON object: name → {description, endpoints, s3_policy_must_allow}).

    A custom profile may not reuse a shipped name: a profile's meaning must not depend on the deployment.
    """
    out = dict(SHIPPED)
    if not custom_json.strip():
        return out
    try:
        raw = json.loads(custom_json)
    except json.JSONDecodeError as exc:
        raise ProfileError(f"not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ProfileError("expected a JSON object of profile name → definition")
    for name, body in raw.items():
        if name in SHIPPED:
            raise ProfileError(f"{name!r} is a shipped profile; choose another name")
        if not isinstance(body, dict):
            raise ProfileError(f"{name!r}: expected an object")
        try:
            out[name] = Profile.model_validate({**body, "name": name})
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors())
            raise ProfileError(f"{name!r}: {problems}") from None
    return out


def parse_names(value: str) -> tuple[str, ...]:
    """`"ssm-session-manager, s3-gateway"` → ("ssm-session-manager", "s3-gateway"); `none` → ().

    Commas, spaces, `+` and `/` all separate names: some tagging tools and services reject commas in values.
    """
    if value.strip().lower() in NONE_VALUES:
        return ()
    return tuple(dict.fromkeys(p.lower() for p in _SEPARATORS.split(value) if p))


def selected(vpc_tags: Mapping[str, str], default: Iterable[str], tag_key: str) -> tuple[tuple[str, ...], str]:
    """The profile names a VPC must satisfy, and where they came from (`tag` or `default`)."""
    if tag_key in vpc_tags:
        return parse_names(vpc_tags[tag_key]), "tag"
    return tuple(default), "default"
