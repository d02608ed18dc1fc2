"""Kubernetes credentials, loaded by the official `kubernetes` client's config loaders.

The official loader understands every kubeconfig form (tokens, client
certificates, exec and auth-provider plugins, in-cluster service accounts).
mcobs borrows its result and talks to the API over aiohttp, so one event loop
can watch many clusters without a thread per watch.

Tokens live only in `KubeCredentials.headers()`; its repr hides them.
"""

from __future__ import annotations

import functools
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client as kube_client
from kubernetes import config as kube_config
from kubernetes.config.kube_config import KubeConfigLoader


class CredentialsError(Exception):
    """A cluster's kubeconfig or in-cluster configuration could not be loaded."""


@dataclass(frozen=True)
class KubeCredentials:
    server: str
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False)
    _configuration: Any = field(default=None, repr=False, compare=False)

    def headers(self) -> dict[str, str]:
        """Authorization headers; `auth_settings` runs the loader's refresh hook when set."""
        cfg = self._configuration
        if cfg is None:
            return {}
        headers: dict[str, str] = {}
        for setting in cfg.auth_settings().values():
            if setting.get("in") == "header" and setting.get("value"):
                headers[str(setting["key"]).title()] = str(setting["value"])
        return headers


def _ssl_context(cfg: Any) -> ssl.SSLContext | None:
    if not str(cfg.host).startswith("https://"):
        return None
    context = ssl.create_default_context(cafile=cfg.ssl_ca_cert or None)
    if not cfg.verify_ssl:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if cfg.cert_file:
        context.load_cert_chain(cfg.cert_file, cfg.key_file)
    return context


_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's loader where PyYAML was built with it: a fleet's kubeconfig can hold a
thousand contexts, which the pure-Python loader takes seconds to read."""
_parsing = threading.Lock()


def _parsed(path: Path, mtime_ns: int) -> Any:
    """A kubeconfig file, parsed once for all its contexts. Credentials load in worker
    threads, many at once at start-up: the lock makes them wait for one parse."""
    with _parsing:
        return _parsed_once(path, mtime_ns)


@functools.lru_cache(maxsize=16)
def _parsed_once(path: Path, mtime_ns: int) -> Any:
    with path.open(encoding="utf-8") as handle:
        return yaml.load(handle, Loader=_SafeLoader)


def load_credentials(
    kubeconfig: Path | None, context: str | None, in_cluster: bool
) -> KubeCredentials:
    """Blocking (exec plugins run here): call it off the event loop."""
    cfg = kube_client.Configuration()
    try:
        if in_cluster:
            kube_config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
        elif kubeconfig is not None:
            loader = KubeConfigLoader(  # type: ignore[no-untyped-call]
                config_dict=_parsed(kubeconfig, kubeconfig.stat().st_mtime_ns),
                active_context=context,
                config_base_path=str(kubeconfig.parent),
            )
            loader.load_and_set(cfg)  # type: ignore[no-untyped-call]
        else:
            kube_config.load_kube_config(  # type: ignore[no-untyped-call]
                context=context, client_configuration=cfg, persist_config=False
            )
        return KubeCredentials(
            server=str(cfg.host).rstrip("/"), ssl_context=_ssl_context(cfg), _configuration=cfg
        )
    except (
        kube_config.ConfigException,
        OSError,
        ssl.SSLError,
        ValueError,
        yaml.YAMLError,
    ) as error:
        source = "in-cluster config" if in_cluster else f"kubeconfig context {context or '-'}"
        raise CredentialsError(f"{source}: {error}") from None
