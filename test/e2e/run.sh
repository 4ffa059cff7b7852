#!/usr/bin/env bash
# End-to-end suite: starts a private etcd + kube-apiserver and drives it with
# the real kubectl of each version in KUBECTL_VERSIONS, asserting the output
# upstream's server gives. Each case is a function; a failing case prints
# what it got and the suite goes on. The last line is "N passed, M failed";
# the exit status is non-zero if any case failed.
#
# Usage: test/e2e/run.sh   (knobs: see test/e2e/lib.sh)

set -euo pipefail

# shellcheck source=test/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=test/e2e/typed_creates.sh
source "$(dirname "${BASH_SOURCE[0]}")/typed_creates.sh"
# shellcheck source=test/e2e/tokens.sh
source "$(dirname "${BASH_SOURCE[0]}")/tokens.sh"
# shellcheck source=test/e2e/rbac.sh
source "$(dirname "${BASH_SOURCE[0]}")/rbac.sh"
# shellcheck source=test/e2e/openapi.sh
source "$(dirname "${BASH_SOURCE[0]}")/openapi.sh"
# shellcheck source=test/e2e/crds.sh
source "$(dirname "${BASH_SOURCE[0]}")/crds.sh"
# shellcheck source=test/e2e/drain.sh
source "$(dirname "${BASH_SOURCE[0]}")/drain.sh"
# shellcheck source=test/e2e/events.sh
source "$(dirname "${BASH_SOURCE[0]}")/events.sh"
# shellcheck source=test/e2e/ssa.sh
source "$(dirname "${BASH_SOURCE[0]}")/ssa.sh"
# shellcheck source=test/e2e/aggregation.sh
source "$(dirname "${BASH_SOURCE[0]}")/aggregation.sh"
# shellcheck source=test/e2e/autoscale.sh
source "$(dirname "${BASH_SOURCE[0]}")/autoscale.sh"
# shellcheck source=test/e2e/pod_security.sh
source "$(dirname "${BASH_SOURCE[0]}")/pod_security.sh"
# shellcheck source=test/e2e/webhooks.sh
source "$(dirname "${BASH_SOURCE[0]}")/webhooks.sh"

# The oldest and newest supported kubectl: 1.27 sends JSON bodies, 1.33
# protobuf ones for built-in kinds.
KUBECTL_VERSIONS="${KUBECTL_VERSIONS:-1.27 1.33}"

# The cases use these, set per kubectl version by run_version.
NS=""
KUBECTL=""
KUBECTL_MINOR=""

# e2e::manifest NAME: path for a manifest the case writes.
e2e::manifest() {
  echo "${E2E_TMP}/${NS}-$1.yaml"
}

# --- discovery -------------------------------------------------------------

case_version() {
  local out
  out="$(e2e::ok version)"
  # 1.27 prints version.Info{...}; 1.28+ prints "Server Version: v1.x.y".
  e2e::assert_match "kubectl version shows a server version" \
    $'(^|\n)Server Version: (v1\\.[0-9]+\\.[0-9]+|version\\.Info\\{.*GitVersion:"v1\\.[0-9]+\\.[0-9]+)' "${out}"
  out="$(e2e::ok version -o json | jq -r '.serverVersion.major, .serverVersion.gitVersion')"
  e2e::assert_match "serverVersion major and gitVersion" $'^1\nv1\\.[0-9]+\\.[0-9]+' "${out}"
}

case_api_versions() {
  local out
  out="$(e2e::ok api-versions)"
  e2e::assert_line "api-versions lists the core group" v1 "${out}"
  e2e::assert_line "api-versions lists apps/v1" apps/v1 "${out}"
}

case_api_resources() {
  local out
  out="$(e2e::ok api-resources)"
  e2e::assert_eq "api-resources header" "NAME SHORTNAMES APIVERSION NAMESPACED KIND" \
    "$(head -n 1 <<<"${out}" | e2e::squeeze)"
  e2e::assert_eq "api-resources pods row" "pods po v1 true Pod" "$(e2e::row "${out}" pods)"
  e2e::assert_eq "api-resources namespaces row" "namespaces ns v1 false Namespace" \
    "$(e2e::row "${out}" namespaces)"
  out="$(e2e::ok api-resources --api-group=apps -o name)"
  e2e::assert_line "apps resources include deployments" deployments.apps "${out}"
}

