"""A small batching UDP load generator for the DNS benchmark, in C, compiled at run time.

`build(directory)` compiles it with gcc; `run(...)` sends the query packets of a file
round-robin from several sockets (so SO_REUSEPORT spreads them over workers), with
`sendmmsg`/`recvmmsg` in batches, either closed-loop (`rate=0`: keep `outstanding`
queries in flight, i.e. as fast as the server answers) or open-loop at a fixed rate.
A query unanswered after `timeout` seconds is lost. Results come back as a dict:
sent, received, lost, qps (answers per second), latency mean/p50/p99/max (microseconds).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path

SOURCE = r"""
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 32
#define MAXPKT 512
#define IDS 65536
#define RING (1u << 20)
#define MAXSOCK 64

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double sent_at[IDS];
static unsigned char busy[IDS];
static uint16_t ring[RING];

int main(int argc, char **argv) {
    if (argc != 9) {
        fprintf(stderr, "usage: loadgen host port file seconds rate outstanding sockets timeout\n");
        return 2;
    }
    const char *host = argv[1];
    int port = atoi(argv[2]);
    double seconds = atof(argv[4]), rate = atof(argv[5]), timeout = atof(argv[8]);
    long outstanding = atol(argv[6]);
    int nsock = atoi(argv[7]);
    if (nsock < 1 || nsock > MAXSOCK) return 2;

    FILE *f = fopen(argv[3], "rb");
    if (!f) { perror("open"); return 2; }
    static unsigned char data[1 << 22];
    size_t size = fread(data, 1, sizeof data, f);
    fclose(f);
    size_t ntpl = 0, cap = 1024;
    unsigned char **tpl = malloc(cap * sizeof *tpl);
    size_t *tlen = malloc(cap * sizeof *tlen);
    for (size_t off = 0; off + 2 <= size;) {
        size_t len = (size_t)data[off] << 8 | data[off + 1];
        if (off + 2 + len > size || len > MAXPKT || len < 12) return 2;
        if (ntpl == cap) {
            cap *= 2;
            tpl = realloc(tpl, cap * sizeof *tpl);
            tlen = realloc(tlen, cap * sizeof *tlen);
        }
        tpl[ntpl] = data + off + 2;
        tlen[ntpl++] = len;
        off += 2 + len;
    }
    if (!ntpl) return 2;

    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    inet_pton(AF_INET, host, &addr.sin_addr);
    int fds[MAXSOCK];
    struct pollfd pfds[MAXSOCK];
    for (int i = 0; i < nsock; i++) {
        fds[i] = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
        int buf = 1 << 22;
        setsockopt(fds[i], SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
        setsockopt(fds[i], SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
        if (connect(fds[i], (struct sockaddr *)&addr, sizeof addr)) { perror("connect"); return 2; }
        pfds[i].fd = fds[i];
        pfds[i].events = POLLIN;
    }

    size_t latcap = 1 << 16, nlat = 0;
    double *lat = malloc(latcap * sizeof *lat);
    static unsigned char sbuf[BATCH][MAXPKT], rbuf[BATCH][2048];
    struct mmsghdr smsg[BATCH], rmsg[BATCH];
    struct iovec siov[BATCH], riov[BATCH];
    uint16_t sid[BATCH];
    for (int i = 0; i < BATCH; i++) {
        riov[i].iov_base = rbuf[i];
        riov[i].iov_len = sizeof rbuf[i];
    }

    unsigned long long sent = 0, received = 0, lost = 0, late = 0;
    unsigned head = 0, tail = 0, next_id = 0;
    size_t qi = 0;
    long inflight = 0;
    int rr = 0;
    double start = now(), end = start + seconds, t;
    int draining = 0;
    for (;;) {
        t = now();
        if (!draining && t >= end) draining = 1;
        if (draining && (inflight == 0 || t >= end + timeout)) break;
        int progress = 0;
        long want = 0;
        if (!draining) {
            want = rate > 0 ? (long)((t - start) * rate) - (long)sent : outstanding - inflight;
            if (want > BATCH) want = BATCH;
            if (tail - head > RING - BATCH) want = 0;
        }
        if (want > 0) {
            int n = 0;
            for (; n < want; n++) {
                uint16_t id = next_id & 0xFFFF;
                if (busy[id]) break;
                next_id++;
                size_t k = qi++ % ntpl;
                memcpy(sbuf[n], tpl[k], tlen[k]);
                sbuf[n][0] = id >> 8;
                sbuf[n][1] = id & 0xFF;
                siov[n].iov_base = sbuf[n];
                siov[n].iov_len = tlen[k];
                memset(&smsg[n].msg_hdr, 0, sizeof smsg[n].msg_hdr);
                smsg[n].msg_hdr.msg_iov = &siov[n];
                smsg[n].msg_hdr.msg_iovlen = 1;
                sid[n] = id;
            }
            int r = n ? sendmmsg(fds[rr++ % nsock], smsg, n, 0) : 0;
            if (r < 0) r = 0;
            for (int i = 0; i < r; i++) {
                busy[sid[i]] = 1;
                sent_at[sid[i]] = t;
                ring[tail++ % RING] = sid[i];
            }
            next_id -= n - r;
            qi -= n - r;
            sent += r;
            inflight += r;
            progress |= r > 0;
        }
        for (int s = 0; s < nsock; s++) {
            for (;;) {
                for (int i = 0; i < BATCH; i++) {
                    memset(&rmsg[i].msg_hdr, 0, sizeof rmsg[i].msg_hdr);
                    rmsg[i].msg_hdr.msg_iov = &riov[i];
                    rmsg[i].msg_hdr.msg_iovlen = 1;
                }
                int r = recvmmsg(fds[s], rmsg, BATCH, MSG_DONTWAIT, NULL);
                if (r <= 0) break;
                double tr = now();
                for (int i = 0; i < r; i++) {
                    if (rmsg[i].msg_len < 12) continue;
                    uint16_t id = rbuf[i][0] << 8 | rbuf[i][1];
                    if (!busy[id]) { late++; continue; }
                    busy[id] = 0;
                    inflight--;
                    if (sent_at[id] <= end) received++;
                    if (nlat == latcap) { latcap *= 2; lat = realloc(lat, latcap * sizeof *lat); }
                    lat[nlat++] = (tr - sent_at[id]) * 1e6;
                }
                progress = 1;
                if (r < BATCH) break;
            }
        }
        while (head != tail) {
            uint16_t id = ring[head % RING];
            if (!busy[id]) { head++; continue; }
            if (t - sent_at[id] < timeout) break;
            busy[id] = 0;
            inflight--;
            lost++;
            head++;
        }
        if (!progress) {
            int wait_ms = 1;
            if (rate > 0 && !draining) {
                double next = start + (sent + 1) / rate;
                wait_ms = next > t ? (int)((next - t) * 1000) : 0;
            }
            if (rate == 0 || wait_ms > 0) poll(pfds, nsock, wait_ms > 1 ? 1 : wait_ms);
        }
    }
    double mean = 0, p50 = 0, p99 = 0, mx = 0;
    if (nlat) {
        for (size_t i = 0; i < nlat; i++) mean += lat[i];
        mean /= nlat;
        qsort(lat, nlat, sizeof *lat, cmp);
        p50 = lat[nlat / 2];
        p99 = lat[(size_t)(nlat * 0.99)];
        mx = lat[nlat - 1];
    }
    printf("{\"sent\": %llu, \"received\": %llu, \"lost\": %llu, \"late\": %llu, "
           "\"qps\": %.1f, \"latency_mean_us\": %.1f, \"latency_p50_us\": %.1f, "
           "\"latency_p99_us\": %.1f, \"latency_max_us\": %.1f}\n",
           sent, received, lost, late, received / seconds, mean, p50, p99, mx);
    return 0;
}
"""


def build(directory: Path) -> Path:
    gcc = shutil.which("gcc")
    if gcc is None:
        raise RuntimeError("gcc is needed to build the load generator")
    source = directory / "loadgen.c"
    source.write_text(SOURCE)
    binary = directory / "loadgen"
    subprocess.run([gcc, "-O2", "-Wall", "-o", str(binary), str(source)], check=True)
    return binary


def write_queries(path: Path, packets: Iterable[bytes]) -> None:
    with path.open("wb") as out:
        for packet in packets:
            out.write(len(packet).to_bytes(2, "big") + packet)


def run(
    binary: Path,
    port: int,
    queries: Path,
    *,
    seconds: float,
    rate: float = 0,
    outstanding: int = 100,
    sockets: int = 8,
    timeout: float = 0.2,
    cpu: Sequence[int] = (),
) -> dict[str, float]:
    """One run; `cpu`: pin it with taskset."""
    pin = ["taskset", "-c", ",".join(map(str, cpu))] if cpu else []
    command = [
        *pin,
        str(binary),
        "127.0.0.1",
        str(port),
        str(queries),
        str(seconds),
        str(rate),
        str(outstanding),
        str(sockets),
        str(timeout),
    ]
    done = subprocess.run(command, check=True, capture_output=True, text=True, timeout=seconds + 30)
    result: dict[str, float] = json.loads(done.stdout)
    return result
