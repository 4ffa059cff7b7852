#!/usr/bin/env bash
# Starts and stops a single-member etcd for local clusters and tests, using
# Debian's etcd-server package. Upstream: hack/lib/etcd.sh.
# Source it after hack/lib/util.sh; do not run it.
#
# Knobs (read when kube::etcd::start runs):
#   ETCD_HOST       127.0.0.1   address for clients and peers (loopback only)
#   ETCD_PORT       2379        client port
#   ETCD_PEER_PORT  2380        peer port (set it too when running two etcds)
#   ETCD_DIR        /tmp/kube-etcd-${ETCD_PORT}   data directory
#   ETCD_PID_FILE   ${ETCD_DIR}.pid
#   ETCD_LOGFILE    ${LOG_DIR:-/tmp}/etcd.log
#   ETCD_LOGLEVEL   warn
#   ETCD_BIN        etcd (from PATH)
#   PRESERVE_ETCD   false: the data directory is wiped at start and cleanup
#   ETCD_START_TIMEOUT  30 seconds to wait for /health

kube::etcd::_defaults() {
  ETCD_HOST="${ETCD_HOST:-127.0.0.1}"
  ETCD_PORT="${ETCD_PORT:-2379}"
  ETCD_PEER_PORT="${ETCD_PEER_PORT:-2380}"
  ETCD_DIR="${ETCD_DIR:-/tmp/kube-etcd-${ETCD_PORT}}"
  ETCD_PID_FILE="${ETCD_PID_FILE:-${ETCD_DIR}.pid}"
  ETCD_LOGFILE="${ETCD_LOGFILE:-${LOG_DIR:-/tmp}/etcd.log}"
  ETCD_LOGLEVEL="${ETCD_LOGLEVEL:-warn}"
  ETCD_BIN="${ETCD_BIN:-etcd}"
  PRESERVE_ETCD="${PRESERVE_ETCD:-false}"
  ETCD_START_TIMEOUT="${ETCD_START_TIMEOUT:-30}"
}

# kube::etcd::validate: etcd is installed and its ports are free (after
# stopping what an earlier run of ours left behind).
kube::etcd::validate() {
  kube::etcd::_defaults
  if ! command -v "${ETCD_BIN}" >/dev/null 2>&1; then
    kube::log::error "etcd not found: install the etcd-server package or set ETCD_BIN"
    return 1
  fi
  # A run that crashed or was killed leaves its etcd behind; that one is ours
  # (its pid file says so and it runs etcd), so stop it rather than refuse.
  kube::util::stop_process "etcd (left by an earlier run)" "${ETCD_PID_FILE}" "${ETCD_BIN}"
  kube::util::ensure_port_free etcd "${ETCD_PORT}" || return 1
  kube::util::ensure_port_free "etcd peer" "${ETCD_PEER_PORT}" || return 1
}

# kube::etcd::start: starts etcd and waits until it reports healthy. Sets
# ETCD_PID. Every step checks its result explicitly: callers may run this in
# a conditional, where bash ignores `set -e`.
kube::etcd::start() {
  kube::etcd::validate || return 1
  if [[ "${PRESERVE_ETCD}" != true ]]; then
    kube::etcd::clean_etcd_dir || return 1
  fi
  # etcd warns about data directories others can read.
  mkdir -p "$(dirname "${ETCD_DIR}")" || return 1
  [[ -d "${ETCD_DIR}" ]] || mkdir -m 700 "${ETCD_DIR}" || return 1

  local client_url="http://${ETCD_HOST}:${ETCD_PORT}"
  local peer_url="http://${ETCD_HOST}:${ETCD_PEER_PORT}"
  # The peer URL is given explicitly: etcd's default (localhost:2380) would
  # make a second etcd on this machine (tests next to a local cluster) fail.
  # Progress notifications let the apiserver's watch cache know how fresh it
  # is, as upstream's integration setup does.
  # etcd reads ETCD_* variables as flags and warns about ours (ETCD_PORT, ...):
  # hide them from it. env execs etcd, so the recorded pid is etcd's.
  local -a unset_ours=() var
  for var in $(compgen -e); do
    [[ "${var}" == ETCD_* ]] && unset_ours+=(-u "${var}")
  done
  kube::util::start_process etcd "${ETCD_PID_FILE}" "${ETCD_LOGFILE}" \
    env "${unset_ours[@]}" "${ETCD_BIN}" \
    --name default \
    --data-dir "${ETCD_DIR}" \
    --listen-client-urls "${client_url}" \
    --advertise-client-urls "${client_url}" \
    --listen-peer-urls "${peer_url}" \
    --initial-advertise-peer-urls "${peer_url}" \
    --initial-cluster "default=${peer_url}" \
    --experimental-watch-progress-notify-interval=5s \
    --logger=zap \
    --log-level="${ETCD_LOGLEVEL}" || return 1
  ETCD_PID="${KUBE_STARTED_PID}"

  if ! kube::util::wait_for_process_url "${ETCD_PID}" "${client_url}/health" "${ETCD_START_TIMEOUT}"; then
    kube::log::error "etcd did not become healthy; last lines of ${ETCD_LOGFILE}:"
    tail -n 20 "${ETCD_LOGFILE}" >&2 || true
    kube::etcd::stop
    return 1
  fi
  kube::log::status "etcd is healthy at ${client_url} (pid ${ETCD_PID})"
}

# kube::etcd::stop: stops the etcd recorded in ETCD_PID_FILE, if any.
kube::etcd::stop() {
  kube::etcd::_defaults
  kube::util::stop_process etcd "${ETCD_PID_FILE}" "${ETCD_BIN}"
  ETCD_PID=""
}

# kube::etcd::clean_etcd_dir: removes the data directory.
kube::etcd::clean_etcd_dir() {
  kube::etcd::_defaults
  # Refuse paths whose removal would be a disaster if a knob were mistyped.
  case "${ETCD_DIR}" in
    "" | / | /tmp | /var | /var/run | "${HOME:-/root}")
      kube::log::error "refusing to remove ETCD_DIR=${ETCD_DIR}"
      return 1
      ;;
  esac
  rm -rf "${ETCD_DIR}"
}

# kube::etcd::cleanup: stops etcd and, unless PRESERVE_ETCD=true, removes
# its data.
kube::etcd::cleanup() {
  kube::etcd::stop
  if [[ "${PRESERVE_ETCD}" != true ]]; then
    kube::etcd::clean_etcd_dir || return 1
  fi
}
