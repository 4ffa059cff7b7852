#!/usr/bin/env bash
# End-to-end suite for the whole cluster: hack/local-up-cluster.sh brings up
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler, a private
# containerd with the kubelet, and kube-proxy (all under one temporary
# directory, on free ports, its own bridge and pod range), and the real
# kubectl of each version in KUBECTL_VERSIONS drives real containers.
# The last line is "N passed, M failed".
#
# Usage: test/e2e/cluster.sh   (knobs: test/e2e/lib.sh, KUBECTL_VERSIONS,
# CLUSTER_CASES; binaries from
# target/debug, built here unless E2E_BIN_DIR names a directory)
#
# It takes over what a node has once: the `ip kube-proxy` nftables table and
# the network guard. Do not run it next to hack/local-up-cluster.sh.

set -euo pipefail

# shellcheck source=test/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KUBECTL_VERSIONS="${KUBECTL_VERSIONS:-1.27 1.33}"
# The cases to run (default: all, in this order). `dns` needs the DNS add-on
# (ENABLE_CLUSTER_DNS, on by default), `top` the metrics add-on
# (ENABLE_METRICS_SERVER, on by default; scraped every 12 s here, the least
# upstream allows next to its 10 s kubelet request timeout).
CLUSTER_CASES="${CLUSTER_CASES:-node_ready kubelet_auth static_pod pod_runs_and_logs pod_deleted_gracefully deployment_behind_service exec port_forward python_client probes service_account dns persistent_volume resource_quota drain top hpa certificates rbac eviction}"
NS=""

# e2e::cluster_up: builds (unless E2E_BIN_DIR) and starts the cluster as a
# daemon. Sets E2E_TMP and E2E_KUBECONFIG.
e2e::cluster_up() {
  E2E_TMP="$(mktemp -d "${TMPDIR:-/tmp}/kube-e2e-cluster.XXXXXX")" || return 1
  local bin="${E2E_BIN_DIR:-}"
  if [[ -z "${bin}" ]]; then
    kube::util::ensure_cargo || return 1
    kube::log::status "building the components (cargo build, debug)"
    (cd "${KUBE_ROOT}" && cargo build -p kube-apiserver -p kube-controller-manager \
      -p kube-scheduler -p kubelet-bin -p kube-proxy -p kube-dns -p metrics-server-bin) || return 1
    bin="${CARGO_TARGET_DIR:-${KUBE_ROOT}/target}/debug"
  fi
  kube::util::private_cluster_dirs "${E2E_TMP}" || return 1
  # Pods reach the API server through the kubernetes Service, whose endpoint
  # is the advertise address (the machine's): listen there too, not only on
  # loopback as the apiserver-only suite does.
  export API_BIND_ADDR=0.0.0.0
  export METRIC_RESOLUTION="${METRIC_RESOLUTION:-12s}"
  e2e::pick_ports || return 1
  local kubelet_port healthz_port sched_port cm_port proxy_healthz proxy_metrics
  kubelet_port="$(kube::util::free_port "${ETCD_PORT}" "${ETCD_PEER_PORT}" "${API_SECURE_PORT}")"
  healthz_port="$(kube::util::free_port "${kubelet_port}")"
  sched_port="$(kube::util::free_port "${kubelet_port}" "${healthz_port}")"
  cm_port="$(kube::util::free_port "${kubelet_port}" "${healthz_port}" "${sched_port}")"
  proxy_healthz="$(kube::util::free_port "${kubelet_port}" "${healthz_port}" "${sched_port}" "${cm_port}")"
  proxy_metrics="$(kube::util::free_port "${kubelet_port}" "${healthz_port}" "${sched_port}" "${cm_port}" "${proxy_healthz}")"
  export API_HOST=127.0.0.1
  export CONTAINERD_DIR=/var/lib/kube-containerd-e2e
  export CNI_BRIDGE=kube-e2e0 POD_CIDR=10.94.0.0/16
  export KUBELET_ROOT_DIR="${E2E_TMP}/kubelet"
  export POD_MANIFEST_PATH="${E2E_TMP}/static-pods"
  export KUBELET_EXTRA_ARGS="--port=${kubelet_port} --healthz-port=${healthz_port}"
  # This machine's disk also holds the build's outputs: absolute disk
  # thresholds keep a full-ish disk from evicting the suite's pods.
  export EVICTION_HARD="${EVICTION_HARD:-memory.available<100Mi,nodefs.available<2Gi,imagefs.available<2Gi,nodefs.inodesFree<5%}"
  export SCHEDULER_EXTRA_ARGS="--secure-port=${sched_port}"
  export CTLRMGR_EXTRA_ARGS="--secure-port=${cm_port}"
  export KUBE_PROXY_EXTRA_ARGS="--healthz-bind-address=127.0.0.1:${proxy_healthz} --metrics-bind-address=127.0.0.1:${proxy_metrics}"
  export KUBELET_LOG="${LOG_DIR}/kubelet.log" KUBELET_PID_FILE="${KUBE_PID_DIR}/kubelet.pid"
  export PROXY_LOG="${LOG_DIR}/kube-proxy.log" PROXY_PID_FILE="${KUBE_PID_DIR}/kube-proxy.pid"
  export CONTAINERD_LOG="${LOG_DIR}/containerd.log"
  ENABLE_DAEMON=true "${KUBE_ROOT}/hack/local-up-cluster.sh" -o "${bin}" >"${LOG_DIR}/local-up-cluster.log" 2>&1 || {
    tail -n 30 "${LOG_DIR}/local-up-cluster.log"
    return 1
  }
  E2E_KUBECONFIG="${CERT_DIR}/admin.kubeconfig"
  export KUBECONFIG="${E2E_KUBECONFIG}"
  E2E_BIN="${bin}"
}

e2e::cluster_down() {
  [[ -n "${E2E_TMP:-}" ]] || return 0
  ENABLE_DAEMON=true "${KUBE_ROOT}/hack/local-up-cluster.sh" -k >>"${LOG_DIR:-/tmp}/local-up-cluster.log" 2>&1 || true
  if [[ "${E2E_KEEP}" == true ]] || (( E2E_FAILED > 0 )); then
    echo "kept ${E2E_TMP} (logs in ${LOG_DIR:-${E2E_TMP}/logs})"
  else
    rm -rf "${E2E_TMP}"
  fi
}

