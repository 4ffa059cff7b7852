# Server-side apply with the real kubectl: ownership in managedFields,
# conflicts between managers, --force-conflicts, and fields an applier
# stops sending being removed. Sourced by run.sh.

ssa_manifest() {
  # ssa_manifest FILE REPLICAS [LABEL]
  {
    echo "apiVersion: apps/v1"
    echo "kind: Deployment"
    echo "metadata:"
    echo "  name: ssa"
    echo "  namespace: ${NS}"
    if [[ -n "${3:-}" ]]; then
      echo "  labels: {tier: $3}"
    fi
    echo "spec:"
    echo "  replicas: $2"
    echo "  selector: {matchLabels: {app: ssa}}"
    echo "  template:"
    echo "    metadata: {labels: {app: ssa}}"
    echo "    spec:"
    echo "      containers: [{name: web, image: nginx}]"
  } >"$1"
}

case_server_side_apply() {
  local manifest out
  manifest="$(e2e::manifest ssa)"
  ssa_manifest "${manifest}" 1 web
  out="$(e2e::ok apply --server-side -f "${manifest}")"
  e2e::assert_eq "server-side apply creates" "deployment.apps/ssa serverside-applied" "${out}"
  out="$(e2e::ok apply --server-side -f "${manifest}")"
  e2e::assert_eq "server-side apply again" "deployment.apps/ssa serverside-applied" "${out}"
  out="$(e2e::ok -n "${NS}" get deploy ssa -o json --show-managed-fields |
    jq -r '.metadata.managedFields[] | "\(.manager) \(.operation) \(.fieldsV1["f:spec"]["f:replicas"] != null)"')"
  e2e::assert_eq "kubectl owns replicas by Apply" "kubectl Apply true" "${out}"

  ssa_manifest "${manifest}.other" 3
  out="$(e2e::expect_exit 1 apply --server-side --field-manager=ci -f "${manifest}.other")"
  e2e::assert_match "a second manager conflicts" 'conflict with "kubectl": \.spec\.replicas' "${out}"
  e2e::assert_match "kubectl explains how to resolve it" 'force-conflicts' "${out}"
  e2e::ok apply --server-side --field-manager=ci --force-conflicts -f "${manifest}.other" >/dev/null
  out="$(e2e::ok -n "${NS}" get deploy ssa -o jsonpath='{.spec.replicas}')"
  e2e::assert_eq "forced apply took replicas" 3 "${out}"

  # kubectl stops sending the label; nobody else owns it, so it goes.
  ssa_manifest "${manifest}" 3
  e2e::ok apply --server-side -f "${manifest}" >/dev/null
  out="$(e2e::ok -n "${NS}" get deploy ssa -o jsonpath='{.metadata.labels.tier}')"
  e2e::assert_eq "a field the applier dropped is removed" "" "${out}"
  # kubectl scale is an Update by another manager: replicas move to it.
  e2e::ok -n "${NS}" scale deploy ssa --replicas=2 >/dev/null
  out="$(e2e::ok -n "${NS}" get deploy ssa -o json --show-managed-fields |
    jq -r '[.metadata.managedFields[] | select(.fieldsV1["f:spec"]["f:replicas"] != null) | .manager] | join(",")')"
  e2e::assert_match "scale took replicas over" '^kubectl' "${out}"
  e2e::ok -n "${NS}" delete deploy ssa >/dev/null
}
