"""`mcobs drain` / `mcobs undrain`: thin clients of the HTTP API."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import re
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from mcobs.config import TOKEN_ENV

_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def parse_duration(text: str) -> int:
    """`90s`, `30m`, `1h30m`, `2d` -> seconds; raises ValueError."""
    match = _DURATION.fullmatch(text.strip())
    if not text.strip() or not match:
        raise ValueError(f"{text!r} is not a duration like 30m, 2h or 1h30m")
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def _token(args: argparse.Namespace) -> str | None:
    if os.environ.get(TOKEN_ENV):
        return os.environ[TOKEN_ENV].strip()
    if args.token_file:
        return Path(args.token_file).read_text(encoding="utf-8").strip()
    return None


def _call(args: argparse.Namespace, method: str, path: str, body: Any = None) -> int:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(args.api.rstrip("/") + path, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    token = _token(args)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            print(json.dumps(json.load(response), indent=2))
            return 0
    except urllib.error.HTTPError as error:
        try:
            message = json.load(error).get("error", error.reason)
        except ValueError:
            message = error.reason
        print(f"mcobs: {method} {path}: HTTP {error.code}: {message}", file=sys.stderr)
    except (urllib.error.URLError, OSError) as error:
        print(f"mcobs: cannot reach {args.api}: {error}", file=sys.stderr)
    return 1


def _drain(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"cluster": args.cluster, "reason": args.reason, "by": args.by}
    if args.service:
        body["service"] = args.service
    if args.duration:
        try:
            body["expires_in"] = parse_duration(args.duration)
        except ValueError as error:
            print(f"mcobs: --for: {error}", file=sys.stderr)
            return 2
    return _call(args, "POST", "/api/v1/drains", body)


def _undrain(args: argparse.Namespace) -> int:
    path = f"/api/v1/drains/{args.cluster}"
    if args.service:
        path += "/" + args.service
    return _call(args, "DELETE", path)


def _client_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--api", default="http://127.0.0.1:8080", help="mcobs HTTP API URL")
    parser.add_argument("--token-file", help=f"bearer token file ({TOKEN_ENV} overrides)")


def add_override_commands(commands: Any) -> None:
    drain = commands.add_parser(
        "drain", help="take a cluster (or one service in it) out of answers"
    )
    drain.add_argument("cluster")
    drain.add_argument("--service", help="namespace/name: drain only this service")
    drain.add_argument("--reason", required=True, help="why (shown in the API and events)")
    drain.add_argument("--for", dest="duration", help="expire after this long, e.g. 30m or 2h")
    drain.add_argument("--by", default=getpass.getuser(), help="who drains (default: you)")
    _client_options(drain)
    drain.set_defaults(handler=_drain)

    undrain = commands.add_parser("undrain", help="put a drained cluster or service back")
    undrain.add_argument("cluster")
    undrain.add_argument("--service", help="namespace/name")
    _client_options(undrain)
    undrain.set_defaults(handler=_undrain)
