#!/usr/bin/env bash
# Loads every hack/lib library in dependency order and sets KUBE_ROOT.
# Upstream: hack/lib/init.sh. Source it; do not run it.
#
#   source "$(dirname "${BASH_SOURCE[0]}")/../hack/lib/init.sh"

# Scripts that source this file set their own shell options; set them here too
# so that a library sourced on its own behaves the same.
set -euo pipefail

KUBE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
export KUBE_ROOT

# shellcheck source=hack/lib/util.sh
source "${KUBE_ROOT}/hack/lib/util.sh"
# shellcheck source=hack/lib/etcd.sh
source "${KUBE_ROOT}/hack/lib/etcd.sh"
# shellcheck source=hack/lib/certs.sh
source "${KUBE_ROOT}/hack/lib/certs.sh"
# shellcheck source=hack/lib/apiserver.sh
source "${KUBE_ROOT}/hack/lib/apiserver.sh"
source "${KUBE_ROOT}/hack/lib/components.sh"
# shellcheck source=hack/lib/netguard.sh
source "${KUBE_ROOT}/hack/lib/netguard.sh"
# shellcheck source=hack/lib/images.sh
source "${KUBE_ROOT}/hack/lib/images.sh"
# shellcheck source=hack/lib/containerd.sh
source "${KUBE_ROOT}/hack/lib/containerd.sh"
# shellcheck source=hack/lib/cni.sh
source "${KUBE_ROOT}/hack/lib/cni.sh"
# shellcheck source=hack/lib/addons.sh
source "${KUBE_ROOT}/hack/lib/addons.sh"