# --- namespaces and configmaps -------------------------------------------

case_create_namespace() {
  local out
  out="$(e2e::ok create namespace "${NS}")"
  e2e::assert_eq "create namespace" "namespace/${NS} created" "${out}"
  out="$(e2e::ok get namespace "${NS}" -o jsonpath='{.status.phase}')"
  e2e::assert_eq "new namespace phase" Active "${out}"
  out="$(e2e::expect_exit 1 create namespace "${NS}")"
  e2e::assert_eq "creating it again" \
    "Error from server (AlreadyExists): namespaces \"${NS}\" already exists" "${out}"
}

case_configmap_create() {
  local out
  out="$(e2e::ok -n "${NS}" create configmap x --from-literal=a=b)"
  e2e::assert_eq "create configmap" "configmap/x created" "${out}"
  out="$(e2e::ok -n "${NS}" get cm x -o jsonpath='{.data.a}')"
  e2e::assert_eq "configmap data" b "${out}"
}

case_configmap_table() {
  local out
  out="$(e2e::ok -n "${NS}" get cm)"
  e2e::assert_eq "get cm header" "NAME DATA AGE" "$(head -n 1 <<<"${out}" | e2e::squeeze)"
  e2e::assert_match "get cm row for x" '^x 1 [0-9]+[smhd]' "$(e2e::row "${out}" x)"
  out="$(e2e::ok -n "${NS}" get cm x --no-headers)"
  e2e::assert_match "get cm x --no-headers" '^x 1 [0-9]+[smhd]$' "$(e2e::squeeze <<<"${out}")"
}

case_apply_twice() {
  local manifest out
  manifest="$(e2e::manifest applied)"
  cat >"${manifest}" <<EOF
apiVersion: v1
kind: ConfigMap
metadata:
  name: applied
  namespace: ${NS}
data:
  k: v1
EOF
  out="$(e2e::ok apply -f "${manifest}")"
  e2e::assert_eq "first apply" "configmap/applied created" "${out}"
  out="$(e2e::ok apply -f "${manifest}")"
  e2e::assert_eq "second apply" "configmap/applied unchanged" "${out}"
  sed -i 's/k: v1/k: v2/' "${manifest}"
  out="$(e2e::ok apply -f "${manifest}")"
  e2e::assert_eq "apply of a change" "configmap/applied configured" "${out}"
  out="$(e2e::ok -n "${NS}" get cm applied -o jsonpath='{.data.k}')"
  e2e::assert_eq "applied data" v2 "${out}"
}

case_label_annotate() {
  local out
  out="$(e2e::ok -n "${NS}" label cm x env=test)"
  e2e::assert_eq "label" "configmap/x labeled" "${out}"
  out="$(e2e::ok -n "${NS}" get cm x -o jsonpath='{.metadata.labels.env}')"
  e2e::assert_eq "label value" test "${out}"
  out="$(e2e::ok -n "${NS}" get cm -l env=test -o name)"
  e2e::assert_eq "select by label" "configmap/x" "${out}"
  out="$(e2e::expect_exit 1 -n "${NS}" label cm x env=prod)"
  e2e::assert_eq "relabel without --overwrite" \
    "error: 'env' already has a value (test), and --overwrite is false" "${out}"
  out="$(e2e::ok -n "${NS}" annotate cm x note=hello)"
  # kubectl 1.27 names the operation "annotate"; 1.28 fixed it to "annotated".
  local verb=annotated
  (( KUBECTL_MINOR < 28 )) && verb=annotate
  e2e::assert_eq "annotate" "configmap/x ${verb}" "${out}"
  out="$(e2e::expect_exit 1 -n "${NS}" annotate cm x note=other)"
  e2e::assert_eq "re-annotate without --overwrite" \
    "error: --overwrite is false but found the following declared annotation(s): 'note' already has a value (hello)" "${out}"
  out="$(e2e::ok -n "${NS}" get cm x -o jsonpath='{.metadata.annotations.note}')"
  e2e::assert_eq "annotation value" hello "${out}"
  out="$(e2e::ok -n "${NS}" label cm x env-)"
  e2e::assert_eq "remove label" "configmap/x unlabeled" "${out}"
  out="$(e2e::ok -n "${NS}" get cm -l env=test -o name)"
  e2e::assert_eq "label selector after removal" "" "${out}"
}

