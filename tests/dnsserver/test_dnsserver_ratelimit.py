"""Response rate limiting: the limiter with a fake clock, then the server over sockets."""

from __future__ import annotations

import asyncio
import socket

import dns.flags
import dns.message
import dns.rcode
import pytest

from mcobs.dnsserver import DnsServer
from mcobs.dnsserver.ratelimit import RateLimit, RateLimiter, Verdict
from tests.dnsserver.support import WEB, TcpClient, ViewHolder, query_wire


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def verdicts(limiter: RateLimiter, peer: object, count: int) -> list[Verdict]:
    return [limiter.check(peer) for _ in range(count)]


A = ("192.0.2.1", 5353)
A_NEIGHBOUR = ("192.0.2.200", 1)  # same /24
B = ("198.51.100.1", 5353)


def test_a_prefix_gets_its_rate_then_is_limited_with_slips() -> None:
    clock = Clock()
    limiter = RateLimiter(RateLimit(responses_per_second=5, slip=2), clock)
    assert verdicts(limiter, A, 5) == [Verdict.ANSWER] * 5
    limited = verdicts(limiter, A, 6)
    assert limited == [Verdict.DROP, Verdict.SLIP] * 3


def test_prefixes_are_counted_apart_and_a_24_together() -> None:
    limiter = RateLimiter(RateLimit(responses_per_second=2), Clock())
    assert verdicts(limiter, A, 2) == [Verdict.ANSWER] * 2
    assert limiter.check(A_NEIGHBOUR) != Verdict.ANSWER
    assert verdicts(limiter, B, 2) == [Verdict.ANSWER] * 2


def test_ipv6_clients_share_a_56() -> None:
    limiter = RateLimiter(RateLimit(responses_per_second=1), Clock())
    assert limiter.check(("2001:db8:0:ff::1", 53, 0, 0)) == Verdict.ANSWER
    assert limiter.check(("2001:db8:0:aa::2", 53, 0, 0)) != Verdict.ANSWER  # same /56
    assert limiter.check(("2001:db8:0:100::1", 53, 0, 0)) == Verdict.ANSWER  # next /56


def test_credit_comes_back_with_time_and_debt_lasts_the_window() -> None:
    clock = Clock()
    limiter = RateLimiter(RateLimit(responses_per_second=10, window=2, slip=0), clock)
    for _ in range(200):  # a flood: the debt reaches its floor (2 s worth)
        limiter.check(A)
    clock.now += 1.0
    assert limiter.check(A) == Verdict.DROP  # still paying the debt
    clock.now += 1.5
    assert limiter.check(A) == Verdict.ANSWER
    clock.now += 100  # credit is capped at one second's worth
    assert verdicts(limiter, A, 11).count(Verdict.ANSWER) == 10


@pytest.mark.parametrize(("slip", "expected"), [(0, Verdict.DROP), (1, Verdict.SLIP)])
def test_slip_zero_drops_all_and_one_truncates_all(slip: int, expected: Verdict) -> None:
    limiter = RateLimiter(RateLimit(responses_per_second=1, slip=slip), Clock())
    limiter.check(A)
    assert set(verdicts(limiter, A, 10)) == {expected}


@pytest.mark.parametrize(
    "peer", [("127.0.0.1", 1), ("127.8.9.10", 1), ("::1", 1, 0, 0), ("10.0.0.1", 1), None]
)
def test_exempt_networks_and_odd_peers_are_never_limited(peer: object) -> None:
    limit = RateLimit(responses_per_second=1, exempt=("127.0.0.0/8", "::1/128", "10.0.0.0/8"))
    limiter = RateLimiter(limit, Clock())
    assert set(verdicts(limiter, peer, 50)) == {Verdict.ANSWER}
    assert limiter.tracked == 0


def test_tracked_prefixes_are_bounded() -> None:
    limiter = RateLimiter(RateLimit(responses_per_second=1, max_prefixes=100), Clock())
    for i in range(1000):
        limiter.check((f"10.{i // 256}.{i % 256}.1", 53))
    assert limiter.tracked == 100


def test_bad_settings_report_every_problem() -> None:
    with pytest.raises(ValueError) as caught:
        RateLimit(responses_per_second=0, window=-1, slip=-1, ipv4_prefix=33, exempt=("x",))
    message = str(caught.value)
    for field in ("responses_per_second", "window", "slip", "ipv4_prefix", "exempt"):
        assert field in message


# -- over sockets ----------------------------------------------------------------------


async def test_server_limits_udp_slips_truncated_answers_and_keeps_tcp(
    holder: ViewHolder,
) -> None:
    clock = Clock()  # frozen: no credit comes back during the test
    limit = RateLimit(responses_per_second=3, slip=2, exempt=())
    async with DnsServer(holder, port=0, rate_limit=limit, clock=clock) as server:
        loop = asyncio.get_running_loop()
        replies: list[dns.message.Message] = []
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            for qid in range(10):
                await loop.sock_sendto(sock, query_wire(WEB, qid=qid), ("127.0.0.1", server.port))
            for _ in range(10):
                try:
                    async with asyncio.timeout(0.3):
                        data, _ = await loop.sock_recvfrom(sock, 4096)
                except TimeoutError:
                    break
                replies.append(dns.message.from_wire(data))
        answered = [r for r in replies if not r.flags & dns.flags.TC]
        slipped = [r for r in replies if r.flags & dns.flags.TC]
        assert sorted(r.id for r in answered) == [0, 1, 2]
        assert all(len(r.answer[0]) == 2 for r in answered)
        assert sorted(r.id for r in slipped) == [4, 6, 8]  # every 2nd limited query
        for reply in slipped:
            assert (reply.rcode(), reply.answer) == (dns.rcode.NOERROR, [])
            assert reply.question[0].name.to_text() == WEB
        assert (server.stats.rate_limited, server.stats.rate_limited_slipped) == (4, 3)

        client = await TcpClient.connect(server.port)  # the retry over TCP is answered
        try:
            for qid in range(20):
                client.send(query_wire(WEB, qid=qid))
                assert len(dns.message.from_wire(await client.receive()).answer[0]) == 2
        finally:
            await client.close()


async def test_loopback_is_exempt_by_default(server: DnsServer) -> None:
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        received = 0
        for qid in range(300):  # more than a second's worth of the default rate
            await loop.sock_sendto(sock, query_wire(WEB, qid=qid), ("127.0.0.1", server.port))
            async with asyncio.timeout(2):
                await loop.sock_recvfrom(sock, 4096)
            received += 1
    assert received == 300
    assert server.stats.rate_limited == server.stats.rate_limited_slipped == 0
