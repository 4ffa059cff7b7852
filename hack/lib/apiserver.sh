#!/usr/bin/env bash
# Starts, waits for and stops kube-apiserver with the flags a local cluster
# uses, so that hack/local-up-cluster.sh and test/e2e share one command line.
# Upstream: start_apiserver in hack/local-up-cluster.sh. Source it after
# hack/lib/util.sh, hack/lib/etcd.sh and hack/lib/certs.sh.
#
# Knobs (read when kube::apiserver::start runs):
#   KUBE_APISERVER_BIN        path to the binary (required)
#   API_SECURE_PORT           6443
#   API_BIND_ADDR             0.0.0.0
#   ADVERTISE_ADDRESS         --advertise-address; omitted when empty
#   SERVICE_CLUSTER_IP_RANGE  10.0.0.0/24
#   NODE_PORT_RANGE           --service-node-port-range; omitted when empty
#   SERVICE_ACCOUNT_ISSUER    https://kubernetes.default.svc
#   ENABLE_ADMISSION_PLUGINS  NodeRestriction (besides upstream's defaults, as
#                             upstream's local-up-cluster.sh enables it)
#   AUTHORIZATION_MODE        --authorization-mode; Node,RBAC (upstream's
#                             local-up-cluster.sh default)
#   LOG_LEVEL                 3 (klog -v level)
#   LOG_DIR                   /tmp
#   APISERVER_LOG             ${LOG_DIR}/kube-apiserver.log
#   APISERVER_PID_FILE        ${KUBE_PID_DIR:-${CERT_DIR}}/kube-apiserver.pid
#   APISERVER_EXTRA_ARGS      more flags, split on spaces
#   WAIT_FOR_URL_API_SERVER   60 seconds to wait for /readyz
#   CERT_DIR, ETCD_HOST, ETCD_PORT as in certs.sh and etcd.sh

kube::apiserver::_defaults() {
  kube::certs::_defaults
  API_SECURE_PORT="${API_SECURE_PORT:-6443}"
  API_BIND_ADDR="${API_BIND_ADDR:-0.0.0.0}"
  ADVERTISE_ADDRESS="${ADVERTISE_ADDRESS:-}"
  SERVICE_CLUSTER_IP_RANGE="${SERVICE_CLUSTER_IP_RANGE:-10.0.0.0/24}"
  NODE_PORT_RANGE="${NODE_PORT_RANGE:-}"
  SERVICE_ACCOUNT_ISSUER="${SERVICE_ACCOUNT_ISSUER:-https://kubernetes.default.svc}"
  ENABLE_ADMISSION_PLUGINS="${ENABLE_ADMISSION_PLUGINS-NodeRestriction}"
  AUTHORIZATION_MODE="${AUTHORIZATION_MODE:-Node,RBAC}"
  LOG_LEVEL="${LOG_LEVEL:-3}"
  LOG_DIR="${LOG_DIR:-/tmp}"
  APISERVER_LOG="${APISERVER_LOG:-${LOG_DIR}/kube-apiserver.log}"
  APISERVER_PID_FILE="${APISERVER_PID_FILE:-${KUBE_PID_DIR:-${CERT_DIR}}/kube-apiserver.pid}"
  APISERVER_EXTRA_ARGS="${APISERVER_EXTRA_ARGS:-}"
  WAIT_FOR_URL_API_SERVER="${WAIT_FOR_URL_API_SERVER:-60}"
  ETCD_HOST="${ETCD_HOST:-127.0.0.1}"
  ETCD_PORT="${ETCD_PORT:-2379}"
}

