# Cases for CustomResourceDefinitions: a CRD with two served versions, then
# custom-resource CRUD through it (defaulting, pruning, schema validation,
# printer columns, status and scale subresources, None conversion), and
# deletion of the CRD taking its resources along. Sourced by run.sh.

# crd_manifest GROUP FILE: writes the widgets CRD of GROUP to FILE.
crd_manifest() {
  cat >"$2" <<EOF
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.$1
spec:
  group: $1
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd], categories: [all]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
      scale: {specReplicasPath: .spec.replicas, statusReplicasPath: .status.replicas}
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
    - {name: Color, type: string, jsonPath: .spec.color}
    - {name: Age, type: date, jsonPath: .metadata.creationTimestamp}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [size]
            properties:
              size: {type: integer, minimum: 1, maximum: 10}
              color: {type: string, enum: [red, blue], default: blue}
              replicas: {type: integer}
          status:
            type: object
            properties:
              replicas: {type: integer}
  - name: v1beta1
    served: true
    storage: false
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
EOF
}

# widget NAME SPEC: a Widget manifest in the case's namespace, on stdout.
widget() {
  printf 'apiVersion: %s/v1\nkind: Widget\nmetadata: {name: %s, namespace: %s}\nspec: %s\n' \
    "$(crd_group)" "$1" "${NS}" "$2"
}

# The CRD's group is per kubectl version: CRDs are cluster-scoped.
crd_group() {
  echo "${NS}.example.com"
}

# crd_serves GROUP: whether the server serves widgets of GROUP yet.
crd_serves() {
  kc -n "${NS}" get "widgets.$1" >/dev/null 2>&1
}

case_crd_lifecycle() {
  local group manifest out
  group="$(crd_group)"
  manifest="$(e2e::manifest crd)"
  crd_manifest "${group}" "${manifest}"
  e2e::assert_eq "create the CRD" "customresourcedefinition.apiextensions.k8s.io/widgets.${group} created" \
    "$(e2e::ok create -f "${manifest}")"
  e2e::ok wait --for condition=established --timeout=20s "crd/widgets.${group}" >/dev/null
  e2e::assert_eq "the CRD's accepted names" "widgets WidgetList" \
    "$(e2e::ok get crd "widgets.${group}" -o jsonpath='{.status.acceptedNames.plural} {.status.acceptedNames.listKind}')"
  e2e::wait_until "the CRD to serve widgets" 10 crd_serves "${group}"
  out="$(e2e::ok api-resources --api-group="${group}" | e2e::squeeze)"
  e2e::assert_eq "api-resources row" "widgets wd ${group}/v1 true Widget" "$(e2e::row "${out}" widgets)"
  # kubectl 1.29+ explains from OpenAPI v3, where the CRD's schema is published.
  if (( KUBECTL_MINOR >= 29 )); then
    out="$(e2e::ok explain "widgets.${group}.spec")"
    e2e::assert_match "explain names the custom kind" $'(^|\n)KIND: *Widget(\n|$)' "${out}"
    e2e::assert_match "explain lists the schema's fields" $'\n   *size\t?[ <]' "${out}"
  fi

  # Create: defaults applied, validation with upstream's messages.
  widget w1 '{size: 3, replicas: 1}' | e2e::ok create -f - >/dev/null
  e2e::assert_eq "defaulted color" "3 blue" "$(e2e::ok -n "${NS}" get widget w1 -o jsonpath='{.spec.size} {.spec.color}')"
  out="$(widget w2 '{size: 11, color: pink}' | e2e::expect_exit 1 create -f -)"
  e2e::assert_match "size above maximum" 'spec.size: Invalid value: 11: spec.size in body should be less than or equal to 10' "${out}"
  e2e::assert_match "color not in enum" 'spec.color: Unsupported value: "pink": supported values: "red", "blue"' "${out}"
  out="$(widget w3 '{color: red}' | e2e::expect_exit 1 create -f -)"
  e2e::assert_match "required size" 'spec.size: Required value' "${out}"

  # Unknown fields: refused under fieldValidation=Strict, pruned otherwise.
  out="$(widget w4 '{size: 2, bogus: 1}' | e2e::expect_exit 1 create --validate=strict -f -)"
  e2e::assert_match "strict refuses unknown fields" 'unknown field "spec.bogus"' "${out}"
  widget w4 '{size: 2, bogus: 1}' | e2e::ok create --validate=false -f - >/dev/null
  e2e::assert_eq "unknown field pruned" "" "$(e2e::ok -n "${NS}" get widget w4 -o jsonpath='{.spec.bogus}')"

  # Printer columns, short name, category.
  out="$(e2e::ok -n "${NS}" get wd)"
  e2e::assert_eq "printer columns header" "NAME SIZE COLOR AGE" "$(head -n 1 <<<"${out}" | e2e::squeeze)"
  e2e::assert_match "printer columns row" '^w1 3 blue [0-9]+s$' "$(e2e::row "${out}" w1)"
  e2e::assert_match "widgets are in the all category" "widget.${group}/w1" "$(e2e::ok -n "${NS}" get all -o name)"

  # Status and scale subresources.
  e2e::ok -n "${NS}" patch widget w1 --subresource=status --type=merge -p '{"status":{"replicas":1}}' >/dev/null
  e2e::assert_eq "status written through /status" 1 "$(e2e::ok -n "${NS}" get widget w1 -o jsonpath='{.status.replicas}')"
  e2e::ok -n "${NS}" patch widget w1 --type=merge -p '{"status":{"replicas":9}}' >/dev/null
  e2e::assert_eq "status ignored on the main resource" 1 "$(e2e::ok -n "${NS}" get widget w1 -o jsonpath='{.status.replicas}')"
  e2e::assert_eq "scale" "widget.${group}/w1 scaled" "$(e2e::ok -n "${NS}" scale widget w1 --replicas=4)"
  e2e::assert_eq "spec.replicas after scale" 4 "$(e2e::ok -n "${NS}" get widget w1 -o jsonpath='{.spec.replicas}')"

  # The other served version reads the same object (None conversion).
  e2e::assert_eq "read through v1beta1" "${group}/v1beta1 3" \
    "$(e2e::ok -n "${NS}" get "widgets.v1beta1.${group}" w1 -o jsonpath='{.apiVersion} {.spec.size}')"

  # Deleting the CRD removes its resources, then the CRD.
  e2e::ok delete crd "widgets.${group}" --wait=true --timeout=30s >/dev/null
  out="$(e2e::expect_exit 1 get crd "widgets.${group}")"
  e2e::assert_match "the CRD is gone" 'NotFound' "${out}"
  e2e::ok create -f "${manifest}" >/dev/null
  e2e::ok wait --for condition=established --timeout=20s "crd/widgets.${group}" >/dev/null
  e2e::wait_until "the re-created CRD to serve widgets" 10 crd_serves "${group}"
  out="$(e2e::ok -n "${NS}" get "widgets.${group}" 2>&1)"
  e2e::assert_eq "old widgets went with the old CRD" "No resources found in ${NS} namespace." "${out}"

  # A CRD naming a built-in resource is never served, and deleting it
  # deletes none of the built-in's objects (here: the other CRDs).
  printf '{"apiVersion":"apiextensions.k8s.io/v1","kind":"CustomResourceDefinition","metadata":{"name":"customresourcedefinitions.apiextensions.k8s.io"},"spec":{"group":"apiextensions.k8s.io","scope":"Cluster","names":{"plural":"customresourcedefinitions","kind":"Clash"},"versions":[{"name":"v9","served":true,"storage":true,"schema":{"openAPIV3Schema":{"type":"object"}}}]}}' |
    e2e::ok create --validate=false -f - >/dev/null
  e2e::ok delete crd customresourcedefinitions.apiextensions.k8s.io --wait=true --timeout=30s >/dev/null
  e2e::assert_eq "deleting the clashing CRD left the others" "widgets.${group}" \
    "$(e2e::ok get crd "widgets.${group}" -o jsonpath='{.metadata.name}')"
  e2e::ok delete crd "widgets.${group}" --wait=true --timeout=30s >/dev/null
}

