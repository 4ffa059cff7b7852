# Cases that need the OpenAPI documents (/openapi/v2 as gnostic protobuf,
# /openapi/v3): explain, diff, client-side validation. apply_twice (run.sh)
# needs them too. Sourced by run.sh; they run after apply_twice, whose
# ConfigMap `applied` (data k: v2) case_diff compares with.

case_explain() {
  local out
  out="$(e2e::ok explain pods.spec.containers)"
  e2e::assert_match "explain names the kind" $'(^|\n)KIND: *Pod(\n|$)' "${out}"
  e2e::assert_match "explain names the field" $'(^|\n)FIELD: *containers <\\[\\](Object|Container)>' "${out}"
  e2e::assert_match "explain lists the container's fields" $'\n   *image\t?[ <]' "${out}"
  out="$(e2e::ok explain deployment --recursive)"
  e2e::assert_match "explain --recursive names the kind" $'(^|\n)KIND: *Deployment(\n|$)' \
    "$(head -n 5 <<<"${out}")"
  e2e::assert_match "explain --recursive lists the spec" $'\n  spec\t<(DeploymentSpec|Object)>' "${out}"
  e2e::assert_match "explain --recursive reaches the containers" $'\n +containers\t<\\[\\]' "${out}"
}

case_diff() {
  local manifest out
  manifest="$(e2e::manifest applied)"
  out="$(e2e::expect_exit 0 diff -f "${manifest}")"
  e2e::assert_eq "diff of what is live" "" "${out}"
  sed 's/k: v2/k: v3/' "${manifest}" >"${manifest}.changed"
  out="$(e2e::expect_exit 1 diff -f "${manifest}.changed")"
  e2e::assert_match "diff shows the removed value" $'(^|\n)-  k: v2(\n|$)' "${out}"
  e2e::assert_match "diff shows the new value" $'(^|\n)\\+  k: v3(\n|$)' "${out}"
  # diff asks for a server-side dry run: nothing is stored.
  out="$(e2e::ok -n "${NS}" get cm applied -o jsonpath='{.data.k}')"
  e2e::assert_eq "diff changed nothing" v2 "${out}"
}

case_validate() {
  local manifest out
  manifest="$(e2e::manifest invalid)"
  cat >"${manifest}" <<EOF
apiVersion: v1
kind: ConfigMap
metadata:
  name: invalid
  namespace: ${NS}
bogusField: 1
data:
  k: v
EOF
  out="$(e2e::expect_exit 1 create --validate=true -f "${manifest}")"
  e2e::assert_match "an unknown field is refused" 'unknown field "bogusField"' "${out}"
  out="$(e2e::expect_exit 1 apply -f "${manifest}")"
  e2e::assert_match "apply refuses it too" 'unknown field "bogusField"' "${out}"
  out="$(e2e::ok create --validate=false -f "${manifest}")"
  e2e::assert_eq "--validate=false drops it" "configmap/invalid created" "${out}"
}
