#!/usr/bin/env bash
# Builds and runs a local Kubernetes control plane on this machine.
# Upstream: hack/local-up-cluster.sh, same knobs where the piece exists here.
# It starts etcd, kube-apiserver, and each of kube-controller-manager,
# kube-scheduler and the kubelet that this tree has a cmd/ for (see the
# "components" section and main).
#
# Usage: hack/local-up-cluster.sh [-h] [-O] [-o DIR] [-k]
#   -O      use the binaries already built in target/release (skip the build)
#   -o DIR  use the binaries in DIR (skip the build)
#   -k      stop a cluster started earlier with ENABLE_DAEMON=true, and exit
#
# Knobs (environment):
#   ENABLE_DAEMON=false   true: start, print how to use it, and return
#   API_SECURE_PORT=6443  API_BIND_ADDR=0.0.0.0  API_HOST=localhost
#   API_HOST_IP           the machine's primary IPv4 (from `ip route get 1`)
#   ADVERTISE_ADDRESS     defaults to API_HOST_IP
#   CERT_DIR=/var/run/kubernetes  LOG_DIR=/tmp  LOG_LEVEL=3
#   KUBE_PID_DIR=${CERT_DIR}      where pid files of what this script started live
#   ETCD_PORT=2379 ETCD_PEER_PORT=2380 ETCD_DIR=/tmp/kube-etcd-${ETCD_PORT}
#   PRESERVE_ETCD=false   keep etcd's data across runs
#   SERVICE_CLUSTER_IP_RANGE=10.0.0.0/24  FIRST_SERVICE_CLUSTER_IP=10.0.0.1
#   NODE_PORT_RANGE, APISERVER_EXTRA_ARGS, WAIT_FOR_URL_API_SERVER=60
#   KUBE_CONTROLLERS=*  CTLRMGR_EXTRA_ARGS  SCHEDULER_EXTRA_ARGS
#   CLUSTER_CIDR=10.88.0.0/16  NODE_CIDR_MASK_SIZE=24 (see hack/lib/components.sh)
#   ENABLE_CLUSTER_DNS=true DNS_SERVER_IP=10.0.0.10  DNS_DOMAIN=cluster.local
#                         the kube-dns add-on (hack/lib/addons.sh)
#   ENABLE_METRICS_SERVER=true METRIC_RESOLUTION=15s
#                         the metrics-server add-on (kubectl top)
#   KUBE_VERBOSE=1        above 4 traces the script (set -x)

set -euo pipefail

KUBE_VERBOSE="${KUBE_VERBOSE:-1}"
if (( KUBE_VERBOSE > 4 )); then
  set -x
fi

# shellcheck source=hack/lib/init.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/init.sh"

ENABLE_DAEMON="${ENABLE_DAEMON:-false}"
API_SECURE_PORT="${API_SECURE_PORT:-6443}"
API_BIND_ADDR="${API_BIND_ADDR:-0.0.0.0}"
API_HOST="${API_HOST:-localhost}"
API_HOST_IP="${API_HOST_IP:-$(kube::util::primary_ipv4)}"
ADVERTISE_ADDRESS="${ADVERTISE_ADDRESS:-${API_HOST_IP}}"
CERT_DIR="${CERT_DIR:-/var/run/kubernetes}"
LOG_DIR="${LOG_DIR:-/tmp}"
LOG_LEVEL="${LOG_LEVEL:-3}"
KUBE_PID_DIR="${KUBE_PID_DIR:-${CERT_DIR}}"
ETCD_PORT="${ETCD_PORT:-2379}"
ETCD_PID_FILE="${ETCD_PID_FILE:-${KUBE_PID_DIR}/etcd.pid}"
ETCD_LOGFILE="${ETCD_LOGFILE:-${LOG_DIR}/etcd.log}"
APISERVER_LOG="${APISERVER_LOG:-${LOG_DIR}/kube-apiserver.log}"
APISERVER_PID_FILE="${APISERVER_PID_FILE:-${KUBE_PID_DIR}/kube-apiserver.pid}"
export ENABLE_DAEMON API_SECURE_PORT API_BIND_ADDR ADVERTISE_ADDRESS CERT_DIR \
  LOG_DIR LOG_LEVEL KUBE_PID_DIR ETCD_PORT ETCD_PID_FILE ETCD_LOGFILE \
  APISERVER_LOG APISERVER_PID_FILE

