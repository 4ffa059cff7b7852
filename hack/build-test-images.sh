#!/usr/bin/env bash
# Builds the test images (busybox, pause) from Debian packages and pushes
# them into the local registry (127.0.0.1:5000), starting it when needed.
# The kubelet's pulls reach it through containerd's registry mirrors.
# Usage: hack/build-test-images.sh   (knobs: see hack/lib/images.sh)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/init.sh"
kube::images::ensure
kube::log::status "images in ${REGISTRY_ADDR}: $(curl -fsS "http://${REGISTRY_ADDR}/v2/_catalog")"
