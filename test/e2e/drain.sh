# Cases for pod eviction and PodDisruptionBudgets, driven by `kubectl drain`:
# a budget that allows no disruption makes the eviction a 429 that drain
# retries; one that allows them lets drain evict every pod. The disruption
# controller does not run here, so the budgets' status is written by hand.
# Sourced by run.sh.

# drain_pod NAME NODE: a pod bound to NODE, Running and Ready.
drain_pod() {
  printf '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"%s","namespace":"%s","labels":{"app":"drainme"}},"spec":{"nodeName":"%s","containers":[{"name":"c","image":"busybox"}]}}' \
    "$1" "${NS}" "$2" | e2e::ok create -f - >/dev/null
  e2e::ok -n "${NS}" patch pod "$1" --subresource=status --type=merge \
    -p '{"status":{"phase":"Running","conditions":[{"type":"Ready","status":"True"}]}}' >/dev/null
}

# pdb_status ALLOWED: sets the drain budget's status as the disruption controller would.
pdb_status() {
  e2e::ok -n "${NS}" patch pdb drain-guard --subresource=status --type=merge \
    -p "{\"status\":{\"observedGeneration\":1,\"disruptionsAllowed\":$1,\"currentHealthy\":2,\"desiredHealthy\":1,\"expectedPods\":2}}" >/dev/null
}

case_drain_with_budget() {
  local node out
  node="node-${NS}"
  printf '{"apiVersion":"v1","kind":"Node","metadata":{"name":"%s"}}' "${node}" | e2e::ok create -f - >/dev/null
  drain_pod drain-a "${node}"
  drain_pod drain-b "${node}"
  e2e::ok -n "${NS}" create pdb drain-guard --selector=app=drainme --min-available=1 >/dev/null

  # A budget the controller has not looked at yet refuses evictions.
  out="$(e2e::expect_exit 1 drain "${node}" --force --grace-period=0 --timeout=3s)"
  e2e::assert_match "drain is refused by an unprocessed budget" "Cannot evict pod as it would violate the pod's disruption budget" "${out}"
  e2e::assert_eq "drain cordoned the node" true "$(e2e::ok get node "${node}" -o jsonpath='{.spec.unschedulable}')"

  pdb_status 0
  out="$(e2e::expect_exit 1 drain "${node}" --force --grace-period=0 --timeout=3s)"
  e2e::assert_match "a budget with no disruptions left refuses" "Cannot evict pod as it would violate the pod's disruption budget" "${out}"
  e2e::assert_eq "both pods are still there" "drain-a drain-b" \
    "$(e2e::ok -n "${NS}" get pods -l app=drainme -o jsonpath='{.items[*].metadata.name}')"

  pdb_status 2
  out="$(e2e::ok drain "${node}" --force --grace-period=0 --timeout=30s 2>&1)"
  e2e::assert_match "drain evicts the pods" "node/${node} drained" "${out}"
  e2e::assert_eq "the pods are gone" "" "$(e2e::ok -n "${NS}" get pods -l app=drainme -o name)"
  e2e::assert_eq "the budget spent two disruptions" "0 drain-a drain-b" \
    "$(e2e::ok -n "${NS}" get pdb drain-guard -o json | jq -r '[.status.disruptionsAllowed, (.status.disruptedPods | keys[])] | join(" ")')"
  e2e::ok uncordon "${node}" >/dev/null
  e2e::ok delete node "${node}" >/dev/null
}