# kube::apiserver::_args: prints the command line, one argument per line.
kube::apiserver::_args() {
  local -a args=(
    "--etcd-servers=http://${ETCD_HOST}:${ETCD_PORT}"
    "--secure-port=${API_SECURE_PORT}"
    "--bind-address=${API_BIND_ADDR}"
    "--tls-cert-file=${CERT_DIR}/serving-kube-apiserver.crt"
    "--tls-private-key-file=${CERT_DIR}/serving-kube-apiserver.key"
    "--client-ca-file=${CERT_DIR}/ca.crt"
    "--service-account-issuer=${SERVICE_ACCOUNT_ISSUER}"
    "--service-account-key-file=${CERT_DIR}/sa.pub"
    "--service-account-signing-key-file=${CERT_DIR}/sa.key"
    "--service-cluster-ip-range=${SERVICE_CLUSTER_IP_RANGE}"
    "--proxy-client-cert-file=${CERT_DIR}/client-auth-proxy.crt"
    "--proxy-client-key-file=${CERT_DIR}/client-auth-proxy.key"
    "--requestheader-client-ca-file=${CERT_DIR}/ca.crt"
    "--requestheader-allowed-names=front-proxy-client"
    "--enable-aggregator-routing=true"
    "--kubelet-client-certificate=${CERT_DIR}/client-kube-apiserver.crt"
    "--kubelet-client-key=${CERT_DIR}/client-kube-apiserver.key"
    "--kubelet-preferred-address-types=InternalIP,Hostname,InternalDNS,ExternalDNS,ExternalIP"
    "--authorization-mode=${AUTHORIZATION_MODE}"
    -v "${LOG_LEVEL}"
  )
  [[ -n "${ADVERTISE_ADDRESS}" ]] && args+=("--advertise-address=${ADVERTISE_ADDRESS}")
  [[ -n "${NODE_PORT_RANGE}" ]] && args+=("--service-node-port-range=${NODE_PORT_RANGE}")
  [[ -n "${ENABLE_ADMISSION_PLUGINS}" ]] && args+=("--enable-admission-plugins=${ENABLE_ADMISSION_PLUGINS}")
  local -a extra=()
  # Split on spaces on purpose: it is a list of flags.
  read -r -a extra <<<"${APISERVER_EXTRA_ARGS}"
  args+=("${extra[@]}")
  printf '%s\n' "${args[@]}"
}

# kube::apiserver::start: starts kube-apiserver against the etcd at
# ETCD_HOST:ETCD_PORT with the certs in CERT_DIR. Sets APISERVER_PID.
kube::apiserver::start() {
  kube::apiserver::_defaults
  if [[ -z "${KUBE_APISERVER_BIN:-}" || ! -x "${KUBE_APISERVER_BIN}" ]]; then
    kube::log::error "kube-apiserver binary not found at '${KUBE_APISERVER_BIN:-}'"
    return 1
  fi
  # A crashed run leaves its apiserver behind: ours, per the pid file.
  kube::util::stop_process "kube-apiserver (left by an earlier run)" \
    "${APISERVER_PID_FILE}" "${KUBE_APISERVER_BIN}"
  kube::util::ensure_port_free kube-apiserver "${API_SECURE_PORT}" || return 1

  local -a args
  mapfile -t args < <(kube::apiserver::_args)
  kube::util::start_process kube-apiserver "${APISERVER_PID_FILE}" "${APISERVER_LOG}" \
    "${KUBE_APISERVER_BIN}" "${args[@]}" || return 1
  APISERVER_PID="${KUBE_STARTED_PID}"
}

# kube::apiserver::wait_ready HOST: waits until https://HOST:PORT/readyz
# answers 200 to the admin's client cert. Prints the log's tail on failure.
kube::apiserver::wait_ready() {
  local host=$1
  kube::apiserver::_defaults
  kube::log::status "waiting for kube-apiserver at https://${host}:${API_SECURE_PORT}/readyz"
  if ! kube::util::wait_for_process_url "${APISERVER_PID}" \
      "https://${host}:${API_SECURE_PORT}/readyz" \
      --cacert "${CERT_DIR}/ca.crt" \
      --cert "${CERT_DIR}/client-admin.crt" --key "${CERT_DIR}/client-admin.key" \
      "${WAIT_FOR_URL_API_SERVER}"; then
    kube::log::error "kube-apiserver did not become ready; last lines of ${APISERVER_LOG}:"
    tail -n 30 "${APISERVER_LOG}" >&2 || true
    return 1
  fi
  kube::log::status "kube-apiserver is ready (pid ${APISERVER_PID})"
}

# kube::apiserver::stop: stops the apiserver recorded in APISERVER_PID_FILE.
kube::apiserver::stop() {
  kube::apiserver::_defaults
  kube::util::stop_process kube-apiserver "${APISERVER_PID_FILE}" \
    "${KUBE_APISERVER_BIN:-kube-apiserver}"
  APISERVER_PID=""
}
