//! Server-side apply's field ownership (upstream's
//! `k8s.io/apimachinery/pkg/util/managedfields` on
//! `sigs.k8s.io/structured-merge-diff`): field sets and their `FieldsV1`
//! form, the walks that compute them from objects by schema, the apply
//! merge, and the two operations — an update (every changed field moves to
//! its writer) and an apply (the applier owns exactly what it sent; changing
//! a field someone else owns is a conflict unless forced; fields it stopped
//! sending are removed unless someone else owns them).
//!
//! Pure functions on JSON; the schema comes in through [`Schema`].

mod merge;
mod set;
mod walk;

#[cfg(test)]
mod tests;

pub use merge::{merge, remove};
pub use set::{path_string, Set};
pub use walk::{compare, item_element, to_field_set, Comparison, ListKind, Schema};

/// A manager's set with what identifies its entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Managed {
    pub manager: String,
    /// `Apply` or `Update`.
    pub operation: String,
    pub api_version: String,
    pub subresource: String,
    /// RFC 3339, as stored.
    pub time: Option<String>,
    pub set: Set,
}

impl Managed {
    fn same_owner(&self, manager: &str, operation: &str, subresource: &str) -> bool {
        self.manager == manager && self.operation == operation && self.subresource == subresource
    }

    /// How upstream names this manager in a conflict.
    pub fn describe(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if !self.subresource.is_empty() {
            s.push_str(&format!(" with subresource {:?}", self.subresource));
        }
        if self.operation == "Update" {
            s.push_str(&format!(" using {}", self.api_version));
        }
        s
    }
}

/// Who writes, and how.
#[derive(Debug, Clone)]
pub struct Writer<'a> {
    pub manager: &'a str,
    pub api_version: &'a str,
    pub subresource: &'a str,
    pub now: &'a str,
}

/// An update (create, PUT, non-apply PATCH): fields the write added or
/// changed move to the writer's `Update` entry; removed fields leave every
/// entry.
pub fn update<S: Schema>(
    schema: &S,
    root: &S::Node,
    managers: &mut Vec<Managed>,
    old: Option<&serde_json::Value>,
    new: &serde_json::Value,
    who: &Writer<'_>,
) {
    let c = compare(schema, root, old, Some(new));
    let mut changed = c.added.clone();
    changed.union(&c.modified);
    for m in managers.iter_mut() {
        m.set = m.set.recursive_difference(&c.removed);
        if !m.same_owner(who.manager, "Update", who.subresource) {
            m.set = m.set.difference(&changed);
        }
    }
    own(managers, "Update", who, |set| {
        let mut s = set.recursive_difference(&c.removed);
        s.union(&changed);
        s
    });
}

/// A conflict: a field the applier would change that another owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// [`Managed::describe`] of the owner.
    pub manager: String,
    /// Printed like upstream: `.spec.replicas`.
    pub field: String,
}

/// An apply of `config` onto `live` (absent on create). Returns the new
/// object (before defaulting) or the conflicts. `managers` is updated.
pub fn apply<S: Schema>(
    schema: &S,
    root: &S::Node,
    managers: &mut Vec<Managed>,
    live: Option<&serde_json::Value>,
    config: &serde_json::Value,
    who: &Writer<'_>,
    force: bool,
) -> Result<serde_json::Value, Vec<Conflict>> {
    let empty = serde_json::Value::Object(Default::default());
    let base = live.unwrap_or(&empty);
    let applied = to_field_set(schema, root, config);
    let mut merged = merge(schema, root, base, config);
    let c = compare(schema, root, Some(base), Some(&merged));
    let mut changed = c.added.clone();
    changed.union(&c.modified);
    changed.union(&c.removed);
    let mut conflicts = Vec::new();
    for m in managers.iter() {
        if m.same_owner(who.manager, "Apply", who.subresource) {
            continue;
        }
        for path in m.set.intersection(&changed).members() {
            conflicts.push(Conflict {
                manager: m.describe(),
                field: path_string(&path),
            });
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(conflicts);
    }
    for m in managers.iter_mut() {
        if !m.same_owner(who.manager, "Apply", who.subresource) {
            m.set = m.set.difference(&changed);
        }
    }
    let previous = managers
        .iter()
        .find(|m| m.same_owner(who.manager, "Apply", who.subresource))
        .map(|m| m.set.clone())
        .unwrap_or_default();
    let mut others = Set::new();
    for m in managers.iter() {
        if !m.same_owner(who.manager, "Apply", who.subresource) {
            others.union(&m.set);
        }
    }
    let given_up = previous.difference(&applied).difference(&others);
    remove(schema, root, &mut merged, &given_up);
    own(managers, "Apply", who, |_| applied.clone());
    Ok(merged)
}

/// Sets the writer's entry to `f(previous set)`, stamping the time when it
/// changed, and drops entries left empty.
fn own(
    managers: &mut Vec<Managed>,
    operation: &str,
    who: &Writer<'_>,
    f: impl FnOnce(&Set) -> Set,
) {
    let idx = managers
        .iter()
        .position(|m| m.same_owner(who.manager, operation, who.subresource));
    let previous = idx.map(|i| managers[i].set.clone()).unwrap_or_default();
    let next = f(&previous);
    match idx {
        Some(i) => {
            let m = &mut managers[i];
            if m.set != next || m.api_version != who.api_version {
                m.time = Some(who.now.to_string());
            }
            m.set = next;
            m.api_version = who.api_version.to_string();
        }
        None => managers.push(Managed {
            manager: who.manager.to_string(),
            operation: operation.to_string(),
            api_version: who.api_version.to_string(),
            subresource: who.subresource.to_string(),
            time: Some(who.now.to_string()),
            set: next,
        }),
    }
    managers.retain(|m| !m.set.is_empty());
}
