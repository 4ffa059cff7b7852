# Cases for authorization (--authorization-mode=Node,RBAC): the bootstrap
# policy is listed, a user is refused with upstream's message until a Role
# and RoleBinding made with kubectl grant access, `kubectl auth can-i`
# (also --list) answers from the same policy, escalation is refused, and
# impersonation (--as) works for the admin and is itself authorized. Sourced by run.sh.

# can_i ARGS...: kubectl auth can-i's answer ("yes"/"no").
can_i() {
  kc auth can-i "$@" 2>/dev/null || true
}

case_rbac() {
  local ns="${NS}-rbac" out
  e2e::ok create namespace "${ns}" >/dev/null
  out="$(e2e::ok get clusterroles cluster-admin admin edit view system:node-proxier -o name)"
  e2e::assert_eq "the default ClusterRoles" "$(printf 'clusterrole.rbac.authorization.k8s.io/%s\n' cluster-admin admin edit view system:node-proxier)" "${out}"
  out="$(e2e::ok get clusterrolebinding system:basic-user -o jsonpath='{.subjects[0].name} {.roleRef.name}')"
  e2e::assert_eq "the default bindings" "system:authenticated system:basic-user" "${out}"

  e2e::assert_eq "bob may not list pods" no "$(can_i list pods -n "${ns}" --as=bob)"
  out="$(e2e::expect_exit 1 get pods -n "${ns}" --as=bob)"
  e2e::assert_match "refused with upstream's message" \
    "Error from server \\(Forbidden\\): pods is forbidden: User \"bob\" cannot list resource \"pods\" in API group \"\" in the namespace \"${ns}\"" "${out}"

  e2e::ok create role pod-reader -n "${ns}" --verb=get,list,watch --resource=pods >/dev/null
  e2e::ok create rolebinding bob-reads -n "${ns}" --role=pod-reader --user=bob >/dev/null
  e2e::wait_until "the binding to reach the authorizer" 10 \
    bash -c "[[ \"\$('${KUBECTL}' --kubeconfig='${E2E_KUBECONFIG}' auth can-i list pods -n '${ns}' --as=bob)\" == yes ]]"
  out="$(e2e::ok get pods -n "${ns}" --as=bob 2>&1)"
  e2e::assert_match "bob lists pods" "No resources found in ${ns} namespace" "${out}"
  e2e::assert_eq "but not elsewhere" no "$(can_i list pods -n kube-system --as=bob)"
  e2e::assert_eq "and may not delete" no "$(can_i delete pods -n "${ns}" --as=bob)"
  out="$(e2e::ok auth can-i --list -n "${ns}" --as=bob | e2e::squeeze)"
  e2e::assert_match "can-i --list shows the role's rules" 'pods \[\] \[\] \[get list watch\]' "${out}"
  e2e::assert_match "and what every user may do" 'selfsubjectaccessreviews.authorization.k8s.io \[\] \[\] \[create\]' "${out}"

  # bob may now write roles, but only with rules he holds.
  e2e::ok create role role-writer -n "${ns}" --verb=create --resource=roles.rbac.authorization.k8s.io,rolebindings.rbac.authorization.k8s.io >/dev/null
  e2e::ok create rolebinding bob-writes -n "${ns}" --role=role-writer --user=bob >/dev/null
  e2e::wait_until "bob to write roles" 10 \
    bash -c "[[ \"\$('${KUBECTL}' --kubeconfig='${E2E_KUBECONFIG}' auth can-i create roles -n '${ns}' --as=bob)\" == yes ]]"
  out="$(e2e::ok create role reader-copy -n "${ns}" --verb=get --resource=pods --as=bob)"
  e2e::assert_match "a role within his rights" 'role.rbac.authorization.k8s.io/reader-copy created' "${out}"
  out="$(e2e::expect_exit 1 create role deleter -n "${ns}" --verb=delete --resource=pods --as=bob)"
  e2e::assert_match "escalation is refused" \
    'roles.rbac.authorization.k8s.io "deleter" is forbidden: user "bob" \(groups=\["system:authenticated"\]\) is attempting to grant RBAC permissions not currently held:' "${out}"
  e2e::assert_match "naming what is missing" '\{APIGroups:\[""\], Resources:\["pods"\], Verbs:\["delete"\]\}' "${out}"
  out="$(e2e::expect_exit 1 create rolebinding bob-admin -n "${ns}" --clusterrole=cluster-admin --user=bob --as=bob)"
  e2e::assert_match "binding a stronger role is refused" 'rolebindings.rbac.authorization.k8s.io "bob-admin" is forbidden: user "bob"' "${out}"

  # Impersonation is itself authorized: the admin may, bob may not.
  e2e::assert_eq "bob may not impersonate" no "$(can_i impersonate users --as=bob)"
  out="$(e2e::ok auth whoami --as=bob -o jsonpath='{.status.userInfo.username} {.status.userInfo.groups}')"
  e2e::assert_eq "the admin acts as bob" 'bob ["system:authenticated"]' "${out}"
  e2e::ok delete namespace "${ns}" --wait=false >/dev/null
}
