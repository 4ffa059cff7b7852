//! The garbage collector's dependency graph (upstream's
//! pkg/controller/garbagecollector/graph.go and the event processing of
//! graph_builder.go): one node per object seen (or named as an owner but
//! not seen yet: a "virtual" node), edges from owners to dependents by
//! uid. Applying a change answers which nodes need work; the graph itself
//! never talks to the API server.

use std::collections::{HashMap, HashSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

/// The finalizer the API server adds for `propagationPolicy=Orphan`.
pub const ORPHAN: &str = "orphan";
/// The finalizer the API server adds for `propagationPolicy=Foreground`.
pub const FOREGROUND: &str = "foregroundDeletion";

/// Who an object is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identity {
    pub api_version: String,
    pub kind: String,
    /// The namespace (for a virtual owner: its dependent's, which is right
    /// for namespaced owners and ignored for cluster-scoped ones).
    pub namespace: Option<String>,
    pub name: String,
    pub uid: String,
}

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {}/{} ({})", self.kind, ns, self.name, self.uid),
            None => write!(f, "{} {} ({})", self.kind, self.name, self.uid),
        }
    }
}

/// What the graph needs of an object.
#[derive(Debug, Clone)]
pub struct ObjectMeta {
    pub identity: Identity,
    pub owners: Vec<OwnerReference>,
    pub deleting: bool,
    pub finalizers: Vec<String>,
}

/// One node.
#[derive(Debug, Clone)]
pub struct Node {
    pub identity: Identity,
    pub owners: Vec<OwnerReference>,
    pub dependents: HashSet<String>,
    /// Only named by a dependent's ownerReference so far.
    pub is_virtual: bool,
    pub being_deleted: bool,
    /// Being deleted with the `foregroundDeletion` finalizer.
    pub deleting_dependents: bool,
}

/// Which nodes need the workers.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Work {
    pub attempt_to_delete: Vec<String>,
    pub attempt_to_orphan: Vec<String>,
}

impl Work {
    fn delete(&mut self, uid: &str) {
        if !self.attempt_to_delete.iter().any(|u| u == uid) {
            self.attempt_to_delete.push(uid.to_string());
        }
    }
}

/// The graph, keyed by uid.
#[derive(Debug, Default)]
pub struct Graph {
    nodes: HashMap<String, Node>,
}

