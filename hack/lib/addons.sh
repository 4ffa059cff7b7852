#!/usr/bin/env bash
# Cluster add-ons that run as pods, deployed once the node and kube-proxy are
# up (upstream's local-up-cluster.sh: start_dns_addon). Source it after
# hack/lib/images.sh; do not run it.
#
# Knobs:
#   ENABLE_CLUSTER_DNS   true (upstream's KUBE_ENABLE_CLUSTER_DNS). The pod
#                        reaches the API server through the kubernetes
#                        Service, i.e. at the advertise address: the API
#                        server must listen there (API_BIND_ADDR 0.0.0.0).
#   KUBE_DNS_BIN         the kube-dns binary the image is made of
#   DNS_SERVER_IP        ${CLUSTER_DNS} (10.0.0.10), the kube-dns Service address
#   DNS_DOMAIN           cluster.local
#   DNS_ROLLOUT_TIMEOUT  120s
#   ENABLE_DEFAULT_STORAGE_CLASS  true: the `standard` class of
#                        build/addons/storage-class.yaml (hostPath, default)
#   ENABLE_METRICS_SERVER  true: the metrics add-on (build/addons/metrics-server.yaml,
#                        `kubectl top`), from KUBE_METRICS_SERVER_BIN
#   METRIC_RESOLUTION    15s, its --metric-resolution (at least 10s)
#   METRICS_ROLLOUT_TIMEOUT  120s

kube::addons::_defaults() {
  ENABLE_CLUSTER_DNS="${ENABLE_CLUSTER_DNS:-${KUBE_ENABLE_CLUSTER_DNS:-true}}"
  DNS_SERVER_IP="${DNS_SERVER_IP:-${CLUSTER_DNS:-10.0.0.10}}"
  DNS_DOMAIN="${DNS_DOMAIN:-cluster.local}"
  DNS_ROLLOUT_TIMEOUT="${DNS_ROLLOUT_TIMEOUT:-120s}"
  ENABLE_DEFAULT_STORAGE_CLASS="${ENABLE_DEFAULT_STORAGE_CLASS:-true}"
  ENABLE_METRICS_SERVER="${ENABLE_METRICS_SERVER:-true}"
  METRIC_RESOLUTION="${METRIC_RESOLUTION:-15s}"
  METRICS_ROLLOUT_TIMEOUT="${METRICS_ROLLOUT_TIMEOUT:-120s}"
}

# kube::addons::start_storage_class KUBECTL KUBECONFIG: the default
# StorageClass (upstream's create_storage_class), served by the controller
# manager's hostPath provisioner.
kube::addons::start_storage_class() {
  local kubectl=$1 kubeconfig=$2
  kube::addons::_defaults
  [[ "${ENABLE_DEFAULT_STORAGE_CLASS}" == true ]] || return 0
  "${kubectl}" --kubeconfig "${kubeconfig}" apply \
    -f "${KUBE_ROOT}/build/addons/storage-class.yaml" >/dev/null || return 1
  kube::log::status "default StorageClass 'standard' (kubernetes.io/host-path) created"
}

# kube::addons::start_dns KUBECTL KUBECONFIG: the kube-dns image from
# KUBE_DNS_BIN in the local registry, then build/addons/kube-dns.yaml
# applied; waits until the Deployment is rolled out.
kube::addons::start_dns() {
  local kubectl=$1 kubeconfig=$2
  kube::addons::_defaults
  [[ "${ENABLE_CLUSTER_DNS}" == true ]] || return 0
  if [[ -z "${KUBE_DNS_BIN:-}" || ! -x "${KUBE_DNS_BIN}" ]]; then
    kube::log::error "kube-dns binary not found at '${KUBE_DNS_BIN:-}'"
    return 1
  fi
  kube::images::ensure_binary kube-dns "${KUBE_DNS_BIN}" || return 1
  local manifest
  manifest="$(sed -e "s|__IMAGE__|${KUBE_IMAGE_REF}|" \
    -e "s|__DNS_SERVER_IP__|${DNS_SERVER_IP}|" \
    -e "s|__DNS_DOMAIN__|${DNS_DOMAIN}|" "${KUBE_ROOT}/build/addons/kube-dns.yaml")" || return 1
  "${kubectl}" --kubeconfig "${kubeconfig}" apply -f - <<<"${manifest}" >/dev/null || return 1
  echo "Waiting for the DNS add-on (${KUBE_IMAGE_REF}) at ${DNS_SERVER_IP}"
  "${kubectl}" --kubeconfig "${kubeconfig}" -n kube-system rollout status deployment/kube-dns \
    --timeout="${DNS_ROLLOUT_TIMEOUT}" >/dev/null || {
    kube::log::error "the DNS add-on did not become ready"
    "${kubectl}" --kubeconfig "${kubeconfig}" -n kube-system get pods -l k8s-app=kube-dns -o wide >&2 || true
    return 1
  }
  kube::log::status "cluster DNS is up at ${DNS_SERVER_IP} (domain ${DNS_DOMAIN})"
}

# kube::addons::start_metrics_server KUBECTL KUBECONFIG: the metrics-server
# image from KUBE_METRICS_SERVER_BIN in the local registry, then
# build/addons/metrics-server.yaml applied; waits until the Deployment is
# rolled out (ready once it has scraped every kubelet twice).
kube::addons::start_metrics_server() {
  local kubectl=$1 kubeconfig=$2
  kube::addons::_defaults
  [[ "${ENABLE_METRICS_SERVER}" == true ]] || return 0
  if [[ -z "${KUBE_METRICS_SERVER_BIN:-}" || ! -x "${KUBE_METRICS_SERVER_BIN}" ]]; then
    kube::log::error "metrics-server binary not found at '${KUBE_METRICS_SERVER_BIN:-}'"
    return 1
  fi
  kube::images::ensure_binary metrics-server "${KUBE_METRICS_SERVER_BIN}" || return 1
  local manifest
  manifest="$(sed -e "s|__IMAGE__|${KUBE_IMAGE_REF}|" \
    -e "s|__METRIC_RESOLUTION__|${METRIC_RESOLUTION}|" \
    "${KUBE_ROOT}/build/addons/metrics-server.yaml")" || return 1
  "${kubectl}" --kubeconfig "${kubeconfig}" apply -f - <<<"${manifest}" >/dev/null || return 1
  echo "Waiting for the metrics add-on (${KUBE_IMAGE_REF})"
  "${kubectl}" --kubeconfig "${kubeconfig}" -n kube-system rollout status deployment/metrics-server \
    --timeout="${METRICS_ROLLOUT_TIMEOUT}" >/dev/null || {
    kube::log::error "the metrics add-on did not become ready"
    "${kubectl}" --kubeconfig "${kubeconfig}" -n kube-system get pods -l k8s-app=metrics-server -o wide >&2 || true
    return 1
  }
  "${kubectl}" --kubeconfig "${kubeconfig}" wait --for=condition=Available \
    apiservice/v1beta1.metrics.k8s.io --timeout="${METRICS_ROLLOUT_TIMEOUT}" >/dev/null || {
    kube::log::error "the metrics.k8s.io APIService did not become available"
    "${kubectl}" --kubeconfig "${kubeconfig}" get apiservice v1beta1.metrics.k8s.io >&2 || true
    return 1
  }
  kube::log::status "metrics-server is up (kubectl top nodes, kubectl top pods)"
}
