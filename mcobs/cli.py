"""`mcobs` command line: the only place that wires everything together."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from mcobs.config import (
    TOKEN_ENV,
    ConfigError,
    Settings,
    api_token,
    load_settings,
    parse_settings,
)
from mcobs.grafana.cli import add_grafana_commands
from mcobs.overrides_cli import add_override_commands

if TYPE_CHECKING:
    from mcobs.hub import Hub

log = logging.getLogger("mcobs")

DEMO_ZONE = "global.example.com"


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # The kubernetes client logs request details (with headers) at DEBUG; keep it quiet.
    logging.getLogger("kubernetes").setLevel(logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.WARNING)


def _check_config(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(Path(args.file))
    except ConfigError as error:
        print(f"{error.source}: {len(error.problems)} problem(s)", file=sys.stderr)
        for problem in error.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    dns, http = settings.dns, settings.http
    print(
        f"{args.file}: ok (zone {settings.zone}, {len(settings.clusters)} clusters, "
        f"DNS {dns.host}:{dns.port}, HTTP {http.host}:{http.port})"
    )
    return 0


async def _serve(settings: Settings, config: Path) -> None:
    from mcobs.catalog.redis import RedisCatalog
    from mcobs.decide.events import RedisEventLog, connect
    from mcobs.decide.lease import RedisLease, default_holder
    from mcobs.hub import Hub
    from mcobs.notify.redis import RedisOutboxStore
    from mcobs.shard.manager import ShardManager
    from mcobs.workers import start_workers, stop_workers

    token = api_token(settings, os.environ)
    if token is None:
        log.warning(
            "no API token (http.token_file or %s): mutating API calls are disabled", TOKEN_ENV
        )
    store = RedisCatalog.from_url(settings.redis.url, prefix=settings.redis.prefix)
    outbox = RedisOutboxStore.from_url(settings.redis.url, prefix=settings.redis.prefix)
    decide_client = connect(settings.redis.url)
    # The generated name is unique to this process, so the lease and the shard share it
    # (/api/v1/leader and /api/v1/shard then agree). A configured shard.replica_id is
    # not trusted to be unique: two replicas given the same one must not both lead.
    holder = default_holder()
    lease = RedisLease(
        decide_client, prefix=settings.redis.prefix, holder=holder, ttl=settings.decide.lease_ttl
    )
    shard = None
    if settings.shard.enabled:
        shard = ShardManager(
            decide_client,
            settings.shard.replica_id or holder,
            [c.name for c in settings.clusters],
            ttl=settings.shard.lease_ttl,
            prefix=settings.redis.prefix,
        )
    events = RedisEventLog(
        decide_client, prefix=settings.redis.prefix, maxlen=settings.decide.events_maxlen
    )
    try:
        async with Hub(
            settings,
            store,
            token=token,
            outbox_store=outbox,
            lease=lease,
            events=events,
            shard=shard,
        ) as hub:
            log.info(
                "serving zone %s: DNS on %s:%d, HTTP on %s:%d",
                settings.zone,
                settings.dns.host,
                hub.dns_port,
                settings.http.host,
                hub.http_port,
            )
            workers = []
            if settings.dns.workers > 1:
                workers = start_workers(config, hub.dns_port, settings.dns.workers - 1)
                log.info("%d more DNS worker processes on port %d", len(workers), hub.dns_port)
            try:
                await _until_signalled(hub)
            finally:
                await asyncio.to_thread(stop_workers, workers)
    finally:
        await store.close()
        await outbox.close()
        await events.close()
        await decide_client.aclose()


async def _until_signalled(hub: Hub) -> None:
    """Run until SIGTERM/SIGINT (a graceful stop) or until the hub fails."""
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, hub.stop)
    try:
        await hub.wait()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
    log.info("stopping")


def _serve_command(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(Path(args.config))
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_serve(settings, Path(args.config)))
    except ConfigError as error:
        for problem in error.problems:
            log.error("%s: %s", error.source, problem)
        return 1
    return 0


def demo_settings(fleet: object, kubeconfig: Path, dns_port: int, http_port: int) -> Settings:
    from mcobs.sim.fleet import SimFleet

    assert isinstance(fleet, SimFleet)
    return parse_settings(
        {
            "zone": DEMO_ZONE,
            "dns": {
                "host": "127.0.0.1",
                "port": dns_port,
                "nameservers": [{"name": f"ns1.{DEMO_ZONE}", "addresses": ["127.0.0.1"]}],
            },
            "http": {"host": "127.0.0.1", "port": http_port},
            "clusters": [
                {
                    "name": c.name,
                    "region": c.region,
                    "kubeconfig": str(kubeconfig),
                    "context": c.name,
                    "prometheus_url": c.prometheus_url,
                }
                for c in fleet.clusters
            ],
        },
        source="demo",
    )


def _demo_banner(dns_port: int, http_port: int, kubeconfig: Path, store: str) -> str:
    name = f"web.default.{DEMO_ZONE}"
    api = f"127.0.0.1:{http_port}/api/v1"
    return f"""
