"""One cluster's object store: versions, events, bounded history."""

from __future__ import annotations

from mcobs.sim.state import Event, KubeStore, Meta, Node


def _store(history: int = 1000) -> KubeStore:
    return KubeStore(clock=lambda: 1_700_000_000.0, history=history, uid_seed="test")


def test_every_change_gets_the_next_version_and_an_event() -> None:
    store = _store()
    seen: list[Event] = []
    store.subscribe(seen.append)

    store.put(Node(Meta("n1")))
    store.put(Node(Meta("n1"), ready=False))
    store.delete("nodes", "", "n1")

    assert [(e.type, e.resource_version) for e in seen] == [
        ("ADDED", 1),
        ("MODIFIED", 2),
        ("DELETED", 3),
    ]
    assert store.resource_version == 3
    assert store.items("nodes") == []


def test_writing_the_same_object_again_is_not_a_change() -> None:
    store = _store()
    store.put(Node(Meta("n1")))

    assert store.put(Node(Meta("n1"))) is None
    assert store.resource_version == 1


def test_an_update_keeps_uid_and_creation_time_a_recreation_does_not() -> None:
    store = _store()
    first = store.put(Node(Meta("n1")))
    updated = store.put(Node(Meta("n1"), ready=False))
    store.delete("nodes", "", "n1")
    again = store.put(Node(Meta("n1")))

    assert first and updated and again
    assert updated.obj.meta.uid == first.obj.meta.uid
    assert updated.obj.meta.created == 1_700_000_000.0
    assert again.obj.meta.uid != first.obj.meta.uid


def test_history_is_bounded_and_older_versions_expire() -> None:
    store = _store(history=3)
    for n in range(5):
        store.put(Node(Meta(f"n{n}")))

    assert store.oldest_resumable == 2
    assert store.changes_since("nodes", 1) is None
    changes = store.changes_since("nodes", 2)
    assert changes is not None
    assert [e.resource_version for e in changes] == [3, 4, 5]
    assert store.changes_since("services", 2) == []


def test_unsubscribed_listeners_hear_nothing_more() -> None:
    store = _store()
    seen: list[Event] = []
    stop = store.subscribe(seen.append)
    store.put(Node(Meta("n1")))
    stop()
    store.put(Node(Meta("n2")))

    assert len(seen) == 1
