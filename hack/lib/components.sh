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
#   ENABLE_HOSTPATH_PROVISIONER=true                   --enable-hostpath-provisioner
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
  ENABLE_HOSTPATH_PROVISIONER="${ENABLE_HOSTPATH_PROVISIONER:-true}"
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
    "--use-service-account-credentials=true"
    "--controllers=${KUBE_CONTROLLERS}"
    "--service-account-private-key-file=${CERT_DIR}/sa.key"
    "--root-ca-file=${CERT_DIR}/ca.crt"
    "--cluster-signing-cert-file=${CERT_DIR}/ca.crt"
    "--cluster-signing-key-file=${CERT_DIR}/ca.key"
    "--allocate-node-cidrs=${ALLOCATE_NODE_CIDRS}"
    "--cluster-cidr=${CLUSTER_CIDR}"
    "--node-cidr-mask-size=${NODE_CIDR_MASK_SIZE}"
    "--enable-hostpath-provisioner=${ENABLE_HOSTPATH_PROVISIONER}"
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

# --- the node ---------------------------------------------------------------
# Knobs: KUBELET_BIN, KUBELET_LOG, KUBELET_PID_FILE, KUBELET_ROOT_DIR
# (/var/lib/kubelet), HOSTNAME_OVERRIDE (this machine's name, lowercase),
# NODE_IP (API_HOST_IP), CLUSTER_DNS (10.0.0.10), DNS_DOMAIN,
# KUBELET_EXTRA_ARGS, POD_MANIFEST_PATH (${CERT_DIR}/static-pods), POD_CIDR,
# EVICTION_HARD, EVICTION_SOFT, EVICTION_PRESSURE_TRANSITION_PERIOD (upstream
# script's defaults: memory.available<100Mi,nodefs.available<10%,
# nodefs.inodesFree<5%; none; 1m)
# (hack/lib/cni.sh), and containerd's knobs
# (hack/lib/containerd.sh).

kube::components::_node_defaults() {
  kube::components::_defaults
  kube::cni::_defaults
  KUBELET_LOG="${KUBELET_LOG:-${LOG_DIR}/kubelet.log}"
  KUBELET_PID_FILE="${KUBELET_PID_FILE:-${KUBE_PID_DIR:-${CERT_DIR}}/kubelet.pid}"
  KUBELET_ROOT_DIR="${KUBELET_ROOT_DIR:-/var/lib/kubelet}"
  HOSTNAME_OVERRIDE="${HOSTNAME_OVERRIDE:-$(hostname | tr '[:upper:]' '[:lower:]')}"
  NODE_IP="${NODE_IP:-${API_HOST_IP:-$(kube::util::primary_ipv4)}}"
  CLUSTER_DNS="${CLUSTER_DNS:-10.0.0.10}"
  KUBELET_EXTRA_ARGS="${KUBELET_EXTRA_ARGS:-}"
  # Static pods, where upstream's script keeps them.
  POD_MANIFEST_PATH="${POD_MANIFEST_PATH:-${CERT_DIR}/static-pods}"
  EVICTION_HARD="${EVICTION_HARD:-memory.available<100Mi,nodefs.available<10%,nodefs.inodesFree<5%}"
  EVICTION_SOFT="${EVICTION_SOFT:-}"
  EVICTION_PRESSURE_TRANSITION_PERIOD="${EVICTION_PRESSURE_TRANSITION_PERIOD:-1m}"
}

