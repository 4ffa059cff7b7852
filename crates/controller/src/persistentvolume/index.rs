//! Which PersistentVolume fits a claim (upstream's
//! pkg/controller/volume/persistentvolume/index.go and
//! component-helpers/storage/volume's `FindMatchingVolume`): same storage
//! class, every requested access mode, the same volume mode, a matching
//! selector, capacity at least the request; the smallest fitting volume wins.

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};

use apimachinery::labels::Selector;

/// A claim's storage class: `spec.storageClassName`, else "" (upstream's
/// `GetPersistentVolumeClaimClass`, whose beta annotation is ignored here).
pub fn claim_class(claim: &PersistentVolumeClaim) -> String {
    claim
        .spec
        .as_ref()
        .and_then(|s| s.storage_class_name.clone())
        .unwrap_or_default()
}

/// A volume's storage class (`GetPersistentVolumeClass`).
pub fn volume_class(pv: &PersistentVolume) -> String {
    pv.spec
        .as_ref()
        .and_then(|s| s.storage_class_name.clone())
        .unwrap_or_default()
}

/// Bytes of a resource quantity (`10Gi`, `500M`, `1e3`); None when it does
/// not parse.
pub fn quantity_bytes(text: &str) -> Option<f64> {
    apimachinery::quantity::parse_f64(text)
}

fn claim_request(claim: &PersistentVolumeClaim) -> f64 {
    claim
        .spec
        .as_ref()
        .and_then(|s| s.resources.as_ref())
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
        .and_then(|q| quantity_bytes(&q.0))
        .unwrap_or(0.0)
}

/// A volume's `spec.capacity.storage` in bytes.
pub fn volume_capacity(pv: &PersistentVolume) -> f64 {
    pv.spec
        .as_ref()
        .and_then(|s| s.capacity.as_ref())
        .and_then(|c| c.get("storage"))
        .and_then(|q| quantity_bytes(&q.0))
        .unwrap_or(0.0)
}

fn claim_mode(claim: &PersistentVolumeClaim) -> &str {
    claim
        .spec
        .as_ref()
        .and_then(|s| s.volume_mode.as_deref())
        .unwrap_or("Filesystem")
}

fn volume_mode(pv: &PersistentVolume) -> &str {
    pv.spec
        .as_ref()
        .and_then(|s| s.volume_mode.as_deref())
        .unwrap_or("Filesystem")
}

/// Whether `pv`'s claimRef points at `claim` (name, namespace, and uid
/// when the ref has one: upstream's `IsVolumeBoundToClaim`).
pub fn is_bound_to(pv: &PersistentVolume, claim: &PersistentVolumeClaim) -> bool {
    let Some(r) = pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref()) else {
        return false;
    };
    r.name == claim.metadata.name
        && r.namespace == claim.metadata.namespace
        && (r.uid.is_none() || r.uid == claim.metadata.uid)
}

/// Whether `pv` could serve `claim`, ignoring who it is bound to.
pub fn fits(pv: &PersistentVolume, claim: &PersistentVolumeClaim) -> bool {
    if volume_class(pv) != claim_class(claim) || volume_mode(pv) != claim_mode(claim) {
        return false;
    }
    if volume_capacity(pv) < claim_request(claim) {
        return false;
    }
    let empty = Vec::new();
    let have = pv
        .spec
        .as_ref()
        .and_then(|s| s.access_modes.as_ref())
        .unwrap_or(&empty);
    let want = claim
        .spec
        .as_ref()
        .and_then(|s| s.access_modes.as_ref())
        .unwrap_or(&empty);
    if !want.iter().all(|m| have.contains(m)) {
        return false;
    }
    if let Some(sel) = claim.spec.as_ref().and_then(|s| s.selector.as_ref()) {
        let Ok(value) = serde_json::to_value(sel) else {
            return false;
        };
        let Ok(selector) = Selector::from_label_selector(&value) else {
            return false;
        };
        let labels = pv.metadata.labels.clone().unwrap_or_default();
        if !selector.matches(&labels) {
            return false;
        }
    }
    true
}

