"""Configuration errors name the variable; values are parsed once."""

from __future__ import annotations

import pytest

from vpce_guard.config import ConfigError, Mode, Settings


def test_csv_org_ids_and_mode_are_parsed() -> None:
    s = Settings.from_env({"LEDGER_TABLE": "t-1", "ALLOWED_ORG_IDS": " o-abcdefghij , o-0123456789", "MODE": "DRY_RUN"})
    assert s.allowed_org_ids == ("o-abcdefghij", "o-0123456789")
    assert s.mode is Mode.DRY_RUN


def test_bad_org_id_error_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="ALLOWED_ORG_IDS"):
        Settings.from_env({"LEDGER_TABLE": "t-1", "ALLOWED_ORG_IDS": "123456789012"})


def test_missing_table_error_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="LEDGER_TABLE"):
        Settings.from_env({})


def test_unknown_mode_is_rejected() -> None:
    with pytest.raises(ConfigError, match="MODE"):
        Settings.from_env({"LEDGER_TABLE": "t-1", "MODE": "yolo"})
