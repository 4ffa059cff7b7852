#!/usr/bin/env bash
# The pod network for the local cluster's containerd: one CNI config list
# (bridge + host-local IPAM on the pod CIDR + portmap for hostPorts) in
# ${CNI_CONF_DIR}; containerd's CRI plugin adds the loopback interface
# itself with the `loopback` plugin from /usr/lib/cni (containerd 1.6 reads
# only the first config file, so loopback gets no file of its own).
# The network guard (hack/lib/netguard.sh) is installed first and the pod
# CIDR must lie inside the guarded ranges: a hard rule (ENVIRONMENT.md).
# Pods' traffic to the world is masqueraded by one nftables rule per bridge
# (table ip kube-cni-<bridge>) rather than by the bridge plugin's ipMasq,
# which adds an iptables chain per pod: a dozen iptables runs under the
# xtables lock for every sandbox, a quarter of the machine's CPU when 20
# pods start at once (hack/bench-kubelet.sh), and chains left behind when a
# container dies without a CNI DEL.
# Source it after hack/lib/util.sh, netguard.sh and containerd.sh; do not
# run it.
#
# Knobs:
#   POD_CIDR        10.88.0.0/16   the node's pod range (inside 10.0.0.0/9)
#   CNI_BRIDGE      kubebr0        the bridge's name
#   CNI_NETWORK     kube-bridge    the network's name (host-local keeps its
#                                  leases under /var/lib/cni/networks/<name>)
#   CNI_CONF_DIR    (containerd.sh) where containerd reads CNI configs

kube::cni::_defaults() {
  kube::containerd::_defaults
  POD_CIDR="${POD_CIDR:-10.88.0.0/16}"
  CNI_BRIDGE="${CNI_BRIDGE:-kubebr0}"
  CNI_NETWORK="${CNI_NETWORK:-kube-bridge}"
}

# kube::cni::write_config: installs the guard, checks POD_CIDR against it
# and writes ${CNI_CONF_DIR}/10-kube-bridge.conflist. Fails, and the caller
# must stop, when the guard is missing or the CIDR is outside it.
kube::cni::write_config() {
  kube::cni::_defaults
  kube::netguard::install || return 1
  kube::netguard::_defaults
  local network="${POD_CIDR%/*}"
  if ! kube::netguard::_contains "${NETGUARD_RANGES}" "${network}"; then
    kube::log::error "pod CIDR ${POD_CIDR} is outside the guarded ranges ${NETGUARD_RANGES}"
    return 1
  fi
  mkdir -p "${CNI_CONF_DIR}" || return 1
  # Other files would shadow ours: containerd 1.6 loads only the first one.
  find "${CNI_CONF_DIR}" -maxdepth 1 -type f ! -name 10-kube-bridge.conflist -delete
  cat >"${CNI_CONF_DIR}/10-kube-bridge.conflist" <<EOF2
{
  "cniVersion": "0.4.0",
  "name": "${CNI_NETWORK}",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "${CNI_BRIDGE}",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "${POD_CIDR}"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {
      "type": "portmap",
      "capabilities": {"portMappings": true}
    }
  ]
}
EOF2
  kube::cni::_masquerade || return 1
  kube::log::status "CNI: ${POD_CIDR} on ${CNI_BRIDGE} (${CNI_CONF_DIR})"
}

# kube::cni::_masquerade: pods' traffic leaving the pod range (multicast
# aside) gets the node's address, as the bridge plugin's ipMasq would.
kube::cni::_masquerade() {
  local table="kube-cni-${CNI_BRIDGE}"
  kube::util::as_root nft -f - <<EOF2 || return 1
table ip ${table}
delete table ip ${table}
table ip ${table} {
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    ip saddr ${POD_CIDR} ip daddr != ${POD_CIDR} ip daddr != 224.0.0.0/4 counter masquerade
  }
}
EOF2
}

# kube::cni::remove: the bridge and its masquerade table go (a later run
# may use another pod range).
kube::cni::remove() {
  kube::cni::_defaults
  ip link del "${CNI_BRIDGE}" >/dev/null 2>&1 || true
  nft delete table ip "kube-cni-${CNI_BRIDGE}" >/dev/null 2>&1 || true
}
