# Cases for PodSecurity admission: a namespace labelled
# pod-security.kubernetes.io/enforce=restricted refuses `kubectl run` with
# upstream's message, a Deployment is created with kubectl showing the
# warning, and an invalid level is refused. Sourced by run.sh.

psa_refuses() {
  ! kc -n "$1" run probe --image=busybox --dry-run=server >/dev/null 2>&1
}

case_pod_security() {
  local ns="${NS}-psa" out
  e2e::ok create namespace "${ns}" >/dev/null
  e2e::ok label namespace "${ns}" pod-security.kubernetes.io/enforce=restricted \
    pod-security.kubernetes.io/warn=restricted >/dev/null
  e2e::wait_until "the namespace's enforce level" 10 psa_refuses "${ns}"
  out="$(e2e::expect_exit 1 -n "${ns}" run p --image=busybox)"
  e2e::assert_match "kubectl run is refused" \
    'Error from server \(Forbidden\): pods "p" is forbidden: violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false \(container "p" must set securityContext.allowPrivilegeEscalation=false\), unrestricted capabilities' \
    "${out}"
  out="$(kc -n "${ns}" create deployment web --image=busybox 2>&1)"
  e2e::assert_match "kubectl shows the warning" 'Warning: would violate PodSecurity "restricted:latest": allowPrivilegeEscalation != false' "${out}"
  e2e::assert_match "the Deployment is created" 'deployment.apps/web created' "${out}"
  out="$(e2e::expect_exit 1 label namespace "${ns}" --overwrite pod-security.kubernetes.io/enforce=strict)"
  e2e::assert_match "an invalid level" 'must be one of privileged, baseline, restricted' "${out}"
  e2e::ok delete namespace "${ns}" --wait=false >/dev/null
}
