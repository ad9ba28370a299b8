"""Make a moto-backed EC2 client page its Describe* results the way AWS does.

moto 5.2.5 ignores MaxResults and never returns a NextToken, so code that forgets to follow NextToken
passes every moto test. Installed on a client (its event hooks, so the code under test keeps using the
same client object), this cuts each response of the listed operations to `page_size` items and hands out
a NextToken; the next request with that token gets the next slice of moto's full answer. Every call is
recorded as (operation, token received, items returned).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any

#: Operation -> the result key that holds its items.
PAGED_OPERATIONS = {
    "DescribeVpcEndpoints": "VpcEndpoints",
    "DescribeRouteTables": "RouteTables",
    "DescribeVpcs": "Vpcs",
}
_TOKEN_PREFIX = "moto-page-"


@dataclass
class Paging:
    page_size: int
    calls: list[tuple[str, str | None, int]] = field(default_factory=list)

    def install(self, client: Any, operations: dict[str, str] | None = None) -> Paging:
        for operation, key in (operations or PAGED_OPERATIONS).items():
            client.meta.events.register(f"before-call.ec2.{operation}", self._before)
            client.meta.events.register(f"after-call.ec2.{operation}", partial(self._after, operation, key))
        return self

    def _before(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        body = params.get("body") or {}
        token = body.get("NextToken")
        offset = int(token[len(_TOKEN_PREFIX):]) if token and token.startswith(_TOKEN_PREFIX) else 0
        limit = min(int(body.get("MaxResults") or self.page_size), self.page_size)
        context["moto_paging"] = (token, offset, limit)

    def _after(self, operation: str, key: str, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        token, offset, limit = context.get("moto_paging", (None, 0, self.page_size))
        items = parsed.get(key, [])
        parsed[key] = items[offset:offset + limit]
        parsed.pop("NextToken", None)
        if offset + limit < len(items):
            parsed["NextToken"] = f"{_TOKEN_PREFIX}{offset + limit}"
        self.calls.append((operation, token, len(parsed[key])))

    def pages(self, operation: str) -> list[tuple[str | None, int]]:
        return [(token, n) for op, token, n in self.calls if op == operation]
