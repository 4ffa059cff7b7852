//! Resource lists and the set operations quota uses on them (upstream's
//! staging/src/k8s.io/apiserver/pkg/quota/v1/resources.go: `Add`, `Mask`,
//! `Equals`, `ResourceNames`, `Intersection`).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity as ApiQuantity;

use apimachinery::quantity::Quantity;

/// Resource name → quantity (upstream's `corev1.ResourceList`).
pub type ResourceList = BTreeMap<String, Quantity>;

/// An API resource list parsed; a value that is no quantity is left out
/// (the API server's validation refuses those).
pub fn parse(list: Option<&BTreeMap<String, ApiQuantity>>) -> ResourceList {
    list.into_iter()
        .flatten()
        .filter_map(|(name, q)| match Quantity::parse(&q.0) {
            Some(v) => Some((name.clone(), v)),
            None => {
                tracing::debug!(resource = %name, quantity = %q.0, "not a quantity; ignored");
                None
            }
        })
        .collect()
}

/// The list in the API's form, every quantity in canonical text.
pub fn to_api(list: &ResourceList) -> BTreeMap<String, ApiQuantity> {
    list.iter()
        .map(|(name, q)| (name.clone(), ApiQuantity(q.to_string())))
        .collect()
}

/// `a + b`, key by key; a key in only one of them keeps its value.
pub fn add(a: &ResourceList, b: &ResourceList) -> ResourceList {
    let mut out = a.clone();
    add_into(&mut out, b);
    out
}

/// `list += other`, key by key (upstream's `addResourceList`).
pub fn add_into(list: &mut ResourceList, other: &ResourceList) {
    for (name, q) in other {
        match list.get_mut(name) {
            Some(v) => v.add(q),
            None => {
                list.insert(name.clone(), *q);
            }
        }
    }
}

/// `list = max(list, other)`, key by key (upstream's `maxResourceList`).
pub fn max_into(list: &mut ResourceList, other: &ResourceList) {
    for (name, q) in other {
        match list.get(name) {
            Some(v) if v >= q => {}
            _ => {
                list.insert(name.clone(), *q);
            }
        }
    }
}

/// Only the entries named in `names`.
pub fn mask(list: &ResourceList, names: &[String]) -> ResourceList {
    list.iter()
        .filter(|(name, _)| names.contains(name))
        .map(|(name, q)| (name.clone(), *q))
        .collect()
}

/// Same keys, equal values (upstream's `quota.Equals`, semantic).
pub fn equals(a: &ResourceList, b: &ResourceList) -> bool {
    a.len() == b.len() && a.iter().all(|(name, q)| b.get(name) == Some(q))
}

/// The names in `input` that are also in `allowed`, in `input`'s order.
pub fn intersection(input: &[String], allowed: &[&str]) -> Vec<String> {
    input
        .iter()
        .filter(|name| allowed.contains(&name.as_str()))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[(&str, &str)]) -> ResourceList {
        entries
            .iter()
            .filter_map(|(n, q)| Some((n.to_string(), Quantity::parse(q)?)))
            .collect()
    }

    #[test]
    fn add_max_mask_equals() {
        let a = list(&[("cpu", "100m"), ("memory", "1Gi")]);
        let b = list(&[("cpu", "900m"), ("pods", "1")]);
        let sum = add(&a, &b);
        assert!(equals(
            &sum,
            &list(&[("cpu", "1"), ("memory", "1Gi"), ("pods", "1")])
        ));
        let mut m = a.clone();
        max_into(&mut m, &list(&[("cpu", "50m"), ("memory", "2Gi")]));
        assert!(equals(&m, &list(&[("cpu", "100m"), ("memory", "2Gi")])));
        let masked = mask(&sum, &["cpu".to_string(), "nosuch".to_string()]);
        assert!(equals(&masked, &list(&[("cpu", "1000m")])));
        assert!(!equals(&masked, &list(&[("cpu", "1"), ("pods", "0")])));
        assert_eq!(
            to_api(&sum).get("cpu").map(|q| q.0.as_str()),
            Some("1"),
            "canonical text"
        );
    }
}
