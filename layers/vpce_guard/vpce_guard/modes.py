"""Per-rule modes: the template's default (`MODE`) plus overrides an operator can change without a deploy.

The overrides live in one SSM parameter (name in `MODE_OVERRIDES_PARAMETER`), a JSON object from rule id
to mode, with `"*"` for every rule not named::

    {"gateway-endpoint-route-tables": "dry_run", "*": "enforce"}

It is read through Powertools Parameters with its cache (`MODE_OVERRIDES_MAX_AGE` seconds), so a change
reaches every warm function within that time and costs at most one GetParameter per function and period.

Failure direction: a failure to *read* the parameter never changes what vpce-guard does.
- Missing parameter: no overrides (logged once per cold start).
- Cannot be read (throttling, 5xx, network, access denied): a warm function keeps using the overrides it
  last read (up to `STALE_LIMIT`, logged); with nothing read yet, `OverridesUnavailable` is raised and the
  invocation fails, so Lambda retries it (and its dead-letter queue keeps the event) or SQS redelivers the
  sweep unit. Falling back to `dry_run` would turn enforcement off silently for as long as the outage lasts;
  falling back to the template's `Mode` would override an operator's `off` or `dry_run`.
- Read, but unusable (bad JSON, an unknown mode): the operator's intent cannot be known, so every `enforce`
  rule runs as `dry_run` until it is fixed; `degraded` says so, and the functions emit the
  `mode_overrides_invalid` metric, which an alarm watches.
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


#: How long a warm function keeps using the overrides it last read while the parameter cannot be read.
STALE_LIMIT = 900.0
#: A failure to read is not asked again for this long (seconds): a run asks once, a retry asks again.
FAILURE_PAUSE = 10.0


class OverridesUnavailable(RuntimeError):
    """The overrides could not be read and none were read before: fail the run so that it is retried."""


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
        #: Failures are not cached by Powertools; remember them ourselves so a broken parameter costs one call
        #: per FAILURE_PAUSE, not one per finding.
        self._failure: tuple[float, float, dict[str, Mode] | Unreadable | OverridesUnavailable] | None = None
        self._parsed: tuple[str, dict[str, Mode] | Unreadable] | None = None
        #: The last overrides read (or known missing), and when: what a warm function keeps through an outage.
        self._last_good: tuple[float, dict[str, Mode] | Unreadable] | None = None
        self._missing_logged = False

    def mode_for(self, rule_id: str) -> Mode:
        return resolve(rule_id, self.default, self.overrides())

    @property
    def degraded(self) -> str | None:
        """Why enforce rules run as dry_run (the parameter was read but is unusable), or None."""
        current = self._last_good[1] if self._last_good else None
        return current.why if isinstance(current, Unreadable) else None

    def overrides(self) -> dict[str, Mode] | Unreadable:
        """The overrides in force. Raises `OverridesUnavailable` when they cannot be read and none were before."""
        if not self.parameter:
            return {}
        now = self._clock()
        if self._failure is not None and now - self._failure[0] < self._failure[1]:
            cached = self._failure[2]
            if isinstance(cached, OverridesUnavailable):
                raise cached
            return cached
        self._failure = None
        if self._provider is None:
            self._provider = self._provider_factory()
        try:
            raw: Any = self._provider.get(self.parameter, max_age=self.max_age)
        except GetParameterError as exc:
            return self._on_error(exc, now)
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        if self._parsed is None or self._parsed[0] != text:
            parsed = parse_overrides(text)
            if isinstance(parsed, Unreadable):
                logger.error(f"mode overrides in {self.parameter} are unusable ({parsed.why}); enforce rules "
                             "run as dry_run until it is fixed")
            elif self._parsed is not None:
                logger.warning(f"mode overrides in {self.parameter} changed",
                               extra={"before": self._parsed[0][:1000], "after": text[:1000]})
            self._parsed = (text, parsed)
        self._last_good = (now, self._parsed[1])
        return self._parsed[1]

    def _on_error(self, exc: GetParameterError, now: float) -> dict[str, Mode] | Unreadable:
        cause = exc.__context__
        if isinstance(cause, ClientError) and cause.response.get("Error", {}).get("Code") == "ParameterNotFound":
            if not self._missing_logged:
                logger.info(f"no mode overrides: parameter {self.parameter} does not exist")
                self._missing_logged = True
            self._last_good = (now, {})
            self._failure = (now, self.max_age, {})  # a missing parameter is asked for once per max_age
            return {}
        if self._last_good is not None and now - self._last_good[0] < STALE_LIMIT:
            logger.warning(f"cannot read mode overrides {self.parameter} ({exc}); keeping the ones read "
                           f"{now - self._last_good[0]:.0f} s ago")
            self._failure = (now, FAILURE_PAUSE, self._last_good[1])
            return self._last_good[1]
        unavailable = OverridesUnavailable(
            f"cannot read mode overrides {self.parameter} ({exc}); nothing was evaluated or changed, the run is "
            "retried")
        logger.error(str(unavailable))
        self._failure = (now, FAILURE_PAUSE, unavailable)
        raise unavailable
