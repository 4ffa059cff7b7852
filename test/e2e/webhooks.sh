# Admission webhooks with the real kubectl and a real HTTPS webhook
# (test/e2e/webhook/server.py, the part upstream's e2e tests give agnhost):
# webhook configurations are created with kubectl apply and listed in
# upstream's table, a mutating webhook's label lands in a configmap, a
# validating webhook's refusal reaches kubectl with upstream's message and
# its warning is shown. Sourced by run.sh.

# webhook_refuses NS: the validating webhook is in force in NS.
webhook_refuses() {
  ! kc -n "$1" create configmap forbidden --dry-run=server >/dev/null 2>&1
}

case_admission_webhooks() {
  local dir="${E2E_TMP}/webhook-${NS}" port out manifest pid ca
  command -v python3 >/dev/null || e2e::skip "python3 is needed for the test webhook"
  mkdir -p "${dir}"
  # A self-signed certificate as tutorials make it: openssl marks it a CA,
  # which upstream's client accepts as the webhook's own certificate.
  openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=127.0.0.1" \
    -addext "subjectAltName=IP:127.0.0.1" -keyout "${dir}/key.pem" -out "${dir}/cert.pem" 2>/dev/null
  python3 "$(dirname "${BASH_SOURCE[0]}")/webhook/server.py" "${dir}/cert.pem" "${dir}/key.pem" "${dir}/port" &
  pid=$!
  # shellcheck disable=SC2064 # the pid is fixed now
  trap "kill ${pid} 2>/dev/null" EXIT
  e2e::wait_until "the test webhook listens" 10 test -s "${dir}/port"
  port="$(cat "${dir}/port")"
  ca="$(base64 -w0 <"${dir}/cert.pem")"
  manifest="$(e2e::manifest webhooks)"
  for kind in Mutating Validating; do
    local path=mutate
    [[ "${kind}" == Validating ]] && path=validate
    cat <<YAML
apiVersion: admissionregistration.k8s.io/v1
kind: ${kind}WebhookConfiguration
metadata: {name: e2e-${NS}-${path}}
webhooks:
- name: ${path}.e2e.example.com
  clientConfig: {url: "https://127.0.0.1:${port}/${path}", caBundle: "${ca}"}
  rules:
  - {operations: [CREATE, UPDATE], apiGroups: [""], apiVersions: [v1], resources: [configmaps]}
  namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: ${NS}}}
  sideEffects: None
  admissionReviewVersions: [v1]
---
YAML
  done >"${manifest}"
  out="$(e2e::ok apply -f "${manifest}")"
  e2e::assert_match "kubectl apply creates both" \
    "mutatingwebhookconfiguration.admissionregistration.k8s.io/e2e-${NS}-mutate created"$'\n'"validatingwebhookconfiguration.admissionregistration.k8s.io/e2e-${NS}-validate created" "${out}"
  out="$(e2e::ok get validatingwebhookconfigurations "e2e-${NS}-validate")"
  e2e::assert_eq "table row" "e2e-${NS}-validate 1" "$(e2e::row "${out}" "e2e-${NS}-validate" | awk '{print $1, $2}')"
  e2e::wait_until "the validating webhook" 20 webhook_refuses "${NS}"
  out="$(e2e::expect_exit 1 -n "${NS}" create configmap forbidden)"
  e2e::assert_match "kubectl shows the refusal" \
    'admission webhook "validate.e2e.example.com" denied the request: objects named forbidden are not allowed' "${out}"
  out="$(kc -n "${NS}" create configmap allowed --from-literal=k=v 2>&1)"
  e2e::assert_match "kubectl shows the webhook's warning" 'Warning: validated allowed' "${out}"
  e2e::assert_match "the configmap is created" 'configmap/allowed created' "${out}"
  out="$(e2e::ok -n "${NS}" get configmap allowed -o jsonpath='{.metadata.labels.mutated}')"
  e2e::assert_eq "the mutating webhook's label is stored" "yes" "${out}"
  e2e::ok delete -f "${manifest}" >/dev/null
}
