"""aws.side_by_side: independent calls at once, results in the items' order, the first failure raised."""

from __future__ import annotations

import threading
import time

import pytest

from vpce_guard.aws import side_by_side


def test_results_keep_the_order_of_the_items_and_calls_overlap() -> None:
    running, peak, lock = [0], [0], threading.Lock()

    def call(i: int) -> int:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.02 * (5 - i))  # later items finish first
        with lock:
            running[0] -= 1
        return i * i

    assert side_by_side(call, [1, 2, 3, 4], max_workers=4) == [1, 4, 9, 16]
    assert peak[0] > 1


def test_one_item_runs_in_the_callers_thread_and_none_runs_nothing() -> None:
    assert side_by_side(lambda _: threading.current_thread() is threading.main_thread(), ["x"]) == [True]
    assert side_by_side(lambda _: 1 / 0, []) == []


def test_a_failure_is_raised() -> None:
    def call(i: int) -> int:
        if i == 2:
            raise ValueError("item 2")
        return i

    with pytest.raises(ValueError, match="item 2"):
        side_by_side(call, [1, 2, 3])