/// The volume to bind `claim` to: one already pre-bound to it, else the
/// smallest available (no claimRef, not deleting) volume that fits.
pub fn find_matching<'a>(
    volumes: impl IntoIterator<Item = &'a PersistentVolume>,
    claim: &PersistentVolumeClaim,
) -> Option<&'a PersistentVolume> {
    let mut best: Option<&PersistentVolume> = None;
    for pv in volumes {
        if pv.metadata.deletion_timestamp.is_some() || !fits(pv, claim) {
            continue;
        }
        if is_bound_to(pv, claim) {
            return Some(pv);
        }
        if pv
            .spec
            .as_ref()
            .and_then(|s| s.claim_ref.as_ref())
            .is_some()
        {
            continue;
        }
        let phase = pv.status.as_ref().and_then(|s| s.phase.as_deref());
        if matches!(phase, Some("Released") | Some("Failed")) {
            continue;
        }
        if best.is_none_or(|b| volume_capacity(pv) < volume_capacity(b)) {
            best = Some(pv);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pv(name: &str, size: &str, class: &str, labels: serde_json::Value) -> PersistentVolume {
        serde_json::from_value(json!({"metadata": {"name": name, "labels": labels},
            "spec": {"capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"],
                     "storageClassName": class, "hostPath": {"path": "/tmp/x"}}}))
        .expect("pv")
    }

    fn pvc(size: &str, class: &str, selector: Option<serde_json::Value>) -> PersistentVolumeClaim {
        let mut spec = json!({"accessModes": ["ReadWriteOnce"], "storageClassName": class,
            "resources": {"requests": {"storage": size}}});
        if let Some(s) = selector {
            spec["selector"] = s;
        }
        serde_json::from_value(
            json!({"metadata": {"name": "c", "namespace": "ns", "uid": "u1"}, "spec": spec}),
        )
        .expect("pvc")
    }

    #[test]
    fn quantities() {
        assert_eq!(quantity_bytes("1Gi"), Some(1073741824.0));
        assert_eq!(quantity_bytes("500M"), Some(5e8));
        assert_eq!(quantity_bytes("1e3"), Some(1000.0));
        assert_eq!(quantity_bytes("3X"), None);
    }

    #[test]
    fn smallest_fitting_volume_wins() {
        let vols = [
            pv("big", "10Gi", "", json!({})),
            pv("small", "1Gi", "", json!({})),
            pv("tiny", "500Mi", "", json!({})),
            pv("other-class", "1Gi", "fast", json!({})),
        ];
        let got = find_matching(&vols, &pvc("1Gi", "", None)).map(|v| v.metadata.name.clone());
        assert_eq!(got, Some(Some("small".to_string())));
        let got = find_matching(&vols, &pvc("1Gi", "fast", None)).map(|v| v.metadata.name.clone());
        assert_eq!(got, Some(Some("other-class".to_string())));
        assert!(find_matching(&vols, &pvc("20Gi", "", None)).is_none());
    }

    #[test]
    fn selector_and_prebinding() {
        let mut vols = [
            pv("a", "1Gi", "", json!({"tier": "gold"})),
            pv("b", "1Gi", "", json!({})),
        ];
        let sel = Some(json!({"matchLabels": {"tier": "gold"}}));
        let got = find_matching(&vols, &pvc("1Gi", "", sel)).map(|v| v.metadata.name.clone());
        assert_eq!(got, Some(Some("a".to_string())));
        // "b" pre-bound to the claim wins over the unbound "a".
        if let Some(spec) = vols[1].spec.as_mut() {
            spec.claim_ref = Some(k8s_openapi::api::core::v1::ObjectReference {
                name: Some("c".into()),
                namespace: Some("ns".into()),
                ..Default::default()
            });
        }
        let got = find_matching(&vols, &pvc("1Gi", "", None)).map(|v| v.metadata.name.clone());
        assert_eq!(got, Some(Some("b".to_string())));
    }

    #[test]
    fn released_and_failed_volumes_are_skipped() {
        let mut vols = [
            pv("released", "1Gi", "", json!({})),
            pv("failed", "1Gi", "", json!({})),
            pv("fresh", "5Gi", "", json!({})),
        ];
        for (v, phase) in vols.iter_mut().zip(["Released", "Failed"]) {
            v.status = Some(k8s_openapi::api::core::v1::PersistentVolumeStatus {
                phase: Some(phase.into()),
                ..Default::default()
            });
        }
        // The smaller volumes fit better but wait for their reclaim policy.
        let got = find_matching(&vols, &pvc("1Gi", "", None)).map(|v| v.metadata.name.clone());
        assert_eq!(got, Some(Some("fresh".to_string())));
    }
}
