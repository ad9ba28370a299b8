"""What a handler builds once per execution environment and reuses while the environment stays warm.

Every handler acts through a `pipeline.Runtime` (settings, sessions, the ledger table, cached lookups) built at
its first invocation, so a bad setting fails that invocation with a message naming the variable. This is the
one implementation of that lazy value. There is one per handler module, not one per process: in Lambda each
function has a process of its own anyway, while the tests, the local runner and the demo host several functions
in one process, each with its own environment and role credentials. `devkit.caches.reset_process_caches`
forgets every one of them (`Warm.reset_all`), so the next invocation starts cold.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Callable
from typing import Any, ClassVar, Generic, TypeVar

# Imported here, at the handler's import, as the handlers did before this module existed (cold-start cost
# stays where benchmarks/bench_cold_start.py measures it).
from .config import settings
from .pipeline import Runtime

T = TypeVar("T")


class Warm(Generic[T]):
    """A value built by `build` at the first call and returned by every later call, until `reset`."""

    _every: ClassVar[weakref.WeakSet[Warm[Any]]] = weakref.WeakSet()

    def __init__(self, build: Callable[[], T]) -> None:
        self._build = build
        self._value: T | None = None
        Warm._every.add(self)

    def __call__(self) -> T:
        if self._value is None:
            self._value = self._build()
        return self._value

    def reset(self) -> None:
        self._value = None

    @classmethod
    def reset_all(cls) -> None:
        for warm in list(cls._every):
            warm.reset()


def _runtime_of_this_cold_start() -> Runtime:
    runtime = Runtime(settings())
    settle_heap()
    return runtime


_settled: list[bool] = []


def settle_heap() -> None:
    """Once per process, when the first cold start has imported everything: move every object the garbage
    collector tracks into its permanent generation (`gc.freeze`), where later collections do not look.

    Why: what a cold start imports (botocore's service models, pydantic's and Powertools' classes, the rules)
    lives as long as the process, yet every full collection walked all of it again. A sweep of 200 VPCs in one
    account-region ran two full collections of about 40 ms each; with the import frozen, one of about 30 ms
    (docs/performance.md). No collection runs first: that would add its own 40 ms to every cold start, and the
    little garbage the imports left is kept, once."""
    if not _settled:
        gc.freeze()
        _settled.append(True)


def runtime() -> Warm[Runtime]:
    """A handler's Runtime, from the settings of this cold start."""
    return Warm(_runtime_of_this_cold_start)
