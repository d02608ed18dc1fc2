"""Grafana for mcobs: generated dashboards, file and API provisioning, annotations.

Import from the modules: `dashboards` (the generator), `export` (file
provisioning), `provision` (HTTP API provisioning), `annotate` (failover
annotations), `cli` (the `mcobs grafana` commands). See `README.md` here.
"""
