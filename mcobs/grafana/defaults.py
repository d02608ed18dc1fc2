"""Defaults shared by the Grafana commands (kept import-light for the CLI)."""

from __future__ import annotations

DEFAULT_MCOBS_URL = "http://mcobs:8080"
"""Where Grafana reaches the mcobs HTTP API (a Kubernetes Service named mcobs, port 8080)."""
DEFAULT_FOLDER = "mcobs"
DEFAULT_DASHBOARDS_PATH = "/var/lib/grafana/dashboards/mcobs"
"""Where Grafana's file provider finds the dashboards (mount `DIR/dashboards` there)."""
