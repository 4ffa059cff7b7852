#!/usr/bin/env bash
# Benchmarks kube-apiserver against etcd on this machine and prints a table
# of figures next to the project's targets. Never asserts: a benchmark
# prints; CI (.ci/run) does not run it.
#
# One run: a private etcd and a fresh kube-apiserver (release build) on free
# loopback ports under a temporary directory (never /var/run/kubernetes or a
# running local cluster), driven by the apiserver-bench load generator
# (test/bench). Measured, in this order:
#   1. kube-apiserver VmRSS idle, BENCH_IDLE_SECONDS after it is ready
#   2. raw etcd puts: BENCH_PODS values of the size the apiserver stores for
#      the bench pod, BENCH_CONCURRENCY writers (plus create-if-absent txns,
#      the request the apiserver sends, for information)
#   3. pod creates through the apiserver: the same count and concurrency
#   4. LIST of the BENCH_PODS pods as JSON without compression: from the
#      watch cache (resourceVersion=0), as a quorum read (no
#      resourceVersion, as kubectl sends it), and paginated like kubectl get
#      (limit=500, quorum)
#   5. VmRSS with the pods stored and listed
#   6. one update fanned out to BENCH_WATCHERS watchers (each on its own
#      connection), BENCH_ROUNDS times
#
# Usage: hack/bench-apiserver.sh            (10,000 pods, a few minutes)
#        BENCH_PODS=1000 hack/bench-apiserver.sh   (quick mode)
#
# Knobs:
#   BENCH_PODS          10000  pods created and listed (and etcd puts)
#   BENCH_CONCURRENCY   64     concurrent writers for puts and creates
#   BENCH_WATCHERS      1000   watchers in the fan-out
#   BENCH_ROUNDS        5      updates in the fan-out
#   BENCH_LIST_REPEAT   10     timed LISTs of each kind (after one warm-up)
#   BENCH_IDLE_SECONDS  5      settle time before the idle RSS sample
#   BENCH_SKIP_BUILD    false  true: use the existing release binaries
#   BENCH_KEEP          false  true: keep the temporary directory (logs, results)
#   BENCH_PERF          ""     step names (create, list-quorum, list-paged, fanout, …):
#                              `perf record -g` kube-apiserver during them (kept)
#   LOG_LEVEL           2      kube-apiserver -v (upstream's production default)

set -euo pipefail

# shellcheck source=hack/lib/init.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/init.sh"

BENCH_PODS="${BENCH_PODS:-10000}"
BENCH_CONCURRENCY="${BENCH_CONCURRENCY:-64}"
BENCH_WATCHERS="${BENCH_WATCHERS:-1000}"
BENCH_ROUNDS="${BENCH_ROUNDS:-5}"
BENCH_LIST_REPEAT="${BENCH_LIST_REPEAT:-10}"
BENCH_IDLE_SECONDS="${BENCH_IDLE_SECONDS:-5}"
BENCH_SKIP_BUILD="${BENCH_SKIP_BUILD:-false}"
BENCH_KEEP="${BENCH_KEEP:-false}"
BENCH_PERF="${BENCH_PERF:-}"
export LOG_LEVEL="${LOG_LEVEL:-2}"

TARGET_DIR="${CARGO_TARGET_DIR:-${KUBE_ROOT}/target}/release"
KUBE_APISERVER_BIN="${TARGET_DIR}/kube-apiserver"
BENCH_BIN="${TARGET_DIR}/apiserver-bench"
export KUBE_APISERVER_BIN

# --- helpers -------------------------------------------------------------------

# bench::rss_kib PID: the process's resident set size in KiB.
bench::rss_kib() {
  awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"
}

# bench::cpu_ticks PID: user + system CPU time of PID in clock ticks.
bench::cpu_ticks() {
  # Fields after the ")" that ends the command name: utime is the 12th, stime the 13th.
  sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}

