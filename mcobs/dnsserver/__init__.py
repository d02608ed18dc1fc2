"""Authoritative DNS for the global zone: answers from an in-memory ZoneView.

`DnsServer` listens on UDP and TCP; `Responder` is its answer function (fast path
over cached wire responses, full dnspython path for anything unusual); `DnsStats`
holds the counters a metrics module reads.
"""

from mcobs.dnsserver.responder import Responder
from mcobs.dnsserver.server import DnsServer, ViewProvider
from mcobs.dnsserver.stats import DnsStats, StatsSnapshot

__all__ = ["DnsServer", "DnsStats", "Responder", "StatsSnapshot", "ViewProvider"]
