#!/usr/bin/env bash
# The end-to-end harness: a private cluster (own etcd and apiserver ports,
# own certs, all under one temporary directory, never /var/run/kubernetes),
# a case runner, and assertions that print what they got.
# Upstream counterpart in spirit: test/cmd/ (kubectl against a real
# apiserver). Source it from test/e2e/run.sh.
#
# Knobs:
#   KUBE_APISERVER_BIN  binary to test; default: `cargo build -p kube-apiserver`
#                       (debug, faster to build in CI) and target/debug's binary
#   KUBECTL_VERSIONS    "1.27 1.33": kubectl.<version> binaries to drive
#   E2E_FOCUS           only run cases whose function name (case_<name>) matches
#                       this regex, e.g. E2E_FOCUS=watch
#   E2E_KEEP            true: keep the temporary directory (kept on failure anyway)
#   E2E_CMD_TIMEOUT     20: seconds any single kubectl call may take

# shellcheck source=hack/lib/init.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../hack/lib/init.sh"

E2E_PASSED=0
E2E_FAILED=0
E2E_SKIPPED=0
E2E_FAILURES=()
E2E_CMD_TIMEOUT="${E2E_CMD_TIMEOUT:-20}"
E2E_FOCUS="${E2E_FOCUS:-}"
E2E_KEEP="${E2E_KEEP:-false}"
# Exit status of a case that decided not to run.
E2E_SKIP_STATUS=99

# --- the cluster -------------------------------------------------------------

# e2e::build_apiserver: sets KUBE_APISERVER_BIN, building the debug binary
# unless one was given.
e2e::build_apiserver() {
  if [[ -n "${KUBE_APISERVER_BIN:-}" ]]; then
    KUBE_APISERVER_BIN="$(readlink -f "${KUBE_APISERVER_BIN}")"
  else
    kube::util::ensure_cargo || return 1
    kube::log::status "building kube-apiserver (cargo build, debug)"
    (cd "${KUBE_ROOT}" && cargo build -p kube-apiserver) || return 1
    KUBE_APISERVER_BIN="${CARGO_TARGET_DIR:-${KUBE_ROOT}/target}/debug/kube-apiserver"
  fi
  export KUBE_APISERVER_BIN
}

# e2e::pick_ports: free ports for etcd (client, peer) and the apiserver, so
# that the suite runs next to a local-up cluster or another suite.
e2e::pick_ports() {
  ETCD_PORT="$(kube::util::free_port)" || return 1
  ETCD_PEER_PORT="$(kube::util::free_port "${ETCD_PORT}")" || return 1
  API_SECURE_PORT="$(kube::util::free_port "${ETCD_PORT}" "${ETCD_PEER_PORT}")" || return 1
  export ETCD_PORT ETCD_PEER_PORT API_SECURE_PORT
}

# e2e::setup_cluster: starts etcd and kube-apiserver under E2E_TMP and writes
# E2E_KUBECONFIG. Sets E2E_TMP.
e2e::setup_cluster() {
  E2E_TMP="$(mktemp -d "${TMPDIR:-/tmp}/kube-e2e.XXXXXX")" || return 1
  # Loopback only: the suite's server is nobody else's business. It still
  # advertises the machine's address, as a real one would.
  kube::util::private_cluster_dirs "${E2E_TMP}" || return 1
  export ADVERTISE_ADDRESS="${ADVERTISE_ADDRESS:-$(kube::util::primary_ipv4)}"
  export LOG_LEVEL="${LOG_LEVEL:-3}"

  e2e::pick_ports || return 1
  # No controller manager runs here to create `default` ServiceAccounts,
  # untaint nodes or release storage protection finalizers, so those
  # admission plugins are off, as in upstream's integration servers
  # (test/e2e/cluster.sh runs the whole cluster).
  export APISERVER_EXTRA_ARGS="--disable-admission-plugins=ServiceAccount,TaintNodesByCondition,StorageObjectInUseProtection ${APISERVER_EXTRA_ARGS:-}"
  # Authorization as in a real cluster: the suite's admin is in system:masters.
  export AUTHORIZATION_MODE="${AUTHORIZATION_MODE:-Node,RBAC}"
  kube::certs::generate "${ADVERTISE_ADDRESS}" || return 1
  kube::etcd::start || return 1
  kube::apiserver::start || return 1
  kube::certs::write_kubeconfig admin \
    "${CERT_DIR}/client-admin.crt" "${CERT_DIR}/client-admin.key" \
    "https://127.0.0.1:${API_SECURE_PORT}" || return 1
  E2E_KUBECONFIG="${CERT_DIR}/admin.kubeconfig"
  # Nothing in the suite may read the user's own kubeconfig.
  export KUBECONFIG="${E2E_KUBECONFIG}"
  kube::apiserver::wait_ready 127.0.0.1
}

