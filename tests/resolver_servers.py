"""Real resolvers (unbound, dnsmasq) in front of mcobs, on free loopback ports.

Their configuration is generated into a temporary folder from the snippets in
`dns/`, with the mcobs port put in place of the demo's 5353, wrapped in the few
settings a throwaway instance needs (foreground, no chroot, no change of user,
no upstream but mcobs, nothing but loopback).

    async with Unbound.in_front_of(mcobs_port, workdir) as resolver:
        response = await dns.asyncquery.udp(query, "127.0.0.1", port=resolver.port)

The processes run in the foreground; `stop()` (or leaving the `async with`)
terminates them and waits. Waiting is done with `asyncio.sleep`, so an mcobs
hub in the same event loop keeps answering while a resolver starts.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import dns.asyncquery
import dns.exception
import dns.message
import dns.rdataclass
import dns.rdatatype

REPO = Path(__file__).resolve().parent.parent
DNS_DIR = REPO / "dns"
"""The resolver snippets users copy (data only: no Python package there)."""
DEMO_PORT = 5353
"""The mcobs port written in the snippets."""
ZONE = "global.example.com"
START_LIMIT = 10.0
"""Seconds a resolver may take to answer after it is started."""
STOP_LIMIT = 5.0
"""Seconds a resolver may take to exit after SIGTERM before it is killed."""
DIG_LIMIT = 15.0
INSTALL_HINT = (
    "install the Debian packages the resolver tests run: "
    "apt-get install unbound dnsmasq-base bind9-utils (see the Makefile's system-deps)"
)


def require(binary: str) -> str:
    """The path of `binary`, or an AssertionError saying which packages to install."""
    found = shutil.which(binary) or shutil.which(binary, path="/usr/sbin:/usr/bin:/sbin:/bin")
    if found is None:
        raise AssertionError(f"{binary} not found: {INSTALL_HINT}")
    return found


def free_port() -> int:
    """A loopback port free for both UDP and TCP at the time of the call."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port: int = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no loopback port free for both UDP and TCP")


def snippet(relative: str, mcobs_port: int, placeholder: str) -> str:
    """The text of `dns/<relative>` with `placeholder` (which must contain the demo port
    exactly once, like `@5353`) pointing at `mcobs_port` instead."""
    text = (DNS_DIR / relative).read_text()
    count = text.count(placeholder)
    if count != 1:
        raise AssertionError(f"dns/{relative}: expected {placeholder!r} once, found {count}")
    return text.replace(placeholder, placeholder.replace(str(DEMO_PORT), str(mcobs_port)))


async def _answers_udp(port: int) -> bool:
    """Whether something on `port` answers a CHAOS `version.bind` query over UDP.

    Both unbound and dnsmasq answer it themselves, without asking mcobs."""
    query = dns.message.make_query("version.bind.", dns.rdatatype.TXT, dns.rdataclass.CH)
    try:
        await dns.asyncquery.udp(query, "127.0.0.1", port=port, timeout=0.2)
    except (OSError, dns.exception.DNSException):
        return False
    return True


class ResolverProcess:
    """One resolver process in the foreground, its output in `workdir/<name>.log`."""

    name = "resolver"

    def __init__(self, argv: list[str], port: int, workdir: Path) -> None:
        self.argv = argv
        self.port = port
        self.workdir = workdir
        self.log_path = workdir / f"{self.name}.log"
        self._process: asyncio.subprocess.Process | None = None

    def log(self) -> str:
        """What the process printed so far (for failure messages)."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    async def start(self) -> None:
        """Start the process; return once it answers over UDP (within START_LIMIT)."""
        if self._process is not None:
            return
        with self.log_path.open("wb") as log:
            process = self._process = await asyncio.create_subprocess_exec(
                *self.argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                cwd=self.workdir,
            )
        try:
            async with asyncio.timeout(START_LIMIT):
                while not await _answers_udp(self.port):
                    if process.returncode is not None:
                        raise RuntimeError(
                            f"{self.name} exited at start ({process.returncode}):\n{self.log()}"
                        )
                    await asyncio.sleep(0.02)
        except TimeoutError:
            await self.stop()
            raise RuntimeError(
                f"{self.name} did not answer within {START_LIMIT}s:\n{self.log()}"
            ) from None
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Terminate the process and wait for it (killed after STOP_LIMIT)."""
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            async with asyncio.timeout(STOP_LIMIT):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()

    async def __aenter__(self) -> ResolverProcess:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


