#!/usr/bin/env bash
# Starts and stops the control-plane daemons after the API server —
# kube-controller-manager and kube-scheduler — with the flags a local
# cluster uses, each with its own client certificate and kubeconfig.
# Upstream: start_controller_manager and start_scheduler in
# hack/local-up-cluster.sh. Source it after hack/lib/certs.sh.
#
# Knobs (read when a start function runs):
#   KUBE_CONTROLLER_MANAGER_BIN, KUBE_SCHEDULER_BIN   paths to the binaries
#   CTLRMGR_LOG, CTLRMGR_PID_FILE, SCHEDULER_LOG, SCHEDULER_PID_FILE
#   CTLRMGR_EXTRA_ARGS, SCHEDULER_EXTRA_ARGS           more flags, split on spaces
#   KUBE_CONTROLLERS=*                                 --controllers
#   ALLOCATE_NODE_CIDRS=true CLUSTER_CIDR=10.88.0.0/16 NODE_CIDR_MASK_SIZE=24
#   API_HOST, API_SECURE_PORT, CERT_DIR, LOG_DIR, LOG_LEVEL as elsewhere

kube::components::_defaults() {
  kube::certs::_defaults
  LOG_DIR="${LOG_DIR:-/tmp}"
  LOG_LEVEL="${LOG_LEVEL:-3}"
  API_HOST="${API_HOST:-localhost}"
  API_SECURE_PORT="${API_SECURE_PORT:-6443}"
  CTLRMGR_LOG="${CTLRMGR_LOG:-${LOG_DIR}/kube-controller-manager.log}"
  CTLRMGR_PID_FILE="${CTLRMGR_PID_FILE:-${KUBE_PID_DIR:-${CERT_DIR}}/kube-controller-manager.pid}"
  SCHEDULER_LOG="${SCHEDULER_LOG:-${LOG_DIR}/kube-scheduler.log}"
  SCHEDULER_PID_FILE="${SCHEDULER_PID_FILE:-${KUBE_PID_DIR:-${CERT_DIR}}/kube-scheduler.pid}"
  CTLRMGR_EXTRA_ARGS="${CTLRMGR_EXTRA_ARGS:-}"
  SCHEDULER_EXTRA_ARGS="${SCHEDULER_EXTRA_ARGS:-}"
  KUBE_CONTROLLERS="${KUBE_CONTROLLERS:-*}"
  ALLOCATE_NODE_CIDRS="${ALLOCATE_NODE_CIDRS:-true}"
  CLUSTER_CIDR="${CLUSTER_CIDR:-10.88.0.0/16}"
  NODE_CIDR_MASK_SIZE="${NODE_CIDR_MASK_SIZE:-24}"
}

# kube::components::_kubeconfig NAME CN [GROUP...]: a client cert and a
# kubeconfig CERT_DIR/NAME.kubeconfig for one component.
kube::components::_kubeconfig() {
  local name=$1
  shift
  kube::certs::ensure_client_cert "client-${name}" "$@" || return 1
  kube::certs::write_kubeconfig "${name}" \
    "${CERT_DIR}/client-${name}.crt" "${CERT_DIR}/client-${name}.key" \
    "https://${API_HOST}:${API_SECURE_PORT}"
}

# kube::components::_extra VAR: the words of an *_EXTRA_ARGS knob.
kube::components::_extra() {
  local -a extra=()
  read -r -a extra <<<"$1"
  (( ${#extra[@]} )) && printf '%s\n' "${extra[@]}"
  return 0
}

# kube::components::start_controller_manager: sets CTLRMGR_PID.
kube::components::start_controller_manager() {
  kube::components::_defaults
  if [[ -z "${KUBE_CONTROLLER_MANAGER_BIN:-}" || ! -x "${KUBE_CONTROLLER_MANAGER_BIN}" ]]; then
    kube::log::error "kube-controller-manager binary not found at '${KUBE_CONTROLLER_MANAGER_BIN:-}'"
    return 1
  fi
  kube::util::stop_process "kube-controller-manager (left by an earlier run)" \
    "${CTLRMGR_PID_FILE}" "${KUBE_CONTROLLER_MANAGER_BIN}"
  kube::components::_kubeconfig controller system:kube-controller-manager || return 1
  local -a args=(
    "--kubeconfig=${CERT_DIR}/controller.kubeconfig"
    "--controllers=${KUBE_CONTROLLERS}"
    "--service-account-private-key-file=${CERT_DIR}/sa.key"
    "--root-ca-file=${CERT_DIR}/ca.crt"
    "--cluster-signing-cert-file=${CERT_DIR}/ca.crt"
    "--cluster-signing-key-file=${CERT_DIR}/ca.key"
    "--allocate-node-cidrs=${ALLOCATE_NODE_CIDRS}"
    "--cluster-cidr=${CLUSTER_CIDR}"
    "--node-cidr-mask-size=${NODE_CIDR_MASK_SIZE}"
    "--leader-elect=false"
    -v "${LOG_LEVEL}"
  )
  local -a extra
  mapfile -t extra < <(kube::components::_extra "${CTLRMGR_EXTRA_ARGS}")
  kube::util::start_process kube-controller-manager "${CTLRMGR_PID_FILE}" "${CTLRMGR_LOG}" \
    "${KUBE_CONTROLLER_MANAGER_BIN}" "${args[@]}" "${extra[@]}" || return 1
  CTLRMGR_PID="${KUBE_STARTED_PID}"
}

# kube::components::start_scheduler: sets SCHEDULER_PID.
kube::components::start_scheduler() {
  kube::components::_defaults
  if [[ -z "${KUBE_SCHEDULER_BIN:-}" || ! -x "${KUBE_SCHEDULER_BIN}" ]]; then
    kube::log::error "kube-scheduler binary not found at '${KUBE_SCHEDULER_BIN:-}'"
    return 1
  fi
  kube::util::stop_process "kube-scheduler (left by an earlier run)" \
    "${SCHEDULER_PID_FILE}" "${KUBE_SCHEDULER_BIN}"
  kube::components::_kubeconfig scheduler system:kube-scheduler || return 1
  local -a args=(
    "--kubeconfig=${CERT_DIR}/scheduler.kubeconfig"
    "--leader-elect=false"
    -v "${LOG_LEVEL}"
  )
  local -a extra
  mapfile -t extra < <(kube::components::_extra "${SCHEDULER_EXTRA_ARGS}")
  kube::util::start_process kube-scheduler "${SCHEDULER_PID_FILE}" "${SCHEDULER_LOG}" \
    "${KUBE_SCHEDULER_BIN}" "${args[@]}" "${extra[@]}" || return 1
  SCHEDULER_PID="${KUBE_STARTED_PID}"
}

# kube::components::stop_controller_manager / stop_scheduler: stop what the
# pid files name.
kube::components::stop_controller_manager() {
  kube::components::_defaults
  kube::util::stop_process kube-controller-manager "${CTLRMGR_PID_FILE}" \
    "${KUBE_CONTROLLER_MANAGER_BIN:-kube-controller-manager}"
  CTLRMGR_PID=""
}

kube::components::stop_scheduler() {
  kube::components::_defaults
  kube::util::stop_process kube-scheduler "${SCHEDULER_PID_FILE}" \
    "${KUBE_SCHEDULER_BIN:-kube-scheduler}"
  SCHEDULER_PID=""
}