# kube::components::start_node: the network guard, the test images in the
# local registry, containerd with the CNI config, then the kubelet. Sets
# KUBELET_PID and CONTAINERD_PID.
kube::components::start_node() {
  kube::components::_node_defaults
  if [[ -z "${KUBELET_BIN:-}" || ! -x "${KUBELET_BIN}" ]]; then
    kube::log::error "kubelet binary not found at '${KUBELET_BIN:-}'"
    return 1
  fi
  # The guard comes first: nothing may create pod networking without it.
  kube::netguard::install || return 1
  kube::images::ensure || return 1
  kube::cni::write_config || return 1
  kube::containerd::start || return 1
  kube::util::stop_process "kubelet (left by an earlier run)" \
    "${KUBELET_PID_FILE}" "${KUBELET_BIN}"
  kube::components::_kubeconfig kubelet "system:node:${HOSTNAME_OVERRIDE}" system:nodes || return 1
  mkdir -p "${KUBELET_ROOT_DIR}" "${POD_MANIFEST_PATH}"
  local -a args=(
    "--kubeconfig=${CERT_DIR}/kubelet.kubeconfig"
    "--container-runtime-endpoint=${CONTAINER_RUNTIME_ENDPOINT}"
    "--hostname-override=${HOSTNAME_OVERRIDE}"
    "--node-ip=${NODE_IP}"
    "--root-dir=${KUBELET_ROOT_DIR}"
    "--cluster-dns=${CLUSTER_DNS}"
    "--cluster-domain=${DNS_DOMAIN}"
    "--pod-cidr=${POD_CIDR}"
    "--pod-manifest-path=${POD_MANIFEST_PATH}"
    "--eviction-hard=${EVICTION_HARD}"
    "--eviction-pressure-transition-period=${EVICTION_PRESSURE_TRANSITION_PERIOD}"
    # Callers of the secure port: the API server by its client certificate,
    # others by tokens the API server vouches for; no anonymous ones
    # (upstream's script does the same through the kubelet's config file).
    "--client-ca-file=${CERT_DIR}/ca.crt"
    --anonymous-auth=false
    --authentication-token-webhook
    --authorization-mode=Webhook
    -v "${LOG_LEVEL}"
  )
  [[ -z "${EVICTION_SOFT}" ]] || args+=("--eviction-soft=${EVICTION_SOFT}")
  local -a extra
  mapfile -t extra < <(kube::components::_extra "${KUBELET_EXTRA_ARGS}")
  kube::util::start_process kubelet "${KUBELET_PID_FILE}" "${KUBELET_LOG}" \
    "${KUBELET_BIN}" "${args[@]}" "${extra[@]}" || return 1
  KUBELET_PID="${KUBE_STARTED_PID}"
}

# kube::components::wait_node_ready KUBECTL: waits until this node reports
# Ready (60 s).
kube::components::wait_node_ready() {
  local kubectl=$1 i
  kube::components::_node_defaults
  for i in $(seq 1 120); do
    if [[ "$("${kubectl}" --kubeconfig "${CERT_DIR}/admin.kubeconfig" get node "${HOSTNAME_OVERRIDE}" \
        -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" == True ]]; then
      kube::log::status "node ${HOSTNAME_OVERRIDE} is Ready"
      return 0
    fi
    if ! kube::util::pid_running "${KUBELET_PID:-0}"; then
      kube::log::error "the kubelet exited; see ${KUBELET_LOG}"
      return 1
    fi
    sleep 0.5
  done
  kube::log::error "node ${HOSTNAME_OVERRIDE} did not become Ready; see ${KUBELET_LOG}"
  return 1
}

# kube::components::cleanup_pods: what the node ran goes away with it —
# every container of containerd's k8s.io namespace is killed and removed,
# the pods' network namespaces and the bridge's IP leases are dropped, and
# volume mounts under the kubelet's pods directory are unmounted.
kube::components::cleanup_pods() {
  kube::components::_node_defaults
  if kube::containerd::running; then
    local ctr=(ctr --address "${CONTAINERD_SOCK}" -n k8s.io) id
    for id in $("${ctr[@]}" tasks list -q 2>/dev/null); do
      "${ctr[@]}" tasks kill -s SIGKILL "${id}" >/dev/null 2>&1 || true
    done
    for id in $("${ctr[@]}" tasks list -q 2>/dev/null); do
      "${ctr[@]}" tasks delete -f "${id}" >/dev/null 2>&1 || true
    done
    for id in $("${ctr[@]}" containers list -q 2>/dev/null); do
      "${ctr[@]}" containers delete "${id}" >/dev/null 2>&1 || true
    done
  fi
  local ns
  for ns in /var/run/netns/cni-*; do
    [[ -e "${ns}" ]] && ip netns del "$(basename "${ns}")" 2>/dev/null
  done
  rm -rf /var/lib/cni/networks/kube-bridge 2>/dev/null || true
  kube::components::_cleanup_cni_nat
  # The bridge goes too: a later cluster may use another pod range.
  kube::cni::remove
  if [[ -d "${KUBELET_ROOT_DIR}/pods" ]]; then
    awk -v root="${KUBELET_ROOT_DIR}/pods/" 'index($2, root) == 1 {print $2}' /proc/mounts |
      sort -r | while read -r m; do umount "${m}" 2>/dev/null || true; done
  fi
  return 0
}

