#!/usr/bin/env bash
# Generates, with openssl, the certificates and keys a local control plane
# needs, and kubeconfigs that use them. Existing files are reused while they
# are still valid for the CA, so restarting a cluster keeps its identity.
# Upstream: the cert parts of hack/lib/util.sh (create_signing_certkey,
# create_serving_certkey, create_client_certkey, write_client_kubeconfig),
# which use cfssl; this uses openssl only. Source it after hack/lib/util.sh.
#
# Files in CERT_DIR (default /var/run/kubernetes):
#   ca.crt, ca.key                      the one CA that signs serving and client certs
#   serving-kube-apiserver.crt/.key     the apiserver's serving cert
#   client-admin.crt/.key               CN=system:admin, O=system:masters
#   client-auth-proxy.crt/.key          CN=front-proxy-client (aggregator → extension servers)
#   client-kube-apiserver.crt/.key      CN=kube-apiserver (what it presents to kubelets)
#   sa.key, sa.pub                      service-account token signing pair (RSA 2048)
#   admin.kubeconfig                    self-contained kubeconfig for the admin
#
# Knobs: CERT_DIR, FIRST_SERVICE_CLUSTER_IP (10.0.0.1), DNS_DOMAIN
# (cluster.local), CA_DAYS (3650), CERT_DAYS (365).

kube::certs::_defaults() {
  CERT_DIR="${CERT_DIR:-/var/run/kubernetes}"
  FIRST_SERVICE_CLUSTER_IP="${FIRST_SERVICE_CLUSTER_IP:-10.0.0.1}"
  DNS_DOMAIN="${DNS_DOMAIN:-cluster.local}"
  CA_DAYS="${CA_DAYS:-3650}"
  CERT_DAYS="${CERT_DAYS:-365}"
}

# kube::certs::_openssl ARGS...: runs openssl, showing its chatter only when
# it fails.
kube::certs::_openssl() {
  local out
  if ! out="$(openssl "$@" 2>&1)"; then
    kube::log::error "openssl $1 failed: ${out}"
    return 1
  fi
}

# kube::certs::_key_matches CERT KEY: true if KEY is the private key of CERT.
kube::certs::_key_matches() {
  local cert_pub key_pub
  cert_pub="$(openssl x509 -in "$1" -noout -pubkey 2>/dev/null)" || return 1
  key_pub="$(openssl pkey -in "$2" -pubout 2>/dev/null)" || return 1
  [[ "${cert_pub}" == "${key_pub}" ]]
}

# kube::certs::_usable CERT KEY: CERT and KEY exist, belong together, and
# CERT is valid for at least another day.
kube::certs::_usable() {
  [[ -s "$1" && -s "$2" ]] || return 1
  openssl x509 -in "$1" -noout -checkend 86400 >/dev/null 2>&1 || return 1
  kube::certs::_key_matches "$1" "$2"
}

# kube::certs::_signed_by_ca CERT KEY: usable and issued by our current CA.
kube::certs::_signed_by_ca() {
  kube::certs::_usable "$1" "$2" || return 1
  openssl verify -CAfile "${CERT_DIR}/ca.crt" "$1" >/dev/null 2>&1
}

# kube::certs::_covers_host CERT HOST: CERT's SANs include HOST (IP or name).
kube::certs::_covers_host() {
  local out
  if [[ "$2" =~ ^[0-9.]+$ || "$2" == *:* ]]; then
    out="$(openssl x509 -in "$1" -noout -checkip "$2" 2>/dev/null)" || return 1
  else
    out="$(openssl x509 -in "$1" -noout -checkhost "$2" 2>/dev/null)" || return 1
  fi
  [[ "${out}" == *"does match"* ]]
}

# kube::certs::_subject CN [GROUP...]: the -subj string for a client cert;
# kube-apiserver reads groups from O and the user from CN.
kube::certs::_subject() {
  local cn=$1 subject="" group
  shift
  for group in "$@"; do
    subject+="/O=${group}"
  done
  echo "${subject}/CN=${cn}"
}

# kube::certs::_install TMP_CERT TMP_KEY NAME: moves a fresh pair into place
# together, so that a crash never leaves a cert next to another's key.
kube::certs::_install() {
  chmod 644 "$1" && chmod 600 "$2" || return 1
  mv -f "$2" "${CERT_DIR}/$3.key" && mv -f "$1" "${CERT_DIR}/$3.crt"
}

