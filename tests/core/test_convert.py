from mcobs.collect.convert import cluster_services, node_ready, to_service, to_slice
from mcobs.model import ServiceKey, ServicePort


def _service(**overrides):  # type: ignore[no-untyped-def]
    obj = {
        "metadata": {
            "name": "web",
            "namespace": "default",
            "annotations": {"mcobs.io/global": "true", "other.io/x": "y"},
        },
        "spec": {
            "type": "LoadBalancer",
            "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
        },
        "status": {
            "loadBalancer": {"ingress": [{"ip": "192.0.2.1"}, {"hostname": "LB.example.com."}]}
        },
    }
    obj.update(overrides)
    return obj


def test_service_keeps_only_what_mcobs_needs() -> None:
    slim = to_service(_service())
    assert slim.key == ServiceKey("default", "web")
    assert slim.exported
    assert slim.addresses == ("192.0.2.1",)
    assert slim.hostnames == ("lb.example.com",)
    assert slim.ports == (ServicePort("http", 80, "TCP"),)
    assert dict(slim.annotations) == {"mcobs.io/global": "true"}
    assert slim.problems == ()


def test_invalid_addresses_and_ports_are_dropped_and_named() -> None:
    slim = to_service(
        _service(
            spec={"ports": [{"name": "x", "port": 70000}, {"name": "ok", "port": 443}]},
            status={
                "loadBalancer": {"ingress": [{"ip": "999.1.1.1"}, {"ip": "2001:DB8::1"}, "junk"]}
            },
        )
    )
    assert slim.addresses == ("2001:db8::1",)
    assert [p.port for p in slim.ports] == [443]
    assert len(slim.problems) == 3
    assert any("999.1.1.1" in p for p in slim.problems)


def test_unannotated_service_is_not_exported() -> None:
    slim = to_service(_service(metadata={"name": "internal", "namespace": "kube-system"}))
    assert not slim.exported
    assert cluster_services("c", [slim], []) == ()


def test_endpoint_counts_sum_slices_of_a_service() -> None:
    slices = [
        to_slice(
            {
                "metadata": {
                    "name": f"web-{i}",
                    "namespace": "default",
                    "labels": {"kubernetes.io/service-name": "web"},
                },
                "endpoints": [
                    {"addresses": ["10.0.0.1"], "conditions": {"ready": True}},
                    {"addresses": ["10.0.0.2"], "conditions": {"ready": False}},
                    {"addresses": ["10.0.0.3"]},
                ],
            }
        )
        for i in range(2)
    ]
    (web,) = cluster_services("eu", [to_service(_service())], slices)
    assert (web.ready_endpoints, web.total_endpoints) == (4, 6)
    assert web.cluster == "eu"


def test_node_readiness() -> None:
    ready = {
        "metadata": {"name": "n"},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }
    assert node_ready(ready)
    assert not node_ready(
        {
            "metadata": {"name": "n"},
            "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]},
        }
    )
    assert not node_ready({"metadata": {"name": "n"}})
