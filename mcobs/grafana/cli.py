"""`mcobs grafana export DIR` and `mcobs grafana provision --url URL --token-file F`.

`add_grafana_commands(commands)` mounts both under `mcobs grafana`; each
handler takes the parsed arguments and returns the exit code. The token is
read from a file and never printed or logged. The handlers import the
dashboard builders and the Grafana client when they run, so `mcobs` starts
fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from mcobs.config import ConfigError, load_settings
from mcobs.grafana.defaults import DEFAULT_DASHBOARDS_PATH, DEFAULT_FOLDER, DEFAULT_MCOBS_URL

if TYPE_CHECKING:
    from mcobs.grafana.datasources import ClusterPrometheus

EXIT_FAILED = 1


class _Failure(Exception):
    pass


def _clusters(config: str | None) -> tuple[ClusterPrometheus, ...]:
    from mcobs.grafana.datasources import cluster_prometheus

    if not config:
        return ()
    try:
        return cluster_prometheus(load_settings(Path(config)))
    except ConfigError as error:
        problems = "\n".join(f"  {p}" for p in error.problems)
        raise _Failure(f"{error.source}: {len(error.problems)} problem(s)\n{problems}") from None


def _token(path: str) -> str:
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except OSError as error:
        raise _Failure(f"cannot read the token file {path}: {error.strerror}") from None
    if not token:
        raise _Failure(f"the token file {path} is empty")
    return token


def export_command(args: argparse.Namespace) -> int:
    """Write Grafana file provisioning (or only the dashboard JSON) under DIR."""
    from mcobs.grafana.export import export_dashboards, write_dashboard_files

    directory = Path(args.dir)
    try:
        if args.dashboards_only:
            written = write_dashboard_files(directory)
        else:
            written = export_dashboards(
                directory,
                mcobs_url=args.mcobs_url,
                clusters=_clusters(args.config),
                folder=args.folder,
                dashboards_path=args.dashboards_path,
            )
    except _Failure as failure:
        print(failure, file=sys.stderr)
        return EXIT_FAILED
    for path in written:
        print(path)
    return 0


def provision_command(args: argparse.Namespace) -> int:
    """Create or update the folder, datasources and dashboards through Grafana's HTTP API."""
    from mcobs.grafana.client import GrafanaError, safe_url
    from mcobs.grafana.provision import provision_grafana

    try:
        token = _token(args.token_file)
        clusters = _clusters(args.config)
        result = provision_grafana(
            args.url,
            token,
            mcobs_url=args.mcobs_url,
            clusters=clusters,
            folder=args.folder,
            force=args.force,
            dry_run=args.dry_run,
        )
    except _Failure as failure:
        print(failure, file=sys.stderr)
        return EXIT_FAILED
    except (GrafanaError, ValueError) as error:
        print(f"grafana at {safe_url(args.url)}: {error}", file=sys.stderr)
        return EXIT_FAILED
    for line in result.lines():
        print(line)
    return result.exit_code


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", help="mcobs configuration: adds one datasource per cluster Prometheus"
    )
    parser.add_argument(
        "--mcobs-url",
        default=DEFAULT_MCOBS_URL,
        help=f"the mcobs HTTP API as Grafana reaches it (default {DEFAULT_MCOBS_URL})",
    )
    parser.add_argument(
        "--folder", default=DEFAULT_FOLDER, help=f"Grafana folder (default {DEFAULT_FOLDER})"
    )


def add_grafana_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Mount `grafana export` and `grafana provision` on the `mcobs` subcommands."""
    grafana = commands.add_parser("grafana", help="Grafana dashboards and provisioning")
    sub = grafana.add_subparsers(dest="grafana_command", required=True)

    export = sub.add_parser("export", help="write Grafana file provisioning and dashboards")
    export.add_argument("dir", help="output directory")
    _common(export)
    export.add_argument(
        "--dashboards-path",
        default=DEFAULT_DASHBOARDS_PATH,
        help=f"where Grafana finds the dashboards (default {DEFAULT_DASHBOARDS_PATH})",
    )
    export.add_argument(
        "--dashboards-only", action="store_true", help="write only the dashboard JSON files"
    )
    export.set_defaults(handler=export_command)

    provision = sub.add_parser(
        "provision", help="create or update the folder, datasources and dashboards via the API"
    )
    provision.add_argument("--url", required=True, help="Grafana's URL")
    provision.add_argument(
        "--token-file", required=True, help="file holding a Grafana service account token"
    )
    _common(provision)
    provision.add_argument(
        "--force", action="store_true", help="overwrite dashboards changed in Grafana"
    )
    provision.add_argument("--dry-run", action="store_true", help="show the plan, change nothing")
    provision.set_defaults(handler=provision_command)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m mcobs.grafana.cli ...`, for use before `mcobs grafana` is mounted."""
    parser = argparse.ArgumentParser(prog="mcobs")
    add_grafana_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
