"""Keeps the memory of a hub's many TLS connections small.

asyncio gives every TLS connection a read buffer of 256 KiB, held for the
connection's life, and reads decrypted data in pieces as large. A hub keeps
about four TLS connections open to each cluster's API server (two watches,
probes, lists), so a thousand clusters held a gigabyte of mostly empty
buffers. A TLS record carries at most 16 KiB, so a buffer of two records
reads as much per call as a socket delivers at once on these links.
"""

from __future__ import annotations

import asyncio.sslproto
import logging
from typing import Final

log = logging.getLogger(__name__)

TLS_READ_BUFFER: Final = 32 * 1024


def shrink_tls_read_buffers(size: int = TLS_READ_BUFFER) -> bool:
    """Give TLS connections opened from now on (in this process) `size`-byte read
    buffers; False (and nothing changed) on a Python whose asyncio has no such knob."""
    if size < 16 * 1024 + 256:
        raise ValueError(f"a TLS read buffer must hold a whole record, got {size} bytes")
    protocol = getattr(asyncio.sslproto, "SSLProtocol", None)
    if not isinstance(getattr(protocol, "max_size", None), int):
        log.info("this Python's asyncio has no TLS read buffer size; keeping its default")
        return False
    protocol.max_size = size  # type: ignore[union-attr]
    return True
