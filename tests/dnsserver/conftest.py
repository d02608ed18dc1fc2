from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from mcobs.dnsserver import DnsServer, Responder
from mcobs.zone import ZoneView
from tests.dnsserver.support import ViewHolder, sample_view


@pytest.fixture
def view() -> ZoneView:
    return sample_view()


@pytest.fixture
def responder() -> Responder:
    return Responder()


@pytest.fixture
def holder(view: ZoneView) -> ViewHolder:
    return ViewHolder(view)


@pytest.fixture
async def server(holder: ViewHolder) -> AsyncIterator[DnsServer]:
    async with DnsServer(holder, port=0, tcp_idle_timeout=2.0) as running:
        yield running
    assert running.open_tcp_connections == 0
