"""Outside-in probes of a service's load balancer addresses (TCP connect or HTTP GET).

A dead ingress controller or load balancer is caught even while every pod is
Ready. A probe never raises: it returns None when the address answered, or
the reason it did not.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress

import aiohttp

from mcobs.annotations import ProbeSpec
from mcobs.collect.kubeapi import describe
from mcobs.model import ClusterService, ServicePort


def probe_port(service: ClusterService, spec: ProbeSpec) -> ServicePort | None:
    """The Service port a probe targets: by name or number, else the first port."""
    for port in service.ports:
        if spec.port is None or spec.port in (port.name, str(port.port)):
            return port
    return None


def _host(address: str) -> str:
    return f"[{address}]" if ipaddress.ip_address(address).version == 6 else address


async def probe_tcp(address: str, port: int, limit: float) -> str | None:
    try:
        async with asyncio.timeout(limit):
            _, writer = await asyncio.open_connection(address, port)
    except TimeoutError:
        return f"tcp {_host(address)}:{port}: timed out"
    except OSError as error:
        return f"tcp {_host(address)}:{port}: {error.strerror or type(error).__name__}"
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return None


async def probe_http(
    session: aiohttp.ClientSession, scheme: str, address: str, port: int, path: str, limit: float
) -> str | None:
    url = f"{scheme}://{_host(address)}:{port}{path}"
    try:
        async with session.get(
            url,
            timeout=aiohttp.ClientTimeout(total=limit),
            allow_redirects=False,
            # The certificate names the service, not the address we dial.
            ssl=False,
        ) as response:
            if response.status >= 400:
                return f"GET {url}: HTTP {response.status}"
    except (aiohttp.ClientError, TimeoutError, OSError) as error:
        return f"GET {url}: {describe(error)}"
    return None


async def probe_service(
    session: aiohttp.ClientSession, service: ClusterService, spec: ProbeSpec, limit: float
) -> tuple[int, list[str]]:
    """(addresses probed, failure reasons) for every load balancer IP of a service."""
    port = probe_port(service, spec)
    if port is None:
        return 0, [f"probe: the Service has no port {spec.port or ''}".rstrip()]
    if spec.kind == "tcp":
        checks = [probe_tcp(a, port.port, limit) for a in service.addresses]
    else:
        checks = [
            probe_http(session, spec.kind, a, port.port, spec.path, limit)
            for a in service.addresses
        ]
    results = await asyncio.gather(*checks)
    return len(checks), [r for r in results if r is not None]
