"""Per-rule modes: the template's default (`MODE`) plus overrides an operator can change without a deploy.

The overrides live in one SSM parameter (name in `MODE_OVERRIDES_PARAMETER`), a JSON object from rule id
to mode, with `"*"` for every rule not named::

    {"gateway-endpoint-route-tables": "dry_run", "*": "enforce"}

It is read through Powertools Parameters with its cache (`MODE_OVERRIDES_MAX_AGE` seconds), so a change
reaches every warm function within that time and costs at most one GetParameter per function and period.

Failure direction: an override must never make vpce-guard do *more* than the operator asked for. A missing
parameter means "no overrides" (logged once per cold start); a parameter that cannot be read or parsed
(bad JSON, an unknown mode, access denied) makes every `enforce` rule fall back to `dry_run` until it can be
read again: the tool keeps recording what it would do and changes nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.parameters import SSMProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from botocore.exceptions import ClientError
from pydantic import RootModel, ValidationError

from .config import Mode

logger = Logger(service="vpce-guard", child=True)

#: Key that sets the mode of every rule the document does not name.
ALL_RULES = "*"


class ModeOverrides(RootModel[dict[str, Mode]]):
    """The parameter's document: rule id (or `*`) → mode."""


class Unreadable:
    """Marker: the overrides exist (or may exist) but cannot be used right now."""

    def __init__(self, why: str) -> None:
        self.why = why


def parse_overrides(raw: str) -> dict[str, Mode] | Unreadable:
    """Pure: the parameter's text → overrides, or why it cannot be used."""
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        return Unreadable(f"not JSON: {exc}")
    if not isinstance(doc, dict):
        return Unreadable("expected a JSON object of rule id → mode")
    try:
        return {k.strip(): v for k, v in ModeOverrides.model_validate(doc).root.items()}
    except ValidationError as exc:
        bad = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5])
        return Unreadable(f"invalid mode(s): {bad}")


def resolve(rule_id: str, default: Mode, overrides: dict[str, Mode] | Unreadable) -> Mode:
    """Pure: the mode of one rule. Unreadable overrides only ever lower the mode (enforce → dry_run)."""
    if isinstance(overrides, Unreadable):
        return Mode.DRY_RUN if default is Mode.ENFORCE else default
    return overrides.get(rule_id) or overrides.get(ALL_RULES) or default


class ModeResolver:
    """`mode_for(rule_id)` for the pipeline: the default, adjusted by the cached overrides parameter."""

    def __init__(self, default: Mode, parameter: str, provider_factory: Callable[[], SSMProvider],
                 max_age: int = 60, clock: Callable[[], float] = time.monotonic) -> None:
        self.default = default
        self.parameter = parameter
        self.max_age = max_age
        self._provider_factory = provider_factory
        self._provider: SSMProvider | None = None
        self._clock = clock
        #: Failures are not cached by Powertools; remember them ourselves so a missing or broken parameter
        #: costs one call per max_age, not one per finding.
        self._failure: tuple[float, dict[str, Mode] | Unreadable] | None = None
        self._parsed: tuple[str, dict[str, Mode] | Unreadable] | None = None
        self._missing_logged = False

    def mode_for(self, rule_id: str) -> Mode:
        return resolve(rule_id, self.default, self.overrides())

    def overrides(self) -> dict[str, Mode] | Unreadable:
        if not self.parameter:
            return {}
        now = self._clock()
        if self._failure is not None and now - self._failure[0] < self.max_age:
            return self._failure[1]
        self._failure = None
        if self._provider is None:
            self._provider = self._provider_factory()
        try:
            raw: Any = self._provider.get(self.parameter, max_age=self.max_age)
        except GetParameterError as exc:
            result = self._on_error(exc)
            self._failure = (now, result)
            return result
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        if self._parsed is None or self._parsed[0] != text:
            parsed = parse_overrides(text)
            if isinstance(parsed, Unreadable):
                logger.error(f"mode overrides in {self.parameter} are unusable ({parsed.why}); enforce rules "
                             "run as dry_run until it is fixed")
            self._parsed = (text, parsed)
        return self._parsed[1]

    def _on_error(self, exc: GetParameterError) -> dict[str, Mode] | Unreadable:
        cause = exc.__context__
        if isinstance(cause, ClientError) and cause.response.get("Error", {}).get("Code") == "ParameterNotFound":
            if not self._missing_logged:
                logger.info(f"no mode overrides: parameter {self.parameter} does not exist")
                self._missing_logged = True
            return {}
        logger.error(f"cannot read mode overrides {self.parameter} ({exc}); enforce rules run as dry_run")
        return Unreadable(str(exc))
