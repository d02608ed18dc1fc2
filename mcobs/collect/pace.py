"""How often a replica's collectors sweep: the configured intervals, stretched for big fleets.

Each sweep is an HTTPS request to the cluster's API and, less often, a PromQL
query; with a thousand clusters on one replica, the configured three seconds
would mean over 300 probes a second, more than one Python process can make
besides everything else. `SweepPace` stretches the intervals so a replica makes
at most `max_sweeps` probes and `max_signal_reads` Prometheus reads a second in
all, the way Consul scales its anti-entropy interval with cluster size.

What does not wait for the interval: a broken watch sweeps at once, so a crashed
API server or a cut network is noticed as fast as with a small fleet, and a
cluster between states sweeps every second. Only a silent hang waits for the
longer interval.
"""

from __future__ import annotations

import logging
import math

log = logging.getLogger(__name__)


class SweepPace:
    def __init__(
        self,
        interval: float,
        signal_interval: float,
        *,
        max_sweeps: float = math.inf,
        max_signal_reads: float = math.inf,
        longest: float = math.inf,
    ) -> None:
        """`longest` caps the stretched sweep interval (heartbeats must beat staleness)."""
        self._interval = interval
        self._signal_interval = signal_interval
        self._max_sweeps = max_sweeps
        self._max_signal_reads = max_signal_reads
        self._longest = max(interval, longest)
        self._collectors = 0
        self._stretched = False

    @property
    def sweep_interval(self) -> float:
        return min(self._longest, max(self._interval, self._collectors / self._max_sweeps))

    @property
    def signal_interval(self) -> float:
        return max(self._signal_interval, self._collectors / self._max_signal_reads)

    def join(self) -> None:
        """A collector starts (call `leave` when it stops)."""
        self._collectors += 1
        self._note_change()

    def leave(self) -> None:
        self._collectors -= 1
        self._note_change()

    def _note_change(self) -> None:
        stretched = self.sweep_interval > self._interval
        if stretched != self._stretched:
            self._stretched = stretched
            log.info(
                "%d clusters collected here: each swept every %.1fs, signals read every %.1fs",
                self._collectors,
                self.sweep_interval,
                self.signal_interval,
            )