case_output_formats() {
  local out
  out="$(e2e::ok -n "${NS}" get cm x -o yaml)"
  e2e::assert_line "yaml apiVersion" "apiVersion: v1" "${out}"
  e2e::assert_line "yaml kind" "kind: ConfigMap" "${out}"
  e2e::assert_line "yaml data" "  a: b" "${out}"
  e2e::assert_line "yaml name" "  name: x" "${out}"
  e2e::assert_line "yaml namespace" "  namespace: ${NS}" "${out}"

  out="$(e2e::ok -n "${NS}" get cm x -o json |
    jq -r '.apiVersion, .kind, .metadata.name, .metadata.namespace, .data.a')"
  e2e::assert_eq "json fields" "$(printf 'v1\nConfigMap\nx\n%s\nb' "${NS}")" "${out}"
  out="$(e2e::ok -n "${NS}" get cm x -o json |
    jq -r '[(.metadata.uid | length > 0), (.metadata.resourceVersion | length > 0),
            (.metadata.creationTimestamp | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$"))] | all')"
  e2e::assert_eq "server-set metadata (uid, resourceVersion, creationTimestamp)" true "${out}"

  out="$(e2e::ok -n "${NS}" get cm x -o name)"
  e2e::assert_eq "-o name" "configmap/x" "${out}"
  out="$(e2e::ok -n "${NS}" get cm x -o custom-columns=NAME:.metadata.name | e2e::squeeze)"
  e2e::assert_eq "-o custom-columns" "$(printf 'NAME\nx')" "${out}"
  out="$(e2e::ok -n "${NS}" get cm x -o custom-columns=NAME:.metadata.name,A:.data.a | e2e::squeeze)"
  e2e::assert_eq "-o custom-columns, two columns" "$(printf 'NAME A\nx b')" "${out}"
}

case_sort_by() {
  local manifest out
  manifest="$(e2e::manifest sort)"
  # Created out of order; .data.k runs opposite to the names.
  cat >"${manifest}" <<EOF
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: ConfigMap, metadata: {name: c-sort, namespace: ${NS}, labels: {sort: "yes"}}, data: {k: "1"}}
- {apiVersion: v1, kind: ConfigMap, metadata: {name: a-sort, namespace: ${NS}, labels: {sort: "yes"}}, data: {k: "3"}}
- {apiVersion: v1, kind: ConfigMap, metadata: {name: b-sort, namespace: ${NS}, labels: {sort: "yes"}}, data: {k: "2"}}
EOF
  out="$(e2e::ok create -f "${manifest}")"
  e2e::assert_eq "create a List" \
    "$(printf 'configmap/c-sort created\nconfigmap/a-sort created\nconfigmap/b-sort created')" "${out}"
  out="$(e2e::ok -n "${NS}" get cm -l sort=yes --sort-by=.metadata.name -o name)"
  e2e::assert_eq "--sort-by=.metadata.name -o name" \
    "$(printf 'configmap/a-sort\nconfigmap/b-sort\nconfigmap/c-sort')" "${out}"
  # Sorting a table needs the objects in its rows (includeObject=Object).
  out="$(e2e::ok -n "${NS}" get cm -l sort=yes --sort-by=.metadata.name | awk 'NR > 1 { print $1 }')"
  e2e::assert_eq "--sort-by=.metadata.name table" "$(printf 'a-sort\nb-sort\nc-sort')" "${out}"
  out="$(e2e::ok -n "${NS}" get cm -l sort=yes --sort-by=.data.k | awk 'NR > 1 { print $1 }')"
  e2e::assert_eq "--sort-by=.data.k table" "$(printf 'c-sort\nb-sort\na-sort')" "${out}"
}

