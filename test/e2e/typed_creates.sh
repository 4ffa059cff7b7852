# Cases for kubectl's typed generators (`kubectl create <kind>`, `kubectl run`).
# kubectl 1.32 and later send these bodies as protobuf, older ones as JSON:
# the same assertions hold for both encodings. Sourced by run.sh.

# e2e::jp OBJECT JSONPATH: one field of an object in the case's namespace.
e2e::jp() {
  e2e::ok -n "${NS}" get "$1" -o jsonpath="$2"
}

case_typed_creates() {
  local out
  e2e::ok -n "${NS}" create secret generic creds --from-literal=user=admin >/dev/null
  e2e::assert_eq "secret data is base64 of the literal" YWRtaW4= "$(e2e::jp secret/creds '{.data.user}')"
  e2e::assert_eq "secret type defaults to Opaque" Opaque "$(e2e::jp secret/creds '{.type}')"

  e2e::ok -n "${NS}" create service clusterip backend --tcp=80:8080 >/dev/null
  e2e::assert_eq "service port and targetPort" "80 8080 TCP" \
    "$(e2e::jp svc/backend '{.spec.ports[0].port} {.spec.ports[0].targetPort} {.spec.ports[0].protocol}')"
  e2e::assert_match "service got a cluster IP" '^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$' \
    "$(e2e::jp svc/backend '{.spec.clusterIP}')"

  e2e::ok -n "${NS}" create deployment idle --image=busybox --replicas=0 >/dev/null
  e2e::assert_eq "an explicit replicas: 0 is kept" 0 "$(e2e::jp deploy/idle '{.spec.replicas}')"
  e2e::assert_eq "deployment selector and container" "idle busybox" \
    "$(e2e::jp deploy/idle '{.spec.selector.matchLabels.app} {.spec.template.spec.containers[0].image}')"

  e2e::ok -n "${NS}" create job once --image=busybox -- echo hi >/dev/null
  e2e::assert_eq "job command and restart policy" '["echo","hi"] Never' \
    "$(e2e::jp job/once '{.spec.template.spec.containers[0].command} {.spec.template.spec.restartPolicy}')"

  e2e::ok -n "${NS}" create cronjob tick --image=busybox --schedule='*/5 * * * *' >/dev/null
  e2e::assert_eq "cronjob schedule" '*/5 * * * *' "$(e2e::jp cronjob/tick '{.spec.schedule}')"

  e2e::ok -n "${NS}" create role reader --verb=get,list --resource=pods >/dev/null
  e2e::assert_eq "role rule" '["get","list"] ["pods"]' \
    "$(e2e::jp role/reader '{.rules[0].verbs} {.rules[0].resources}')"
  e2e::ok -n "${NS}" create rolebinding reader --role=reader --user=alice >/dev/null
  e2e::assert_eq "rolebinding subject and role" "User alice Role reader" \
    "$(e2e::jp rolebinding/reader '{.subjects[0].kind} {.subjects[0].name} {.roleRef.kind} {.roleRef.name}')"

  e2e::ok -n "${NS}" create quota small --hard=pods=0,cpu=1 >/dev/null
  e2e::assert_eq "quota hard limits, zero included" "1 0" "$(e2e::jp quota/small '{.spec.hard.cpu} {.spec.hard.pods}')"

  e2e::ok -n "${NS}" create pdb guard --selector=app=idle --min-available=0 >/dev/null
  e2e::assert_eq "pdb minAvailable 0" 0 "$(e2e::jp pdb/guard '{.spec.minAvailable}')"

  e2e::ok -n "${NS}" create serviceaccount robot >/dev/null
  e2e::assert_eq "serviceaccount exists" robot "$(e2e::jp sa/robot '{.metadata.name}')"

  e2e::ok -n "${NS}" create ingress web --rule='shop.example/cart=backend:80' >/dev/null
  e2e::assert_eq "ingress rule" "shop.example /cart backend 80" \
    "$(e2e::jp ingress/web '{.spec.rules[0].host} {.spec.rules[0].http.paths[0].path} {.spec.rules[0].http.paths[0].backend.service.name} {.spec.rules[0].http.paths[0].backend.service.port.number}')"

  e2e::ok -n "${NS}" run sleeper --image=busybox --restart=Never --labels=tier=db -- sleep 3600 >/dev/null
  e2e::assert_eq "pod args, labels and restart policy" '["sleep","3600"] db Never' \
    "$(e2e::jp pod/sleeper '{.spec.containers[0].args} {.metadata.labels.tier} {.spec.restartPolicy}')"
  out="$(e2e::jp pod/sleeper '{.metadata.creationTimestamp}')"
  e2e::assert_match "server-set creationTimestamp" '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$' "${out}"

  local pc="e2e-${NS}"
  e2e::ok create priorityclass "${pc}" --value=0 --description=zero >/dev/null
  e2e::assert_eq "priorityclass value 0" "0 zero" \
    "$(e2e::ok get priorityclass "${pc}" -o jsonpath='{.value} {.description}')"
  e2e::ok delete priorityclass "${pc}" >/dev/null
  # The Priority admission plugin resolves a pod's class to its priority.
  e2e::ok create priorityclass "${pc}-seven" --value=7 --preemption-policy=Never >/dev/null
  e2e::ok -n "${NS}" run ranked --image=busybox --restart=Never \
    --overrides="{\"spec\":{\"priorityClassName\":\"${pc}-seven\"}}" -- sleep 3600 >/dev/null
  e2e::assert_eq "pod priority from its PriorityClass" "7 Never" \
    "$(e2e::jp pod/ranked '{.spec.priority} {.spec.preemptionPolicy}')"
  e2e::assert_eq "system priority classes exist" "2000001000" \
    "$(e2e::ok get priorityclass system-node-critical -o jsonpath='{.value}')"
  e2e::ok -n "${NS}" delete pod ranked --grace-period=0 --force >/dev/null 2>&1
  e2e::ok delete priorityclass "${pc}-seven" >/dev/null
}

# kubectl debug adds an ephemeral container through pods/ephemeralcontainers
# (runs after typed_creates, which made the pod).
case_ephemeral_container() {
  local out
  e2e::ok -n "${NS}" debug sleeper --image=busybox --container=dbg >/dev/null
  e2e::assert_eq "the ephemeral container is in the pod" "dbg busybox File" \
    "$(e2e::jp pod/sleeper '{.spec.ephemeralContainers[0].name} {.spec.ephemeralContainers[0].image} {.spec.ephemeralContainers[0].terminationMessagePolicy}')"
  # Changing an existing ephemeral container is refused (PUT of the subresource).
  local path="/api/v1/namespaces/${NS}/pods/sleeper/ephemeralcontainers" changed
  changed="$(e2e::manifest ephemeral)"
  e2e::ok get --raw "${path}" | jq '.spec.ephemeralContainers[0].image = "alpine"' >"${changed}"
  out="$(e2e::expect_exit 1 replace --raw "${path}" -f "${changed}")"
  e2e::assert_match "an existing ephemeral container may not change" 'existing ephemeral containers \"dbg\" may not be changed' "${out}"
}
