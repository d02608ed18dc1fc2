"""The live status page: `status_routes(hub, events)` mounts `/`, its assets and its stream."""

from mcobs.status.routes import status_routes

__all__ = ["status_routes"]