class Unbound(ResolverProcess):
    """unbound with `dns/unbound/mcobs.conf` included (stub-zone to mcobs)."""

    name = "unbound"

    @classmethod
    def in_front_of(
        cls,
        mcobs_port: int,
        workdir: Path,
        *,
        extra: str = "",
        edit: Callable[[str], str] = lambda text: text,
    ) -> Unbound:
        """`extra`: more configuration after the server options (it may open other
        clauses); `edit`: a change to the snippet's text, for counter-examples."""
        port = free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        included = workdir / "mcobs.conf"
        included.write_text(edit(snippet("unbound/mcobs.conf", mcobs_port, f"@{DEMO_PORT}")))
        config = workdir / "unbound.conf"
        config.write_text(unbound_config(port, workdir, included, extra))
        return cls([require("unbound"), "-d", "-c", str(config)], port, workdir)


def unbound_config(port: int, workdir: Path, included: Path, extra: str = "") -> str:
    """A throwaway unbound around an included snippet: loopback only, one thread,
    no chroot, no user change, no control socket, stderr logging; queries can leave
    only from 127.0.0.1, so nothing but mcobs (on loopback) is ever reached."""
    return f"""server:
    interface: 127.0.0.1
    port: {port}
    do-ip6: no
    outgoing-interface: 127.0.0.1
    num-threads: 1
    so-reuseport: no
    username: ""
    chroot: ""
    directory: "{workdir}"
    pidfile: "{workdir}/unbound.pid"
    use-syslog: no
    logfile: ""
    verbosity: 1
    log-servfail: yes
    access-control: 127.0.0.0/8 allow
{extra}
remote-control:
    control-enable: no

include: "{included}"
"""


class Dnsmasq(ResolverProcess):
    """dnsmasq with `dns/dnsmasq/mcobs.conf` as its only upstream configuration."""

    name = "dnsmasq"

    @classmethod
    def in_front_of(cls, mcobs_port: int, workdir: Path) -> Dnsmasq:
        port = free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        included = workdir / "mcobs.conf"
        included.write_text(snippet("dnsmasq/mcobs.conf", mcobs_port, f"#{DEMO_PORT}"))
        config = workdir / "dnsmasq.conf"
        config.write_text(dnsmasq_config(port, included))
        return cls([require("dnsmasq"), f"--conf-file={config}"], port, workdir)


def dnsmasq_config(port: int, included: Path) -> str:
    """A throwaway dnsmasq around an included snippet: foreground, loopback only, no
    /etc/resolv.conf or /etc/hosts (so no upstream but mcobs), no DHCP, no pid file,
    logging every query to stderr; it keeps root instead of switching user."""
    return f"""keep-in-foreground
port={port}
listen-address=127.0.0.1
bind-interfaces
no-resolv
no-hosts
no-poll
pid-file=
user=root
log-facility=-
log-queries
conf-file={included}
"""


async def dig(port: int, name: str, rdtype: str, *options: str) -> str:
    """The output of the real `dig` asking 127.0.0.1:`port` (waits without blocking)."""
    process = await asyncio.create_subprocess_exec(
        require("dig"),
        "@127.0.0.1",
        "-p",
        str(port),
        "+time=2",
        "+tries=2",
        *options,
        name,
        rdtype,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        async with asyncio.timeout(DIG_LIMIT):
            output, _ = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    text = output.decode(errors="replace")
    if process.returncode != 0:
        raise AssertionError(f"dig exited with {process.returncode}:\n{text}")
    return text
