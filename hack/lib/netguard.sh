#!/usr/bin/env bash
# The network guard (a hard rule, see ENVIRONMENT.md): no packet addressed to
# a range the cluster invents (pods, Services) may leave through the
# machine's uplink. An nftables table in the host namespace drops them in
# postrouting and rejects them early in output (unless DNAT'd: those are
# judged in postrouting, after rerouting) and forward; traffic to the
# same ranges over cluster interfaces (bridges, veths, DNAT'd Service
# traffic, whose postrouting destination is a pod on the bridge) is
# untouched. Source it after hack/lib/util.sh; do not run it.
#
# Knobs:
#   NETGUARD_TABLE   kube-netguard      the nftables table (family inet)
#   NETGUARD_RANGES  10.0.0.0/9         space-separated IPv4 ranges to guard
#                                       (pods and Services live inside; the
#                                       machine's own resolver must not)

kube::netguard::_defaults() {
  NETGUARD_TABLE="${NETGUARD_TABLE:-kube-netguard}"
  NETGUARD_RANGES="${NETGUARD_RANGES:-10.0.0.0/9}"
}

# kube::netguard::uplink: the interface of the default route.
kube::netguard::uplink() {
  ip -4 route show default 2>/dev/null | awk '{for (i = 1; i < NF; i++) if ($i == "dev") {print $(i + 1); exit}}'
}

# kube::netguard::install: (re)creates the guard table; idempotent. Fails,
# and the caller must stop, when the guard cannot be put in place.
kube::netguard::install() {
  kube::netguard::_defaults
  command -v nft >/dev/null 2>&1 || kube::util::ensure_packages nftables || return 1
  local uplink ranges
  uplink="$(kube::netguard::uplink)"
  if [[ -z "${uplink}" ]]; then
    kube::log::error "network guard: no default route, cannot tell the uplink"
    return 1
  fi
  ranges="$(tr ' ' ',' <<<"${NETGUARD_RANGES}")"
  local resolver
  for resolver in $(awk '/^nameserver/ {print $2}' /etc/resolv.conf 2>/dev/null); do
    if kube::netguard::_contains "${NETGUARD_RANGES}" "${resolver}"; then
      kube::log::error "network guard: the resolver ${resolver} is inside ${NETGUARD_RANGES}; pick other ranges"
      return 1
    fi
  done
  kube::util::as_root nft -f - <<EOF || return 1
table inet ${NETGUARD_TABLE}
delete table inet ${NETGUARD_TABLE}
table inet ${NETGUARD_TABLE} {
  set guarded {
    type ipv4_addr
    flags interval
    elements = { ${ranges} }
  }
  chain output {
    type filter hook output priority 0; policy accept;
    # Locally sent Service traffic is DNAT'd to a pod before the kernel
    # reroutes it, so here it still shows the uplink; postrouting sees
    # where it really goes and drops it if that is the uplink.
    oifname "${uplink}" ip daddr @guarded ct status & dnat == 0 counter reject with icmp type admin-prohibited
  }
  chain forward {
    type filter hook forward priority 0; policy accept;
    oifname "${uplink}" ip daddr @guarded counter reject with icmp type admin-prohibited
  }
  chain postrouting {
    type filter hook postrouting priority 100; policy accept;
    oifname "${uplink}" ip daddr @guarded counter drop
  }
}
EOF
  kube::log::status "network guard: ${NETGUARD_RANGES} may not leave through ${uplink}"
}

# kube::netguard::installed: whether the guard table is in place.
kube::netguard::installed() {
  kube::netguard::_defaults
  nft list table inet "${NETGUARD_TABLE}" >/dev/null 2>&1
}

# kube::netguard::_contains "RANGES" IP: whether IP is inside one of RANGES.
kube::netguard::_contains() {
  local ranges=$1 ip=$2 r
  for r in ${ranges}; do
    python3 - "${r}" "${ip}" <<'PY' && return 0
import ipaddress, sys
sys.exit(0 if ipaddress.ip_address(sys.argv[2]) in ipaddress.ip_network(sys.argv[1], strict=False) else 1)
PY
  done
  return 1
}
