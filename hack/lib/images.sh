#!/usr/bin/env bash
# Test images without internet: built from Debian packages with umoci,
# pushed with skopeo into a local registry (Debian's docker-registry on
# 127.0.0.1:5000), and pulled from there by containerd through CRI like
# from any registry (containerd's mirrors map docker.io and registry.k8s.io
# to it). Source it after hack/lib/util.sh; do not run it.
#
#   busybox   docker.io/library/busybox:latest (and :1.35): busybox-static with
#             every applet linked, as the usual busybox image
#   pause     registry.k8s.io/pause:3.9: catatonit in pause mode (reaps
#             zombies, exits on SIGTERM)
#   <binary>  ${REGISTRY_ADDR}/<name>:<content hash>: one of this tree's
#             binaries (stripped) with the shared libraries it links, for the
#             add-ons that run as pods (kube::images::ensure_binary)
#
# Knobs:
#   REGISTRY_ADDR  127.0.0.1:5000
#   REGISTRY_DIR   /var/lib/kube-local-registry   storage of the registry
#   IMAGES_DIR     ${REGISTRY_DIR}/build           OCI layouts being built
#   REGISTRY_LOG   ${LOG_DIR:-/tmp}/docker-registry.log

IMAGE_PACKAGES=(busybox-static catatonit umoci skopeo docker-registry curl binutils)

kube::images::_defaults() {
  REGISTRY_ADDR="${REGISTRY_ADDR:-127.0.0.1:5000}"
  REGISTRY_DIR="${REGISTRY_DIR:-/var/lib/kube-local-registry}"
  IMAGES_DIR="${IMAGES_DIR:-${REGISTRY_DIR}/build}"
  REGISTRY_LOG="${REGISTRY_LOG:-${LOG_DIR:-/tmp}/docker-registry.log}"
  REGISTRY_PID_FILE="${REGISTRY_PID_FILE:-${REGISTRY_DIR}/registry.pid}"
}

# kube::images::registry_up: whether the registry answers.
kube::images::registry_up() {
  curl -fsS -o /dev/null "http://${REGISTRY_ADDR}/v2/" 2>/dev/null
}

# kube::images::ensure_registry: starts the registry unless it runs.
kube::images::ensure_registry() {
  kube::images::_defaults
  kube::images::registry_up && return 0
  mkdir -p "${REGISTRY_DIR}/storage" || return 1
  cat >"${REGISTRY_DIR}/config.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: ${REGISTRY_DIR}/storage
  delete:
    enabled: true
http:
  addr: ${REGISTRY_ADDR}
EOF
  # The registry outlives this script: later runs and the kubelet's pulls use it.
  setsid docker-registry serve "${REGISTRY_DIR}/config.yml" >>"${REGISTRY_LOG}" 2>&1 </dev/null &
  echo $! >"${REGISTRY_PID_FILE}"
  local i
  for i in $(seq 1 100); do
    kube::images::registry_up && return 0
    sleep 0.1
  done
  kube::log::error "the local registry did not come up, see ${REGISTRY_LOG}"
  return 1
}

# kube::images::present REPO TAG: whether the registry has REPO:TAG.
kube::images::present() {
  curl -fsS -o /dev/null -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "http://${REGISTRY_ADDR}/v2/$1/manifests/$2" 2>/dev/null
}

# kube::images::_build NAME FILL CMD... : an OCI image whose rootfs FILL
# (a function taking the rootfs path) populates, with CMD as its command,
# left in the OCI layout ${IMAGES_DIR}/NAME:latest.
kube::images::_build() {
  local name=$1 fill=$2
  shift 2
  local layout="${IMAGES_DIR}/${name}" bundle="${IMAGES_DIR}/${name}.bundle"
  rm -rf "${layout}" "${bundle}"
  mkdir -p "${IMAGES_DIR}" || return 1
  local arg args=()
  for arg in "$@"; do args+=("--config.cmd=${arg}"); done
  umoci init --layout "${layout}" &&
    umoci new --image "${layout}:latest" &&
    umoci unpack --image "${layout}:latest" "${bundle}" >/dev/null &&
    "${fill}" "${bundle}/rootfs" &&
    umoci repack --image "${layout}:latest" "${bundle}" &&
    umoci config --image "${layout}:latest" --os linux --architecture amd64 "${args[@]}" || return 1
  umoci gc --layout "${layout}" >/dev/null 2>&1 || true
  rm -rf "${bundle}"
}

