"""Settings, read once per cold start from the environment that template.yaml sets.

A bad value fails the cold start with a message naming the variable, instead of surfacing later as an
odd AWS error in the middle of a remediation.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from enum import StrEnum
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

ORG_ID_RE = re.compile(r"^o-[a-z0-9]{10,32}$")


class Mode(StrEnum):
    ENFORCE = "enforce"
    DRY_RUN = "dry_run"
    OFF = "off"


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

    @field_validator("allowed_org_ids")
    @classmethod
    def _org_ids_look_like_org_ids(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = [x for x in v if not ORG_ID_RE.match(x)]
        if bad:
            raise ValueError(f"not organization ids (expected o-xxxxxxxxxx): {bad}")
        return v

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
        }
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
            }
            problems = "; ".join(
                f"{names.get(str(err['loc'][0]), err['loc'][0])}: {err['msg']}" for err in exc.errors()
            )
            raise ConfigError(f"invalid vpce-guard configuration: {problems}") from None


def _csv(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


@lru_cache(maxsize=1)
def settings() -> Settings:
    """The settings of this cold start (tests call `settings.cache_clear()` after changing the environment)."""
    return Settings.from_env()
