"""The global query: the Prometheus HTTP API answered by fanning out to every cluster.

    fanout = Fanout(session, lambda: {"eu-west": "http://prom-eu:9090"}, settings=FanoutSettings())
    app.add_routes(query_routes(fanout))

See README.md beside this file.
"""

from mcobs.query.fanout import Fanout, FanoutSettings, Targets
from mcobs.query.routes import BUILD_INFO, READ_ONLY_POST_PATHS, query_routes

__all__ = [
    "BUILD_INFO",
    "READ_ONLY_POST_PATHS",
    "Fanout",
    "FanoutSettings",
    "Targets",
    "query_routes",
]
