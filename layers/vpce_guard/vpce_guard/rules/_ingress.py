"""Shared by the ingress rule and remediate.py's read-back: does a security group rule let HTTPS in from a CIDR?"""

from __future__ import annotations

import ipaddress

from ..models import IngressRule

HTTPS = 443


def allows_https(rule: IngressRule) -> bool:
    if rule.protocol in ("-1", "all"):
        return True
    if rule.protocol not in ("tcp", "6"):
        return False
    if rule.from_port is None or rule.to_port is None:
        return True  # AWS omits ports only when the rule covers all of them
    return rule.from_port <= HTTPS <= rule.to_port


def covers(rule: IngressRule, cidr: str) -> bool:
    """Does one of the rule's ranges contain the whole CIDR (0.0.0.0/0 contains everything of its family)?"""
    wanted = ipaddress.ip_network(cidr, strict=False)
    for allowed in (*rule.cidrs, *rule.ipv6_cidrs):
        try:
            net = ipaddress.ip_network(allowed, strict=False)
        except ValueError:
            continue
        if net.version == wanted.version and wanted.subnet_of(net):  # type: ignore[arg-type]
            return True
    return False
