"""Throughput of the answer function alone: `pytest -m bench -s`. Reports, never asserts."""

from __future__ import annotations

import time
from collections.abc import Callable

import dns.edns
import pytest

from mcobs.dnsserver import Responder
from mcobs.dnsserver.answers import respond_slow
from tests.dnsserver.support import WEB, WEB_SRV, query_wire, sample_view

pytestmark = pytest.mark.bench


def rate(call: Callable[[], object], seconds: float = 0.5) -> float:
    call()
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(100):
            call()
        count += 100
    return count / elapsed


@pytest.mark.parametrize(("name", "rdtype"), [(WEB, "A"), (WEB_SRV, "SRV")])
def test_fast_versus_slow_path(name: str, rdtype: str) -> None:
    view = sample_view()
    cookie = [dns.edns.CookieOption(b"client!!", b"")]
    packet = query_wire(name.upper(), rdtype, edns=0, options=cookie)
    responder = Responder()
    fast = rate(lambda: responder.respond(view, packet, udp=True))
    slow = rate(lambda: respond_slow(view, packet, udp=True))
    print(f"\n{rdtype:4} fast {fast:10,.0f} q/s   slow {slow:8,.0f} q/s   x{fast / slow:.0f}")