# bench::run NAME ARGS...: runs the load generator, keeps its JSON result in
# BENCH_TMP/NAME.json (with the CPU seconds kube-apiserver and etcd used
# meanwhile added) and echoes it to the log. A failed step leaves
# {"error": …} there and the run goes on. When BENCH_PERF names the step,
# records a perf profile of kube-apiserver during it.
bench::run() {
  local name=$1
  shift
  kube::log::status "bench: ${name}"
  local api0 etcd0 api1 etcd1 perf_pid=""
  api0="$(bench::cpu_ticks "${APISERVER_PID}")"
  etcd0="$(bench::cpu_ticks "${ETCD_PID}")"
  if [[ " ${BENCH_PERF} " == *" ${name} "* ]]; then
    perf record -g -F 499 -o "${BENCH_TMP}/perf-${name}.data" -p "${APISERVER_PID}" \
      >"${LOG_DIR}/perf-${name}.log" 2>&1 &
    perf_pid=$!
    sleep 1
  fi
  local rc=0
  "${BENCH_BIN}" "$@" >"${BENCH_TMP}/${name}.raw.json" || rc=$?
  if (( rc != 0 )) && ! jq -e .error "${BENCH_TMP}/${name}.raw.json" >/dev/null 2>&1; then
    jq -n --arg e "apiserver-bench exited with ${rc}" '{error: $e}' >"${BENCH_TMP}/${name}.raw.json"
  fi
  if [[ -n "${perf_pid}" ]]; then
    kill -INT "${perf_pid}"
    wait "${perf_pid}" || true
  fi
  api1="$(bench::cpu_ticks "${APISERVER_PID}")"
  etcd1="$(bench::cpu_ticks "${ETCD_PID}")"
  jq -c --argjson a "$((api1 - api0))" --argjson e "$((etcd1 - etcd0))" \
    --argjson hz "$(getconf CLK_TCK)" \
    '. + {server_cpu_secs: ($a / $hz), etcd_cpu_secs: ($e / $hz)}' \
    "${BENCH_TMP}/${name}.raw.json" >"${BENCH_TMP}/${name}.json"
  cat "${BENCH_TMP}/${name}.json" >&2
}

# bench::get NAME JQ_FILTER: a figure from a result, or FAILED when that
# step failed.
bench::get() {
  jq -r "if .error then \"FAILED\" else ($2) end" "${BENCH_TMP}/$1.json"
}

# bench::verdict VALUE OP LIMIT: "met" or "NOT met" (OP is < or >=).
bench::verdict() {
  if [[ ! "$1" =~ ^[0-9.]+$ ]]; then
    echo "NOT met (failed)"
    return 0
  fi
  awk -v v="$1" -v op="$2" -v l="$3" 'BEGIN {
    ok = (op == "<") ? (v < l) : (v >= l)
    print ok ? "met" : "NOT met"
  }'
}

bench::cleanup() {
  kube::apiserver::stop 2>/dev/null || true
  kube::etcd::cleanup 2>/dev/null || true
  [[ -n "${BENCH_TMP:-}" && -d "${BENCH_TMP}" ]] || return 0
  if [[ "${BENCH_KEEP}" == true ]]; then
    echo "kept ${BENCH_TMP} (logs in ${LOG_DIR}, results in ${BENCH_TMP}/*.json)" >&2
  else
    rm -rf "${BENCH_TMP}"
  fi
}

# --- build and start -------------------------------------------------------------

kube::util::ensure_packages etcd-server openssl jq curl

if [[ -n "${BENCH_PERF}" ]]; then
  BENCH_KEEP=true
  command -v perf >/dev/null 2>&1 || kube::util::ensure_packages linux-perf
fi
if [[ "${BENCH_SKIP_BUILD}" != true ]]; then
  kube::util::ensure_cargo
  kube::log::status "building kube-apiserver and apiserver-bench (cargo build --release)"
  (cd "${KUBE_ROOT}" && cargo build --release -p kube-apiserver -p apiserver-bench)
fi
for bin in "${KUBE_APISERVER_BIN}" "${BENCH_BIN}"; do
  [[ -x "${bin}" ]] || { kube::log::error "missing ${bin} (build with cargo build --release)"; exit 1; }
done

# Each watcher is a connection on both sides.
if (( $(ulimit -n) < BENCH_WATCHERS * 2 + 256 )); then
  ulimit -n "$(ulimit -Hn)"
fi

BENCH_TMP="$(mktemp -d "${TMPDIR:-/tmp}/kube-bench.XXXXXX")"
trap bench::cleanup EXIT
kube::util::private_cluster_dirs "${BENCH_TMP}"
export ADVERTISE_ADDRESS=127.0.0.1

