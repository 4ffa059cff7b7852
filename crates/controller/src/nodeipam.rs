//! Node IPAM, the range allocator (upstream's
//! pkg/controller/nodeipam/ipam/range_allocator.go and cidrset): with
//! `--allocate-node-cidrs`, every Node without `spec.podCIDR` gets the next
//! free `/--node-cidr-mask-size` block of `--cluster-cidr` (IPv4), which
//! the kubelet's pod networking uses. Blocks in use are read from the
//! Nodes, plus this process's own recent allocations (the cache may not
//! show them yet); a deleted Node's block is free again.

use std::collections::{BTreeSet, HashMap};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::Store;
use kube::ResourceExt;
use serde_json::json;

use crate::descriptors::ControllerFuture;
use crate::{is_not_found, ControllerContext, Error, StartError};

const NAME: &str = "node-ipam-controller";

/// An IPv4 cluster CIDR cut into per-node blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CidrSet {
    base: u32,
    prefix: u8,
    mask: u8,
}

impl CidrSet {
    /// `10.64.0.0/16` with node blocks of `/mask`.
    pub fn new(cluster_cidr: &str, mask: u8) -> Result<Self, String> {
        let (ip, prefix) = cluster_cidr
            .split_once('/')
            .ok_or_else(|| format!("invalid --cluster-cidr {cluster_cidr:?}: not a CIDR"))?;
        let ip: Ipv4Addr = ip.parse().map_err(|_| {
            format!("invalid --cluster-cidr {cluster_cidr:?}: only IPv4 is supported")
        })?;
        let prefix: u8 = prefix
            .parse()
            .map_err(|_| format!("invalid --cluster-cidr {cluster_cidr:?}"))?;
        if prefix > 32 || mask > 32 || mask < prefix {
            return Err(format!("--node-cidr-mask-size {mask} must be between the cluster CIDR's prefix {prefix} and 32"));
        }
        if mask - prefix > 24 {
            return Err(format!(
                "--node-cidr-mask-size {mask} cuts {cluster_cidr} into too many blocks"
            ));
        }
        let net = if prefix == 0 {
            0
        } else {
            u32::MAX << (32 - prefix)
        };
        Ok(Self {
            base: u32::from(ip) & net,
            prefix,
            mask,
        })
    }

    pub fn len(&self) -> u32 {
        1u32 << (self.mask - self.prefix)
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// The block with this index, as `a.b.c.d/mask`.
    pub fn block(&self, i: u32) -> String {
        let step = if self.mask == 0 {
            0
        } else {
            1u64 << (32 - u32::from(self.mask))
        };
        let addr = u64::from(self.base) + u64::from(i) * step;
        format!(
            "{}/{}",
            Ipv4Addr::from(u32::try_from(addr).unwrap_or(u32::MAX)),
            self.mask
        )
    }

    /// The index of a block of this set, if it is one.
    pub fn index_of(&self, cidr: &str) -> Option<u32> {
        let (ip, m) = cidr.split_once('/')?;
        let ip: Ipv4Addr = ip.parse().ok()?;
        if m.parse::<u8>().ok()? != self.mask {
            return None;
        }
        let off = u32::from(ip).checked_sub(self.base)?;
        let i = off >> (32 - u32::from(self.mask)).min(31);
        (i < self.len()).then_some(i)
    }

    /// The lowest index not in `used`.
    pub fn next_free(&self, used: &BTreeSet<u32>) -> Option<u32> {
        (0..self.len()).find(|i| !used.contains(i))
    }
}

struct Ctx {
    client: kube::Client,
    nodes: Store<Node>,
    set: CidrSet,
    recent: Mutex<HashMap<String, u32>>,
}

/// Upstream's `startNodeIpamController` (range allocator only).
pub fn start(ctx: &ControllerContext) -> Result<ControllerFuture, StartError> {
    let Some(set) = ctx.config.node_ipam else {
        tracing::info!(
            controller = NAME,
            "--allocate-node-cidrs is false; nothing to do"
        );
        return Ok(Box::pin(futures::future::ready(())));
    };
    let nodes = ctx.informers.informer::<Node>();
    // One allocation at a time, as upstream's allocator serialises them.
    let controller = Controller::for_shared_stream(nodes.subscribe(), nodes.store())
        .with_config(kube::runtime::controller::Config::default().concurrency(1));
    let c = Arc::new(Ctx {
        client: ctx.client.clone(),
        nodes: nodes.store(),
        set,
        recent: Mutex::default(),
    });
    Ok(Box::pin(crate::runner::drive(
        NAME,
        controller,
        ctx.metrics.clone(),
        c,
        reconcile,
    )))
}

async fn reconcile(node: Arc<Node>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let has = node
        .spec
        .as_ref()
        .and_then(|s| s.pod_cidr.as_deref())
        .is_some_and(|c| !c.is_empty());
    if has || node.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let name = node.name_any();
    let index = {
        let nodes = ctx.nodes.state();
        let mut recent = ctx.recent.lock().unwrap_or_else(|p| p.into_inner());
        let live: BTreeSet<String> = nodes.iter().map(|n| n.name_any()).collect();
        recent.retain(|n, _| live.contains(n));
        let mut used: BTreeSet<u32> = nodes
            .iter()
            .filter_map(|n| {
                n.spec
                    .as_ref()?
                    .pod_cidr
                    .as_deref()
                    .and_then(|c| ctx.set.index_of(c))
            })
            .collect();
        used.extend(recent.iter().filter(|(n, _)| **n != name).map(|(_, i)| *i));
        let i = match recent.get(&name) {
            Some(i) => *i,
            None => ctx.set.next_free(&used).ok_or_else(|| {
                Error::Pending(format!(
                    "no remaining CIDRs for node {name} (CIDRNotAvailable)"
                ))
            })?,
        };
        recent.insert(name.clone(), i);
        i
    };
    let cidr = ctx.set.block(index);
    let api: Api<Node> = Api::all(ctx.client.clone());
    let patch = json!({"spec": {"podCIDR": cidr, "podCIDRs": [cidr]}});
    match api
        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => tracing::info!(node = %name, %cidr, "allocated pod CIDR"),
        Err(e) if is_not_found(&e) => {}
        Err(e) => return Err(Error::api("set podCIDR of", format!("node {name}"))(e)),
    }
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_of_a_cluster_cidr() {
        let s = CidrSet::new("10.64.0.0/16", 24).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.len(), 256);
        assert_eq!(s.block(0), "10.64.0.0/24");
        assert_eq!(s.block(5), "10.64.5.0/24");
        assert_eq!(s.index_of("10.64.5.0/24"), Some(5));
        assert_eq!(s.index_of("10.65.0.0/24"), None);
        assert_eq!(s.index_of("10.64.5.0/25"), None);
        assert_eq!(s.next_free(&BTreeSet::from([0, 1, 3])), Some(2));
        assert!(CidrSet::new("10.64.0.0/16", 8).is_err());
        assert!(CidrSet::new("fd00::/48", 64).is_err());
        let tiny = CidrSet::new("10.0.0.0/30", 31).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(tiny.next_free(&BTreeSet::from([0, 1])), None);
    }
}