# kube::components::_cleanup_cni_nat: the bridge plugin's per-pod masquerade
# chains (comment 'name: "kube-bridge"') go; nothing else in the nat table
# is touched. Containers killed without a CNI DEL leave them behind.
kube::components::_cleanup_cni_nat() {
  command -v iptables-save >/dev/null 2>&1 || return 0
  local saved ours
  saved="$(iptables-save -t nat 2>/dev/null)" || return 0
  ours="$(grep -F 'name: \"kube-bridge\"' <<<"${saved}" | grep -o -- '-A CNI-[0-9a-f]*' | sort -u | cut -c4-)" || true
  [[ -z "${ours}" ]] && return 0
  local chain filtered="${saved}"
  filtered="$(grep -vF 'name: \"kube-bridge\"' <<<"${filtered}")"
  for chain in ${ours}; do
    filtered="$(grep -v "^:${chain} " <<<"${filtered}")"
  done
  iptables-restore -T nat <<<"${filtered}" 2>/dev/null || true
}

# kube::components::stop_node: the kubelet, the pods, then containerd.
kube::components::stop_node() {
  kube::components::_node_defaults
  kube::util::stop_process kubelet "${KUBELET_PID_FILE}" "${KUBELET_BIN:-kubelet}"
  KUBELET_PID=""
  kube::components::cleanup_pods
  kube::containerd::stop
  CONTAINERD_PID=""
}

# --- kube-proxy ---------------------------------------------------------------
# Knobs: KUBE_PROXY_BIN, PROXY_LOG, PROXY_PID_FILE, KUBE_PROXY_MODE (nftables;
# iptables works too),
# KUBE_PROXY_EXTRA_ARGS; HOSTNAME_OVERRIDE and POD_CIDR as for the node.

kube::components::_proxy_defaults() {
  kube::components::_node_defaults
  PROXY_LOG="${PROXY_LOG:-${LOG_DIR}/kube-proxy.log}"
  PROXY_PID_FILE="${PROXY_PID_FILE:-${KUBE_PID_DIR:-${CERT_DIR}}/kube-proxy.pid}"
  KUBE_PROXY_MODE="${KUBE_PROXY_MODE:-nftables}"
  KUBE_PROXY_EXTRA_ARGS="${KUBE_PROXY_EXTRA_ARGS:-}"
}

# kube::components::start_proxy: sets PROXY_PID. The network guard is
# installed first, as for everything that programs cluster networking.
kube::components::start_proxy() {
  kube::components::_proxy_defaults
  if [[ -z "${KUBE_PROXY_BIN:-}" || ! -x "${KUBE_PROXY_BIN}" ]]; then
    kube::log::error "kube-proxy binary not found at '${KUBE_PROXY_BIN:-}'"
    return 1
  fi
  kube::netguard::install || return 1
  kube::util::stop_process "kube-proxy (left by an earlier run)" \
    "${PROXY_PID_FILE}" "${KUBE_PROXY_BIN}"
  kube::components::_kubeconfig kube-proxy system:kube-proxy system:nodes || return 1
  local -a args=(
    "--kubeconfig=${CERT_DIR}/kube-proxy.kubeconfig"
    "--proxy-mode=${KUBE_PROXY_MODE}"
    "--hostname-override=${HOSTNAME_OVERRIDE}"
    "--cluster-cidr=${POD_CIDR}"
    -v "${LOG_LEVEL}"
  )
  local -a extra
  mapfile -t extra < <(kube::components::_extra "${KUBE_PROXY_EXTRA_ARGS}")
  kube::util::start_process kube-proxy "${PROXY_PID_FILE}" "${PROXY_LOG}" \
    "${KUBE_PROXY_BIN}" "${args[@]}" "${extra[@]}" || return 1
  PROXY_PID="${KUBE_STARTED_PID}"
}

# kube::components::stop_proxy: stops kube-proxy and removes its rules
# (the nftables table, or the iptables KUBE-* chains and jumps).
kube::components::stop_proxy() {
  kube::components::_proxy_defaults
  kube::util::stop_process kube-proxy "${PROXY_PID_FILE}" "${KUBE_PROXY_BIN:-kube-proxy}"
  PROXY_PID=""
  if [[ -n "${KUBE_PROXY_BIN:-}" && -x "${KUBE_PROXY_BIN}" ]]; then
    "${KUBE_PROXY_BIN}" --cleanup >/dev/null 2>&1 || true
  fi
  # The nftables half without the binary, too.
  nft delete table ip kube-proxy >/dev/null 2>&1 || true
}