# Packages the build and the cluster need; only missing ones are installed.
REQUIRED_PACKAGES=(etcd-server openssl protobuf-compiler libprotobuf-dev jq curl)

BIN_DIR=""

# The daemons after the API server that this tree builds, in start order.
COMPONENTS=()
for component in kube-controller-manager kube-scheduler kubelet kube-proxy; do
  [[ -d "${KUBE_ROOT}/cmd/${component}" ]] && COMPONENTS+=("${component}")
done

usage() {
  cat <<EOF
This script starts a local kube cluster.
Example 0: hack/local-up-cluster.sh -h  (this 'help' usage description)
Example 1: hack/local-up-cluster.sh -o target/debug (use binaries from a directory)
Example 2: hack/local-up-cluster.sh -O (use the existing release build)
Example 3: hack/local-up-cluster.sh (build a local copy of the source)
Example 4: ENABLE_DAEMON=true hack/local-up-cluster.sh, later hack/local-up-cluster.sh -k
EOF
}

# release_dir: where `cargo build --release` puts binaries.
release_dir() {
  echo "${CARGO_TARGET_DIR:-${KUBE_ROOT}/target}/release"
}

# parse_args "$@": sets BIN_DIR when the build is to be skipped; -k stops a
# daemon cluster and exits.
parse_args() {
  local opt
  while getopts "ho:Ok" opt; do
    case "${opt}" in
      o)
        BIN_DIR="$(cd "${OPTARG}" && pwd -P)"
        echo "skipping build, using binaries in ${BIN_DIR}"
        ;;
      O)
        BIN_DIR="$(release_dir)"
        if [[ ! -x "${BIN_DIR}/kube-apiserver" ]]; then
          echo "Could not find an existing build in ${BIN_DIR}; run without -O to build." >&2
          exit 1
        fi
        ;;
      k)
        stop_all
        exit 0
        ;;
      h)
        usage
        exit 0
        ;;
      *)
        usage >&2
        exit 1
        ;;
    esac
  done
}

# build: compiles what this script starts, unless -O/-o said not to.
build() {
  if [[ -n "${BIN_DIR}" ]]; then
    echo "skipped the build because binaries were given (${BIN_DIR})"
    return 0
  fi
  kube::util::ensure_cargo
  local -a packages=(-p kube-apiserver) c
  # The DNS add-on's image is made of this tree's kube-dns.
  [[ -d "${KUBE_ROOT}/cmd/kube-dns" ]] && packages+=(-p kube-dns)
  # And the metrics add-on's of its metrics-server (package metrics-server-bin).
  [[ -d "${KUBE_ROOT}/cmd/metrics-server" ]] && packages+=(-p metrics-server-bin)
  for c in "${COMPONENTS[@]}"; do
    # The kubelet's package is kubelet-bin: the library crate is `kubelet`.
    [[ "${c}" == kubelet ]] && c=kubelet-bin
    packages+=(-p "${c}")
  done
  kube::log::status "building kube-apiserver ${COMPONENTS[*]} (cargo build --release)"
  (cd "${KUBE_ROOT}" && cargo build --release "${packages[@]}")
  BIN_DIR="$(release_dir)"
}

# --- components -------------------------------------------------------------
# One start_* function per component, in start order. Each records its pid
# file so that cleanup and a later run stop exactly what was started here.

start_etcd() {
  echo "Starting etcd"
  kube::etcd::start
}

generate_certs() {
  # API_HOST and the advertise address go into the serving cert too: the
  # admin kubeconfig and in-cluster clients dial them.
  kube::certs::generate "${API_HOST_IP}" "${API_HOST}" "${ADVERTISE_ADDRESS}"
}