# kube::certs::_sign NAME SUBJECT EXTENSIONS: creates NAME.crt/NAME.key in
# CERT_DIR, signed by the CA, with the given openssl extension lines.
kube::certs::_sign() {
  local name=$1 subject=$2 extensions=$3
  local tmp
  tmp="$(mktemp -d "${CERT_DIR}/.tmp-${name}.XXXXXX")" || return 1
  # A random 128-bit serial, as RFC 5280 recommends, without a .srl file.
  if kube::certs::_openssl req -new -nodes -newkey rsa:2048 \
      -keyout "${tmp}/key" -out "${tmp}/csr" -subj "${subject}" &&
    kube::certs::_openssl x509 -req -in "${tmp}/csr" \
      -CA "${CERT_DIR}/ca.crt" -CAkey "${CERT_DIR}/ca.key" \
      -set_serial "0x$(openssl rand -hex 16)" -days "${CERT_DAYS}" \
      -extfile <(printf '%s\n' "${extensions}") -out "${tmp}/crt" &&
    kube::certs::_install "${tmp}/crt" "${tmp}/key" "${name}"; then
    rm -rf "${tmp}"
    return 0
  fi
  rm -rf "${tmp}"
  return 1
}

# kube::certs::ensure_cert_dir: creates CERT_DIR. Keys inside are mode 600;
# the directory itself stays readable, as upstream's /var/run/kubernetes.
kube::certs::ensure_cert_dir() {
  kube::certs::_defaults
  mkdir -p "${CERT_DIR}" || return 1
  if [[ ! -w "${CERT_DIR}" ]]; then
    kube::log::error "cannot write to CERT_DIR=${CERT_DIR}; run as root or set CERT_DIR"
    return 1
  fi
}

# kube::certs::ensure_ca: creates the CA unless a usable one exists. A new CA
# invalidates every cert signed by the old one; those are then remade.
kube::certs::ensure_ca() {
  kube::certs::ensure_cert_dir || return 1
  if kube::certs::_usable "${CERT_DIR}/ca.crt" "${CERT_DIR}/ca.key"; then
    return 0
  fi
  kube::log::status "generating CA in ${CERT_DIR}"
  local tmp
  tmp="$(mktemp -d "${CERT_DIR}/.tmp-ca.XXXXXX")" || return 1
  if kube::certs::_openssl req -x509 -new -nodes -newkey rsa:2048 \
      -keyout "${tmp}/key" -out "${tmp}/crt" -days "${CA_DAYS}" \
      -subj "/CN=local-up-cluster-ca" \
      -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" &&
    kube::certs::_install "${tmp}/crt" "${tmp}/key" ca; then
    rm -rf "${tmp}"
    return 0
  fi
  rm -rf "${tmp}"
  return 1
}

# kube::certs::ensure_serving_cert NAME CN HOST...: a serving cert for the
# given DNS names and IPs, reused when it is signed by the CA and already
# covers every HOST (the machine's address may have changed since).
kube::certs::ensure_serving_cert() {
  local name=$1 cn=$2
  shift 2
  local crt="${CERT_DIR}/${name}.crt" key="${CERT_DIR}/${name}.key"
  local host sans="" reuse=true
  local -A seen=()
  kube::certs::_signed_by_ca "${crt}" "${key}" || reuse=false
  for host in "$@"; do
    [[ -n "${host}" && -z "${seen[${host}]:-}" ]] || continue
    seen[${host}]=1
    if [[ "${host}" =~ ^[0-9.]+$ || "${host}" == *:* ]]; then
      sans+="${sans:+,}IP:${host}"
    else
      sans+="${sans:+,}DNS:${host}"
    fi
    if [[ "${reuse}" == true ]] && ! kube::certs::_covers_host "${crt}" "${host}"; then
      reuse=false
    fi
  done
  [[ "${reuse}" == true ]] && return 0
  kube::log::status "generating serving cert ${name} for ${sans}"
  kube::certs::_sign "${name}" "/CN=${cn}" "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=${sans}"
}

# kube::certs::ensure_client_cert NAME CN [GROUP...]: a client cert
# (CN = user, one O per group), reused when its subject is unchanged.
kube::certs::ensure_client_cert() {
  local name=$1 cn=$2
  shift 2
  local crt="${CERT_DIR}/${name}.crt" key="${CERT_DIR}/${name}.key"
  local subject current
  subject="$(kube::certs::_subject "${cn}" "$@")"
  if kube::certs::_signed_by_ca "${crt}" "${key}"; then
    current="$(openssl x509 -in "${crt}" -noout -subject -nameopt compat 2>/dev/null)" || current=""
    [[ "${current}" == "subject=${subject}" ]] && return 0
  fi
  kube::log::status "generating client cert ${name} for ${subject}"
  kube::certs::_sign "${name}" "${subject}" "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
}

