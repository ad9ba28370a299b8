"""Settings, read once per cold start from the environment that template.yaml sets.

A bad value fails the cold start with a message naming the variable, instead of surfacing later as an
odd AWS error in the middle of a remediation.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from enum import StrEnum
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from . import profiles as profiles_mod
from .policy import check_aws_owned_pattern

ORG_ID_RE = re.compile(r"^o-[a-z0-9]{10,32}$")
SG_ID_RE = re.compile(r"^sg-(?:[0-9a-f]{8}|[0-9a-f]{17})$")
#: A partner allowed on endpoint services: an account id, or an IAM principal ARN of one account (no wildcard).
PARTNER_RE = re.compile(r"^(?:[0-9]{12}|arn:aws[a-z-]*:iam::[0-9]{12}:(?:root|(?:user|role)/[A-Za-z0-9+=.@_/-]+))$")

#: Stands for the region of the endpoint's service in AWS_OWNED_RESOURCE_ARNS (spelled as in AWS's published
#: data-perimeter policies, so their entries can be pasted as they are).
REGION_PLACEHOLDER = "<region>"

#: AWS-owned buckets exempt from the org perimeter on S3 endpoints by default: the Amazon Linux package
#: repositories, which yum/dnf read WITHOUT credentials, so through an S3 endpoint they arrive as anonymous
#: requests that an org-perimeter Deny would refuse (patching and package installs in private subnets break).
#: The ARNs are the ones AWS lists for this purpose, in the "AllowRequestsToAWSOwnedResources" statement of
#: aws-samples/data-perimeter-policy-examples, vpc_endpoint_policies/s3_endpoint_policy.json, and in the AWS
#: Knowledge Center article "How can I update yum or install packages without internet access on my EC2
#: instances running Amazon Linux 1, Amazon Linux 2, or Amazon Linux 2023?"
#: (https://repost.aws/knowledge-center/ec2-al1-al2-update-yum-without-internet).
#: Object ARNs only (GetObject is what yum needs); no wildcard in a bucket name (see policy.check_aws_owned_pattern).
DEFAULT_AWS_OWNED_RESOURCE_ARNS: tuple[str, ...] = (
    "arn:aws:s3:::packages.<region>.amazonaws.com/*",  # Amazon Linux AMI (AL1)
    "arn:aws:s3:::repo.<region>.amazonaws.com/*",  # Amazon Linux AMI (AL1)
    "arn:aws:s3:::amazonlinux.<region>.amazonaws.com/*",  # Amazon Linux 2
    "arn:aws:s3:::amazonlinux-2-repos-<region>/*",  # Amazon Linux 2
    "arn:aws:s3:::al2023-repos-<region>-de612dc2/*",  # Amazon Linux 2023
)
_PLACEHOLDER_RE = re.compile(r"<[^<>]*>")


def check_aws_owned_resource_arn(pattern: str) -> None:
    """Raise ``ValueError`` unless ``pattern`` is an exempt S3 ARN, ``<region>`` being the only placeholder."""
    unknown = sorted({p for p in _PLACEHOLDER_RE.findall(pattern) if p != REGION_PLACEHOLDER})
    if unknown:
        raise ValueError(f"{pattern!r}: unknown placeholder(s) {unknown}; only {REGION_PLACEHOLDER} is filled in")
    check_aws_owned_pattern(pattern.replace(REGION_PLACEHOLDER, "us-east-1"))


def aws_owned_resources_in(patterns: tuple[str, ...], region: str) -> tuple[str, ...]:
    """The patterns with ``<region>`` filled in: the exempt resources of one region's S3."""
    return tuple(p.replace(REGION_PLACEHOLDER, region) for p in patterns)


class Mode(StrEnum):
    ENFORCE = "enforce"
    DRY_RUN = "dry_run"
    OFF = "off"


class Perimeter(StrEnum):
    """What an endpoint policy's guard confines (docs/endpoint-services.md, "Resource perimeter")."""

    #: Who may use the endpoint: principals of the allowed organizations (aws:PrincipalOrgID).
    IDENTITY = "identity"
    #: And what they may reach through it: resources of the allowed organizations (aws:ResourceOrgID), on the
    #: endpoints of services whose AWS-owned resources can be exempted (S3, DynamoDB).
    IDENTITY_AND_RESOURCE = "identity+resource"


