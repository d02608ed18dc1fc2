"""Redis key names of the decision side (lease, fencing counter, event stream, facts).

With the default prefix `mcobs`:

    mcobs:{decide}:lease    hash    holder, token, since; PEXPIRE'd (the lease itself)
    mcobs:{decide}:token    string  the fencing counter, INCR'ed by every acquisition
    mcobs:{decide}:events   stream  one entry per event, field `event` = its JSON
    mcobs:{decide}:facts    hash    what the last decision saw (the diff's baseline)

Every key carries the hash tag `{decide}`, so on Redis Cluster they share one
slot and the fenced append (check the lease, XADD, update the facts) stays one
Lua script.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DecideKeys:
    lease: str
    token: str
    events: str
    facts: str

    @classmethod
    def for_prefix(cls, prefix: str) -> DecideKeys:
        if not prefix or any(c in prefix for c in "{}"):
            raise ValueError(f"key prefix must be non-empty and without braces: {prefix!r}")
        base = f"{prefix}:{{decide}}"
        return cls(f"{base}:lease", f"{base}:token", f"{base}:events", f"{base}:facts")