# crd_condition NAME TYPE: the status and reason of one condition of a CRD.
crd_condition() {
  "${KC[@]}" get crd "$1" -o jsonpath="{.status.conditions[?(@.type==\"$2\")].status} {.status.conditions[?(@.type==\"$2\")].reason}" 2>/dev/null
}

crd_names_refused() {
  [[ "$(crd_condition "$1" NamesAccepted)" == "False NameConflict" ]]
}

case_crd_name_conflict() {
  local group manifest out
  group="names-$(crd_group)"
  manifest="$(e2e::manifest crd-names)"
  crd_manifest "${group}" "${manifest}"
  e2e::ok create -f "${manifest}" >/dev/null
  e2e::ok wait --for condition=established --timeout=20s "crd/widgets.${group}" >/dev/null
  {
    echo "apiVersion: apiextensions.k8s.io/v1"
    echo "kind: CustomResourceDefinition"
    echo "metadata: {name: gizmos.${group}}"
    echo "spec:"
    echo "  group: ${group}"
    echo "  scope: Namespaced"
    echo "  names: {plural: gizmos, kind: Gizmo, shortNames: [wd]}"
    echo "  versions:"
    echo "  - {name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object}}}"
  } >"${manifest}.second"
  e2e::ok create -f "${manifest}.second" >/dev/null
  e2e::wait_until "the second CRD's names to be refused" 20 crd_names_refused "gizmos.${group}"
  out="$(e2e::ok get crd "gizmos.${group}" -o jsonpath='{.status.conditions[?(@.type=="NamesAccepted")].message}')"
  e2e::assert_eq "conflict message" '"wd" is already in use' "${out}"
  e2e::assert_eq "not established" "False NotAccepted" "$(crd_condition "gizmos.${group}" Established)"
  e2e::ok delete crd "gizmos.${group}" "widgets.${group}" --wait=true --timeout=30s >/dev/null
}