ETCD_PORT="$(kube::util::free_port)"
ETCD_PEER_PORT="$(kube::util::free_port "${ETCD_PORT}")"
API_SECURE_PORT="$(kube::util::free_port "${ETCD_PORT}" "${ETCD_PEER_PORT}")"
export ETCD_PORT ETCD_PEER_PORT API_SECURE_PORT

kube::certs::generate 127.0.0.1
kube::etcd::start
# No controller manager creates the `default` ServiceAccount the pods need.
export APISERVER_EXTRA_ARGS="--disable-admission-plugins=ServiceAccount ${APISERVER_EXTRA_ARGS:-}"
kube::apiserver::start
kube::apiserver::wait_ready 127.0.0.1

export BENCH_SERVER="https://127.0.0.1:${API_SECURE_PORT}"
export BENCH_CA="${CERT_DIR}/ca.crt"
export BENCH_CERT="${CERT_DIR}/client-admin.crt"
export BENCH_KEY="${CERT_DIR}/client-admin.key"
export BENCH_ETCD="http://127.0.0.1:${ETCD_PORT}"

# --- measure ---------------------------------------------------------------------

BENCH_START=${SECONDS}
# Other work on the machine (a cargo build) skews every figure: say so.
LOADAVG_START="$(cut -d' ' -f1 /proc/loadavg)"
sleep "${BENCH_IDLE_SECONDS}"
RSS_IDLE_KIB="$(bench::rss_kib "${APISERVER_PID}")"

bench::run setup setup
if jq -e .error "${BENCH_TMP}/setup.json" >/dev/null; then
  kube::log::error "setup failed: $(jq -r .error "${BENCH_TMP}/setup.json")"
  exit 1
fi
STORED_BYTES="$(bench::get setup .stored_bytes)"
MANIFEST_BYTES="$(bench::get setup .manifest_bytes)"

bench::run etcd-put etcd-put --n "${BENCH_PODS}" --concurrency "${BENCH_CONCURRENCY}" \
  --value-size "${STORED_BYTES}" --mode put
bench::run etcd-txn etcd-put --n "${BENCH_PODS}" --concurrency "${BENCH_CONCURRENCY}" \
  --value-size "${STORED_BYTES}" --mode txn
bench::run create create-pods --n "${BENCH_PODS}" --concurrency "${BENCH_CONCURRENCY}"

bench::run list-rv0 list --rv 0 --repeat "${BENCH_LIST_REPEAT}" --expect "${BENCH_PODS}"
bench::run list-quorum list --rv quorum --repeat "${BENCH_LIST_REPEAT}" --expect "${BENCH_PODS}"
bench::run list-paged list --rv quorum --limit 500 --repeat "${BENCH_LIST_REPEAT}" --expect "${BENCH_PODS}"
RSS_PODS_KIB="$(bench::rss_kib "${APISERVER_PID}")"

bench::run fanout fanout --watchers "${BENCH_WATCHERS}" --rounds "${BENCH_ROUNDS}" \
  --server-pid "${APISERVER_PID}"
RSS_HWM_KIB="$(awk '/^VmHWM:/ { print $2 }' "/proc/${APISERVER_PID}/status")"
BENCH_SECS=$((SECONDS - BENCH_START))

# --- report ----------------------------------------------------------------------

put_rate="$(bench::get etcd-put .ops_per_sec)"
txn_rate="$(bench::get etcd-txn .ops_per_sec)"
create_rate="$(bench::get create .ops_per_sec)"
percent() { # A B: 100 * A / B, or FAILED
  if [[ "$1" =~ ^[0-9.]+$ && "$2" =~ ^[0-9.]+$ ]]; then
    awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", 100 * a / b }'
  else
    echo FAILED
  fi
}
ratio="$(percent "${create_rate}" "${put_rate}")"
txn_ratio="$(percent "${create_rate}" "${txn_rate}")"
fan_p50="$(bench::get fanout .p50_ms)"
fan_p99="$(bench::get fanout .p99_ms)"
rss_idle_mib="$(awk -v k="${RSS_IDLE_KIB}" 'BEGIN { printf "%.1f", k / 1024 }')"
mib() { awk -v k="$1" 'BEGIN { if (k ~ /^[0-9.]+$/) printf "%.1f", k / 1024; else printf "?" }'; }
list_note=""
(( BENCH_PODS == 10000 )) || list_note=" (target is for 10000 pods)"

