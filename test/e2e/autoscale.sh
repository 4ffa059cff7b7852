# Cases for HorizontalPodAutoscalers served in autoscaling/v2 (stored) and
# autoscaling/v1 (converted): `kubectl autoscale` writes v1 before kubectl
# 1.33 and v2 from it; both read back in either version. (kubectl 1.33
# drops the version of a short name like hpa.v1.autoscaling, so the full
# resource names are used.) Sourced by run.sh.

case_autoscale_two_versions() {
  local out
  e2e::ok -n "${NS}" create deployment scaled --image=busybox >/dev/null
  out="$(e2e::ok -n "${NS}" autoscale deployment scaled --cpu-percent=50 --min=2 --max=5)"
  e2e::assert_eq "kubectl autoscale" "horizontalpodautoscaler.autoscaling/scaled autoscaled" "${out}"
  out="$(e2e::ok -n "${NS}" get hpa scaled)"
  e2e::assert_match "kubectl get hpa" '^scaled Deployment/scaled cpu: <unknown>/50% 2 5 0 ' "$(e2e::row "${out}" scaled)"
  out="$(e2e::ok -n "${NS}" get horizontalpodautoscalers.v2.autoscaling scaled -o jsonpath='{.spec.metrics[0].resource.target.averageUtilization} {.spec.minReplicas}')"
  e2e::assert_eq "the v2 form" "50 2" "${out}"
  out="$(e2e::ok -n "${NS}" get horizontalpodautoscalers.v1.autoscaling scaled -o jsonpath='{.apiVersion} {.spec.targetCPUUtilizationPercentage}')"
  e2e::assert_eq "the v1 form" "autoscaling/v1 50" "${out}"

  # A v1 object without a target gets upstream's 80 %; a memory target
  # written in v2 rides in v1's metrics annotation and comes back.
  printf '{"apiVersion":"autoscaling/v1","kind":"HorizontalPodAutoscaler","metadata":{"name":"plain"},"spec":{"scaleTargetRef":{"apiVersion":"apps/v1","kind":"Deployment","name":"scaled"},"maxReplicas":3}}' |
    e2e::ok -n "${NS}" create -f - >/dev/null
  out="$(e2e::ok -n "${NS}" get horizontalpodautoscalers.v2.autoscaling plain -o jsonpath='{.spec.metrics[0].resource.target.averageUtilization} {.spec.minReplicas}')"
  e2e::assert_eq "v1 defaults" "80 1" "${out}"
  e2e::ok -n "${NS}" patch horizontalpodautoscalers.v2.autoscaling plain --type=json \
    -p '[{"op":"add","path":"/spec/metrics/-","value":{"type":"Resource","resource":{"name":"memory","target":{"type":"AverageValue","averageValue":"100Mi"}}}}]' >/dev/null
  out="$(e2e::ok -n "${NS}" get horizontalpodautoscalers.v1.autoscaling plain -o jsonpath='{.metadata.annotations.autoscaling\.alpha\.kubernetes\.io/metrics}')"
  e2e::assert_eq "v1's metrics annotation" '[{"resource":{"name":"memory","targetAverageValue":"100Mi"},"type":"Resource"}]' "${out}"
  e2e::ok -n "${NS}" label horizontalpodautoscalers.v1.autoscaling plain tier=web >/dev/null
  # (Written through v1, the annotation's metrics come first, as upstream's
  # conversion orders them.)
  out="$(e2e::ok -n "${NS}" get horizontalpodautoscalers.v2.autoscaling plain -o jsonpath='{.spec.metrics[?(@.resource.name=="memory")].resource.target.averageValue} {.metadata.labels.tier}')"
  e2e::assert_eq "a v1 update keeps the v2 metrics" "100Mi web" "${out}"
  out="$(e2e::ok -n "${NS}" get hpa plain)"
  e2e::assert_match "both targets in the table" 'memory: <unknown>/100Mi, cpu: <unknown>/80%' "${out}"
}
