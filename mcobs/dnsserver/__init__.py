"""Authoritative DNS for the global zone: answers from an in-memory ZoneView.

`DnsServer` listens on UDP and TCP; `Responder` is its answer function (fast path
over cached wire responses, full dnspython path for anything unusual); `RateLimit`
configures response rate limiting; `DnsStats` holds the counters a metrics module
reads; `mcobs.dnsserver.worker` runs servers in processes sharing a port.
"""

from mcobs.dnsserver.ratelimit import RateLimit
from mcobs.dnsserver.responder import Responder
from mcobs.dnsserver.server import DnsServer, LatencyObserver, ViewProvider
from mcobs.dnsserver.stats import DnsStats, StatsSnapshot

__all__ = [
    "DnsServer",
    "DnsStats",
    "LatencyObserver",
    "RateLimit",
    "Responder",
    "StatsSnapshot",
    "ViewProvider",
]