case_watch() {
  local events="${E2E_TMP}/${NS}-watch.out" watcher
  e2e::ok -n "${NS}" create configmap watched --from-literal=v=1 >/dev/null
  # The watch runs in the background, bounded by KC's timeout, and prints
  # .data.v for the initial object and for every event.
  "${KC[@]}" -n "${NS}" get cm watched -w -o jsonpath='{.data.v}{"\n"}' >"${events}" 2>&1 &
  watcher=$!
  e2e::wait_until "the watch to print the initial object" 10 grep -qx 1 "${events}"
  local out
  out="$(e2e::ok -n "${NS}" patch cm watched --type=merge -p '{"data":{"v":"2"}}')"
  e2e::assert_eq "patch" "configmap/watched patched" "${out}"
  e2e::wait_until "the watch to print the update" 10 grep -qx 2 "${events}"
  kill "${watcher}" 2>/dev/null || true
  wait "${watcher}" 2>/dev/null || true
  e2e::assert_eq "watch output" "$(printf '1\n2')" "$(<"${events}")"
}

case_delete_configmap() {
  local out
  out="$(e2e::ok -n "${NS}" delete cm x)"
  # Newer kubectl versions may name the namespace too.
  e2e::assert_match "delete" "^configmap \"x\" deleted( from ${NS} namespace)?$" "${out}"
  out="$(e2e::expect_exit 1 -n "${NS}" get cm x)"
  e2e::assert_eq "get after delete" 'Error from server (NotFound): configmaps "x" not found' "${out}"
}

case_empty_namespace() {
  local empty="${NS}-empty" out
  e2e::ok create namespace "${empty}" >/dev/null
  out="$(e2e::expect_exit 0 -n "${empty}" get pods)"
  e2e::assert_eq "get pods in an empty namespace" "No resources found in ${empty} namespace." "${out}"
}

case_namespace_isolation() {
  local other="${NS}-other" out
  e2e::ok create namespace "${other}" >/dev/null
  e2e::ok -n "${NS}" create configmap iso --from-literal=a=1 >/dev/null
  e2e::ok -n "${other}" create configmap iso --from-literal=a=2 >/dev/null
  out="$(e2e::ok -n "${NS}" get cm iso -o jsonpath='{.data.a}')"
  e2e::assert_eq "iso in ${NS}" 1 "${out}"
  out="$(e2e::ok -n "${other}" get cm iso -o jsonpath='{.data.a}')"
  e2e::assert_eq "iso in ${other}" 2 "${out}"

  out="$(e2e::ok get cm --all-namespaces)"
  e2e::assert_eq "get -A header" "NAMESPACE NAME DATA AGE" "$(head -n 1 <<<"${out}" | e2e::squeeze)"
  out="$(e2e::squeeze <<<"${out}" | awk -v a="${NS}" -v b="${other}" \
    '$2 == "iso" && ($1 == a || $1 == b) { print $1, $2, $3 }' | sort)"
  e2e::assert_eq "get -A rows" "$(printf '%s iso 1\n%s iso 1' "${NS}" "${other}")" "${out}"

  e2e::ok -n "${NS}" delete cm iso >/dev/null
  out="$(e2e::expect_exit 1 -n "${NS}" get cm iso)"
  e2e::assert_eq "deleted in ${NS}" 'Error from server (NotFound): configmaps "iso" not found' "${out}"
  out="$(e2e::ok -n "${other}" get cm iso -o jsonpath='{.data.a}')"
  e2e::assert_eq "untouched in ${other}" 2 "${out}"
}

# --- deployments -------------------------------------------------------------