mcobs demo is running: 3 simulated clusters, catalog: {store}
  kubeconfig of the simulated clusters: {kubeconfig}

Try:
  dig @127.0.0.1 -p {dns_port} {name} A
  dig @127.0.0.1 -p {dns_port} _http._tcp.{name} SRV
  curl {api}/clusters
  curl {api}/services
  curl {api}/services/default/web
  curl -X POST {api}/sim/clusters/us-east/outage      # us-east stops answering
  curl -X POST {api}/sim/clusters/us-east/recover
  curl -X POST {api}/sim/clusters/eu-west/services/default/web/ready -d '{{"ready": 0}}'
  kubectl --kubeconfig {kubeconfig} --context eu-west get services,endpointslices,nodes -A

Press Ctrl-C to stop.
"""


async def _demo(args: argparse.Namespace) -> None:
    from mcobs.catalog.memory import MemoryCatalog
    from mcobs.catalog.redis import RedisCatalog
    from mcobs.catalog.store import CatalogStore
    from mcobs.decide.events import EventLog, MemoryEventLog, RedisEventLog, connect
    from mcobs.decide.lease import Lease, LeaseBoard, MemoryLease, RedisLease
    from mcobs.hub import Hub
    from mcobs.notify.memory import MemoryOutboxStore
    from mcobs.notify.redis import RedisOutboxStore
    from mcobs.notify.store import OutboxStore
    from mcobs.sim.control import sim_routes
    from mcobs.sim.fleet import SimFleet

    fleet = SimFleet.default(clusters=args.clusters)
    await fleet.start()
    workdir = Path(tempfile.mkdtemp(prefix="mcobs-demo-"))
    kubeconfig = fleet.write_kubeconfig(
        Path(args.kubeconfig) if args.kubeconfig else workdir / "kubeconfig"
    )
    settings = demo_settings(fleet, kubeconfig, args.dns_port, args.http_port)
    store: CatalogStore
    outbox: OutboxStore
    lease: Lease
    events: EventLog
    decide_client = None
    if args.redis_url:
        store = RedisCatalog.from_url(args.redis_url, prefix="mcobs-demo")
        outbox = RedisOutboxStore.from_url(args.redis_url, prefix="mcobs-demo")
        decide_client = connect(args.redis_url)
        lease = RedisLease(decide_client, prefix="mcobs-demo")
        events = RedisEventLog(decide_client, prefix="mcobs-demo")
    else:
        store = MemoryCatalog()
        outbox = MemoryOutboxStore()
        board = LeaseBoard()
        lease = MemoryLease(board, holder="demo")
        events = MemoryEventLog(board)
    try:
        async with Hub(
            settings,
            store,
            extra_routes=sim_routes(fleet),
            token=args.token,
            open_mutations=args.token is None,
            outbox_store=outbox,
            lease=lease,
            events=events,
        ) as hub:
            print(
                _demo_banner(
                    hub.dns_port,
                    hub.http_port,
                    kubeconfig,
                    args.redis_url or "embedded (in-process)",
                ),
                flush=True,
            )
            await _until_signalled(hub)
    finally:
        await store.close()
        await outbox.close()
        await events.close()
        if decide_client is not None:
            await decide_client.aclose()
        await fleet.stop()


def _demo_command(args: argparse.Namespace) -> int:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_demo(args))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mcobs", description="Multi-cluster catalog, health-weighted DNS and failover."
    )
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the hub against real clusters")
    serve.add_argument("--config", required=True, help="YAML configuration file")
    serve.set_defaults(handler=_serve_command)

    demo = commands.add_parser("demo", help="run the hub against simulated clusters")
    demo.add_argument("--dns-port", type=int, default=5353)
    demo.add_argument("--http-port", type=int, default=8080)
    demo.add_argument("--clusters", type=int, default=3, choices=range(1, 101), metavar="N")
    demo.add_argument("--redis-url", help="use this Redis as the catalog (default: embedded)")
    demo.add_argument("--kubeconfig", help="where to write the simulated clusters' kubeconfig")
    demo.add_argument("--token", help="require this bearer token for mutating API calls")
    demo.set_defaults(handler=_demo_command)

    add_override_commands(commands)
    add_grafana_commands(commands)

    check = commands.add_parser("check-config", help="validate a configuration file")
    check.add_argument("file")
    check.set_defaults(handler=_check_config)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _setup_logging(args.log_level)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
