#!/usr/bin/env bash
# A private containerd for the local cluster (Debian's containerd 1.6 +
# runc + containernetworking-plugins): its own config, root, state and
# socket, so it never touches a system containerd. The CRI plugin is set up
# the way these machines need (ENVIRONMENT.md): restrict_oom_score_adj (no
# CAP_SYS_RESOURCE), runc v2 as the named default runtime, cgroupfs (cgroups
# v1), CNI from /usr/lib/cni, and registry mirrors so that docker.io and
# registry.k8s.io images come from the local registry (hack/lib/images.sh).
# Source it after hack/lib/util.sh; do not run it.
#
# Knobs:
#   CONTAINERD_DIR        /var/lib/kube-containerd       root, state, config
#   CONTAINER_RUNTIME_ENDPOINT  unix://${CONTAINERD_DIR}/containerd.sock
#   CNI_CONF_DIR          ${CONTAINERD_DIR}/cni/net.d
#   CONTAINERD_LOG        ${LOG_DIR:-/tmp}/containerd.log
#   REGISTRY_ADDR         127.0.0.1:5000 (the mirror)

CONTAINERD_PACKAGES=(containerd runc containernetworking-plugins iptables conntrack)

kube::containerd::_defaults() {
  CONTAINERD_DIR="${CONTAINERD_DIR:-/var/lib/kube-containerd}"
  CONTAINERD_SOCK="${CONTAINERD_DIR}/containerd.sock"
  CONTAINER_RUNTIME_ENDPOINT="${CONTAINER_RUNTIME_ENDPOINT:-unix://${CONTAINERD_SOCK}}"
  CNI_CONF_DIR="${CNI_CONF_DIR:-${CONTAINERD_DIR}/cni/net.d}"
  CONTAINERD_LOG="${CONTAINERD_LOG:-${LOG_DIR:-/tmp}/containerd.log}"
  CONTAINERD_PID_FILE="${CONTAINERD_PID_FILE:-${CONTAINERD_DIR}/containerd.pid}"
  REGISTRY_ADDR="${REGISTRY_ADDR:-127.0.0.1:5000}"
}

# kube::containerd::write_config: containerd's config.toml (version 2).
kube::containerd::write_config() {
  kube::containerd::_defaults
  mkdir -p "${CONTAINERD_DIR}/root" "${CONTAINERD_DIR}/state" "${CNI_CONF_DIR}" || return 1
  cat >"${CONTAINERD_DIR}/config.toml" <<EOF
version = 2
root = "${CONTAINERD_DIR}/root"
state = "${CONTAINERD_DIR}/state"

[grpc]
  address = "${CONTAINERD_SOCK}"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.9"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "${CNI_CONF_DIR}"
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."docker.io"]
    endpoint = ["http://${REGISTRY_ADDR}"]
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."registry.k8s.io"]
    endpoint = ["http://${REGISTRY_ADDR}"]
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."${REGISTRY_ADDR}"]
    endpoint = ["http://${REGISTRY_ADDR}"]
EOF
}

# kube::containerd::running: whether our containerd answers on its socket.
kube::containerd::running() {
  kube::containerd::_defaults
  [[ -S "${CONTAINERD_SOCK}" ]] && ctr --address "${CONTAINERD_SOCK}" version >/dev/null 2>&1
}

# kube::containerd::start: installs what is missing, writes the config and
# starts containerd unless ours already runs. Sets CONTAINERD_PID.
kube::containerd::start() {
  kube::containerd::_defaults
  kube::util::ensure_packages "${CONTAINERD_PACKAGES[@]}" || return 1
  kube::containerd::write_config || return 1
  if kube::containerd::running; then
    CONTAINERD_PID="$(kube::util::pidfile_pid "${CONTAINERD_PID_FILE}" containerd || true)"
    return 0
  fi
  containerd --config "${CONTAINERD_DIR}/config.toml" >>"${CONTAINERD_LOG}" 2>&1 </dev/null &
  CONTAINERD_PID=$!
  echo "${CONTAINERD_PID}" >"${CONTAINERD_PID_FILE}"
  local i
  for i in $(seq 1 100); do
    kube::containerd::running && return 0
    sleep 0.1
  done
  kube::log::error "containerd did not come up, see ${CONTAINERD_LOG}"
  return 1
}

# kube::containerd::stop: stops the containerd this library started.
kube::containerd::stop() {
  kube::containerd::_defaults
  kube::util::stop_process containerd "${CONTAINERD_PID_FILE}" containerd 30 || true
}
