//! The fixed pod manifest every create sends: about 1.5 KiB of JSON with
//! labels, annotations and two containers with env, ports, probes and
//! resources, as a typical Deployment's pod looks. Only the name varies.

use bytes::Bytes;
use serde_json::{json, Value};

/// The namespace hack/bench-apiserver.sh benchmarks in.
pub const NAMESPACE: &str = "bench-apiserver";

/// The pod named `name` as JSON.
pub fn manifest(name: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "labels": {
                "app.kubernetes.io/name": "bench-web",
                "app.kubernetes.io/component": "frontend",
                "app.kubernetes.io/part-of": "apiserver-bench",
                "pod-template-hash": "7d9f8b6c5d",
                "tier": "web"
            },
            "annotations": {
                "prometheus.io/scrape": "true",
                "prometheus.io/port": "9090",
                "kubectl.kubernetes.io/default-container": "web",
                "bench.k8s.io/description": "fixed manifest used by hack/bench-apiserver.sh"
            }
        },
        "spec": {
            "containers": [
                {
                    "name": "web",
                    "image": "registry.local/bench/web:1.27.3",
                    "args": ["--listen=:8080", "--metrics=:9090", "--log-level=info"],
                    "ports": [
                        {"name": "http", "containerPort": 8080, "protocol": "TCP"},
                        {"name": "metrics", "containerPort": 9090, "protocol": "TCP"}
                    ],
                    "env": [
                        {"name": "APP_MODE", "value": "production"},
                        {"name": "CACHE_SIZE_MB", "value": "256"},
                        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
                    ],
                    "resources": {
                        "requests": {"cpu": "250m", "memory": "256Mi"},
                        "limits": {"cpu": "1", "memory": "512Mi"}
                    },
                    "readinessProbe": {
                        "httpGet": {"path": "/healthz", "port": 8080},
                        "periodSeconds": 10
                    }
                },
                {
                    "name": "log-shipper",
                    "image": "registry.local/bench/log-shipper:2.1.0",
                    "env": [
                        {"name": "SHIP_TO", "value": "logs.bench.svc:5140"},
                        {"name": "BUFFER_BYTES", "value": "1048576"}
                    ],
                    "ports": [{"name": "syslog", "containerPort": 5140, "protocol": "UDP"}],
                    "resources": {
                        "requests": {"cpu": "50m", "memory": "64Mi"},
                        "limits": {"cpu": "200m", "memory": "128Mi"}
                    }
                }
            ],
            "terminationGracePeriodSeconds": 30,
            "nodeSelector": {"kubernetes.io/os": "linux"}
        }
    })
}

/// The serialised manifest for `name`.
pub fn body(name: &str) -> Bytes {
    Bytes::from(manifest(name).to_string())
}
