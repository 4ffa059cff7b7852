# Cases for ServiceAccount tokens: `kubectl create token` (TokenRequest),
# authenticating with the token, TokenReview, and invalidation when the
# ServiceAccount or the bound Pod goes away. Sourced by run.sh.

# e2e::token_kubeconfig TOKEN FILE: a kubeconfig for the e2e cluster that
# authenticates with TOKEN only (no client certificate).
e2e::token_kubeconfig() {
  local server ca
  server="$(kc config view --raw --minify -o jsonpath='{.clusters[0].cluster.server}')"
  ca="$(kc config view --raw --minify -o jsonpath='{.clusters[0].cluster.certificate-authority-data}')"
  cat >"$2" <<EOF2
apiVersion: v1
kind: Config
clusters:
- name: e2e
  cluster: {server: "${server}", certificate-authority-data: "${ca}"}
users:
- name: bot
  user: {token: "$1"}
contexts:
- name: e2e
  context: {cluster: e2e, user: bot}
current-context: e2e
EOF2
}

# as_token FILE ARGS...: kubectl with the token kubeconfig.
as_token() {
  local file=$1
  shift
  timeout "${E2E_CMD_TIMEOUT}" "${KUBECTL}" --kubeconfig="${file}" "$@"
}

case_service_account_token() {
  local token out kubeconfig
  kubeconfig="$(e2e::manifest token-kubeconfig)"
  e2e::ok -n "${NS}" create serviceaccount bot >/dev/null
  token="$(e2e::ok -n "${NS}" create token bot)"
  e2e::assert_match "create token prints a JWT" '^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$' "${token}"
  e2e::token_kubeconfig "${token}" "${kubeconfig}"

  out="$(as_token "${kubeconfig}" auth whoami -o jsonpath='{.status.userInfo.username} {.status.userInfo.groups}')"
  e2e::assert_eq "the token authenticates as the service account" \
    "system:serviceaccount:${NS}:bot [\"system:serviceaccounts\",\"system:serviceaccounts:${NS}\",\"system:authenticated\"]" "${out}"
  # RBAC: nothing until a Role is bound to the service account.
  out="$(as_token "${kubeconfig}" -n "${NS}" get configmaps 2>&1 || true)"
  e2e::assert_match "the service account may not list configmaps yet" \
    "configmaps is forbidden: User \"system:serviceaccount:${NS}:bot\" cannot list resource \"configmaps\"" "${out}"
  e2e::ok -n "${NS}" create role cm-reader --verb=list --resource=configmaps >/dev/null
  e2e::ok -n "${NS}" create rolebinding bot-reads --role=cm-reader --serviceaccount="${NS}:bot" >/dev/null
  e2e::wait_until "the binding to reach the authorizer" 10 \
    bash -c "'${KUBECTL}' --kubeconfig='${kubeconfig}' -n '${NS}' get configmaps >/dev/null 2>&1"

  out="$(printf '{"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","spec":{"token":"%s"}}' "${token}" |
    e2e::ok create --validate=false -f - -o jsonpath='{.status.authenticated} {.status.user.username}')"
  e2e::assert_eq "TokenReview accepts the token" "true system:serviceaccount:${NS}:bot" "${out}"
  out="$(e2e::ok create --validate=false -f - -o jsonpath='{.status.authenticated}' <<<'{"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","spec":{"token":"e30.e30.e30"}}')"
  e2e::assert_eq "TokenReview refuses garbage" false "${out}"

  out="$(e2e::expect_exit 1 -n "${NS}" create token bot --duration=1m)"
  e2e::assert_match "too short a duration is invalid" 'may not specify a duration less than 10 minutes' "${out}"

  # A token bound to a pod dies with the pod (an unscheduled pod goes at once).
  e2e::ok -n "${NS}" run holder --image=busybox --restart=Never \
    --overrides='{"apiVersion":"v1","spec":{"serviceAccountName":"bot"}}' >/dev/null
  token="$(e2e::ok -n "${NS}" create token bot --bound-object-kind=Pod --bound-object-name=holder)"
  e2e::token_kubeconfig "${token}" "${kubeconfig}"
  out="$(as_token "${kubeconfig}" auth whoami -o jsonpath='{.status.userInfo.extra.authentication\.kubernetes\.io/pod-name}')"
  e2e::assert_eq "a pod-bound token names its pod" '["holder"]' "${out}"
  e2e::ok -n "${NS}" delete pod holder --wait=true >/dev/null
  e2e::wait_until "the pod-bound token to be refused" 10 \
    bash -c "! '${KUBECTL}' --kubeconfig='${kubeconfig}' auth whoami >/dev/null 2>&1"

  # Deleting the service account invalidates its tokens.
  token="$(e2e::ok -n "${NS}" create token bot)"
  e2e::token_kubeconfig "${token}" "${kubeconfig}"
  as_token "${kubeconfig}" auth whoami >/dev/null
  e2e::ok -n "${NS}" delete serviceaccount bot >/dev/null
  e2e::wait_until "the token of a deleted service account to be refused" 10 \
    bash -c "! '${KUBECTL}' --kubeconfig='${kubeconfig}' auth whoami >/dev/null 2>&1"
  out="$(as_token "${kubeconfig}" auth whoami 2>&1 || true)"
  e2e::assert_match "refused with Unauthorized" 'Unauthorized' "${out}"
}
