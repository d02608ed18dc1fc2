"""Kubernetes objects of one simulated cluster, its resourceVersion and recent events.

Plain Python values and no I/O: `mcobs.sim.render` turns them into Kubernetes JSON,
`mcobs.sim.kubeapi` serves them. One resourceVersion counter per cluster, as in
etcd; a bounded history of events lets a watch resume from a recent version and
tells it when its version has been compacted away (410 Expired).
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Literal, TypeAlias

Resource: TypeAlias = Literal["nodes", "services", "endpointslices"]
RESOURCES: tuple[Resource, ...] = ("nodes", "services", "endpointslices")
EventType: TypeAlias = Literal["ADDED", "MODIFIED", "DELETED"]

EMPTY: Mapping[str, str] = MappingProxyType({})
_UID_NAMESPACE = uuid.UUID("6f0c8c7e-3a51-4c1c-9b7e-6d2f0b1a5e42")


def frozen_map(values: Mapping[str, str] | None) -> Mapping[str, str]:
    """A read-only copy, so stored objects cannot change behind the store's back."""
    return MappingProxyType(dict(values or {}))


@dataclass(frozen=True, slots=True)
class Meta:
    name: str
    namespace: str = ""
    """Empty for cluster-scoped objects (nodes)."""
    labels: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    annotations: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    uid: str = ""
    """Set by the store."""
    resource_version: int = 0
    """Set by the store."""
    created: float = 0.0
    """Unix time, set by the store."""


@dataclass(frozen=True, slots=True)
class Node:
    meta: Meta
    ready: bool = True
    internal_ip: str = ""
    kubelet_version: str = "v1.32.0"


@dataclass(frozen=True, slots=True)
class Port:
    name: str
    port: int
    protocol: str = "TCP"
    target_port: int | None = None
    """None: same as `port`."""


@dataclass(frozen=True, slots=True)
class Service:
    meta: Meta
    type: str = "ClusterIP"
    cluster_ip: str = ""
    ports: tuple[Port, ...] = ()
    selector: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    ingress_ips: tuple[str, ...] = ()
    ingress_hostnames: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Endpoint:
    address: str
    ready: bool
    node_name: str = ""


@dataclass(frozen=True, slots=True)
class EndpointSlice:
    meta: Meta
    address_type: str = "IPv4"
    endpoints: tuple[Endpoint, ...] = ()
    ports: tuple[Port, ...] = ()


Obj: TypeAlias = Node | Service | EndpointSlice


def resource_of(obj: Obj) -> Resource:
    if isinstance(obj, Node):
        return "nodes"
    if isinstance(obj, Service):
        return "services"
    return "endpointslices"


def with_meta(obj: Obj, meta: Meta) -> Obj:
    if isinstance(obj, Node):
        return replace(obj, meta=meta)
    if isinstance(obj, Service):
        return replace(obj, meta=meta)
    return replace(obj, meta=meta)


@dataclass(frozen=True, slots=True)
class Event:
    type: EventType
    obj: Obj
    """The object as of this event; a deleted object carries the deletion's version."""

    @property
    def resource(self) -> Resource:
        return resource_of(self.obj)

    @property
    def resource_version(self) -> int:
        return self.obj.meta.resource_version


Listener: TypeAlias = Callable[[Event], None]


class KubeStore:
    """The objects of one cluster, keyed by (namespace, name) per resource."""

    __slots__ = ("_clock", "_floor", "_history", "_listeners", "_objects", "_rv", "_uid_seed")

    def __init__(
        self, *, clock: Callable[[], float], history: int = 1000, uid_seed: str = ""
    ) -> None:
        if history < 1:
            raise ValueError(f"history must be at least 1, got {history}")
        self._clock = clock
        self._uid_seed = uid_seed
        self._rv = 0
        self._floor = 0
        self._history: deque[Event] = deque(maxlen=history)
        self._objects: dict[Resource, dict[tuple[str, str], Obj]] = {r: {} for r in RESOURCES}
        self._listeners: list[Listener] = []

    @property
    def resource_version(self) -> int:
        """The version of the latest change (0 before the first)."""
        return self._rv

    @property
    def oldest_resumable(self) -> int:
        """The oldest resourceVersion a watch can still resume from."""
        return self._floor

    def items(self, resource: Resource, namespace: str | None = None) -> list[Obj]:
        """Current objects sorted by namespace and name; `namespace` None: all."""
        found = self._objects[resource]
        keys = sorted(k for k in found if namespace is None or k[0] == namespace)
        return [found[k] for k in keys]

    def get(self, resource: Resource, namespace: str, name: str) -> Obj | None:
        return self._objects[resource].get((namespace, name))

    def changes_since(self, resource: Resource, resource_version: int) -> list[Event] | None:
        """Events of `resource` after `resource_version`; None when they are no longer kept."""
        if resource_version < self._floor:
            return None
        return [
            e
            for e in self._history
            if e.resource_version > resource_version and e.resource == resource
        ]

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call `listener` with every later event; returns the function that stops it."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def put(self, obj: Obj) -> Event | None:
        """Create or replace an object; None when nothing changed (no new version)."""
        resource = resource_of(obj)
        key = (obj.meta.namespace, obj.meta.name)
        old = self._objects[resource].get(key)
        if old is not None:
            kept = replace(
                obj.meta,
                uid=old.meta.uid,
                created=old.meta.created,
                resource_version=old.meta.resource_version,
            )
            if with_meta(obj, kept) == old:
                return None
            meta = replace(kept, resource_version=self._rv + 1)
        else:
            meta = replace(
                obj.meta,
                uid=self._uid(resource, key, self._rv + 1),
                created=self._clock(),
                resource_version=self._rv + 1,
            )
        stored = with_meta(obj, meta)
        self._rv += 1
        self._objects[resource][key] = stored
        return self._record(Event("ADDED" if old is None else "MODIFIED", stored))

    def delete(self, resource: Resource, namespace: str, name: str) -> Event | None:
        """Remove an object; None when there was none."""
        old = self._objects[resource].pop((namespace, name), None)
        if old is None:
            return None
        self._rv += 1
        gone = with_meta(old, replace(old.meta, resource_version=self._rv))
        return self._record(Event("DELETED", gone))

    def _record(self, event: Event) -> Event:
        if len(self._history) == self._history.maxlen:
            self._floor = self._history[0].resource_version
        self._history.append(event)
        for listener in list(self._listeners):
            listener(event)
        return event

    def _uid(self, resource: Resource, key: tuple[str, str], version: int) -> str:
        ident = f"{self._uid_seed}/{resource}/{key[0]}/{key[1]}/{version}"
        return str(uuid.uuid5(_UID_NAMESPACE, ident))