impl Graph {
    pub fn get(&self, uid: &str) -> Option<&Node> {
        self.nodes.get(uid)
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Uids of the real nodes of one kind (for relists).
    pub fn uids_of(&self, api_version: &str, kind: &str) -> Vec<String> {
        self.nodes
            .values()
            .filter(|n| {
                !n.is_virtual && n.identity.kind == kind && n.identity.api_version == api_version
            })
            .map(|n| n.identity.uid.clone())
            .collect()
    }

    /// The dependents of `uid`, as nodes.
    pub fn dependents(&self, uid: &str) -> Vec<Node> {
        self.nodes
            .get(uid)
            .map(|n| {
                n.dependents
                    .iter()
                    .filter_map(|d| self.nodes.get(d).cloned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Dependents whose reference to `uid` blocks its deletion
    /// (`blockOwnerDeletion: true`), upstream's `blockingDependents`.
    pub fn blocking_dependents(&self, uid: &str) -> Vec<Node> {
        self.dependents(uid)
            .into_iter()
            .filter(|d| {
                d.owners
                    .iter()
                    .any(|o| o.uid == uid && o.block_owner_deletion == Some(true))
            })
            .collect()
    }

    /// An object was added or changed.
    pub fn upsert(&mut self, obj: ObjectMeta) -> Work {
        let mut work = Work::default();
        let uid = obj.identity.uid.clone();
        let old_owners = match self.nodes.get_mut(&uid) {
            Some(n) => {
                n.is_virtual = false;
                n.identity = obj.identity.clone();
                std::mem::replace(&mut n.owners, obj.owners.clone())
            }
            None => {
                self.nodes.insert(
                    uid.clone(),
                    Node {
                        identity: obj.identity.clone(),
                        owners: obj.owners.clone(),
                        dependents: HashSet::new(),
                        is_virtual: false,
                        being_deleted: false,
                        deleting_dependents: false,
                    },
                );
                Vec::new()
            }
        };
        // Owners no longer referenced: a waiting owner may now be free.
        for old in &old_owners {
            let still = obj.owners.iter().find(|o| o.uid == old.uid);
            let unblocked = match still {
                None => true,
                Some(o) => {
                    old.block_owner_deletion == Some(true) && o.block_owner_deletion != Some(true)
                }
            };
            if still.is_none() {
                if let Some(owner) = self.nodes.get_mut(&old.uid) {
                    owner.dependents.remove(&uid);
                }
            }
            if unblocked
                && self
                    .nodes
                    .get(&old.uid)
                    .is_some_and(|o| o.deleting_dependents)
            {
                work.delete(&old.uid);
            }
        }
        for owner in &obj.owners {
            match self.nodes.get_mut(&owner.uid) {
                Some(n) => {
                    let new = n.dependents.insert(uid.clone());
                    if n.is_virtual {
                        // Possibly already found absent: check again for this dependent.
                        work.delete(&owner.uid);
                    }
                    if new && n.deleting_dependents {
                        // Seen after its owner's foreground deletion began
                        // (an initial list orders the owner first): the
                        // owner's dependents were already looked at, so
                        // this one is now; the owner waits for it again.
                        work.delete(&uid);
                        work.delete(&owner.uid);
                    }
                }
                None => {
                    // Not seen yet: verify it exists (upstream's virtual node).
                    let mut dependents = HashSet::new();
                    dependents.insert(uid.clone());
                    self.nodes.insert(
                        owner.uid.clone(),
                        Node {
                            identity: Identity {
                                api_version: owner.api_version.clone(),
                                kind: owner.kind.clone(),
                                namespace: obj.identity.namespace.clone(),
                                name: owner.name.clone(),
                                uid: owner.uid.clone(),
                            },
                            owners: Vec::new(),
                            dependents,
                            is_virtual: true,
                            being_deleted: false,
                            deleting_dependents: false,
                        },
                    );
                    work.delete(&owner.uid);
                }
            }
        }
        let has = |f: &str| obj.finalizers.iter().any(|x| x == f);
        let foreground = obj.deleting && has(FOREGROUND);
        if let Some(n) = self.nodes.get_mut(&uid) {
            n.being_deleted = obj.deleting;
            n.deleting_dependents = foreground;
        }
        if obj.deleting && has(ORPHAN) {
            work.attempt_to_orphan.push(uid.clone());
        }
        if foreground {
            let deps: Vec<String> = self
                .nodes
                .get(&uid)
                .map(|n| n.dependents.iter().cloned().collect())
                .unwrap_or_default();
            for d in deps {
                work.delete(&d);
            }
            work.delete(&uid);
        }
        work
    }

    /// An object is gone (a watch deletion, or a live lookup found it
    /// absent): its dependents are checked, and owners waiting for it are
    /// looked at again.
    pub fn remove(&mut self, uid: &str) -> Work {
        let mut work = Work::default();
        let Some(node) = self.nodes.remove(uid) else {
            return work;
        };
        for owner in &node.owners {
            let mut drop_virtual = false;
            if let Some(o) = self.nodes.get_mut(&owner.uid) {
                o.dependents.remove(uid);
                if o.deleting_dependents {
                    work.delete(&owner.uid);
                }
                drop_virtual = o.is_virtual && o.dependents.is_empty();
            }
            if drop_virtual {
                self.nodes.remove(&owner.uid);
            }
        }
        for d in &node.dependents {
            if self.nodes.contains_key(d) {
                work.delete(d);
            }
        }
        if !node.dependents.is_empty() {
            // Dependents keep their reference; keep a virtual node so that
            // they still find the edge (their check will find it dangling).
            self.nodes.insert(
                uid.to_string(),
                Node {
                    is_virtual: true,
                    owners: Vec::new(),
                    being_deleted: false,
                    deleting_dependents: false,
                    ..node
                },
            );
        }
        work
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(kind: &str, name: &str, uid: &str) -> Identity {
        Identity {
            api_version: "v1".into(),
            kind: kind.into(),
            namespace: Some("ns".into()),
            name: name.into(),
            uid: uid.into(),
        }
    }

    fn owner_ref(name: &str, uid: &str, block: bool) -> OwnerReference {
        OwnerReference {
            api_version: "apps/v1".into(),
            kind: "ReplicaSet".into(),
            name: name.into(),
            uid: uid.into(),
            block_owner_deletion: Some(block),
            controller: Some(true),
        }
    }

    fn obj(identity: Identity, owners: Vec<OwnerReference>) -> ObjectMeta {
        ObjectMeta {
            identity,
            owners,
            deleting: false,
            finalizers: Vec::new(),
        }
    }

    #[test]
    fn a_dependent_seen_after_its_owners_foreground_deletion_is_checked() {
        let mut g = Graph::default();
        let mut rs = id("ReplicaSet", "rs", "rs1");
        rs.api_version = "apps/v1".into();
        let mut owner = obj(rs, vec![]);
        owner.deleting = true;
        owner.finalizers = vec![FOREGROUND.to_string()];
        let w = g.upsert(owner);
        assert_eq!(w.attempt_to_delete, vec!["rs1".to_string()]);
        let mut w = g.upsert(obj(
            id("Pod", "p", "p1"),
            vec![owner_ref("rs", "rs1", false)],
        ));
        w.attempt_to_delete.sort();
        assert_eq!(
            w.attempt_to_delete,
            vec!["p1".to_string(), "rs1".to_string()]
        );
        // Seen again (an update): nothing new.
        let w = g.upsert(obj(
            id("Pod", "p", "p1"),
            vec![owner_ref("rs", "rs1", false)],
        ));
        assert_eq!(w, Work::default());
    }

    #[test]
    fn unknown_owner_becomes_virtual_and_is_checked() {
        let mut g = Graph::default();
        let w = g.upsert(obj(
            id("Pod", "p", "p1"),
            vec![owner_ref("rs", "rs1", true)],
        ));
        assert_eq!(w.attempt_to_delete, vec!["rs1".to_string()]);
        assert!(g.get("rs1").is_some_and(|n| n.is_virtual));
        // Seeing the owner makes it real; nothing to do.
        let mut rs = id("ReplicaSet", "rs", "rs1");
        rs.api_version = "apps/v1".into();
        let w = g.upsert(obj(rs, vec![]));
        assert_eq!(w, Work::default());
        assert!(g
            .get("rs1")
            .is_some_and(|n| !n.is_virtual && n.dependents.contains("p1")));
    }

    #[test]
    fn deleted_owner_sends_its_dependents_to_be_checked() {
        let mut g = Graph::default();
        g.upsert(obj(id("ReplicaSet", "rs", "rs1"), vec![]));
        g.upsert(obj(
            id("Pod", "a", "a1"),
            vec![owner_ref("rs", "rs1", true)],
        ));
        g.upsert(obj(
            id("Pod", "b", "b1"),
            vec![owner_ref("rs", "rs1", false)],
        ));
        let mut w = g.remove("rs1");
        w.attempt_to_delete.sort();
        assert_eq!(
            w.attempt_to_delete,
            vec!["a1".to_string(), "b1".to_string()]
        );
    }

    #[test]
    fn foreground_deletion_checks_dependents_and_waits_for_blocking_ones() {
        let mut g = Graph::default();
        g.upsert(obj(id("ReplicaSet", "rs", "rs1"), vec![]));
        g.upsert(obj(
            id("Pod", "a", "a1"),
            vec![owner_ref("rs", "rs1", true)],
        ));
        g.upsert(obj(
            id("Pod", "b", "b1"),
            vec![owner_ref("rs", "rs1", false)],
        ));
        let mut deleting = obj(id("ReplicaSet", "rs", "rs1"), vec![]);
        deleting.deleting = true;
        deleting.finalizers = vec![FOREGROUND.into()];
        let mut w = g.upsert(deleting);
        w.attempt_to_delete.sort();
        assert_eq!(
            w.attempt_to_delete,
            vec!["a1".to_string(), "b1".into(), "rs1".into()]
        );
        let blocking: Vec<_> = g
            .blocking_dependents("rs1")
            .into_iter()
            .map(|n| n.identity.name)
            .collect();
        assert_eq!(blocking, vec!["a".to_string()]);
        // The blocking dependent going away sends the owner back to the workers.
        let w = g.remove("a1");
        assert_eq!(w.attempt_to_delete, vec!["rs1".to_string()]);
        assert!(g.blocking_dependents("rs1").is_empty());
    }

    #[test]
    fn orphan_finalizer_asks_for_orphaning() {
        let mut g = Graph::default();
        let mut o = obj(id("ReplicaSet", "rs", "rs1"), vec![]);
        o.deleting = true;
        o.finalizers = vec![ORPHAN.into()];
        assert_eq!(g.upsert(o).attempt_to_orphan, vec!["rs1".to_string()]);
    }

    #[test]
    fn dropping_an_owner_reference_frees_a_waiting_owner() {
        let mut g = Graph::default();
        let mut rs = obj(id("ReplicaSet", "rs", "rs1"), vec![]);
        g.upsert(rs.clone());
        g.upsert(obj(
            id("Pod", "a", "a1"),
            vec![owner_ref("rs", "rs1", true)],
        ));
        rs.deleting = true;
        rs.finalizers = vec![FOREGROUND.into()];
        g.upsert(rs);
        let w = g.upsert(obj(id("Pod", "a", "a1"), vec![]));
        assert_eq!(w.attempt_to_delete, vec!["rs1".to_string()]);
        assert!(g.dependents("rs1").is_empty());
    }
}