e2e::cluster_logs() {
  local log
  for log in "${LOG_DIR}"/*.log; do
    echo "--- last lines of ${log}"
    tail -n 25 "${log}"
  done
}

node_lease() {
  [[ "$(kc -n kube-node-lease get lease -o name 2>/dev/null)" == lease.coordination.k8s.io/* ]]
}

# pod_phase NAME: the pod's phase in NS.
pod_phase() {
  kc -n "${NS}" get pod "$1" -o jsonpath='{.status.phase}' 2>/dev/null
}

pod_running() {
  [[ "$(pod_phase "$1")" == Running ]]
}

# --- cases -------------------------------------------------------------------

# ensure_ns: creates NS unless it exists and waits for its default
# ServiceAccount (the controller manager makes it): until then the
# ServiceAccount admission plugin refuses pods, as upstream's does.
ensure_ns() {
  kc get namespace "${NS}" >/dev/null 2>&1 || e2e::ok create namespace "${NS}" >/dev/null
  e2e::wait_until "the default ServiceAccount" 30 kc -n "${NS}" get sa default
}

case_node_ready() {
  local out
  out="$(e2e::ok get nodes)"
  e2e::assert_eq "get nodes header" "NAME STATUS ROLES AGE VERSION" "$(head -n 1 <<<"${out}" | e2e::squeeze)"
  e2e::assert_match "the node is Ready" $'\n[a-z0-9.-]+ Ready <none> [0-9]+[smhd]([0-9]+[smh])? v1\\.33\\.0' "$(e2e::squeeze <<<"${out}")"
  # The heartbeat Lease the kubelet renews.
  e2e::wait_until "the node's Lease" 30 node_lease
  # The kubelet's condition events, as kubectl describe node lists them.
  local node
  node="$(e2e::ok get nodes -o jsonpath='{.items[0].metadata.name}')"
  out="$(e2e::ok describe node "${node}")"
  e2e::assert_match "describe node lists the kubelet's NodeReady event" \
    "Normal +NodeReady +[0-9a-z]+ +kubelet +Node ${node} status is now: NodeReady" "${out}"
}

# kubelet_api PATH [CURL ARGS...]: the kubelet's secure port, straight.
kubelet_api() {
  local path=$1 node_ip port
  shift
  node_ip="$(e2e::ok get nodes -o jsonpath='{.items[0].status.addresses[?(@.type=="InternalIP")].address}')"
  port="$(e2e::ok get nodes -o jsonpath='{.items[0].status.daemonEndpoints.kubeletEndpoint.Port}')"
  curl -sk --max-time 5 -w ' %{http_code}' "$@" "https://${node_ip}:${port}${path}"
}

# kubelet_allows TOKEN: the kubelet answers /pods with 200 for TOKEN.
kubelet_allows() {
  [[ "$(kubelet_api /pods -H "Authorization: Bearer $1")" == *' 200' ]]
}

case_kubelet_auth() {
  local out token node
  ensure_ns
  # No credentials: refused, as with upstream's config-file defaults.
  out="$(kubelet_api /pods)"
  e2e::assert_eq "an anonymous caller" "Unauthorized 401" "${out}"
  # A ServiceAccount token the API server vouches for (TokenReview), refused
  # by its SubjectAccessReviews (nodes/pods, then nodes/proxy: upstream's
  # KubeletFineGrainedAuthz) until RBAC grants it the kubelet API.
  token="$(e2e::ok -n "${NS}" create token default)"
  out="$(kubelet_api /pods -H "Authorization: Bearer ${token}")"
  e2e::assert_match "a ServiceAccount without the kubelet API" \
    "Forbidden \\(user=system:serviceaccount:${NS}:default, verb=get, resource=nodes, subresource\\(s\\)=\\[pods proxy\\]\\)"$'\n'" 403$" "${out}"
  # Only nodes/proxy: /pods passes on the fallback, /stats (no fallback) not.
  e2e::ok create clusterrole "kubelet-proxy-${NS}" --verb=get --resource=nodes/proxy >/dev/null
  e2e::ok create clusterrolebinding "kubelet-api-${NS}" --clusterrole="kubelet-proxy-${NS}" \
    --serviceaccount="${NS}:default" >/dev/null
  # The kubelet keeps a denial for 30 s (--authorization-webhook-cache-unauthorized-ttl).
  e2e::wait_until "the kubelet to allow the bound ServiceAccount" 60 kubelet_allows "${token}"
  out="$(kubelet_api /pods -H "Authorization: Bearer ${token}")"
  e2e::assert_match "a ServiceAccount with nodes/proxy reads /pods" '"kind":"PodList".* 200$' "${out}"
  out="$(kubelet_api /stats/summary -H "Authorization: Bearer ${token}")"
  e2e::assert_match "but not /stats" 'subresource\(s\)=\[stats\]\)'$'\n'' 403$' "${out}"
  e2e::ok delete clusterrolebinding "kubelet-api-${NS}" >/dev/null
  e2e::ok delete clusterrole "kubelet-proxy-${NS}" >/dev/null
  out="$(kubelet_api /pods -H "Authorization: Bearer not-a-token")"
  e2e::assert_eq "a token nobody vouches for" "Unauthorized 401" "${out}"
  # The API server's client certificate (x509 against --client-ca-file).
  node="$(e2e::ok get nodes -o jsonpath='{.items[0].metadata.name}')"
  out="$(e2e::ok get --raw "/api/v1/nodes/${node}/proxy/pods")"
  e2e::assert_match "nodes/proxy through the API server" '"kind":"PodList"' "${out}"
}

# mirror_phase NS NAME: the mirror pod's phase, if it exists.
mirror_phase() {
  kc -n "$1" get pod "$2" -o jsonpath='{.status.phase}' 2>/dev/null
}

mirror_running() { [[ "$(mirror_phase "$@")" == Running ]]; }
log_has() { kc -n "$1" logs "$2" 2>/dev/null | grep -q "$3"; }
mirror_gone() { ! kc -n "$1" get pod "$2" >/dev/null 2>&1; }

# mirror_replaced NS NAME UID: a mirror pod other than UID is Running.
mirror_replaced() {
  local uid
  uid="$(kc -n "$1" get pod "$2" -o jsonpath='{.metadata.uid}' 2>/dev/null)" || return 1
  [[ -n "${uid}" && "${uid}" != "$3" ]] && mirror_running "$1" "$2"
}

case_static_pod() {
  local node name manifest out uid
  ensure_ns
  node="$(e2e::ok get nodes -o jsonpath='{.items[0].metadata.name}')"
  name="static-web-${node}"
  manifest="${POD_MANIFEST_PATH}/static-web-${NS}.yaml"
  cat >"${manifest}" <<YAML
apiVersion: v1
kind: Pod
metadata: {name: static-web, namespace: ${NS}, labels: {app: static}}
spec:
  containers:
  - {name: web, image: busybox, command: [sh, -c, "echo static pod up; sleep 3600"]}
YAML
  # The kubelet runs it from the file and shows it as a mirror pod.
  e2e::wait_until "the static pod's mirror runs" 90 mirror_running "${NS}" "${name}"
  out="$(e2e::ok -n "${NS}" get pod "${name}" -o jsonpath='{.metadata.annotations.kubernetes\.io/config\.source} {.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name} {.spec.nodeName}')"
  e2e::assert_eq "the mirror pod's source and owner" "file Node/${node} ${node}" "${out}"
  e2e::wait_until "the static pod's log" 30 log_has "${NS}" "${name}" "static pod up"
  # Deleting the mirror pod does not stop the static pod: a new mirror comes.
  uid="$(e2e::ok -n "${NS}" get pod "${name}" -o jsonpath='{.metadata.uid}')"
  e2e::ok -n "${NS}" delete pod "${name}" --wait=false >/dev/null
  e2e::wait_until "a new mirror pod" 60 mirror_replaced "${NS}" "${name}" "${uid}"
  out="$(e2e::ok -n "${NS}" get pod "${name}" -o jsonpath='{.status.containerStatuses[0].restartCount}')"
  e2e::assert_eq "the static pod kept running" "0" "${out}"
  # Removing the manifest stops the pod and deletes the mirror.
  rm -f "${manifest}"
  e2e::wait_until "the mirror pod goes with the manifest" 60 mirror_gone "${NS}" "${name}"
}

case_pod_runs_and_logs() {
  ensure_ns
  e2e::ok -n "${NS}" run hello --image=busybox --restart=Never -- \
    sh -c 'echo hello from a container; sleep 3; echo late line; sleep 3600' >/dev/null
  e2e::wait_until "pod hello Running" 60 pod_running hello
  local out late
  out="$(e2e::ok -n "${NS}" get pod hello)"
  e2e::assert_match "get pod row" '^hello 1/1 Running 0 [0-9]+s$' "$(e2e::row "${out}" hello)"
  e2e::wait_until "the late line" 30 log_has "${NS}" hello "late line"
  out="$(e2e::ok -n "${NS}" logs hello)"
  e2e::assert_eq "kubectl logs" $'hello from a container\nlate line' "${out}"
  e2e::assert_eq "kubectl logs --tail=1" "late line" "$(e2e::ok -n "${NS}" logs hello --tail=1)"
  e2e::assert_eq "kubectl logs --limit-bytes=5" "hello" "$(e2e::ok -n "${NS}" logs hello --limit-bytes=5)"
  # --since-time from the late line's own timestamp leaves out the first
  # line, written 3 s before; --since=1h keeps both.
  late="$(e2e::ok -n "${NS}" logs hello --timestamps --tail=1 | cut -d' ' -f1)"
  e2e::assert_eq "kubectl logs --since-time" "late line" "$(e2e::ok -n "${NS}" logs hello --since-time="${late}")"
  e2e::assert_eq "kubectl logs --since=1h" $'hello from a container\nlate line' "$(e2e::ok -n "${NS}" logs hello --since=1h)"
  # Log collectors find it under /var/log/containers, linked to the file.
  local cid uid
  cid="$(e2e::ok -n "${NS}" get pod hello -o jsonpath='{.status.containerStatuses[0].containerID}')"
  uid="$(e2e::ok -n "${NS}" get pod hello -o jsonpath='{.metadata.uid}')"
  e2e::assert_eq "the container log link" "/var/log/pods/${NS}_hello_${uid}/hello/0.log" \
    "$(readlink "/var/log/containers/hello_${NS}_hello-${cid#containerd://}.log")"
  out="$(e2e::ok -n "${NS}" get pod hello -o jsonpath='{.status.podIP} {.status.conditions[?(@.type=="Ready")].status} {.spec.nodeName}')"
  e2e::assert_match "pod IP in the pod range, Ready, on the node" '^10\.94\.[0-9]+\.[0-9]+ True [a-z0-9.-]+$' "${out}"
  out="$(e2e::ok -n "${NS}" get events --field-selector reason=Scheduled -o jsonpath='{.items[*].message}')"
  e2e::assert_match "Scheduled event" "Successfully assigned ${NS}/hello to " "${out}"
  # Termination messages: the file a container writes, and with
  # FallbackToLogsOnError the log's tail when it failed without one.
  e2e::ok -n "${NS}" apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata: {name: farewell, namespace: ${NS}}
spec:
  restartPolicy: Never
  containers:
  - {name: file, image: busybox, command: [sh, -c, "echo goodbye > /dev/termination-log; exit 1"]}
  - name: logs
    image: busybox
    terminationMessagePolicy: FallbackToLogsOnError
    command: [sh, -c, "echo last words; exit 2"]
EOF
  e2e::wait_until "pod farewell Failed" 60 pod_phase_is "${NS}" farewell Failed
  out="$(e2e::ok -n "${NS}" get pod farewell -o jsonpath='{.status.containerStatuses[?(@.name=="file")].state.terminated.message}|{.status.containerStatuses[?(@.name=="logs")].state.terminated.message}')"
  e2e::assert_eq "termination messages" $'goodbye\n|last words' "${out}"
}

case_pod_deleted_gracefully() {
  ensure_ns
  e2e::ok -n "${NS}" run bye --image=busybox --restart=Never -- sleep 3600 >/dev/null
  e2e::wait_until "pod bye Running" 60 pod_running bye
  # busybox sleep ignores nothing: SIGTERM ends it well within the grace period.
  local out
  out="$(e2e::ok -n "${NS}" delete pod bye --wait=true)"
  e2e::assert_eq "delete pod" 'pod "bye" deleted' "${out}"
  out="$(e2e::expect_exit 1 -n "${NS}" get pod bye)"
  e2e::assert_eq "gone" 'Error from server (NotFound): pods "bye" not found' "${out}"
}

# A Deployment rolls out to Ready pods (controller manager, scheduler,
# kubelet); `kubectl expose` gives it a Service whose EndpointSlice the
# controller manager fills; kube-proxy makes the ClusterIP and the NodePort
# answer from this host; scaling changes which pods are behind it.
case_deployment_behind_service() {
  ensure_ns
  e2e::ok -n "${NS}" create deployment web --image=busybox --port=8080 -- \
    sh -c 'hostname > /tmp/index.html; exec httpd -f -p 8080 -h /tmp' >/dev/null
  local out
  out="$(e2e::ok -n "${NS}" rollout status deployment/web --timeout=90s)"
  e2e::assert_match "rollout status" 'successfully rolled out' "${out}"
  out="$(e2e::ok -n "${NS}" get deploy web)"
  e2e::assert_match "get deploy row" '^web 1/1 1 1 [0-9]+s$' "$(e2e::row "${out}" web)"
  e2e::ok -n "${NS}" expose deployment web --type=NodePort --port=80 --target-port=8080 >/dev/null
  local cluster_ip node_ip node_port
  cluster_ip="$(e2e::ok -n "${NS}" get svc web -o jsonpath='{.spec.clusterIP}')"
  node_port="$(e2e::ok -n "${NS}" get svc web -o jsonpath='{.spec.ports[0].nodePort}')"
  node_ip="$(e2e::ok get nodes -o jsonpath='{.items[0].status.addresses[?(@.type=="InternalIP")].address}')"
  e2e::wait_until "ClusterIP ${cluster_ip} answers" 60 \
    curl -sf --max-time 2 -o /dev/null "http://${cluster_ip}/index.html"
  local pod
  pod="$(e2e::ok -n "${NS}" get pods -l app=web -o jsonpath='{.items[0].metadata.name}')"
  out="$(curl -sS --max-time 5 "http://${cluster_ip}/index.html")"
  e2e::assert_eq "through the ClusterIP" "${pod}" "${out}"
  out="$(curl -sS --max-time 5 "http://${node_ip}:${node_port}/index.html")"
  e2e::assert_eq "through the NodePort" "${pod}" "${out}"

  # Three replicas: every pod answers through the Service in time. Ready
  # pods reach the rules through the EndpointSlice and kube-proxy's next
  # sync, so the tries are spread over up to 30 s.
  e2e::ok -n "${NS}" scale deployment web --replicas=3 >/dev/null
  e2e::ok -n "${NS}" rollout status deployment/web --timeout=90s >/dev/null
  # The controllers' Events, as kubectl describe shows them.
  e2e::wait_until "the scaling Event" 20 describe_shows deployment web 'ScalingReplicaSet [^ ]+ deployment-controller Scaled up replica set web-[a-z0-9]+ to 3 from [0-9]+'
  local rs
  rs="$(e2e::ok -n "${NS}" get rs -l app=web -o jsonpath='{.items[0].metadata.name}')"
  e2e::wait_until "the pod creation Events" 20 describe_shows rs "${rs}" "SuccessfulCreate [^ ]+ replicaset-controller Created pod: ${rs}-"
  local -A seen=()
  local i
  for i in $(seq 1 150); do
    out="$(curl -sS --max-time 2 "http://${cluster_ip}/index.html" 2>/dev/null)" && seen["${out}"]=1
    (( ${#seen[@]} == 3 )) && break
    sleep 0.2
  done
  e2e::assert_eq "answering pods after scaling to 3" 3 "${#seen[@]}"
}

# exec through the API server, the kubelet and containerd's streaming
# server (kubectl 1.30+ try WebSocket first and fall back to SPDY).
case_exec() {
  ensure_ns
  e2e::ok -n "${NS}" run shell --image=busybox --restart=Never -- sleep 3600 >/dev/null
  e2e::wait_until "pod shell Running" 60 pod_running shell
  local out
  out="$(e2e::ok -n "${NS}" exec shell -- sh -c 'echo out; echo err >&2; hostname')"
  e2e::assert_eq "exec output" $'out\nshell' "${out}"
  out="$(printf 'from stdin\n' | kc -n "${NS}" exec -i shell -- cat)"
  e2e::assert_eq "exec with stdin" "from stdin" "${out}"
  local rc=0
  kc -n "${NS}" exec shell -- sh -c 'exit 3' >/dev/null 2>&1 || rc=$?
  e2e::assert_eq "exec exit code" 3 "${rc}"
  # The kubelet's /etc/hosts: its header, the pod's IP with its hostname,
  # the FQDN under a subdomain, hostAliases.
  local ip
  ip="$(e2e::ok -n "${NS}" get pod shell -o jsonpath='{.status.podIP}')"
  out="$(e2e::ok -n "${NS}" exec shell -- cat /etc/hosts)"
  e2e::assert_line "managed hosts file" "# Kubernetes-managed hosts file." "${out}"
  e2e::assert_line "the pod's entry" "${ip}"$'\t'"shell" "${out}"
  e2e::ok -n "${NS}" apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata: {name: aliased, namespace: ${NS}}
spec:
  hostname: box
  subdomain: sub
  hostAliases:
  - {ip: "10.1.2.3", hostnames: [foo.local, bar.local]}
  containers:
  - {name: main, image: busybox, command: [sleep, "3600"]}
EOF
  e2e::wait_until "pod aliased Running" 60 pod_running aliased
  ip="$(e2e::ok -n "${NS}" get pod aliased -o jsonpath='{.status.podIP}')"
  out="$(e2e::ok -n "${NS}" exec aliased -- cat /etc/hosts)"
  e2e::assert_line "the FQDN under the subdomain" "${ip}"$'\t'"box.sub.${NS}.svc.cluster.local"$'\t'"box" "${out}"
  e2e::assert_line "hostAliases" "10.1.2.3"$'\t'"foo.local"$'\t'"bar.local" "${out}"
}

# e2e::python_venv: a venv with the official Python client, made once
# under E2E_PYTHON_VENV (PyPI is reachable from these machines).
e2e::python_venv() {
  local venv="${E2E_PYTHON_VENV:-/var/cache/kube-e2e/python-venv}"
  if ! "${venv}/bin/python" -c 'import kubernetes' >/dev/null 2>&1; then
    # Debian's python3 makes venvs only with python3-venv installed.
    local python=python3
    if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
      kube::util::ensure_packages python3 python3-venv >&2 || return 1
      python=/usr/bin/python3
    fi
    rm -rf "${venv}"
    "${python}" -m venv "${venv}" >&2 || return 1
    "${venv}/bin/pip" install -q "kubernetes==${E2E_PYTHON_CLIENT_VERSION:-33.1.0}" >&2 || return 1
  fi
  echo "${venv}/bin/python"
}

# A client library that speaks WebSocket: the Python client's exec (exit
# code, stderr, stdin) and port-forward go through the API server, the
# kubelet and containerd's streaming server (v4.channel.k8s.io).
case_python_client() {
  ensure_ns
  e2e::ok -n "${NS}" run pyexec --image=busybox --restart=Never -- sleep 3600 >/dev/null
  e2e::ok -n "${NS}" run pypf --image=busybox --restart=Never -- \
    sh -c 'echo forwarded > /tmp/index.html; exec httpd -f -p 8080 -h /tmp' >/dev/null
  e2e::wait_until "pod pyexec Running" 60 pod_running pyexec
  e2e::wait_until "pod pypf Running" 60 pod_running pypf
  local python out
  python="$(e2e::python_venv)" || { echo "FAILED: could not install the Python client" >&2; exit 1; }
  out="$("${python}" "${KUBE_ROOT}/test/e2e/clients/python_stream.py" "${E2E_KUBECONFIG}" "${NS}" pyexec pypf 2>&1)" ||
    { printf 'FAILED: the Python client\n%s\n' "${out}" >&2; exit 1; }
  e2e::assert_line "exec stdout" "stdout=out" "${out}"
  e2e::assert_line "exec stderr" "stderr=err" "${out}"
  e2e::assert_line "exec exit code" "returncode=3" "${out}"
  e2e::assert_line "exec stdin" "stdin=got from python" "${out}"
  e2e::assert_line "port-forward" "portforward=forwarded" "${out}"
  e2e::assert_line "port-forward error channel" "portforward_error=" "${out}"
}

# port-forward from this host to a pod's port, through the same path.
case_port_forward() {
  ensure_ns
  e2e::ok -n "${NS}" run pf --image=busybox --restart=Never -- \
    sh -c 'echo forwarded > /tmp/index.html; exec httpd -f -p 8080 -h /tmp' >/dev/null
  e2e::wait_until "pod pf Running" 60 pod_running pf
  local port
  port="$(kube::util::free_port)"
  "${KUBECTL}" --kubeconfig="${E2E_KUBECONFIG}" -n "${NS}" port-forward pod/pf "${port}:8080" \
    >"${E2E_TMP}/${NS}-pf.log" 2>&1 &
  local pid=$!
  # shellcheck disable=SC2064 # the pid is fixed now
  trap "kill ${pid} 2>/dev/null || true" EXIT
  e2e::wait_until "port-forward listening" 30 \
    curl -sf --max-time 2 -o /dev/null "http://127.0.0.1:${port}/index.html"
  local out
  out="$(curl -sS --max-time 5 "http://127.0.0.1:${port}/index.html")"
  e2e::assert_eq "through port-forward" forwarded "${out}"
}

# Probes: an exec readiness probe keeps a running pod unready until the file
# it checks exists; an exec liveness probe that starts failing gets the
# container restarted (restartCount, Unhealthy event).
case_probes() {
  ensure_ns
  cat >"${E2E_TMP}/${NS}-probes.yaml" <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: probed
  namespace: ${NS}
spec:
  containers:
  - name: main
    image: busybox
    command: ["sh", "-c", "touch /tmp/alive; exec sleep 3600"]
    readinessProbe:
      exec: {command: ["cat", "/tmp/ready"]}
      periodSeconds: 1
      failureThreshold: 1
    livenessProbe:
      exec: {command: ["cat", "/tmp/alive"]}
      periodSeconds: 1
      failureThreshold: 2
EOF
  e2e::ok apply -f "${E2E_TMP}/${NS}-probes.yaml" >/dev/null
  e2e::wait_until "pod probed Running" 60 pod_running probed
  local out
  out="$(e2e::ok -n "${NS}" get pod probed -o jsonpath='{.status.containerStatuses[0].ready}')"
  e2e::assert_eq "unready until the readiness probe passes" false "${out}"
  e2e::ok -n "${NS}" exec probed -- touch /tmp/ready >/dev/null
  e2e::wait_until "pod probed Ready" 30 pod_ready probed
  out="$(e2e::ok -n "${NS}" get pod probed)"
  e2e::assert_match "get pod shows 1/1" '^probed 1/1 Running 0 ' "$(e2e::row "${out}" probed)"
  e2e::ok -n "${NS}" exec probed -- rm /tmp/alive >/dev/null
  e2e::wait_until "a liveness restart" 60 restarted probed
  out="$(e2e::ok -n "${NS}" get events --field-selector reason=Unhealthy -o jsonpath='{.items[*].message}')"
  e2e::assert_match "Unhealthy event" 'Liveness probe failed' "${out}"
  # The kubelet's /metrics/probes through the API server's node proxy.
  local node
  node="$(e2e::ok -n "${NS}" get pod probed -o jsonpath='{.spec.nodeName}')"
  out="$(e2e::ok get --raw "/api/v1/nodes/${node}/proxy/metrics/probes")"
  e2e::assert_match "failed liveness probes counted" \
    "prober_probe_total\\{container=\"main\",namespace=\"${NS}\",pod=\"probed\",pod_uid=\"[0-9a-f-]+\",probe_type=\"Liveness\",result=\"failed\"\\} [1-9]" "${out}"
  # cAdvisor's families on /metrics/cadvisor, from the container's cgroup.
  local cadvisor
  cadvisor="$(e2e::ok get --raw "/api/v1/nodes/${node}/proxy/metrics/cadvisor")"
  e2e::assert_match "the container's working set in /metrics/cadvisor" \
    "container_memory_working_set_bytes\\{container=\"main\",id=\"/k8s.io/[0-9a-f]{64}\",image=\"docker.io/library/busybox:[^\"]+\",name=\"[0-9a-f]{64}\",namespace=\"${NS}\",pod=\"probed\"\\} [1-9]" "${cadvisor}"
  e2e::assert_match "readiness probe answers timed" \
    "prober_probe_duration_seconds_count\\{container=\"main\",namespace=\"${NS}\",pod=\"probed\",probe_type=\"Readiness\"\\} [1-9]" "${out}"
}

# Admission in a whole cluster: the ServiceAccount plugin gives a pod its
# account and the kube-api-access volume, DefaultTolerationSeconds its two
# NoExecute tolerations; an account that does not exist is refused.
case_service_account() {
  ensure_ns
  e2e::ok -n "${NS}" run sa --image=busybox --restart=Never -- sleep 3600 >/dev/null
  local out
  out="$(e2e::ok -n "${NS}" get pod sa -o jsonpath='{.spec.serviceAccountName} {.spec.volumes[0].name} {.spec.containers[0].volumeMounts[0].mountPath}')"
  e2e::assert_match "account, volume and mount" '^default kube-api-access-[b-z2-9]{5} /var/run/secrets/kubernetes\.io/serviceaccount$' "${out}"
  out="$(e2e::ok -n "${NS}" get pod sa -o jsonpath='{range .spec.tolerations[*]}{.key}={.tolerationSeconds} {end}')"
  e2e::assert_eq "default tolerations" "node.kubernetes.io/not-ready=300 node.kubernetes.io/unreachable=300 " "${out}"
  out="$(e2e::expect_exit 1 -n "${NS}" run ghost --image=busybox --restart=Never --overrides='{"apiVersion":"v1","spec":{"serviceAccountName":"ghost"}}' -- true)"
  e2e::assert_eq "a missing account is refused" \
    "Error from server (Forbidden): pods \"ghost\" is forbidden: error looking up service account ${NS}/ghost: serviceaccount \"ghost\" not found" "${out}"
  out="$(e2e::ok get nodes -o jsonpath='{.items[*].spec.taints}')"
  e2e::assert_eq "a Ready node carries no not-ready taint" "" "${out}"
  # A Secret-based (legacy) token: the token controller fills it, the API
  # server accepts it while the Secret holds it.
  e2e::ok -n "${NS}" apply -f - >/dev/null <<'EOF'
apiVersion: v1
kind: Secret
metadata:
  name: default-token
  annotations:
    kubernetes.io/service-account.name: default
type: kubernetes.io/service-account-token
EOF
  e2e::wait_until "the token controller to fill the Secret" 30 secret_has_token default-token
  local token
  token="$(e2e::ok -n "${NS}" get secret default-token -o jsonpath='{.data.token}' | base64 -d)"
  out="$(timeout "${E2E_CMD_TIMEOUT}" "${KUBECTL}" --kubeconfig=/dev/null --server="https://127.0.0.1:${API_SECURE_PORT}" \
    --certificate-authority="${CERT_DIR}/ca.crt" --token="${token}" auth whoami -o jsonpath='{.status.userInfo.username}')"
  e2e::assert_eq "the Secret's token authenticates" "system:serviceaccount:${NS}:default" "${out}"
  out="$(e2e::ok -n "${NS}" get secret default-token -o jsonpath='{.data.namespace}' | base64 -d)"
  e2e::assert_eq "and the Secret names its namespace" "${NS}" "${out}"
}

# secret_has_token NAME: the token controller put a token into NS/NAME.
secret_has_token() {
  [[ -n "$(kc -n "${NS}" get secret "$1" -o jsonpath='{.data.token}' 2>/dev/null)" ]]
}

# Cluster DNS: the kube-dns add-on local-up-cluster deployed answers a pod
# through the resolv.conf the kubelet wrote: a Service by its short name (the
# search path), the kubernetes Service, a headless Service with every ready
# pod, NXDOMAIN for a name that does not exist; and a Service is reachable by
# name from another pod (DNS, then kube-proxy's rules for pod traffic).
case_dns() {
  ensure_ns
  e2e::ok -n "${NS}" create deployment web --image=busybox --port=8080 -- \
    sh -c 'hostname > /tmp/index.html; exec httpd -f -p 8080 -h /tmp' >/dev/null
  e2e::ok -n "${NS}" expose deployment web --port=80 --target-port=8080 >/dev/null
  e2e::ok -n "${NS}" create deployment db --image=busybox --replicas=2 -- sleep 3600 >/dev/null
  e2e::ok -n "${NS}" create service clusterip db --clusterip=None --tcp=5432:5432 >/dev/null
  e2e::ok -n "${NS}" run client --image=busybox --restart=Never -- sleep 3600 >/dev/null
  e2e::ok -n "${NS}" rollout status deployment/web --timeout=90s >/dev/null
  e2e::ok -n "${NS}" rollout status deployment/db --timeout=90s >/dev/null
  e2e::wait_until "pod client Running" 60 pod_running client
  local out dns_ip web_ip
  dns_ip="$(e2e::ok -n kube-system get svc kube-dns -o jsonpath='{.spec.clusterIP}')"
  out="$(e2e::ok -n kube-system get deploy kube-dns)"
  e2e::assert_match "the DNS add-on is ready" '^kube-dns 1/1 1 1 ' "$(e2e::row "${out}" kube-dns)"
  out="$(e2e::ok -n "${NS}" exec client -- cat /etc/resolv.conf)"
  # Lines sorted (the runtime chooses their order): search, options, nameserver.
  e2e::assert_eq "the pod's resolv.conf" \
    "search ${NS}.svc.cluster.local svc.cluster.local cluster.local|options ndots:5|nameserver ${dns_ip}" \
    "$(grep -E '^(search|nameserver|options)' <<<"${out}" | sort -r | paste -sd'|')"
  web_ip="$(e2e::ok -n "${NS}" get svc web -o jsonpath='{.spec.clusterIP}')"
  # busybox's nslookup asks every search domain at once and exits 1 when any
  # of them is NXDOMAIN (as against CoreDNS): the answer is what counts.
  out="$(e2e::ok -n "${NS}" exec client -- sh -c 'nslookup web; true')"
  e2e::assert_match "a Service by its short name" "Name:[[:space:]]+web\\.${NS}\\.svc\\.cluster\\.local"$'\n'"Address:[[:space:]]+${web_ip//./\\.}" "${out}"
  # (It applies the search list only to names without a dot.)
  out="$(e2e::ok -n "${NS}" exec client -- sh -c 'nslookup kubernetes.default.svc.cluster.local; true')"
  e2e::assert_match "the kubernetes Service" 'Address:[[:space:]]+10\.0\.0\.1([^0-9]|$)' "${out}"
  local want
  want="$(e2e::ok -n "${NS}" get pods -l app=db -o jsonpath='{.items[*].status.podIP}' | tr ' ' '\n' | sort | paste -sd' ')"
  out="$(e2e::ok -n "${NS}" exec client -- nslookup -type=a db."${NS}".svc.cluster.local)"
  e2e::assert_eq "a headless Service has every ready pod" "${want}" \
    "$(sed -n '/^Name:/,$p' <<<"${out}" | awk '/^Address:/ {print $2}' | sort | paste -sd' ')"
  out="$(e2e::expect_exit 1 -n "${NS}" exec client -- nslookup nosuch."${NS}".svc.cluster.local)"
  e2e::assert_match "NXDOMAIN for a missing Service" "NXDOMAIN" "${out}"
  local pod
  pod="$(e2e::ok -n "${NS}" get pods -l app=web -o jsonpath='{.items[0].metadata.name}')"
  # The short name resolves to the ClusterIP, and HTTP by that name (glibc's
  # resolver in the static busybox: getaddrinfo through the pod's
  # resolv.conf search path) reaches a pod behind the Service.
  local addr
  addr="$(e2e::ok -n "${NS}" exec client -- sh -c 'nslookup -type=a web; true' |
    sed -n '/^Name:/,$p' | awk '/^Address:/ {print $2; exit}')"
  e2e::assert_eq "the short name resolves to the ClusterIP" "${web_ip}" "${addr}"
  out="$(e2e::ok -n "${NS}" exec client -- wget -q -O- http://web/index.html)"
  e2e::assert_eq "a Service by name from another pod (wget http://web/)" "${pod}" "${out}"
}

# Storage: a claim without a class gets the default `standard` class
# (DefaultStorageClass admission), the controller manager's hostPath
# provisioner makes and binds its volume, one pod writes to it and the next
# reads it back; the deleted claim's volume goes too (reclaim policy Delete,
# the protection finalizers released once no pod uses them).
case_persistent_volume() {
  ensure_ns
  e2e::ok -n "${NS}" apply -f - >/dev/null <<'YAML'
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: data
spec:
  accessModes: [ReadWriteOnce]
  resources:
    requests:
      storage: 1Gi
YAML
  e2e::wait_until "claim data Bound" 60 claim_bound data
  local out pv
  out="$(e2e::ok -n "${NS}" get pvc data -o jsonpath='{.spec.storageClassName} {.status.phase} {.status.capacity.storage}')"
  e2e::assert_eq "the claim got the default class and a volume" "standard Bound 1Gi" "${out}"
  pv="$(e2e::ok -n "${NS}" get pvc data -o jsonpath='{.spec.volumeName}')"
  out="$(e2e::ok get pv "${pv}" -o jsonpath='{.spec.hostPath.path} {.spec.persistentVolumeReclaimPolicy} {.status.phase}')"
  e2e::assert_eq "the provisioned volume" "/tmp/hostpath_pv/${pv} Delete Bound" "${out}"
  local c
  for c in "writer:echo stored on the volume > /data/file" "reader:cat /data/file"; do
    e2e::ok -n "${NS}" run "${c%%:*}" --image=busybox --restart=Never --overrides="$(printf \
      '{"spec":{"volumes":[{"name":"d","persistentVolumeClaim":{"claimName":"data"}}],"containers":[{"name":"%s","image":"busybox","command":["sh","-c","%s"],"volumeMounts":[{"name":"d","mountPath":"/data"}]}]}}' \
      "${c%%:*}" "${c#*:}")" >/dev/null
    e2e::wait_until "pod ${c%%:*} Succeeded" 90 pod_succeeded "${c%%:*}"
  done
  e2e::assert_eq "what one pod wrote the next reads" "stored on the volume" "$(e2e::ok -n "${NS}" logs reader)"
  e2e::ok -n "${NS}" delete pod writer reader --wait=true >/dev/null
  e2e::ok -n "${NS}" delete pvc data --wait=true --timeout=60s >/dev/null
  e2e::wait_until "volume ${pv} deleted" 60 volume_gone "${pv}"
}

# Quota: the controller manager measures a new quota, the API server's
# ResourceQuota admission charges creates against it and refuses the one
# beyond it with upstream's message; usage goes down when a pod goes.
case_resource_quota() {
  ensure_ns
  e2e::ok -n "${NS}" create quota small --hard=pods=1,count/configmaps=5 >/dev/null
  e2e::wait_until "the quota measured" 30 quota_used small pods 0
  e2e::ok -n "${NS}" run one --image=busybox --restart=Never -- sleep 3600 >/dev/null
  e2e::wait_until "pods used 1" 30 quota_used small pods 1
  local out
  out="$(e2e::expect_exit 1 -n "${NS}" run two --image=busybox --restart=Never -- sleep 3600)"
  e2e::assert_eq "the pod beyond the quota is refused" \
    'Error from server (Forbidden): pods "two" is forbidden: exceeded quota: small, requested: pods=1, used: pods=1, limited: pods=1' "${out}"
  e2e::ok -n "${NS}" delete pod one --grace-period=0 --force >/dev/null 2>&1
  e2e::wait_until "pods used 0 again" 30 quota_used small pods 0
  e2e::ok -n "${NS}" run two --image=busybox --restart=Never -- sleep 3600 >/dev/null
}

# quota_used QUOTA RESOURCE VALUE: whether status.used[RESOURCE] is VALUE.
quota_used() {
  [[ "$(kc -n "${NS}" get quota "$1" -o jsonpath="{.status.used.$2}" 2>/dev/null)" == "$3" ]]
}

# The kubelet's eviction manager (every 10 s): a pod writing past its
# emptyDir sizeLimit on the real disk is evicted with upstream's status,
# which kubectl describe shows (get shows the killed container's Error, as
# upstream's printer does); the node reports no pressure.
case_eviction() {
  ensure_ns
  local out
  e2e::ok -n "${NS}" apply -f - >/dev/null <<'YAML'
apiVersion: v1
kind: Pod
metadata: {name: scratchy}
spec:
  restartPolicy: Never
  containers:
  - name: writer
    image: busybox
    command: [sh, -c, "dd if=/dev/zero of=/scratch/fill bs=1024 count=64; sleep 3600"]
    volumeMounts: [{name: scratch, mountPath: /scratch}]
  volumes:
  - {name: scratch, emptyDir: {sizeLimit: 16Ki}}
YAML
  e2e::wait_until "the pod evicted" 90 pod_phase_is "${NS}" scratchy Failed
  out="$(e2e::ok -n "${NS}" get pod scratchy -o jsonpath='{.status.reason}|{.status.message}')"
  e2e::assert_eq "the eviction's reason and message" \
    'Evicted|Usage of EmptyDir volume "scratch" exceeds the limit "16Ki". ' "${out}"
  out="$(e2e::ok -n "${NS}" describe pod scratchy)"
  e2e::assert_match "kubectl describe shows the eviction" \
    $'Status: +Failed\nReason: +Evicted\nMessage: +Usage of EmptyDir volume "scratch" exceeds the limit "16Ki".' "${out}"
  out="$(e2e::ok get nodes -o jsonpath='{range .items[0].status.conditions[*]}{.type}={.status}/{.reason} {end}')"
  e2e::assert_match "no pressure on the node" \
    'MemoryPressure=False/KubeletHasSufficientMemory DiskPressure=False/KubeletHasNoDiskPressure PIDPressure=False/KubeletHasSufficientPID' "${out}"
}

# pod_phase_is NS POD PHASE
pod_phase_is() {
  [[ "$(kc -n "$1" get pod "$2" -o jsonpath='{.status.phase}' 2>/dev/null)" == "$3" ]]
}

# kubectl drain against a PodDisruptionBudget the disruption controller
# keeps: of two replicas behind minAvailable 1, one is evicted; its
# replacement cannot schedule on the cordoned node, so the second eviction
# is refused (429) until drain gives up; uncordoned, the rollout recovers.
# Only this case's pods are drained (--pod-selector), so the add-ons stay.
case_drain() {
  ensure_ns
  local node out
  node="$(e2e::ok get nodes -o jsonpath='{.items[0].metadata.name}')"
  e2e::ok -n "${NS}" create deployment guarded --image=busybox --replicas=2 -- sleep 3600 >/dev/null
  e2e::ok -n "${NS}" rollout status deployment/guarded --timeout=90s >/dev/null
  e2e::ok -n "${NS}" create pdb guarded --selector=app=guarded --min-available=1 >/dev/null
  e2e::wait_until "the budget allows one disruption" 30 pdb_allows guarded 1
  out="$(e2e::expect_exit 1 drain "${node}" --pod-selector=app=guarded --ignore-daemonsets --timeout=12s)"
  kc uncordon "${node}" >/dev/null 2>&1 || true
  e2e::assert_match "one pod evicted" 'pod/guarded-[a-z0-9]+-[a-z0-9]+ evicted' "${out}"
  e2e::assert_match "the second eviction refused by the budget" \
    "Cannot evict pod as it would violate the pod's disruption budget" "${out}"
  e2e::ok -n "${NS}" rollout status deployment/guarded --timeout=90s >/dev/null
  e2e::wait_until "the budget allows one disruption again" 30 pdb_allows guarded 1
}

# pdb_allows PDB N: whether status.disruptionsAllowed is N.
pdb_allows() {
  [[ "$(kc -n "${NS}" get pdb "$1" -o jsonpath='{.status.disruptionsAllowed}' 2>/dev/null)" == "$2" ]]
}

claim_bound() {
  [[ "$(kc -n "${NS}" get pvc "$1" -o jsonpath='{.status.phase}' 2>/dev/null)" == Bound ]]
}

pod_succeeded() {
  [[ "$(pod_phase "$1")" == Succeeded ]]
}

volume_gone() {
  ! kc get pv "$1" >/dev/null 2>&1
}

# kubectl top: the metrics add-on local-up-cluster deployed scrapes the
# kubelet and serves metrics.k8s.io through the aggregator. The node shows its
# usage against its allocatable; a pod spinning a loop shows real CPU, per
# container too; `kubectl get` reads the same API as a Table.
case_top() {
  ensure_ns
  local out node row cpu
  out="$(e2e::ok -n kube-system get deploy metrics-server)"
  e2e::assert_match "the metrics add-on is ready" '^metrics-server 1/1 1 1 ' "$(e2e::row "${out}" metrics-server)"
  out="$(e2e::ok get apiservice v1beta1.metrics.k8s.io)"
  e2e::assert_match "the APIService is available" 'kube-system/metrics-server +True' "$(e2e::squeeze <<<"${out}")"
  node="$(e2e::ok get nodes -o jsonpath='{.items[0].metadata.name}')"
  e2e::wait_until "node metrics" 60 kc top node "${node}"
  out="$(e2e::ok top node)"
  e2e::assert_match "kubectl top node" "^${node} [0-9]+m [0-9]+% [0-9]+Mi [0-9]+%$" "$(e2e::row "${out}" "${node}")"
  e2e::ok -n "${NS}" run spin --image=busybox --restart=Never --labels=app=spin -- \
    sh -c 'while :; do :; done' >/dev/null
  e2e::wait_until "pod spin Running" 60 pod_running spin
  # Two scrapes with the container in them (METRIC_RESOLUTION apart).
  e2e::wait_until "pod metrics" 90 kc -n "${NS}" top pod spin
  out="$(e2e::ok -n "${NS}" top pod spin)"
  row="$(e2e::row "${out}" spin)"
  e2e::assert_match "kubectl top pod" '^spin [0-9]+m [0-9]+Mi$' "${row}"
  cpu="$(awk '{print $2}' <<<"${row}")"
  cpu="${cpu%m}"
  # A busy loop uses most of a core on an idle machine; half of one at least.
  (( cpu >= 100 )) || e2e::assert_eq "the spinning pod's CPU is real (millicores)" ">=100" "${cpu}"
  out="$(e2e::ok -n "${NS}" top pod -l app=spin --containers)"
  e2e::assert_match "kubectl top pod --containers" '^spin spin [0-9]+m [0-9]+Mi$' "$(e2e::row "${out}" spin)"
  out="$(e2e::ok -n "${NS}" get pods.metrics.k8s.io)"
  e2e::assert_match "kubectl get pods.metrics.k8s.io" '^spin [0-9]+[a-zA-Z]* [0-9]+[a-zA-Z]* [0-9.]+m?s$' "$(e2e::row "${out}" spin)"
  out="$(e2e::expect_exit 1 -n "${NS}" top pod nosuch)"
  e2e::assert_match "a missing pod" 'NotFound|not found' "${out}"
}

# The horizontal pod autoscaler: a Deployment whose pod spins well above its
# CPU request grows when `kubectl autoscale` targets 50 % (metrics-server's
# figures through the aggregator, the controller manager's HPA controller,
# the Deployment's scale subresource); the HPA's status and Events say why.
case_hpa() {
  ensure_ns
  local out
  e2e::ok -n "${NS}" create deployment spin --image=busybox -- sh -c 'while :; do :; done' >/dev/null
  e2e::ok -n "${NS}" set resources deployment spin --requests=cpu=100m >/dev/null
  e2e::ok -n "${NS}" rollout status deployment/spin --timeout=90s >/dev/null
  out="$(e2e::ok -n "${NS}" autoscale deployment spin --cpu-percent=50 --min=1 --max=3)"
  e2e::assert_eq "kubectl autoscale" "horizontalpodautoscaler.autoscaling/spin autoscaled" "${out}"
  e2e::wait_until "the HPA scaling the Deployment up" 120 deployment_replicas_at_least spin 2
  out="$(e2e::ok -n "${NS}" get hpa spin)"
  e2e::assert_match "kubectl get hpa" '^spin Deployment/spin cpu: [0-9]+%/50% 1 3 [0-9] ' "$(e2e::row "${out}" spin)"
  out="$(e2e::ok -n "${NS}" get hpa spin -o jsonpath='{.status.conditions[?(@.type=="ScalingActive")].reason}')"
  e2e::assert_eq "the HPA found a valid metric" "ValidMetricFound" "${out}"
  out="$(e2e::ok -n "${NS}" get events --field-selector reason=SuccessfulRescale -o jsonpath='{.items[0].message}')"
  e2e::assert_match "the rescale event" '^New size: [23]; reason: cpu resource utilization \(percentage of request\) above target$' "${out}"
  # The spinning pods would slow the cases after this one.
  e2e::ok -n "${NS}" delete hpa spin >/dev/null
  e2e::ok -n "${NS}" delete deployment spin --wait=false >/dev/null
}

# RBAC in the running cluster: the clusterrole-aggregation controller (as
# its own ServiceAccount) filled admin/edit/view from the aggregate-to-*
# roles, a pod's ServiceAccount may do nothing until a RoleBinding to edit
# lets it write Deployments in its namespace only, and the controllers run
# as their ServiceAccounts.
aggregated_view_has_pods() {
  [[ "$(kc get clusterrole view -o jsonpath='{.rules[*].resources}' 2>/dev/null)" == *'"pods"'* ]]
}

sa_can() {
  [[ "$(kc auth can-i "$@" --as="system:serviceaccount:${NS}:default" 2>/dev/null)" == yes ]]
}

case_rbac() {
  local out
  ensure_ns
  e2e::wait_until "view to be aggregated" 30 aggregated_view_has_pods
  out="$(e2e::ok get clusterrole edit -o jsonpath='{.aggregationRule.clusterRoleSelectors[0].matchLabels}')"
  e2e::assert_eq "edit aggregates" '{"rbac.authorization.k8s.io/aggregate-to-edit":"true"}' "${out}"
  e2e::assert_eq "a ServiceAccount starts with nothing" no \
    "$(kc auth can-i create deployments.apps -n "${NS}" --as="system:serviceaccount:${NS}:default" 2>/dev/null || true)"
  e2e::ok -n "${NS}" create rolebinding default-edit --clusterrole=edit --serviceaccount="${NS}:default" >/dev/null
  e2e::wait_until "edit to reach the ServiceAccount" 10 sa_can create deployments.apps -n "${NS}"
  e2e::assert_eq "but not in other namespaces" no \
    "$(kc auth can-i create deployments.apps -n kube-system --as="system:serviceaccount:${NS}:default" 2>/dev/null || true)"
  e2e::assert_eq "nor RBAC objects (edit is not admin)" no \
    "$(kc auth can-i create rolebindings -n "${NS}" --as="system:serviceaccount:${NS}:default" 2>/dev/null || true)"
  out="$(e2e::ok -n "${NS}" create deployment rbac-web --image=busybox --as="system:serviceaccount:${NS}:default" -- sleep 3600)"
  e2e::assert_match "the ServiceAccount creates a Deployment" 'deployment.apps/rbac-web created' "${out}"
  e2e::ok -n "${NS}" rollout status deployment/rbac-web --timeout=90s >/dev/null
  out="$(e2e::ok -n kube-system get serviceaccounts -o name)"
  e2e::assert_match "controllers have their ServiceAccounts" 'serviceaccount/deployment-controller' "${out}"
  e2e::ok -n "${NS}" delete deployment rbac-web >/dev/null
}

# Certificates: a client certificate requested with openssl through a
# CertificateSigningRequest is signed by the controller manager once
# `kubectl certificate approve` approves it, and the API server accepts it
# as that user; a denied request gets no certificate.
case_certificates() {
  ensure_ns
  local dir out user
  dir="$(mktemp -d)"
  user="jane-${NS}"
  openssl req -new -newkey rsa:2048 -nodes -keyout "${dir}/key.pem" -out "${dir}/csr.pem" \
    -subj "/CN=${user}/O=devs" >/dev/null 2>&1
  printf '{"apiVersion":"certificates.k8s.io/v1","kind":"CertificateSigningRequest","metadata":{"name":"%s"},"spec":{"request":"%s","signerName":"kubernetes.io/kube-apiserver-client","usages":["client auth"],"expirationSeconds":3600}}' \
    "${user}" "$(base64 -w0 "${dir}/csr.pem")" | e2e::ok create -f - >/dev/null
  out="$(e2e::ok get csr "${user}")"
  e2e::assert_match "a pending request" "^${user} [0-9]+s kubernetes.io/kube-apiserver-client [^ ]+ 60m Pending$" "$(e2e::row "${out}" "${user}")"
  out="$(e2e::ok certificate approve "${user}")"
  e2e::assert_eq "kubectl certificate approve" "certificatesigningrequest.certificates.k8s.io/${user} approved" "${out}"
  e2e::wait_until "the certificate" 30 csr_issued "${user}"
  out="$(e2e::ok get csr "${user}")"
  e2e::assert_match "approved and issued" ' Approved,Issued$' "$(e2e::row "${out}" "${user}")"
  e2e::ok get csr "${user}" -o jsonpath='{.status.certificate}' | base64 -d >"${dir}/cert.pem"
  out="$(openssl x509 -in "${dir}/cert.pem" -noout -subject -ext extendedKeyUsage 2>&1)"
  e2e::assert_match "the certificate's subject" "CN ?= ?${user}" "${out}"
  e2e::assert_match "client auth only" 'TLS Web Client Authentication' "${out}"
  # The admin kubeconfig with jane as its user.
  cp "${E2E_KUBECONFIG}" "${dir}/kubeconfig"
  "${KUBECTL}" --kubeconfig="${dir}/kubeconfig" config set-credentials "${user}" --embed-certs=true \
    --client-certificate="${dir}/cert.pem" --client-key="${dir}/key.pem" >/dev/null
  "${KUBECTL}" --kubeconfig="${dir}/kubeconfig" config set-context --current --user="${user}" >/dev/null
  out="$("${KUBECTL}" --kubeconfig="${dir}/kubeconfig" auth whoami -o jsonpath='{.status.userInfo.username} {.status.userInfo.groups}')"
  e2e::assert_match "the API server takes it" "^${user} .*devs" "${out}"
  # A denied request is never signed.
  printf '{"apiVersion":"certificates.k8s.io/v1","kind":"CertificateSigningRequest","metadata":{"name":"%s-denied"},"spec":{"request":"%s","signerName":"kubernetes.io/kube-apiserver-client","usages":["client auth"]}}' \
    "${user}" "$(base64 -w0 "${dir}/csr.pem")" | e2e::ok create -f - >/dev/null
  e2e::ok certificate deny "${user}-denied" >/dev/null
  sleep 2
  out="$(e2e::ok get csr "${user}-denied")"
  e2e::assert_match "denied" ' Denied$' "$(e2e::row "${out}" "${user}-denied")"
  rm -rf "${dir}"
  e2e::ok delete csr "${user}" "${user}-denied" >/dev/null
}

csr_issued() {
  [[ -n "$(kc get csr "$1" -o jsonpath='{.status.certificate}' 2>/dev/null)" ]]
}

# describe_shows KIND NAME REGEX: `kubectl describe` of the object matches.
describe_shows() {
  [[ "$(kc -n "${NS}" describe "$1" "$2" 2>/dev/null | e2e::squeeze)" =~ $3 ]]
}

deployment_replicas_at_least() {
  local n
  n="$(kc -n "${NS}" get deployment "$1" -o jsonpath='{.spec.replicas}' 2>/dev/null)"
  [[ -n "${n}" && "${n}" -ge "$2" ]]
}

pod_ready() {
  [[ "$(kc -n "${NS}" get pod "$1" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" == True ]]
}

restarted() {
  local n
  n="$(kc -n "${NS}" get pod "$1" -o jsonpath='{.status.containerStatuses[0].restartCount}' 2>/dev/null)"
  [[ -n "${n}" && "${n}" -ge 1 ]]
}

run_version() {
  local version=$1 c
  e2e::use_kubectl "${version}" || {
    E2E_FAILED=$((E2E_FAILED + 1))
    E2E_FAILURES+=("kubectl ${version}")
    return 0
  }
  echo "=== kubectl ${version} (cluster)"
  for c in ${CLUSTER_CASES}; do
    NS="e2e-${version//./-}-${c//_/-}"
    e2e::run_case "${version} ${c}" "case_${c}"
  done
}

main() {
  trap 'e2e::cluster_down' EXIT
  if ! e2e::cluster_up; then
    echo "FAIL  cluster setup: see the messages above"
    E2E_FAILED=$((E2E_FAILED + 1))
    E2E_FAILURES+=("cluster setup")
    e2e::summary
    exit 1
  fi
  local v
  for v in ${KUBECTL_VERSIONS}; do
    run_version "${v}"
  done
  if (( E2E_FAILED > 0 )); then
    e2e::cluster_logs
  fi
  trap - EXIT
  e2e::cluster_down
  e2e::summary
  (( E2E_FAILED == 0 ))
}

main "$@"
