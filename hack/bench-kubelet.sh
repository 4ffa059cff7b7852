#!/usr/bin/env bash
# Benchmarks the kubelet on this machine and prints its figures (issue 5:
# pod startup of 20 pods created at once with the image present, p50 and
# maximum; kubelet RSS idle and with 20 pods; kubelet CPU at idle). Never
# asserts: a benchmark prints; CI does not run it.
#
# Brings up a private containerd with the CNI bridge (the network guard
# first), the local registry with the test images, then runs
# cmd/kubelet/benches/pod_startup.rs: the release kubelet binary against
# that containerd and an in-process kube-apiserver on etcd.
#
# Usage: hack/bench-kubelet.sh
#        BENCH_PODS=50 BENCH_IDLE_SECS=10 hack/bench-kubelet.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source hack/lib/init.sh

export CONTAINERD_DIR=${CONTAINERD_DIR:-/var/lib/kube-containerd-bench}
export CNI_BRIDGE=${CNI_BRIDGE:-kubebr8}
export CNI_NETWORK=${CNI_NETWORK:-kubelet-bench}
export POD_CIDR=${POD_CIDR:-10.87.0.0/16}

kube::netguard::install
kube::images::ensure
kube::cni::write_config
kube::containerd::start
cleanup() {
  kube::containerd::stop || true
  kube::cni::remove
}
trap cleanup EXIT

KUBELET_TEST_CRI_ENDPOINT="unix://${CONTAINERD_DIR}/containerd.sock" \
  cargo bench -q -p kubelet-bin --bench pod_startup
