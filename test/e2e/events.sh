# Cases for events: core/v1 and events.k8s.io/v1 are two views of the same
# stored Events. Sourced by run.sh.

case_events_two_versions() {
  local out
  printf '{"apiVersion":"events.k8s.io/v1","kind":"Event","metadata":{"name":"started","namespace":"%s"},"regarding":{"kind":"Pod","name":"web","namespace":"%s"},"note":"container started","reason":"Started","type":"Normal","reportingController":"e2e","reportingInstance":"e2e-1","action":"Start","eventTime":"2026-01-01T00:00:00.000000Z"}' \
    "${NS}" "${NS}" | e2e::ok create -f - >/dev/null
  e2e::assert_eq "an events.k8s.io Event read as core/v1" "v1 container started web e2e" \
    "$(
       e2e::ok -n "${NS}" get event started -o jsonpath='{.apiVersion} {.message} {.involvedObject.name} {.reportingComponent}')"
  printf '{"apiVersion":"v1","kind":"Event","metadata":{"name":"pulled","namespace":"%s"},"involvedObject":{"kind":"Pod","name":"web"},"message":"image pulled","reason":"Pulled","type":"Normal","count":3,"source":{"component":"kubelet"}}' \
    "${NS}" | e2e::ok create -f - >/dev/null
  e2e::assert_eq "a core Event read as events.k8s.io/v1" "events.k8s.io/v1 image pulled web 3 kubelet" \
    "$(e2e::ok -n "${NS}" get events.v1.events.k8s.io pulled -o jsonpath='{.apiVersion} {.note} {.regarding.name} {.deprecatedCount} {.deprecatedSource.component}')"
  out="$(printf '{"apiVersion":"events.k8s.io/v1","kind":"Event","metadata":{"name":"bad","namespace":"%s"},"reason":"X","type":"Normal"}' "${NS}" |
    e2e::expect_exit 1 create -f -)"
  e2e::assert_match "events.k8s.io/v1 requires eventTime" 'eventTime: Required value' "${out}"
  e2e::assert_match "events.k8s.io/v1 requires reportingController" 'reportingController: Required value' "${out}"
  out="$(e2e::ok -n "${NS}" get events.v1.events.k8s.io --no-headers | e2e::squeeze)"
  e2e::assert_match "both events listed through events.k8s.io" 'pulled' "${out}"
  e2e::assert_match "both events listed through events.k8s.io" 'started' "${out}"
  # Field selectors name each version's own fields.
  out="$(e2e::ok -n "${NS}" get events.v1.events.k8s.io --field-selector regarding.name=web,reason=Pulled -o name)"
  e2e::assert_eq "events.k8s.io field selector on regarding" "event.events.k8s.io/pulled" "${out}"
  out="$(e2e::ok -n "${NS}" get events --field-selector involvedObject.name=web,reason=Started -o name)"
  e2e::assert_eq "core field selector on involvedObject" "event/started" "${out}"
  out="$(e2e::expect_exit 1 -n "${NS}" get events.v1.events.k8s.io --field-selector involvedObject.name=web)"
  e2e::assert_match "core labels are not events.k8s.io labels" 'field label not supported: involvedObject.name' "${out}"
}