kube::images::_fill_busybox() {
  local root=$1
  mkdir -p "${root}/bin" "${root}/sbin" "${root}/usr/bin" "${root}/usr/sbin" "${root}/tmp" \
    "${root}/etc" "${root}/root" "${root}/proc" "${root}/sys" "${root}/dev" || return 1
  chmod 1777 "${root}/tmp"
  cp /bin/busybox "${root}/bin/busybox" || return 1
  # Every applet, as the upstream image has them.
  local applet
  for applet in $("${root}/bin/busybox" --list-full); do
    [[ -e "${root}/${applet}" ]] || ln -s /bin/busybox "${root}/${applet}"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n' >"${root}/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"${root}/etc/group"
}

kube::images::_fill_pause() {
  local root=$1
  cp /usr/bin/catatonit "${root}/pause" || return 1
}

# kube::images::_fill_binary ROOT: the binary in _BINARY_SRC, stripped, at
# /_BINARY_NAME, and every shared library `ldd` names at its own path.
kube::images::_fill_binary() {
  local root=$1 lib
  mkdir -p "${root}/tmp" "${root}/etc" || return 1
  chmod 1777 "${root}/tmp"
  strip -o "${root}/${_BINARY_NAME}" "${_BINARY_SRC}" || return 1
  for lib in $(ldd "${_BINARY_SRC}" | grep -o '/[^ ]*'); do
    mkdir -p "${root}$(dirname "${lib}")" && cp -L "${lib}" "${root}${lib}" || return 1
  done
  printf 'root:x:0:0:root:/:/bin/false\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"${root}/etc/passwd"
}

# kube::images::ensure_binary NAME BINARY: pushes an image of BINARY (its
# entrypoint /NAME) unless the registry has it, and sets KUBE_IMAGE_REF to
# it. The tag is the binary's content hash, so a rebuilt binary gets a new
# image and pods always run the binary that was built.
kube::images::ensure_binary() {
  local name=$1 binary=$2 tag
  kube::images::_defaults
  kube::util::ensure_packages "${IMAGE_PACKAGES[@]}" || return 1
  kube::images::ensure_registry || return 1
  tag="$(sha256sum "${binary}" | cut -c1-16)" || return 1
  KUBE_IMAGE_REF="${REGISTRY_ADDR}/${name}:${tag}"
  kube::images::present "${name}" "${tag}" && return 0
  kube::log::status "building the ${name} image from ${binary}"
  _BINARY_NAME="${name}" _BINARY_SRC="${binary}" \
    kube::images::_build "${name}" kube::images::_fill_binary "/${name}" &&
    kube::images::_push "${name}" "${name}" "${tag}"
}

# kube::images::_push NAME REPO TAG...: pushes ${IMAGES_DIR}/NAME:latest.
kube::images::_push() {
  local name=$1 repo=$2 tag
  shift 2
  for tag in "$@"; do
    skopeo copy --quiet --dest-tls-verify=false \
      "oci:${IMAGES_DIR}/${name}:latest" "docker://${REGISTRY_ADDR}/${repo}:${tag}" || return 1
  done
}

# kube::images::ensure: installs what the build needs, starts the registry
# and builds and pushes every test image the registry lacks.
kube::images::ensure() {
  kube::images::_defaults
  kube::util::ensure_packages "${IMAGE_PACKAGES[@]}" || return 1
  kube::images::ensure_registry || return 1
  if ! kube::images::present library/busybox latest; then
    kube::log::status "building the busybox image"
    kube::images::_build busybox kube::images::_fill_busybox sh &&
      kube::images::_push busybox library/busybox latest 1.35 || return 1
  fi
  if ! kube::images::present pause 3.9; then
    kube::log::status "building the pause image"
    kube::images::_build pause kube::images::_fill_pause /pause -P &&
      kube::images::_push pause pause 3.9 || return 1
  fi
}
