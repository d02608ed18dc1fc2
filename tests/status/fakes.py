"""A HubView the status tests can change by hand, and catalogs for it."""

from __future__ import annotations

from mcobs.answer import ZonePlan, ZonePolicy, build_zone
from mcobs.model import CatalogSnapshot, Health, HealthState
from mcobs.zone import Nameserver
from tests.core.factories import HEALTHY, report, service, snapshot

POLICY = ZonePolicy(
    origin="global.example.com.", nameservers=(Nameserver("ns1.global.example.com."),)
)
NOW = 1010.0
DOWN = Health(0.0, HealthState.DOWN, ("API unreachable: connection refused",))


class Hub:
    """A HubView whose plan object changes only when its snapshot does (as the Planner's)."""

    def __init__(self, catalog: CatalogSnapshot) -> None:
        self.ready = True
        self.stale_after = 30.0
        self.set(catalog)

    def set(self, catalog: CatalogSnapshot) -> None:
        self.snapshot = catalog
        self.plan: ZonePlan = build_zone(catalog, POLICY, NOW)

    def now(self) -> float:
        return NOW

    def locate(self, address: object) -> str | None:
        return None


def two_clusters(us_east: Health | None = None) -> CatalogSnapshot:
    """eu-west and us-east, both serving `default/web`; us-east with `us_east` health."""
    east = report(
        "us-east", (service("us-east", ("192.0.2.2",)),), region="us", health=us_east or HEALTHY
    )
    return snapshot(report("eu-west", (service("eu-west", ("192.0.2.1",)),), region="eu"), east)
