#!/usr/bin/env bash
# Small helpers shared by the hack/ and test/ scripts: logging, packages,
# polling URLs, ports and processes recorded in pid files.
# Upstream: hack/lib/util.sh and hack/lib/logging.sh. Source it; do not run it.

# --- logging ---------------------------------------------------------------

# Messages go to stderr so that functions can print results on stdout.
kube::log::status() {
  echo "+++ [$(date +'%m%d %H:%M:%S')] $*" >&2
}

kube::log::error() {
  echo "!!! [$(date +'%m%d %H:%M:%S')] $*" >&2
}

# --- packages --------------------------------------------------------------

# kube::util::package_installed PKG: true if dpkg knows PKG as installed.
kube::util::package_installed() {
  local status
  # Capture first: `dpkg -s | grep -q` can die of SIGPIPE and, with pipefail,
  # report a present package as missing.
  status="$(dpkg -s "$1" 2>/dev/null)" || return 1
  grep -q '^Status: install ok installed' <<<"${status}"
}

# kube::util::as_root CMD...: runs CMD as root, through sudo when needed.
kube::util::as_root() {
  if (( EUID == 0 )); then
    "$@"
  else
    sudo "$@"
  fi
}

# kube::util::ensure_packages PKG...: installs with apt-get only the packages
# that are missing. The package lists are refreshed at most once per run
# (KUBE_APT_UPDATED is exported so child scripts do not refresh them again).
kube::util::ensure_packages() {
  local -a missing=()
  local pkg
  for pkg in "$@"; do
    kube::util::package_installed "${pkg}" || missing+=("${pkg}")
  done
  (( ${#missing[@]} == 0 )) && return 0

  if ! command -v apt-get >/dev/null 2>&1; then
    kube::log::error "missing packages: ${missing[*]} (and apt-get is not available to install them)"
    return 1
  fi
  kube::log::status "installing missing packages: ${missing[*]}"
  if [[ "${KUBE_APT_UPDATED:-}" != true ]]; then
    kube::util::as_root apt-get update -qq
    export KUBE_APT_UPDATED=true
  fi
  kube::util::as_root env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# kube::util::ensure_cargo: puts rustup's cargo on PATH when a non-login
# shell (CI, sudo) does not have it.
kube::util::ensure_cargo() {
  command -v cargo >/dev/null 2>&1 && return 0
  if [[ -x "${HOME:-/root}/.cargo/bin/cargo" ]]; then
    export PATH="${HOME:-/root}/.cargo/bin:${PATH}"
    return 0
  fi
  kube::log::error "cargo not found (install a Rust toolchain with rustup)"
  return 1
}

# --- waiting ---------------------------------------------------------------

# kube::util::_poll_url PID URL TIMEOUT [CURL_ARGS...]: polls URL until curl
# succeeds (HTTP 2xx), the deadline passes, or process PID (if not empty) dies.
kube::util::_poll_url() {
  local pid=$1 url=$2 timeout=$3
  shift 3
  local deadline=$((SECONDS + timeout))
  local err
  while true; do
    if err="$(curl --fail --silent --show-error --max-time "${WAIT_FOR_URL_MAX_TIME:-2}" \
        "$@" --output /dev/null "${url}" 2>&1)"; then
      return 0
    fi
    if [[ -n "${pid}" ]] && ! kube::util::pid_running "${pid}"; then
      kube::log::error "process ${pid} exited while waiting for ${url}"
      return 1
    fi
    if (( SECONDS >= deadline )); then
      kube::log::error "timed out after ${timeout}s waiting for ${url}: ${err}"
      return 1
    fi
    sleep 0.2
  done
}

# kube::util::_split_timeout ARGS...: sets _timeout and _args, taking a
# trailing all-digits argument as the timeout in seconds.
kube::util::_split_timeout() {
  _timeout="${WAIT_FOR_URL_TIMEOUT:-60}"
  _args=("$@")
  if (( $# > 0 )) && [[ "${!#}" =~ ^[0-9]+$ ]]; then
    _timeout="${!#}"
    _args=("${@:1:$#-1}")
  fi
}

# kube::util::wait_for_url URL [CURL_ARGS...] [TIMEOUT]: waits until URL
# answers 2xx. TIMEOUT (seconds, default WAIT_FOR_URL_TIMEOUT or 60) is the
# last argument when it is all digits, so a numeric curl option value must
# not come last.
kube::util::wait_for_url() {
  local url=$1
  shift
  local _timeout
  local -a _args
  kube::util::_split_timeout "$@"
  kube::util::_poll_url "" "${url}" "${_timeout}" "${_args[@]}"
}

# kube::util::wait_for_process_url PID URL [CURL_ARGS...] [TIMEOUT]: like
# wait_for_url, but gives up at once when PID exits, so a component that
# crashes at start fails fast instead of after the whole timeout.
kube::util::wait_for_process_url() {
  local pid=$1 url=$2
  shift 2
  local _timeout
  local -a _args
  kube::util::_split_timeout "$@"
  kube::util::_poll_url "${pid}" "${url}" "${_timeout}" "${_args[@]}"
}

# --- ports -----------------------------------------------------------------

# kube::util::_tcp_sockets PORT STATE_REGEX: true if a TCP socket (v4 or v6)
# bound locally to PORT has a state (hex, as in /proc/net/tcp) matching
# STATE_REGEX. Reads /proc so that it works without iproute2.
kube::util::_tcp_sockets() {
  local hex
  hex="$(printf '%04X' "$1")"
  awk -v suffix=":${hex}" -v states="$2" '
    FNR > 1 && substr($2, length($2) - 4) == suffix && $4 ~ states { found = 1 }
    END { exit found ? 0 : 1 }' /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# kube::util::port_in_use PORT: true if any TCP socket, in any state, uses
# PORT locally. Conservative: used to pick ports nobody is near.
kube::util::port_in_use() {
  kube::util::_tcp_sockets "$1" '.'
}

# kube::util::port_listening PORT: true if something listens on PORT.
# Sockets in TIME_WAIT left by a process we just stopped do not count: the
# servers set SO_REUSEADDR and can bind again.
kube::util::port_listening() {
  kube::util::_tcp_sockets "$1" '^0A$'
}

# kube::util::port_owner PORT: prints what listens on PORT, for error messages.
kube::util::port_owner() {
  if command -v ss >/dev/null 2>&1; then
    ss -Hltnp "sport = :$1" 2>/dev/null || true
  fi
}

# kube::util::free_port [EXCLUDED_PORT...]: prints a TCP port nothing uses.
# Ports come from 20000-29999: below the default node-port range
# (30000-32767) and the kernel's ephemeral range (32768-60999), so an
# outgoing connection is unlikely to take the port before it is bound.
# Pass ports handed out earlier but not bound yet as EXCLUDED_PORT.
kube::util::free_port() {
  local port attempt excluded
  for (( attempt = 0; attempt < 200; attempt++ )); do
    port=$((20000 + RANDOM % 10000))
    for excluded in "$@"; do
      [[ "${port}" == "${excluded}" ]] && continue 2
    done
    kube::util::port_in_use "${port}" && continue
    echo "${port}"
    return 0
  done
  kube::log::error "no free TCP port found in 20000-29999"
  return 1
}

# kube::util::ensure_port_free NAME PORT: fails with a clear message when
# something else holds PORT.
kube::util::ensure_port_free() {
  local name=$1 port=$2
  kube::util::port_listening "${port}" || return 0
  kube::log::error "${name}: port ${port} is already in use by another process; stop it or choose another port"
  kube::util::port_owner "${port}" >&2
  return 1
}

# --- network ---------------------------------------------------------------

# kube::util::primary_ipv4: the source address of the default route, or
# 127.0.0.1 when the machine has none.
kube::util::primary_ipv4() {
  local ip=""
  if command -v ip >/dev/null 2>&1; then
    ip="$(ip -4 route get 1 2>/dev/null |
      awk '{ for (i = 1; i < NF; i++) if ($i == "src") { print $(i + 1); exit } }')" || ip=""
  fi
  echo "${ip:-127.0.0.1}"
}

# --- processes -------------------------------------------------------------

# kube::util::pid_running PID: true if PID exists and is not a zombie (an
# exited child we have not reaped still answers kill -0).
kube::util::pid_running() {
  local stat state
  [[ "$1" =~ ^[0-9]+$ ]] || return 1
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  state="${stat##*) }"
  [[ "${state%% *}" != Z ]]
}

# kube::util::pid_is PID EXE: true if PID is running the program EXE (compared
# by file name). Guards against killing an unrelated process that reused the
# pid of one we started before a crash or reboot.
kube::util::pid_is() {
  local pid=$1 exe=$2 actual
  kube::util::pid_running "${pid}" || return 1
  actual="$(readlink "/proc/${pid}/exe" 2>/dev/null)" || return 1
  # A rebuilt binary shows as "/path/kube-apiserver (deleted)".
  actual="${actual% (deleted)}"
  [[ "$(basename "${actual}")" == "$(basename "${exe}")" ]]
}

# kube::util::pidfile_pid PIDFILE EXE: prints the pid recorded in PIDFILE if
# that process still runs EXE; fails otherwise.
kube::util::pidfile_pid() {
  local pidfile=$1 exe=$2 pid
  [[ -f "${pidfile}" ]] || return 1
  pid="$(<"${pidfile}")"
  kube::util::pid_is "${pid}" "${exe}" || return 1
  echo "${pid}"
}

# kube::util::start_process NAME PIDFILE LOGFILE CMD...: starts CMD in the
# background with its output in LOGFILE and records its pid in PIDFILE
# and in KUBE_STARTED_PID. Do not call it in $(...): the process must be a
# child of the calling shell so that `wait` and traps see it.
kube::util::start_process() {
  local name=$1 pidfile=$2 logfile=$3
  shift 3
  mkdir -p "$(dirname "${pidfile}")" "$(dirname "${logfile}")"
  kube::log::status "starting ${name} (log: ${logfile})"
  # Truncated per start, as upstream does, so a log tail shows this run.
  "$@" </dev/null >"${logfile}" 2>&1 &
  KUBE_STARTED_PID=$!
  echo "${KUBE_STARTED_PID}" >"${pidfile}"
}

# kube::util::stop_process NAME PIDFILE EXE [TIMEOUT]: stops the process
# recorded in PIDFILE if it still runs EXE: SIGTERM, then SIGKILL after
# TIMEOUT seconds (default 10). Removes PIDFILE. Never touches other processes.
kube::util::stop_process() {
  local name=$1 pidfile=$2 exe=$3 timeout=${4:-10}
  local pid deadline
  if pid="$(kube::util::pidfile_pid "${pidfile}" "${exe}")"; then
    kube::log::status "stopping ${name} (pid ${pid})"
    kill -TERM "${pid}" 2>/dev/null || true
    deadline=$((SECONDS + timeout))
    while kube::util::pid_running "${pid}" && (( SECONDS < deadline )); do
      sleep 0.1
    done
    if kube::util::pid_running "${pid}"; then
      kube::log::error "${name} (pid ${pid}) ignored SIGTERM for ${timeout}s; killing it"
      kill -KILL "${pid}" 2>/dev/null || true
    fi
    # Reap it if it is our child; harmless otherwise.
    wait "${pid}" 2>/dev/null || true
  fi
  rm -f "${pidfile}"
}

# kube::util::private_cluster_dirs DIR: points every path a cluster writes
# (certs, logs, pid files, etcd data) under DIR and creates it, for the
# private clusters of the e2e suite and the benchmark; binds to loopback.
kube::util::private_cluster_dirs() {
  local dir=$1
  export CERT_DIR="${dir}/certs"
  export LOG_DIR="${dir}/logs"
  export KUBE_PID_DIR="${dir}/run"
  export ETCD_DIR="${dir}/etcd"
  export ETCD_PID_FILE="${KUBE_PID_DIR}/etcd.pid"
  export ETCD_LOGFILE="${LOG_DIR}/etcd.log"
  export APISERVER_LOG="${LOG_DIR}/kube-apiserver.log"
  export APISERVER_PID_FILE="${KUBE_PID_DIR}/kube-apiserver.pid"
  export CTLRMGR_LOG="${LOG_DIR}/kube-controller-manager.log"
  export CTLRMGR_PID_FILE="${KUBE_PID_DIR}/kube-controller-manager.pid"
  export SCHEDULER_LOG="${LOG_DIR}/kube-scheduler.log"
  export SCHEDULER_PID_FILE="${KUBE_PID_DIR}/kube-scheduler.pid"
  export API_BIND_ADDR=127.0.0.1
  mkdir -p "${LOG_DIR}" "${KUBE_PID_DIR}"
}
