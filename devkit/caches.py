"""Forget what a cold start caches, so each in-process invocation in a test starts cold."""

from __future__ import annotations


def reset_process_caches() -> None:
    from vpce_guard import aws, config, exemptions, inventory, warm

    warm.Warm.reset_all()  # every handler's Runtime (functions/*/app.py)
    config.settings.cache_clear()
    aws.reset_caches()
    exemptions.reset_caches()
    inventory._POLICY_SUPPORT_CACHE.clear()
    inventory._PREFIX_LIST_CACHE.clear()