class ConfigError(ValueError):
    """The function's environment is wrong; the message names the variable."""


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    ledger_table: str = Field(min_length=3)
    #: Organizations whose principals may use endpoints. Empty: look up the account's own organization.
    allowed_org_ids: tuple[str, ...] = ()
    #: Accounts known to belong to the organization (lets Principal/aws:PrincipalAccount lists count as confined).
    org_account_ids: tuple[str, ...] = ()
    mode: Mode = Mode.ENFORCE
    ledger_ttl_days: int = Field(default=400, ge=1, le=3650)
    exclude_tag_key: str = "vpce-guard:exclude"
    exclude_tag_value: str = "true"
    #: AWS-owned resources left outside the org perimeter on S3 endpoints (may contain <region>). Empty: none.
    aws_owned_resource_arns: tuple[str, ...] = DEFAULT_AWS_OWNED_RESOURCE_ARNS
    #: JSON object of extra profiles: name → {description, endpoints: [{service, type, private_dns}], …}.
    custom_profiles: str = ""
    #: Profiles (see profiles.py) every VPC must satisfy unless its profiles tag says otherwise.
    default_profiles: tuple[str, ...] = ()
    profiles_tag_key: str = "vpce-guard:profiles"
    #: Opt-in: create endpoints a profile requires and a VPC lacks (with an org-confined policy).
    create_missing_endpoints: bool = False
    #: Opt-in: add the missing inbound TCP 443 rule to an interface endpoint's security group.
    add_endpoint_ingress: bool = False
    #: Sources interface endpoints must accept HTTPS from; both empty: the CIDRs of the endpoint's VPC.
    endpoint_ingress_cidrs: tuple[str, ...] = ()
    endpoint_ingress_source_groups: tuple[str, ...] = ()
    # -- endpoint services and the resource perimeter (docs/endpoint-services.md) --------------------------
    #: identity (default) or identity+resource: also deny requests to resources outside the allowed orgs.
    perimeter: Perimeter = Perimeter.IDENTITY
    #: Opt-in: remove allowed principals outside the organization from our endpoint services.
    remove_outside_principals: bool = False
    #: Opt-in: reject pending connection requests to our endpoint services from outside the organization.
    reject_outside_connections: bool = False
    #: Partners outside the organization that may be allowed on endpoint services (accounts or IAM principals).
    endpoint_service_partners: tuple[str, ...] = ()
    # -- safety (docs/operations.md) ------------------------------------------------------------------
    #: SSM parameter holding per-rule mode overrides ({"rule-id": "dry_run", "*": "off"}); empty: none.
    mode_overrides_parameter: str = ""
    #: Seconds a read of the overrides parameter is reused (Powertools Parameters cache).
    mode_overrides_max_age: int = Field(default=60, ge=0, le=3600)
    #: DynamoDB table of exemptions (written by operators only); empty: no exemptions apply.
    exemptions_table: str = ""
    #: Tag a resource owner may set to *request* an exemption; honoured only where the registry allows it.
    exempt_tag_key: str = "vpce-guard:exempt"
    #: Flap protection: at most this many fixes of one (resource, rule) within the window, then stop.
    flap_max_fixes: int = Field(default=3, ge=1, le=100)
    flap_window_minutes: int = Field(default=60, ge=1, le=10080)
    #: Seconds after a Create* call before the on-change function looks (0: at once). The tool that created
    #: the resource (Terraform, CloudFormation) is often still configuring it: its policy, its route tables.
    #: At most 30, half the function's timeout; what a longer wait would catch, the sweep catches.
    create_settle_seconds: int = Field(default=0, ge=0, le=30)
    #: Remediation role in member accounts: changes it makes never trigger a new evaluation.
    spoke_role_name: str = ""
    #: IAM path of the hub functions' roles (template Globals RolePath): their changes are ignored too.
    own_role_path: str = "/vpce-guard/"
    # -- where findings go besides the ledger (docs/findings.md) ---------------------------------------------
    #: Import status changes into Security Hub (ASFF) in each resource's own account and region.
    security_hub_findings: bool = False
    #: Event bus (name or ARN) that receives a finding event per status change; empty: none.
    findings_event_bus: str = ""
    #: SNS topic for what needs a person (failed, flapping, conflict, the sweep summary); empty: none.
    notifications_topic_arn: str = ""

    @field_validator("aws_owned_resource_arns")
    @classmethod
    def _aws_owned_resources_are_exact_s3_arns(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in v:
            check_aws_owned_resource_arn(pattern)
        return v

    @field_validator("allowed_org_ids")
    @classmethod
    def _org_ids_look_like_org_ids(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = [x for x in v if not ORG_ID_RE.match(x)]
        if bad:
            raise ValueError(f"not organization ids (expected o-xxxxxxxxxx): {bad}")
        return v

    @field_validator("endpoint_ingress_cidrs")
    @classmethod
    def _cidrs(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        out = []
        for item in v:
            try:
                out.append(str(ipaddress.ip_network(item, strict=False)))
            except ValueError:
                raise ValueError(f"not a CIDR: {item!r}") from None
        return tuple(out)

    @field_validator("endpoint_ingress_source_groups")
    @classmethod
    def _groups(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = [x for x in v if not SG_ID_RE.match(x)]
        if bad:
            raise ValueError(f"not security group ids: {bad}")
        return v

    @field_validator("endpoint_service_partners")
    @classmethod
    def _partners(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if "*" in v:
            raise ValueError("'*' cannot be a partner: it allows every principal of every account")
        bad = [x for x in v if not PARTNER_RE.match(x)]
        if bad:
            raise ValueError(f"not account ids or IAM principal ARNs of one account: {bad}")
        return v

    @field_validator("custom_profiles")
    @classmethod
    def _custom_profiles_parse(cls, v: str) -> str:
        try:
            profiles_mod.catalogue(v)
        except profiles_mod.ProfileError as exc:
            raise ValueError(str(exc)) from None
        return v

    @field_validator("default_profiles")
    @classmethod
    def _profiles_exist(cls, v: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        custom = info.data.get("custom_profiles")
        if custom is None:  # custom_profiles failed validation and already says why
            return v
        known = profiles_mod.catalogue(custom)
        unknown = [p for p in v if p not in known]
        if unknown:
            raise ValueError(f"unknown profile(s) {unknown}; known: {sorted(known)}")
        return v

    def profile_catalogue(self) -> dict[str, profiles_mod.Profile]:
        return profiles_mod.catalogue(self.custom_profiles)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        raw = {
            "ledger_table": env.get("LEDGER_TABLE", ""),
            "allowed_org_ids": _csv(env.get("ALLOWED_ORG_IDS", "")),
            "org_account_ids": _csv(env.get("ORG_ACCOUNT_IDS", "")),
            "mode": env.get("MODE", "enforce").strip().lower() or "enforce",
            "ledger_ttl_days": env.get("LEDGER_TTL_DAYS", "400"),
            "exclude_tag_key": env.get("EXCLUDE_TAG_KEY", "vpce-guard:exclude"),
            "default_profiles": profiles_mod.parse_names(env.get("DEFAULT_PROFILES", "")),
            "custom_profiles": env.get("CUSTOM_PROFILES", ""),
            "profiles_tag_key": env.get("PROFILES_TAG_KEY", "vpce-guard:profiles"),
            "create_missing_endpoints": _flag(env.get("CREATE_MISSING_ENDPOINTS", "false")),
            "add_endpoint_ingress": _flag(env.get("ADD_ENDPOINT_INGRESS", "false")),
            "endpoint_ingress_cidrs": _csv(env.get("ENDPOINT_INGRESS_CIDRS", "")),
            "endpoint_ingress_source_groups": _csv(env.get("ENDPOINT_INGRESS_SOURCE_GROUPS", "")),
            "perimeter": env.get("PERIMETER", "identity").strip().lower() or "identity",
            "remove_outside_principals": _flag(env.get("REMOVE_OUTSIDE_PRINCIPALS", "false")),
            "reject_outside_connections": _flag(env.get("REJECT_OUTSIDE_CONNECTIONS", "false")),
            "endpoint_service_partners": _csv(env.get("ENDPOINT_SERVICE_PARTNERS", "")),
            "mode_overrides_parameter": env.get("MODE_OVERRIDES_PARAMETER", "").strip(),
            "mode_overrides_max_age": env.get("MODE_OVERRIDES_MAX_AGE", "60"),
            "exemptions_table": env.get("EXEMPTIONS_TABLE", "").strip(),
            "exempt_tag_key": env.get("EXEMPT_TAG_KEY", "vpce-guard:exempt"),
            "flap_max_fixes": env.get("FLAP_MAX_FIXES", "3"),
            "flap_window_minutes": env.get("FLAP_WINDOW_MINUTES", "60"),
            "create_settle_seconds": env.get("CREATE_SETTLE_SECONDS", "0").strip() or "0",
            "spoke_role_name": env.get("SPOKE_ROLE_NAME", "").strip(),
            "own_role_path": env.get("OWN_ROLE_PATH", "/vpce-guard/").strip(),
            "security_hub_findings": _flag(env.get("SECURITY_HUB_FINDINGS", "false")),
            "findings_event_bus": env.get("FINDINGS_EVENT_BUS", "").strip(),
            "notifications_topic_arn": env.get("NOTIFICATIONS_TOPIC_ARN", "").strip(),
        }
        if "AWS_OWNED_RESOURCE_ARNS" in env:  # set but empty: no exemption at all
            raw["aws_owned_resource_arns"] = _csv(env["AWS_OWNED_RESOURCE_ARNS"])
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            names = {
                "ledger_table": "LEDGER_TABLE",
                "allowed_org_ids": "ALLOWED_ORG_IDS",
                "org_account_ids": "ORG_ACCOUNT_IDS",
                "mode": "MODE",
                "ledger_ttl_days": "LEDGER_TTL_DAYS",
                "exclude_tag_key": "EXCLUDE_TAG_KEY",
                "aws_owned_resource_arns": "AWS_OWNED_RESOURCE_ARNS",
                "default_profiles": "DEFAULT_PROFILES",
                "custom_profiles": "CUSTOM_PROFILES",
                "profiles_tag_key": "PROFILES_TAG_KEY",
                "create_missing_endpoints": "CREATE_MISSING_ENDPOINTS",
                "add_endpoint_ingress": "ADD_ENDPOINT_INGRESS",
                "endpoint_ingress_cidrs": "ENDPOINT_INGRESS_CIDRS",
                "endpoint_ingress_source_groups": "ENDPOINT_INGRESS_SOURCE_GROUPS",
                "perimeter": "PERIMETER",
                "remove_outside_principals": "REMOVE_OUTSIDE_PRINCIPALS",
                "reject_outside_connections": "REJECT_OUTSIDE_CONNECTIONS",
                "endpoint_service_partners": "ENDPOINT_SERVICE_PARTNERS",
                "mode_overrides_parameter": "MODE_OVERRIDES_PARAMETER",
                "mode_overrides_max_age": "MODE_OVERRIDES_MAX_AGE",
                "exemptions_table": "EXEMPTIONS_TABLE",
                "exempt_tag_key": "EXEMPT_TAG_KEY",
                "flap_max_fixes": "FLAP_MAX_FIXES",
                "flap_window_minutes": "FLAP_WINDOW_MINUTES",
                "create_settle_seconds": "CREATE_SETTLE_SECONDS",
                "spoke_role_name": "SPOKE_ROLE_NAME",
                "own_role_path": "OWN_ROLE_PATH",
                "security_hub_findings": "SECURITY_HUB_FINDINGS",
                "findings_event_bus": "FINDINGS_EVENT_BUS",
                "notifications_topic_arn": "NOTIFICATIONS_TOPIC_ARN",
            }
            problems = "; ".join(
                f"{names.get(str(err['loc'][0]), err['loc'][0]) if err['loc'] else 'configuration'}: {err['msg']}"
                for err in exc.errors()
            )
            raise ConfigError(f"invalid vpce-guard configuration: {problems}") from None


def _flag(value: str) -> str:
    """`true`/`false` (any case) as pydantic reads booleans; anything else fails validation by name."""
    return value.strip().lower() or "false"


def _csv(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


@lru_cache(maxsize=1)
def settings() -> Settings:
    """The settings of this cold start (tests call `settings.cache_clear()` after changing the environment)."""
    return Settings.from_env()