# kube::certs::ensure_service_account_keys: sa.key (PKCS#8 RSA 2048, signs
# tokens) and sa.pub (verifies them), reused when they match. They do not
# depend on the CA: keeping them keeps issued tokens valid.
kube::certs::ensure_service_account_keys() {
  kube::certs::ensure_cert_dir || return 1
  local key="${CERT_DIR}/sa.key" pub="${CERT_DIR}/sa.pub" want
  if [[ -s "${key}" && -s "${pub}" ]] &&
    want="$(openssl pkey -in "${key}" -pubout 2>/dev/null)" &&
    [[ "${want}" == "$(<"${pub}")" ]]; then
    return 0
  fi
  kube::log::status "generating service-account key pair"
  local tmp
  tmp="$(mktemp -d "${CERT_DIR}/.tmp-sa.XXXXXX")" || return 1
  if kube::certs::_openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "${tmp}/key" &&
    kube::certs::_openssl pkey -in "${tmp}/key" -pubout -out "${tmp}/pub" &&
    chmod 600 "${tmp}/key" && chmod 644 "${tmp}/pub" &&
    mv -f "${tmp}/key" "${key}" && mv -f "${tmp}/pub" "${pub}"; then
    rm -rf "${tmp}"
    return 0
  fi
  rm -rf "${tmp}"
  return 1
}

# kube::certs::generate ADVERTISE_IP [EXTRA_HOST...]: everything the
# apiserver and its admin need. The serving cert covers the names pods use
# for the kubernetes Service and its first ClusterIP, loopback, and the
# advertise address; EXTRA_HOST adds more (e.g. API_HOST).
kube::certs::generate() {
  local advertise_ip=$1
  shift
  kube::certs::_defaults
  kube::certs::ensure_ca || return 1
  kube::certs::ensure_serving_cert serving-kube-apiserver kube-apiserver \
    localhost 127.0.0.1 "${advertise_ip}" "${FIRST_SERVICE_CLUSTER_IP}" \
    kubernetes kubernetes.default kubernetes.default.svc \
    "kubernetes.default.svc.${DNS_DOMAIN}" "$@" || return 1
  kube::certs::ensure_client_cert client-admin system:admin system:masters || return 1
  # What kube-apiserver presents to extension API servers (the aggregator's
  # front-proxy identity); they trust it through the requestheader settings.
  kube::certs::ensure_client_cert client-auth-proxy front-proxy-client || return 1
  # What kube-apiserver presents to kubelets (logs, exec, port-forward, proxy).
  kube::certs::ensure_client_cert client-kube-apiserver kube-apiserver system:masters || return 1
  kube::certs::ensure_service_account_keys
}

# kube::certs::write_kubeconfig NAME CLIENT_CERT CLIENT_KEY SERVER: writes
# CERT_DIR/NAME.kubeconfig with the CA and the client pair embedded, so it
# works when copied elsewhere (upstream flattens its kubeconfigs the same
# way). Cluster, user and context are all "local-up-cluster", as upstream's.
kube::certs::write_kubeconfig() {
  local name=$1 client_cert=$2 client_key=$3 server=$4
  kube::certs::_defaults
  local ca_data cert_data key_data
  ca_data="$(base64 -w0 <"${CERT_DIR}/ca.crt")" || return 1
  cert_data="$(base64 -w0 <"${client_cert}")" || return 1
  key_data="$(base64 -w0 <"${client_key}")" || return 1
  local file="${CERT_DIR}/${name}.kubeconfig"
  # Written under a private umask: the file holds a private key.
  (
    umask 077
    cat >"${file}.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority-data: ${ca_data}
    server: ${server}
  name: local-up-cluster
contexts:
- context:
    cluster: local-up-cluster
    user: local-up-cluster
  name: local-up-cluster
current-context: local-up-cluster
preferences: {}
users:
- name: local-up-cluster
  user:
    client-certificate-data: ${cert_data}
    client-key-data: ${key_data}
EOF
  ) || return 1
  mv -f "${file}.tmp" "${file}"
}