# e2e::teardown: stops the cluster; keeps E2E_TMP (logs, certs) when asked
# or when something failed, so that it can be inspected.
e2e::teardown() {
  kube::apiserver::stop 2>/dev/null || true
  kube::etcd::cleanup 2>/dev/null || true
  [[ -n "${E2E_TMP:-}" && -d "${E2E_TMP}" ]] || return 0
  if [[ "${E2E_KEEP}" == true ]] || (( E2E_FAILED > 0 )); then
    echo "kept ${E2E_TMP} (logs in ${LOG_DIR:-${E2E_TMP}/logs})"
  else
    rm -rf "${E2E_TMP}"
  fi
}

# e2e::show_logs: the end of each component's log, for failures in CI.
e2e::show_logs() {
  local log
  for log in "${ETCD_LOGFILE:-}" "${APISERVER_LOG:-}"; do
    [[ -n "${log}" && -f "${log}" ]] || continue
    echo "--- last lines of ${log}"
    tail -n 40 "${log}"
  done
}

# --- kubectl -----------------------------------------------------------------

# e2e::kubectl_binary VERSION: path of kubectl.VERSION, which sits next to
# the file /usr/bin/kubectl links to.
e2e::kubectl_binary() {
  local dir
  dir="$(dirname "$(readlink -f "$(command -v kubectl)")")" || return 1
  if [[ ! -x "${dir}/kubectl.$1" ]]; then
    kube::log::error "kubectl $1 not found at ${dir}/kubectl.$1"
    return 1
  fi
  echo "${dir}/kubectl.$1"
}

# e2e::use_kubectl VERSION: selects the kubectl the cases drive: KUBECTL,
# KUBECTL_MINOR (for version-dependent cases) and KC, the full command line
# with its own kubeconfig and discovery cache, bounded in time so that a hung
# server fails one case instead of the suite. Run KC directly (not kc) for a
# background command whose pid must be the one to kill.
e2e::use_kubectl() {
  KUBECTL="$(e2e::kubectl_binary "$1")" || return 1
  # shellcheck disable=SC2034 # read by the cases in run.sh
  KUBECTL_MINOR="${1#*.}"
  KC=(timeout "${E2E_CMD_TIMEOUT}" "${KUBECTL}" --kubeconfig="${E2E_KUBECONFIG}"
    --cache-dir="${E2E_TMP}/kubectl-cache-$1")
}

# kc ARGS...: the kubectl under test.
kc() {
  "${KC[@]}" "$@"
}

# e2e::ok ARGS...: runs kubectl expecting success and prints its stdout (its
# stderr goes to the case log). On failure the case fails with both.
e2e::ok() {
  local out err rc=0
  out="$(mktemp)" err="$(mktemp)"
  kc "$@" >"${out}" 2>"${err}" || rc=$?
  if (( rc != 0 )); then
    {
      echo "FAILED: kubectl $* (exit ${rc})"
      echo "--- stdout"; cat "${out}"
      echo "--- stderr"; cat "${err}"
    } >&2
    rm -f "${out}" "${err}"
    exit 1
  fi
  cat "${out}"
  cat "${err}" >&2
  rm -f "${out}" "${err}"
}