case_deployment() {
  local manifest out
  manifest="$(e2e::manifest deploy)"
  cat >"${manifest}" <<EOF
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: ${NS}
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: main
        image: busybox
        command: ["sleep", "3600"]
EOF
  out="$(e2e::ok create -f "${manifest}")"
  e2e::assert_eq "create deployment" "deployment.apps/web created" "${out}"
  out="$(e2e::ok -n "${NS}" get deploy)"
  e2e::assert_eq "get deploy header" "NAME READY UP-TO-DATE AVAILABLE AGE" \
    "$(head -n 1 <<<"${out}" | e2e::squeeze)"
  e2e::assert_match "get deploy row" '^web [0-9]+/1 [0-9]+ [0-9]+ [0-9]+[smhd]$' "$(e2e::row "${out}" web)"
  # Defaults upstream's apps/v1 defaulting fills in.
  out="$(e2e::ok -n "${NS}" get deploy web -o json | jq -r '[.spec.strategy.type,
    .spec.strategy.rollingUpdate.maxSurge, .spec.strategy.rollingUpdate.maxUnavailable,
    .spec.revisionHistoryLimit, .spec.progressDeadlineSeconds,
    .spec.template.spec.containers[0].imagePullPolicy,
    .spec.template.spec.restartPolicy] | map(tostring) | join(" ")')"
  e2e::assert_eq "deployment defaults" "RollingUpdate 25% 25% 10 600 Always Always" "${out}"
}

case_scale() {
  local out
  out="$(e2e::ok -n "${NS}" scale deploy web --replicas=3)"
  e2e::assert_eq "scale" "deployment.apps/web scaled" "${out}"
  out="$(e2e::ok -n "${NS}" get deploy web -o jsonpath='{.spec.replicas}')"
  e2e::assert_eq "spec.replicas after scale" 3 "${out}"
  out="$(e2e::ok -n "${NS}" get deploy web --no-headers)"
  e2e::assert_match "get deploy after scale" '^web [0-9]+/3 ' "$(e2e::squeeze <<<"${out}")"
}

# --- authentication ------------------------------------------------------------

case_auth_whoami() {
  # kubectl 1.27 asks for authentication.k8s.io/v1beta1, which the server also serves.
  local out
  out="$(e2e::ok auth whoami | e2e::squeeze)"
  e2e::assert_eq "auth whoami" "$(printf 'ATTRIBUTE VALUE\nUsername system:admin\nGroups [system:masters system:authenticated]')" "${out}"
  out="$(e2e::ok auth whoami -o jsonpath='{.status.userInfo.username}')"
  e2e::assert_eq "auth whoami username" system:admin "${out}"
}

# run_version VERSION: every case with kubectl VERSION, in its own namespace.
# Order matters: later cases use what earlier ones created.
run_version() {
  local version=$1
  if ! e2e::use_kubectl "${version}"; then
    E2E_FAILED=$((E2E_FAILED + 1))
    E2E_FAILURES+=("kubectl ${version}: binary not found")
    return 0
  fi
  NS="e2e-${version//./-}"
  echo "=== kubectl ${version} ($("${KUBECTL}" version --client -o json 2>/dev/null |
    jq -r .clientVersion.gitVersion)), namespace ${NS}"
  local c
  for c in \
    version api_versions api_resources \
    create_namespace configmap_create configmap_table apply_twice explain diff validate \
    label_annotate output_formats sort_by watch delete_configmap \
    empty_namespace namespace_isolation \
    deployment scale \
    auth_whoami typed_creates ephemeral_container service_account_token crd_lifecycle crd_name_conflict drain_with_budget events_two_versions \
    server_side_apply apiservices autoscale_two_versions pod_security admission_webhooks rbac; do
    e2e::run_case "${version} ${c//_/ }" "case_${c}"
  done
}

main() {
  kube::util::ensure_packages etcd-server openssl jq curl
  trap e2e::teardown EXIT
  if ! e2e::build_apiserver || ! e2e::setup_cluster; then
    echo "FAIL  cluster setup: see the messages above"
    e2e::show_logs
    E2E_FAILED=1
    E2E_FAILURES+=("cluster setup")
  else
    local version
    for version in ${KUBECTL_VERSIONS}; do
      run_version "${version}"
    done
    (( E2E_FAILED > 0 )) && e2e::show_logs
  fi
  # Tear down before the summary so that its line stays the last one.
  e2e::teardown 2>&1
  trap - EXIT
  e2e::summary
  (( E2E_FAILED == 0 ))
}

main "$@"