start_apiserver() {
  export KUBE_APISERVER_BIN="${BIN_DIR}/kube-apiserver"
  kube::apiserver::start
  kube::certs::write_kubeconfig admin \
    "${CERT_DIR}/client-admin.crt" "${CERT_DIR}/client-admin.key" \
    "https://${API_HOST}:${API_SECURE_PORT}"
  echo "Waiting for apiserver to come up"
  kube::apiserver::wait_ready "${API_HOST}" ||
    { echo "check apiserver logs: ${APISERVER_LOG}" >&2; return 1; }
  # The API server's kubelet client (CN=kube-apiserver) may use the whole
  # kubelet API: logs, exec, port-forward, metrics (as upstream's script).
  if [[ ",${AUTHORIZATION_MODE}," == *,RBAC,* ]]; then
    kubectl --kubeconfig "${CERT_DIR}/admin.kubeconfig" create clusterrolebinding \
      kube-apiserver-kubelet-admin --clusterrole=system:kubelet-api-admin --user=kube-apiserver \
      --dry-run=client -o yaml | kubectl --kubeconfig "${CERT_DIR}/admin.kubeconfig" apply -f - >/dev/null ||
      { echo "could not bind system:kubelet-api-admin to kube-apiserver" >&2; return 1; }
  fi
}

start_controller_manager() {
  export KUBE_CONTROLLER_MANAGER_BIN="${BIN_DIR}/kube-controller-manager"
  kube::components::start_controller_manager
}

start_scheduler() {
  export KUBE_SCHEDULER_BIN="${BIN_DIR}/kube-scheduler"
  kube::components::start_scheduler
}

# The node: network guard, images, containerd with CNI, the kubelet; then
# wait until the node is Ready.
start_kubelet() {
  export KUBELET_BIN="${BIN_DIR}/kubelet"
  kube::components::start_node
  kube::components::wait_node_ready kubectl
}

start_kubeproxy() {
  export KUBE_PROXY_BIN="${BIN_DIR}/kube-proxy"
  kube::components::start_proxy
}

# The add-ons run as pods: they need the node, and kube-proxy for the
# kubernetes Service they reach the API server through.
start_addons() {
  if [[ " ${COMPONENTS[*]} " == *" kube-controller-manager "* ]]; then
    kube::addons::start_storage_class kubectl "${CERT_DIR}/admin.kubeconfig" || return 1
  fi
  [[ " ${COMPONENTS[*]} " == *" kubelet "* && " ${COMPONENTS[*]} " == *" kube-proxy "* ]] || return 0
  export KUBE_DNS_BIN="${BIN_DIR}/kube-dns"
  kube::addons::start_dns kubectl "${CERT_DIR}/admin.kubeconfig" || return 1
  export KUBE_METRICS_SERVER_BIN="${BIN_DIR}/metrics-server"
  kube::addons::start_metrics_server kubectl "${CERT_DIR}/admin.kubeconfig"
}

# stop_all: stops, newest first, everything whose pid file this script
# wrote, now or in an earlier run.
stop_all() {
  kube::components::stop_proxy
  kube::components::stop_node
  kube::components::stop_scheduler
  kube::components::stop_controller_manager
  kube::apiserver::stop
  kube::etcd::cleanup
}

CLEANED_UP=false
cleanup() {
  [[ "${CLEANED_UP}" == true ]] && return 0
  CLEANED_UP=true
  echo "Cleaning up..."
  stop_all
}

# healthcheck: reports components that died. Like upstream, the rest keep
# running so that their logs and state can be inspected.
healthcheck() {
  if [[ -n "${APISERVER_PID:-}" ]] && ! kube::util::pid_running "${APISERVER_PID}"; then
    kube::log::error "API server terminated unexpectedly, see ${APISERVER_LOG}"
    APISERVER_PID=""
  fi
  if [[ -n "${CTLRMGR_PID:-}" ]] && ! kube::util::pid_running "${CTLRMGR_PID}"; then
    kube::log::error "kube-controller-manager terminated unexpectedly, see ${CTLRMGR_LOG}"
    CTLRMGR_PID=""
  fi
  if [[ -n "${SCHEDULER_PID:-}" ]] && ! kube::util::pid_running "${SCHEDULER_PID}"; then
    kube::log::error "kube-scheduler terminated unexpectedly, see ${SCHEDULER_LOG}"
    SCHEDULER_PID=""
  fi
  if [[ -n "${KUBELET_PID:-}" ]] && ! kube::util::pid_running "${KUBELET_PID}"; then
    kube::log::error "kubelet terminated unexpectedly, see ${KUBELET_LOG}"
    KUBELET_PID=""
  fi
  if [[ -n "${PROXY_PID:-}" ]] && ! kube::util::pid_running "${PROXY_PID}"; then
    kube::log::error "kube-proxy terminated unexpectedly, see ${PROXY_LOG}"
    PROXY_PID=""
  fi
  if [[ -n "${ETCD_PID:-}" ]] && ! kube::util::pid_running "${ETCD_PID}"; then
    kube::log::error "etcd terminated unexpectedly, see ${ETCD_LOGFILE}"
    ETCD_PID=""
  fi
}

