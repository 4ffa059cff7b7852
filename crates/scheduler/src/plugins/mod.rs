//! The in-tree plugins and their registry (upstream's
//! `pkg/scheduler/framework/plugins/registry.go`). Every plugin is listed
//! once in [`in_tree_registry`]; nothing registers itself.

pub mod defaultbinder;
pub mod defaultpreemption;
pub mod imagelocality;
pub mod interpodaffinity;
pub mod nodeaffinity;
pub mod nodename;
pub mod nodeports;
pub mod noderesources;
pub mod nodeunschedulable;
pub mod podtopologyspread;
pub mod queuesort;
pub mod schedulinggates;
pub mod tainttoleration;
pub mod volumebinding;
pub mod volumerestrictions;

#[cfg(test)]
pub(crate) mod testing;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::framework::runtime::Registry;

/// Every in-tree plugin by name.
pub fn in_tree_registry() -> Registry {
    let mut r = Registry::default();
    let plugins: [(&'static str, crate::framework::runtime::Factory); 16] = [
        (queuesort::NAME, queuesort::new),
        (schedulinggates::NAME, schedulinggates::new),
        (nodeunschedulable::NAME, nodeunschedulable::new),
        (nodename::NAME, nodename::new),
        (tainttoleration::NAME, tainttoleration::new),
        (nodeaffinity::NAME, nodeaffinity::new),
        (nodeports::NAME, nodeports::new),
        (noderesources::fit::NAME, noderesources::fit::new),
        (noderesources::balanced::NAME, noderesources::balanced::new),
        (imagelocality::NAME, imagelocality::new),
        (volumerestrictions::NAME, volumerestrictions::new),
        (volumebinding::NAME, volumebinding::new),
        (podtopologyspread::NAME, podtopologyspread::new),
        (interpodaffinity::NAME, interpodaffinity::new),
        (defaultpreemption::NAME, defaultpreemption::new),
        (defaultbinder::NAME, defaultbinder::new),
    ];
    for (name, f) in plugins {
        if let Err(e) = r.register(name, f) {
            // A duplicate is a programming error caught by the unit test below.
            tracing::error!(error = %e, "in-tree registry");
        }
    }
    r
}

/// Decodes a plugin's args strictly; absent args are the defaults.
pub(crate) fn decode_args<T: DeserializeOwned + Default>(
    args: Option<&Value>,
) -> Result<T, String> {
    match args {
        None | Some(Value::Null) => Ok(T::default()),
        Some(v) => {
            let mut v = v.clone();
            if let Some(m) = v.as_object_mut() {
                m.remove("apiVersion");
                m.remove("kind");
            }
            serde_json::from_value(v).map_err(|e| e.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn registry_names_are_unique_and_complete() {
        let r = super::in_tree_registry();
        for p in crate::config::default_plugins().multi_point.enabled {
            assert!(r.contains(&p.name), "{} registered", p.name);
        }
    }
}
