#!/usr/bin/env bash
# The one "run all tests" command, used by CI (.ci/run) and by people.
# Installs what the tests need, runs the workspace's unit and integration
# tests, then the end-to-end suite against real binaries and real kubectl.
# Every step runs even if an earlier one failed; a summary follows, and the
# exit status is non-zero if any step failed.
#
# Usage: hack/test.sh [STEP...]     steps: fmt unit e2e cluster lint (default: fmt unit e2e cluster)
#   fmt   cargo fmt --all -- --check
#   unit  cargo test --workspace --locked
#   e2e   test/e2e/run.sh (knobs: test/e2e/lib.sh)
#   cluster test/e2e/cluster.sh: the whole cluster with real containers
#   lint  shellcheck over the scripts (needs the shellcheck package)
#
# Knobs: CARGO_TEST_ARGS (extra arguments for cargo test, e.g. "-- --nocapture")

set -euo pipefail

# shellcheck source=hack/lib/init.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/init.sh"

REQUIRED_PACKAGES=(etcd-server openssl protobuf-compiler libprotobuf-dev jq curl)

SUMMARY=()
FAILED=0
STEP_LOG="$(mktemp -t kube-test.XXXXXX)"
trap 'rm -f "${STEP_LOG}"' EXIT

# record STATUS NAME SECONDS [DETAIL]: one summary line.
record() {
  local status=$1 name=$2 seconds=$3 detail=${4:-}
  SUMMARY+=("$(printf '  %-4s  %-6s %4ss  %s' "${status}" "${name}" "${seconds}" "${detail}")")
  [[ "${status}" == FAIL ]] && FAILED=$((FAILED + 1))
  return 0
}

# run_step NAME DETAIL CMD...: runs CMD with its output shown live and kept
# in STEP_LOG, then records the result.
run_step() {
  local name=$1 detail=$2
  shift 2
  echo
  echo "=== ${name}: ${detail}"
  local start=${SECONDS} rc=0
  "$@" 2>&1 | tee "${STEP_LOG}" || rc=$?
  local took=$((SECONDS - start))
  if (( rc == 0 )); then
    record PASS "${name}" "${took}" "${detail}"
  else
    record FAIL "${name}" "${took}" "${detail} (exit ${rc})"
  fi
}

# in_root CMD...: runs CMD from the workspace root (paths in it are relative).
in_root() {
  (cd "${KUBE_ROOT}" && "$@")
}

step_fmt() {
  if ! cargo fmt --version >/dev/null 2>&1 && command -v rustup >/dev/null 2>&1; then
    rustup component add rustfmt >/dev/null 2>&1 || true
  fi
  run_step fmt "cargo fmt --all -- --check" in_root cargo fmt --all -- --check
}

step_unit() {
  local -a locked=()
  # --locked: CI must test the dependency versions that are committed.
  [[ -f "${KUBE_ROOT}/Cargo.lock" ]] && locked=(--locked)
  local -a extra=()
  read -r -a extra <<<"${CARGO_TEST_ARGS:-}"
  # The kubelet's containerd tests get a private containerd (own socket,
  # bridge, pod range and CNI network), stopped afterwards.
  if ! start_test_containerd; then
    record FAIL unit 0 "could not start the test containerd (see above)"
    return 0
  fi
  run_step unit "cargo test --workspace ${locked[*]}" \
    in_root cargo test --workspace "${locked[@]}" "${extra[@]}"
  stop_test_containerd
}

# start_test_containerd: images, CNI config (after the network guard) and a
# containerd at /var/lib/kube-containerd-unit; exports
# KUBELET_TEST_CRI_ENDPOINT for crates/kubelet's and cmd/kubelet's tests.
start_test_containerd() {
  (
    export CONTAINERD_DIR=/var/lib/kube-containerd-unit CNI_BRIDGE=kubebr9 \
      CNI_NETWORK=kubelet-test POD_CIDR=10.89.0.0/16
    unset CONTAINERD_PID_FILE
    kube::images::ensure && kube::cni::write_config && kube::containerd::start
  ) || return 1
  export KUBELET_TEST_CRI_ENDPOINT=unix:///var/lib/kube-containerd-unit/containerd.sock
}

stop_test_containerd() {
  (
    export CONTAINERD_DIR=/var/lib/kube-containerd-unit
    unset CONTAINERD_PID_FILE
    kube::containerd::stop
    CNI_BRIDGE=kubebr9 kube::cni::remove
  )
}

step_e2e() {
  run_step e2e "test/e2e/run.sh" "${KUBE_ROOT}/test/e2e/run.sh"
  # The suite's last line is "N passed, M failed": put it in the summary.
  local last
  last="$(tail -n 1 "${STEP_LOG}")"
  SUMMARY[-1]+=" -> ${last}"
}

step_cluster() {
  run_step cluster "test/e2e/cluster.sh" "${KUBE_ROOT}/test/e2e/cluster.sh"
  local last
  last="$(tail -n 1 "${STEP_LOG}")"
  SUMMARY[-1]+=" -> ${last}"
}

step_lint() {
  if ! command -v shellcheck >/dev/null 2>&1; then
    record FAIL lint 0 "shellcheck is not installed (apt-get install shellcheck)"
    return 0
  fi
  local -a scripts
  mapfile -t scripts < <(cd "${KUBE_ROOT}" && {
    find hack test -name '*.sh' -type f
    echo .ci/run
  } | sort)
  run_step lint "shellcheck (${#scripts[@]} scripts)" \
    in_root shellcheck -x "${scripts[@]}"
}

main() {
  local -a steps=("$@")
  (( ${#steps[@]} > 0 )) || steps=(fmt unit e2e cluster)
  local step
  for step in "${steps[@]}"; do
    case "${step}" in
      fmt | unit | e2e | cluster | lint) ;;
      *)
        echo "unknown step '${step}'; steps: fmt unit e2e cluster lint" >&2
        exit 2
        ;;
    esac
  done

  kube::util::ensure_packages "${REQUIRED_PACKAGES[@]}"
  kube::util::ensure_cargo

  for step in "${steps[@]}"; do
    "step_${step}"
  done

  echo
  echo "=== summary"
  printf '%s\n' "${SUMMARY[@]}"
  if (( FAILED > 0 )); then
    echo "FAILED: ${FAILED} of ${#steps[@]} steps"
    return 1
  fi
  echo "PASSED: all ${#steps[@]} steps"
}

main "$@"
