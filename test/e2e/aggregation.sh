# APIServices with the real kubectl: the built-in groups are Local and
# available; one whose Service is missing is listed as unavailable with
# upstream's reason. Sourced by run.sh.

apiservice_reason_is() {
  [[ "$("${KC[@]}" get apiservice "$1" -o jsonpath='{.status.conditions[0].reason}' 2>/dev/null)" == "$2" ]]
}

case_apiservices() {
  local out manifest name="v1.e2e-${NS}.example.com"
  out="$(e2e::ok get apiservices v1.apps)"
  e2e::assert_eq "local APIService row" "v1.apps Local True" \
    "$(e2e::row "${out}" v1.apps | awk '{print $1, $2, $3}')"
  out="$(e2e::ok -n kube-system get configmap extension-apiserver-authentication \
    -o jsonpath='{.data.requestheader-allowed-names} {.data.requestheader-username-headers}')"
  e2e::assert_eq "requestheader settings are published" '["front-proxy-client"] ["X-Remote-User"]' "${out}"
  manifest="$(e2e::manifest apiservice)"
  {
    echo "apiVersion: apiregistration.k8s.io/v1"
    echo "kind: APIService"
    echo "metadata: {name: ${name}}"
    echo "spec:"
    echo "  group: e2e-${NS}.example.com"
    echo "  version: v1"
    echo "  groupPriorityMinimum: 100"
    echo "  versionPriority: 100"
    echo "  insecureSkipTLSVerify: true"
    echo "  service: {namespace: ${NS}, name: missing}"
  } >"${manifest}"
  e2e::ok create -f "${manifest}" >/dev/null
  e2e::wait_until "APIService reports the missing service" 20 apiservice_reason_is "${name}" ServiceNotFound
  out="$(e2e::ok get apiservice "${name}")"
  e2e::assert_eq "unavailable APIService row" "${name} ${NS}/missing False (ServiceNotFound)" \
    "$(e2e::row "${out}" "${name}" | awk '{print $1, $2, $3, $4}')"
  e2e::ok delete apiservice "${name}" >/dev/null
}