# e2e::expect_exit CODE ARGS...: runs kubectl expecting exit status CODE and
# prints its stdout and stderr together (kubectl's errors go to stderr).
e2e::expect_exit() {
  local want=$1
  shift
  local out rc=0
  out="$(kc "$@" 2>&1)" || rc=$?
  if (( rc != want )); then
    echo "FAILED: kubectl $*: expected exit ${want}, got ${rc}; output:" >&2
    echo "${out}" >&2
    exit 1
  fi
  echo "${out}"
}

# --- assertions ----------------------------------------------------------------

# e2e::assert_eq WHAT EXPECTED ACTUAL
e2e::assert_eq() {
  [[ "$2" == "$3" ]] && return 0
  printf 'FAILED: %s\n--- expected\n%s\n--- got\n%s\n' "$1" "$2" "$3" >&2
  exit 1
}

# e2e::assert_match WHAT REGEX ACTUAL (bash extended regex)
e2e::assert_match() {
  [[ "$3" =~ $2 ]] && return 0
  printf 'FAILED: %s\n--- expected to match\n%s\n--- got\n%s\n' "$1" "$2" "$3" >&2
  exit 1
}

# e2e::assert_line WHAT LINE TEXT: TEXT has exactly LINE as one of its lines.
e2e::assert_line() {
  grep -qFx -- "$2" <<<"$3" && return 0
  printf 'FAILED: %s\n--- expected a line\n%s\n--- got\n%s\n' "$1" "$2" "$3" >&2
  exit 1
}

# e2e::squeeze: collapses runs of spaces and strips trailing ones, so that
# table output compares by columns rather than by padding.
e2e::squeeze() {
  sed -E 's/[[:space:]]+/ /g; s/ $//'
}

# e2e::row TEXT NAME: the squeezed table row whose first column is NAME.
e2e::row() {
  e2e::squeeze <<<"$1" | awk -v name="$2" '$1 == name'
}

# e2e::wait_until WHAT TIMEOUT CMD...: polls CMD until it succeeds, failing
# the case after TIMEOUT seconds.
e2e::wait_until() {
  local what=$1 timeout=$2
  shift 2
  local deadline=$((SECONDS + timeout))
  until "$@"; do
    if (( SECONDS >= deadline )); then
      echo "FAILED: timed out after ${timeout}s waiting for ${what}" >&2
      exit 1
    fi
    sleep 0.2
  done
}

# e2e::skip REASON: ends the current case as skipped.
e2e::skip() {
  echo "skipped: $*"
  exit "${E2E_SKIP_STATUS}"
}

# --- running cases -----------------------------------------------------------

# e2e::run_case LABEL FUNCTION: runs FUNCTION in a subshell (so `exit` ends
# only the case) and records the result; a failure prints the case's output.
e2e::run_case() {
  local label=$1 fn=$2
  if [[ -n "${E2E_FOCUS}" && ! "${fn}" =~ ${E2E_FOCUS} ]]; then
    return 0
  fi
  local log="${E2E_TMP}/case.log" rc=0 start=${SECONDS}
  # set -e inside: a command failing unexpectedly fails the case. The
  # subshell is not in a conditional, so bash honours it.
  set +e
  (
    set -euo pipefail
    "${fn}"
  ) >"${log}" 2>&1
  rc=$?
  set -e
  local took=$((SECONDS - start))
  case "${rc}" in
    0)
      E2E_PASSED=$((E2E_PASSED + 1))
      echo "ok    ${label} (${took}s)"
      ;;
    "${E2E_SKIP_STATUS}")
      E2E_SKIPPED=$((E2E_SKIPPED + 1))
      echo "skip  ${label}: $(tail -n 1 "${log}")"
      ;;
    *)
      E2E_FAILED=$((E2E_FAILED + 1))
      E2E_FAILURES+=("${label}")
      echo "FAIL  ${label} (${took}s, exit ${rc})"
      sed 's/^/      | /' "${log}"
      ;;
  esac
}

# e2e::summary: the failed cases, then "N passed, M failed" as the last line.
e2e::summary() {
  echo
  local name
  for name in "${E2E_FAILURES[@]}"; do
    echo "failed: ${name}"
  done
  (( E2E_SKIPPED > 0 )) && echo "${E2E_SKIPPED} skipped"
  echo "${E2E_PASSED} passed, ${E2E_FAILED} failed"
}
