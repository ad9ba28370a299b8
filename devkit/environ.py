"""Set and unset process environment variables for a block, restoring the whole environment afterwards.

`unittest.mock.patch.dict` does the saving and restoring (every variable as it was, including ones the block
itself added or removed); this adds the removal of variables, which patch.dict cannot express.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from unittest import mock


@contextmanager
def patched_environ(values: Mapping[str, str] | None = None, *, unset: Iterable[str] = ()) -> Iterator[None]:
    with mock.patch.dict(os.environ, values or {}):
        for name in unset:
            if name not in (values or {}):
                os.environ.pop(name, None)
        yield
