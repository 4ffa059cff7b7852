#!/usr/bin/env bash
# Benchmarks the scheduler on this machine and prints its figures. Never
# asserts: a benchmark prints; CI does not run it.
#
#   1. in-memory loop (crates/scheduler/benches/schedule_throughput.rs):
#      BENCH_NODES nodes and BENCH_PODS pods fed straight into the event
#      handlers, an in-memory binder; the default profile with every plugin.
#      Target: >= 5,000 pods/s at 5,000 nodes / 10,000 pods.
#   2. end to end (test/scheduler-perf): a real in-process kube-apiserver on a
#      private etcd, BENCH_E2E_NODES nodes and BENCH_E2E_PODS pods created
#      through the API, the scheduler with a client limited to
#      BENCH_QPS/BENCH_BURST (the daemon's defaults are 50/100), bindings
#      counted through a watch.
#
# Usage: hack/bench-scheduler.sh
#        BENCH_NODES=1000 BENCH_PODS=2000 hack/bench-scheduler.sh   (quick)
set -euo pipefail
cd "$(dirname "$0")/.."

BENCH_NODES=${BENCH_NODES:-5000}
BENCH_PODS=${BENCH_PODS:-10000}
BENCH_E2E_NODES=${BENCH_E2E_NODES:-500}
BENCH_E2E_PODS=${BENCH_E2E_PODS:-2000}
BENCH_QPS=${BENCH_QPS:-5000}
BENCH_BURST=${BENCH_BURST:-10000}

echo "== in-memory scheduling loop"
cargo bench -q -p scheduler --bench schedule_throughput -- "$BENCH_NODES" "$BENCH_PODS"

echo "== end to end against kube-apiserver + etcd"
cargo run -q --release -p scheduler-perf -- \
  --nodes "$BENCH_E2E_NODES" --pods "$BENCH_E2E_PODS" --qps "$BENCH_QPS" --burst "$BENCH_BURST"