row() { printf '%-52s %-34s %-12s %s\n' "$@"; }
echo
echo "kube-apiserver benchmark: ${BENCH_PODS} pods of ${MANIFEST_BYTES} B manifest (${STORED_BYTES} B stored)," \
  "concurrency ${BENCH_CONCURRENCY}, ${BENCH_WATCHERS} watchers, $(nproc) CPUs, ${BENCH_SECS}s," \
  "1-min load average ${LOADAVG_START} before, $(cut -d' ' -f1 /proc/loadavg) after"
row "figure" "value" "target" "verdict"
row "raw etcd put (${STORED_BYTES} B, ${BENCH_CONCURRENCY} writers)" "${put_rate} /s (p99 $(bench::get etcd-put .p99_ms) ms)" "" ""
row "etcd create-if-absent txn (same, for information)" "${txn_rate} /s (p99 $(bench::get etcd-txn .p99_ms) ms)" "" ""
row "pod create via kube-apiserver" "${create_rate} /s (p99 $(bench::get create .p99_ms) ms)" "" ""
cpu_us() { # RESULT: server, etcd and client CPU microseconds per operation
  jq -r 'if .error then "FAILED" else "server \(.server_cpu_secs / .n * 1e6 | floor) us, etcd \(.etcd_cpu_secs / .n * 1e6 | floor) us, client \(.client_cpu_secs / .n * 1e6 | floor) us" end' \
    "${BENCH_TMP}/$1.json"
}
row "  CPU per raw put" "$(cpu_us etcd-put)" "" ""
row "  CPU per create" "$(cpu_us create)" "" ""
row "creates / raw etcd puts" "${ratio} % (${txn_ratio} % of txns)" ">= 60 %" "$(bench::verdict "${ratio}" '>=' 60)"
for kind in list-rv0 list-quorum; do
  label="LIST ${BENCH_PODS} pods, rv=0 (watch cache)"
  [[ "${kind}" == list-quorum ]] && label="LIST ${BENCH_PODS} pods, quorum (kubectl)"
  p50="$(bench::get "${kind}" .p50_ms)"
  row "${label}" "p50 ${p50} ms, max $(bench::get "${kind}" .max_ms) ms" "< 150 ms" \
    "$(bench::verdict "${p50}" '<' 150)${list_note}"
  row "  bytes, throughput at p50" "$(bench::get "${kind}" .bytes) B, $(bench::get "${kind}" .mib_per_sec) MiB/s" "" ""
done
row "LIST quorum, limit=500 pages (kubectl get)" "p50 $(bench::get list-paged .p50_ms) ms, $(bench::get list-paged .mib_per_sec) MiB/s" "" ""
row "fan-out to ${BENCH_WATCHERS} watchers, p50" "${fan_p50} ms" "" ""
row "fan-out to ${BENCH_WATCHERS} watchers, p99 (max)" "${fan_p99} ms ($(bench::get fanout .max_ms) ms)" "< 50 ms" \
  "$(bench::verdict "${fan_p99}" '<' 50)"
row "kube-apiserver RSS idle" "${rss_idle_mib} MiB" "< 40 MiB" "$(bench::verdict "${rss_idle_mib}" '<' 40)"
row "kube-apiserver RSS with ${BENCH_PODS} pods, after LISTs" "$(mib "${RSS_PODS_KIB}") MiB" "" ""
row "kube-apiserver RSS with ${BENCH_WATCHERS} watches open" "$(mib "$(bench::get fanout .server_rss_kib_watching)") MiB (peak $(mib "${RSS_HWM_KIB}") MiB)" "" ""
echo "(LIST is judged on its p50, fan-out on its p99; ${BENCH_TMP}/*.json hold every percentile)"
for result in "${BENCH_TMP}"/*.json; do
  [[ "${result}" == *.raw.json ]] && continue
  if jq -e .error "${result}" >/dev/null; then
    echo "FAILED $(basename "${result}" .json): $(jq -r .error "${result}")"
  fi
done
