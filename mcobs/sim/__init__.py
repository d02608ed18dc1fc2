"""Simulated member clusters that speak the real Kubernetes and Prometheus HTTP APIs.

fleet = SimFleet.default(clusters=3)
async with fleet:
    fleet.write_kubeconfig(path)          # contexts eu-west, us-east, ap-south
    fleet.cluster("eu-west").prometheus_url
    fleet.set_ready("eu-west", "default", "web", 0)
    await fleet.outage("us-east")         # or mode="hang"
    await fleet.recover("us-east")
add_sim_routes(app, fleet)                # control API under /api/v1/sim/
"""

from mcobs.sim.churn import Churn
from mcobs.sim.cluster import ServiceSpec, SimCluster
from mcobs.sim.control import add_sim_routes, sim_routes
from mcobs.sim.errors import SimError, SimNotFound
from mcobs.sim.fleet import SimFleet
from mcobs.sim.gate import Mode
from mcobs.sim.kubeapi import WatchSettings
from mcobs.sim.state import Port

__all__ = [
    "Churn",
    "Mode",
    "Port",
    "ServiceSpec",
    "SimCluster",
    "SimError",
    "SimFleet",
    "SimNotFound",
    "WatchSettings",
    "add_sim_routes",
    "sim_routes",
]