# supervise: waits until Ctrl-C/TERM (the trap cleans up) or until every
# component has died.
supervise() {
  while [[ -n "${APISERVER_PID:-}${ETCD_PID:-}${CTLRMGR_PID:-}${SCHEDULER_PID:-}${KUBELET_PID:-}${PROXY_PID:-}" ]]; do
    # `wait -n` returns when a child exits or a trapped signal arrives.
    local rc=0
    wait -n 2>/dev/null || rc=$?
    # 127: nothing left to wait for (not our children); do not spin.
    (( rc == 127 )) && sleep 1
    healthcheck
  done
  kube::log::error "every component has exited"
  return 1
}

print_success() {
  if [[ "${ENABLE_DAEMON}" == false ]]; then
    echo "Local Kubernetes cluster is running. Press Ctrl-C to shut it down."
  else
    echo "Local Kubernetes cluster is running."
  fi
  cat <<EOF

Logs:
  ${ETCD_LOGFILE}
  ${APISERVER_LOG}
$(for c in "${COMPONENTS[@]}"; do
    case "${c}" in
      kube-controller-manager) echo "  ${CTLRMGR_LOG}" ;;
      kube-scheduler) echo "  ${SCHEDULER_LOG}" ;;
      kubelet) echo "  ${KUBELET_LOG}"; echo "  ${CONTAINERD_LOG}" ;;
      kube-proxy) echo "  ${PROXY_LOG}" ;;
    esac
  done)

EOF
  if [[ "${ENABLE_DAEMON}" == false ]]; then
    echo "To start using your cluster, you can open up another terminal/tab and run:"
  else
    echo "To start using your cluster, run:"
  fi
  cat <<EOF

  export KUBECONFIG=${CERT_DIR}/admin.kubeconfig
  kubectl get namespaces

Alternatively, you can write to the default kubeconfig:

  kubectl config set-cluster local --server=https://${API_HOST}:${API_SECURE_PORT} --certificate-authority=${CERT_DIR}/ca.crt
  kubectl config set-credentials myself --client-key=${CERT_DIR}/client-admin.key --client-certificate=${CERT_DIR}/client-admin.crt
  kubectl config set-context local --cluster=local --user=myself
  kubectl config use-context local
  kubectl get namespaces
EOF
  if [[ "${ENABLE_DAEMON}" == true ]]; then
    echo
    echo "To stop it: hack/local-up-cluster.sh -k"
  fi
}

main() {
  parse_args "$@"
  kube::util::ensure_packages "${REQUIRED_PACKAGES[@]}"
  build
  mkdir -p "${LOG_DIR}" "${KUBE_PID_DIR}"

  # Until the cluster is up, any failure stops what was already started;
  # in daemon mode the trap is lifted once everything is running.
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM

  # A run that crashed (or was SIGKILLed) leaves its processes behind; stop
  # them, newest first, using their pid files. Anything else on our ports
  # makes the start functions refuse.
  stop_all

  echo "Starting services now!"
  generate_certs
  start_etcd
  start_apiserver
  local c
  for c in "${COMPONENTS[@]}"; do
    case "${c}" in
      kube-controller-manager) start_controller_manager ;;
      kube-scheduler) start_scheduler ;;
      kubelet) start_kubelet ;;
      kube-proxy) start_kubeproxy ;;
    esac
  done
  start_addons
  print_success

  if [[ "${ENABLE_DAEMON}" == true ]]; then
    trap - EXIT INT TERM
    return 0
  fi
  supervise
}

main "$@"
