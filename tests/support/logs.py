"""Capture what the functions log, as records with their structured fields.

Powertools loggers are stdlib loggers named after the service (`vpce-guard`, children
`vpce-guard.<module>`), so a handler on the service logger sees every line a function writes, with the
`extra` fields as attributes, without parsing stdout.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

SERVICE_LOGGER = "vpce-guard"


class _ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def captured_logs(name: str = SERVICE_LOGGER) -> Iterator[list[logging.LogRecord]]:
    """Records logged under `name` (and its children) inside the block."""
    handler = _ListHandler()
    logger = logging.getLogger(name)
    logger.addHandler(handler)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)
