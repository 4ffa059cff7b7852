//! Every built-in resource, listed once: group, version, kind, names, scope,
//! storage key and strategy (upstream spreads this over `pkg/registry/*/storage`).

use apimachinery::validation::NameValidation;
use k8s_openapi::api as k;
use serde_json::{json, Value};

use crate::attrs;
use crate::decode::{none, round_trip};
use crate::defaults as d;
use crate::strategy::{GenerationPolicy, StatusPolicy, Strategy};
use crate::validation as v;

/// Whether objects live in a namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Namespaced,
    Cluster,
}

/// One served resource.
#[derive(Clone)]
pub struct ResourceDef {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub list_kind: String,
    pub plural: String,
    pub singular: String,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub scope: Scope,
    /// The storage path under the prefix (`pods`, `minions`, `services/specs`).
    pub storage: String,
    /// Subresources served: `status`, `scale`, `binding`, …
    pub subresources: Vec<String>,
    /// Verbs on the collection and objects (`create` only for reviews).
    pub verbs: Vec<&'static str>,
    pub strategy: Strategy,
    /// The `.spec.replicas`-style paths of the scale subresource.
    pub scale: Option<ScalePaths>,
    /// Printer columns of a custom resource (empty for built-ins).
    pub printer_columns: Vec<Value>,
    /// What a custom resource adds (schema, versions); `None` for built-ins.
    pub custom: Option<std::sync::Arc<crate::custom::CustomResource>>,
    /// Objects are stored in another kind's form (events.k8s.io Events as
    /// core Events) and converted on the way in and out.
    pub conversion: Option<Conversion>,
}

/// Conversion between a served form and the stored one.
#[derive(Debug, Clone, Copy)]
pub struct Conversion {
    pub to_storage: fn(Value) -> Value,
    pub from_storage: fn(Value) -> Value,
    /// The stored kind's field label for one of this kind's (upstream's
    /// field label conversion); `None` for a label this kind does not have.
    pub field_label: fn(&str) -> Option<&'static str>,
}

/// Where a kind keeps what the `scale` subresource reads and writes.
#[derive(Debug, Clone)]
pub struct ScalePaths {
    pub spec_replicas: String,
    pub status_replicas: String,
    pub label_selector: Option<String>,
}

pub const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];
pub const CREATE_ONLY: &[&str] = &["create"];

impl ResourceDef {
    pub fn namespaced(&self) -> bool {
        self.scope == Scope::Namespaced
    }

    pub fn api_version(&self) -> String {
        apimachinery::resource::api_version(&self.group, &self.version)
    }

    pub fn group_resource(&self) -> apimachinery::GroupResource {
        apimachinery::GroupResource::new(&self.group, &self.plural)
    }

    /// Whether objects are kept in storage (reviews are not).
    pub fn stored(&self) -> bool {
        !self.storage.is_empty()
    }

    pub fn has_subresource(&self, s: &str) -> bool {
        self.subresources.iter().any(|x| x == s)
    }
}

struct B(ResourceDef);

fn r(group: &str, version: &str, kind: &str, plural: &str, scope: Scope, strategy: Strategy) -> B {
    B(ResourceDef {
        group: group.into(),
        version: version.into(),
        kind: kind.into(),
        list_kind: format!("{kind}List"),
        plural: plural.into(),
        singular: kind.to_lowercase(),
        short_names: vec![],
        categories: vec![],
        scope,
        storage: plural.into(),
        subresources: vec![],
        verbs: ALL_VERBS.to_vec(),
        strategy,
        scale: None,
        printer_columns: vec![],
        custom: None,
        conversion: None,
    })
}

impl B {
    fn short(mut self, s: &[&str]) -> Self {
        self.0.short_names = s.iter().map(|x| x.to_string()).collect();
        self
    }
    fn all(mut self) -> Self {
        self.0.categories = vec!["all".into()];
        self
    }
    fn storage(mut self, s: &str) -> Self {
        self.0.storage = s.into();
        self
    }
    fn sub(mut self, s: &[&str]) -> Self {
        self.0.subresources = s.iter().map(|x| x.to_string()).collect();
        self
    }
    fn scale(mut self) -> Self {
        self.0.subresources.push("scale".into());
        self.0.scale = Some(ScalePaths {
            spec_replicas: ".spec.replicas".into(),
            status_replicas: ".status.replicas".into(),
            label_selector: Some(".status.selector".into()),
        });
        self
    }
    fn convert(
        mut self,
        to_storage: fn(Value) -> Value,
        from_storage: fn(Value) -> Value,
        field_label: fn(&str) -> Option<&'static str>,
    ) -> Self {
        self.0.conversion = Some(Conversion {
            to_storage,
            from_storage,
            field_label,
        });
        self
    }
    fn review(mut self) -> Self {
        self.0.verbs = CREATE_ONLY.to_vec();
        self.0.storage = String::new();
        self
    }
}

use Scope::{Cluster, Namespaced};

macro_rules! typed {
    ($t:ty) => {
        |v| round_trip::<$t>(v, none)
    };
    ($t:ty, $f:expr) => {
        |v| round_trip::<$t>(v, $f)
    };
}

fn pod_create(obj: &mut Value) {
    obj["status"] = json!({"phase": "Pending", "qosClass": qos_class(obj)});
}

/// The pod's QoS class from its containers' requests and limits (upstream's qos.GetPodQOS, simplified to cpu/memory).
pub fn qos_class(pod: &Value) -> &'static str {
    let containers: Vec<&Value> = ["containers", "initContainers"]
        .iter()
        .filter_map(|f| pod.pointer(&format!("/spec/{f}")).and_then(Value::as_array))
        .flatten()
        .collect();
    let mut any = false;
    let mut guaranteed = true;
    for c in containers {
        for res in ["cpu", "memory"] {
            let req = c
                .pointer(&format!("/resources/requests/{res}"))
                .or_else(|| c.pointer(&format!("/resources/limits/{res}")));
            let lim = c.pointer(&format!("/resources/limits/{res}"));
            if req.is_some() || lim.is_some() {
                any = true;
            }
            if lim.is_none() || req != lim {
                guaranteed = false;
            }
        }
    }
    match (any, guaranteed) {
        (false, _) => "BestEffort",
        (true, true) => "Guaranteed",
        (true, false) => "Burstable",
    }
}

fn namespace_create(obj: &mut Value) {
    obj["spec"] = json!({"finalizers": ["kubernetes"]});
    obj["status"] = json!({"phase": "Active"});
}

fn clear_status(obj: &mut Value) {
    if let Some(m) = obj.as_object_mut() {
        m.remove("status");
    }
}

/// The built-in resources, in discovery order.
pub fn builtin_resources() -> Vec<ResourceDef> {
    let sub = Strategy::new;
    let whole = Strategy::whole;
    let list: Vec<B> = vec![
        // core/v1
        r(
            "",
            "v1",
            "Pod",
            "pods",
            Namespaced,
            sub(typed!(k::core::v1::Pod, d::pod))
                .validate(v::pod)
                .validate_update(v::pod_update)
                .attrs(attrs::pod)
                .on_create(pod_create)
                .generation(GenerationPolicy::None),
        )
        .short(&["po"])
        .all()
        .sub(&[
            "status",
            "binding",
            "eviction",
            "ephemeralcontainers",
            "log",
            "exec",
            "attach",
            "portforward",
            "proxy",
        ]),
        r(
            "",
            "v1",
            "Binding",
            "bindings",
            Namespaced,
            whole(typed!(k::core::v1::Binding)),
        )
        .review(),
        r(
            "",
            "v1",
            "Namespace",
            "namespaces",
            Cluster,
            sub(typed!(k::core::v1::Namespace, d::namespace))
                .attrs(attrs::namespace)
                .names(NameValidation::Dns1123Label)
                .on_create(namespace_create)
                .generation(GenerationPolicy::None),
        )
        .short(&["ns"])
        .sub(&["status", "finalize"]),
        r(
            "",
            "v1",
            "Node",
            "nodes",
            Cluster,
            sub(typed!(k::core::v1::Node))
                .attrs(attrs::node)
                .generation(GenerationPolicy::None),
        )
        .short(&["no"])
        .storage("minions")
        .sub(&["status", "proxy"]),
        r(
            "",
            "v1",
            "Service",
            "services",
            Namespaced,
            sub(typed!(k::core::v1::Service, d::service))
                .validate(v::service)
                .attrs(attrs::service)
                .generation(GenerationPolicy::None)
                .on_create(clear_status),
        )
        .short(&["svc"])
        .all()
        .storage("services/specs")
        .sub(&["status", "proxy"]),
        r(
            "",
            "v1",
            "Endpoints",
            "endpoints",
            Namespaced,
            whole(typed!(k::core::v1::Endpoints)),
        )
        .short(&["ep"])
        .storage("services/endpoints"),
        r(
            "",
            "v1",
            "ConfigMap",
            "configmaps",
            Namespaced,
            whole(typed!(k::core::v1::ConfigMap)),
        )
        .short(&["cm"]),
        r(
            "",
            "v1",
            "Secret",
            "secrets",
            Namespaced,
            whole(typed!(k::core::v1::Secret, d::secret)).attrs(attrs::secret),
        ),
        r(
            "",
            "v1",
            "ServiceAccount",
            "serviceaccounts",
            Namespaced,
            whole(typed!(k::core::v1::ServiceAccount)),
        )
        .short(&["sa"])
        .sub(&["token"]),
        r(
            "",
            "v1",
            "Event",
            "events",
            Namespaced,
            whole(typed!(k::core::v1::Event)).attrs(attrs::event).ttl(),
        )
        .short(&["ev"]),
        r(
            "",
            "v1",
            "PersistentVolume",
            "persistentvolumes",
            Cluster,
            sub(typed!(k::core::v1::PersistentVolume, d::pv)).generation(GenerationPolicy::None),
        )
        .short(&["pv"])
        .sub(&["status"]),
        r(
            "",
            "v1",
            "PersistentVolumeClaim",
            "persistentvolumeclaims",
            Namespaced,
            sub(typed!(k::core::v1::PersistentVolumeClaim, d::pvc))
                .generation(GenerationPolicy::None),
        )
        .short(&["pvc"])
        .sub(&["status"]),
        r(
            "",
            "v1",
            "ReplicationController",
            "replicationcontrollers",
            Namespaced,
            sub(typed!(
                k::core::v1::ReplicationController,
                d::replication_controller
            ))
            .on_create(clear_status),
        )
        .short(&["rc"])
        .all()
        .storage("controllers")
        .sub(&["status"])
        .scale(),
        r(
            "",
            "v1",
            "LimitRange",
            "limitranges",
            Namespaced,
            whole(typed!(k::core::v1::LimitRange, d::limit_range)),
        )
        .short(&["limits"]),
        r(
            "",
            "v1",
            "ResourceQuota",
            "resourcequotas",
            Namespaced,
            sub(typed!(k::core::v1::ResourceQuota)).generation(GenerationPolicy::None),
        )
        .short(&["quota"])
        .sub(&["status"]),
        r(
            "",
            "v1",
            "PodTemplate",
            "podtemplates",
            Namespaced,
            whole(typed!(k::core::v1::PodTemplate, d::pod_template)),
        ),
        // apps/v1
        r(
            "apps",
            "v1",
            "Deployment",
            "deployments",
            Namespaced,
            sub(typed!(k::apps::v1::Deployment, d::deployment))
                .validate(v::deployment)
                .on_create(clear_status),
        )
        .short(&["deploy"])
        .all()
        .sub(&["status"])
        .scale(),
        r(
            "apps",
            "v1",
            "ReplicaSet",
            "replicasets",
            Namespaced,
            sub(typed!(k::apps::v1::ReplicaSet, d::replicaset))
                .validate(v::deployment)
                .attrs(attrs::replicaset)
                .on_create(clear_status),
        )
        .short(&["rs"])
        .all()
        .sub(&["status"])
        .scale(),
        r(
            "apps",
            "v1",
            "StatefulSet",
            "statefulsets",
            Namespaced,
            sub(typed!(k::apps::v1::StatefulSet, d::statefulset))
                .validate(v::deployment)
                .on_create(clear_status),
        )
        .short(&["sts"])
        .all()
        .sub(&["status"])
        .scale(),
        r(
            "apps",
            "v1",
            "DaemonSet",
            "daemonsets",
            Namespaced,
            sub(typed!(k::apps::v1::DaemonSet, d::daemonset))
                .validate(v::deployment)
                .on_create(clear_status),
        )
        .short(&["ds"])
        .all()
        .sub(&["status"]),
        r(
            "apps",
            "v1",
            "ControllerRevision",
            "controllerrevisions",
            Namespaced,
            whole(typed!(k::apps::v1::ControllerRevision)),
        ),
        // batch/v1
        r(
            "batch",
            "v1",
            "Job",
            "jobs",
            Namespaced,
            sub(typed!(k::batch::v1::Job, d::job))
                .validate(v::job)
                .attrs(attrs::job)
                .on_create(clear_status),
        )
        .all()
        .sub(&["status"]),
        r(
            "batch",
            "v1",
            "CronJob",
            "cronjobs",
            Namespaced,
            sub(typed!(k::batch::v1::CronJob, d::cronjob)).on_create(clear_status),
        )
        .short(&["cj"])
        .all()
        .sub(&["status"]),
        // autoscaling/v2, the stored form, and autoscaling/v1 (`kubectl
        // autoscale` before 1.33) converted to it.
        r(
            "autoscaling",
            "v2",
            "HorizontalPodAutoscaler",
            "horizontalpodautoscalers",
            Namespaced,
            sub(typed!(k::autoscaling::v2::HorizontalPodAutoscaler, d::hpa))
                .on_create(clear_status),
        )
        .short(&["hpa"])
        .all()
        .sub(&["status"]),
        r(
            "autoscaling",
            "v1",
            "HorizontalPodAutoscaler",
            "horizontalpodautoscalers",
            Namespaced,
            sub(typed!(
                k::autoscaling::v1::HorizontalPodAutoscaler,
                d::hpa_v1
            ))
            .on_create(clear_status),
        )
        .short(&["hpa"])
        .all()
        .sub(&["status"])
        .convert(
            crate::autoscaling::v1_to_v2,
            crate::autoscaling::v2_to_v1,
            crate::autoscaling::field_label,
        ),
        r(
            "events.k8s.io",
            "v1",
            "Event",
            "events",
            Namespaced,
            whole(typed!(k::events::v1::Event))
                .attrs(attrs::event)
                .ttl()
                .validate(crate::events::validate_create),
        )
        .short(&["ev"])
        .convert(
            crate::events::to_core,
            crate::events::from_core,
            crate::events::field_label,
        ),
        r(
            "coordination.k8s.io",
            "v1",
            "Lease",
            "leases",
            Namespaced,
            whole(typed!(k::coordination::v1::Lease)),
        ),
        r(
            "discovery.k8s.io",
            "v1",
            "EndpointSlice",
            "endpointslices",
            Namespaced,
            whole(typed!(k::discovery::v1::EndpointSlice)),
        ),
        r(
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRole",
            "clusterroles",
            Cluster,
            whole(typed!(k::rbac::v1::ClusterRole)).names(NameValidation::PathSegment),
        ),
        r(
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRoleBinding",
            "clusterrolebindings",
            Cluster,
            whole(typed!(k::rbac::v1::ClusterRoleBinding)).names(NameValidation::PathSegment),
        ),
        r(
            "rbac.authorization.k8s.io",
            "v1",
            "Role",
            "roles",
            Namespaced,
            whole(typed!(k::rbac::v1::Role)).names(NameValidation::PathSegment),
        ),
        r(
            "rbac.authorization.k8s.io",
            "v1",
            "RoleBinding",
            "rolebindings",
            Namespaced,
            whole(typed!(k::rbac::v1::RoleBinding)).names(NameValidation::PathSegment),
        ),
        r(
            "policy",
            "v1",
            "PodDisruptionBudget",
            "poddisruptionbudgets",
            Namespaced,
            sub(typed!(k::policy::v1::PodDisruptionBudget)).on_create(clear_status),
        )
        .short(&["pdb"])
        .sub(&["status"]),
        r(
            "networking.k8s.io",
            "v1",
            "Ingress",
            "ingresses",
            Namespaced,
            sub(typed!(k::networking::v1::Ingress))
                .generation(GenerationPolicy::Spec)
                .on_create(clear_status),
        )
        .short(&["ing"])
        .storage("ingress")
        .sub(&["status"]),
        r(
            "networking.k8s.io",
            "v1",
            "IngressClass",
            "ingressclasses",
            Cluster,
            whole(typed!(k::networking::v1::IngressClass)),
        ),
        r(
            "networking.k8s.io",
            "v1",
            "NetworkPolicy",
            "networkpolicies",
            Namespaced,
            whole(typed!(k::networking::v1::NetworkPolicy)).generation(GenerationPolicy::Spec),
        )
        .short(&["netpol"]),
        r(
            "storage.k8s.io",
            "v1",
            "StorageClass",
            "storageclasses",
            Cluster,
            whole(typed!(k::storage::v1::StorageClass)),
        )
        .short(&["sc"]),
        r(
            "storage.k8s.io",
            "v1",
            "CSIDriver",
            "csidrivers",
            Cluster,
            whole(typed!(k::storage::v1::CSIDriver)),
        ),
        r(
            "storage.k8s.io",
            "v1",
            "CSINode",
            "csinodes",
            Cluster,
            whole(typed!(k::storage::v1::CSINode)),
        ),
        r(
            "storage.k8s.io",
            "v1",
            "VolumeAttachment",
            "volumeattachments",
            Cluster,
            sub(typed!(k::storage::v1::VolumeAttachment)).generation(GenerationPolicy::None),
        )
        .sub(&["status"]),
        r(
            "admissionregistration.k8s.io",
            "v1",
            "MutatingWebhookConfiguration",
            "mutatingwebhookconfigurations",
            Cluster,
            whole(typed!(
                k::admissionregistration::v1::MutatingWebhookConfiguration,
                crate::admissionregistration::mutating
            ))
            .validate(crate::admissionregistration::validate_mutating)
            .validate_update(crate::admissionregistration::validate_mutating_update)
            .generation(GenerationPolicy::NonMetadata),
        ),
        r(
            "admissionregistration.k8s.io",
            "v1",
            "ValidatingWebhookConfiguration",
            "validatingwebhookconfigurations",
            Cluster,
            whole(typed!(
                k::admissionregistration::v1::ValidatingWebhookConfiguration,
                crate::admissionregistration::validating
            ))
            .validate(crate::admissionregistration::validate_validating)
            .validate_update(crate::admissionregistration::validate_validating_update)
            .generation(GenerationPolicy::NonMetadata),
        ),
        r(
            "scheduling.k8s.io",
            "v1",
            "PriorityClass",
            "priorityclasses",
            Cluster,
            whole(typed!(k::scheduling::v1::PriorityClass, d::priority_class))
                .validate(v::priority_class)
                .validate_update(v::priority_class_update),
        )
        .short(&["pc"]),
        r(
            "node.k8s.io",
            "v1",
            "RuntimeClass",
            "runtimeclasses",
            Cluster,
            whole(typed!(k::node::v1::RuntimeClass)),
        ),
        r(
            "certificates.k8s.io",
            "v1",
            "CertificateSigningRequest",
            "certificatesigningrequests",
            Cluster,
            sub(typed!(k::certificates::v1::CertificateSigningRequest))
                .attrs(attrs::csr)
                .generation(GenerationPolicy::None)
                .validate(crate::certificates::validate)
                .validate_update(crate::certificates::validate_update)
                .record_requester(crate::certificates::record_requester)
                .subresource_update(crate::certificates::prepare_subresource_update),
        )
        .short(&["csr"])
        .sub(&["status", "approval"]),
        r(
            "authentication.k8s.io",
            "v1",
            "TokenReview",
            "tokenreviews",
            Cluster,
            whole(typed!(k::authentication::v1::TokenReview)),
        )
        .review(),
        r(
            "authentication.k8s.io",
            "v1",
            "SelfSubjectReview",
            "selfsubjectreviews",
            Cluster,
            whole(typed!(k::authentication::v1::SelfSubjectReview)),
        )
        .review(),
        r(
            "authorization.k8s.io",
            "v1",
            "SubjectAccessReview",
            "subjectaccessreviews",
            Cluster,
            whole(typed!(k::authorization::v1::SubjectAccessReview)),
        )
        .review(),
        r(
            "authorization.k8s.io",
            "v1",
            "SelfSubjectAccessReview",
            "selfsubjectaccessreviews",
            Cluster,
            whole(typed!(k::authorization::v1::SelfSubjectAccessReview)),
        )
        .review(),
        r(
            "authorization.k8s.io",
            "v1",
            "LocalSubjectAccessReview",
            "localsubjectaccessreviews",
            Namespaced,
            whole(typed!(k::authorization::v1::LocalSubjectAccessReview)),
        )
        .review(),
        r(
            "authorization.k8s.io",
            "v1",
            "SelfSubjectRulesReview",
            "selfsubjectrulesreviews",
            Cluster,
            whole(typed!(k::authorization::v1::SelfSubjectRulesReview)),
        )
        .review(),
        r(
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
            "customresourcedefinitions",
            Cluster,
            sub(crate::custom::crd_decode)
                .validate(crate::custom::crd_validate)
                .validate_update(crate::custom::crd_validate_update)
                .on_create(clear_status)
                .delete_finalizer(apiextensions::crd::CLEANUP_FINALIZER),
        )
        .short(&["crd", "crds"])
        .storage("apiextensions.k8s.io/customresourcedefinitions")
        .sub(&["status"]),
        r(
            "apiregistration.k8s.io",
            "v1",
            "APIService",
            "apiservices",
            Cluster,
            sub(typed!(
                k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService
            ))
            .on_create(clear_status),
        )
        .storage("apiregistration.k8s.io/apiservices")
        .sub(&["status"]),
    ];
    let mut out: Vec<ResourceDef> = list.into_iter().map(|b| b.0).collect();
    // `subresources` named above that need no own storage stay; reviews keep no storage.
    for def in &mut out {
        if def.strategy.status == StatusPolicy::Whole {
            def.subresources.retain(|s| s != "status");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn resources_are_unique_and_keys_follow_upstream() {
        let all = builtin_resources();
        let mut seen = HashSet::new();
        for d in &all {
            assert!(
                seen.insert((d.group.clone(), d.version.clone(), d.plural.clone())),
                "duplicate {}/{}/{}",
                d.group,
                d.version,
                d.plural
            );
        }
        let key = |p: &str| {
            all.iter()
                .find(|d| d.plural == p)
                .map(|d| d.storage.clone())
                .unwrap_or_default()
        };
        assert_eq!(key("nodes"), "minions");
        assert_eq!(key("services"), "services/specs");
        assert_eq!(key("endpoints"), "services/endpoints");
        assert_eq!(key("replicationcontrollers"), "controllers");
        assert_eq!(key("tokenreviews"), "");
        // A kind served in several versions of its group is stored once:
        // one storage key, every version but one converting to it.
        let hpas: Vec<_> = all
            .iter()
            .filter(|d| d.plural == "horizontalpodautoscalers")
            .collect();
        assert_eq!(hpas.len(), 2);
        assert_eq!(hpas[0].storage, hpas[1].storage);
        assert_eq!(hpas.iter().filter(|d| d.conversion.is_none()).count(), 1);
    }

    #[test]
    fn qos_classes() {
        assert_eq!(
            qos_class(&json!({"spec": {"containers": [{"name": "a"}]}})),
            "BestEffort"
        );
        let g = json!({"spec": {"containers": [{"resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]}});
        assert_eq!(qos_class(&g), "Guaranteed");
        let b = json!({"spec": {"containers": [{"resources": {"requests": {"cpu": "1"}}}]}});
        assert_eq!(qos_class(&b), "Burstable");
    }
}
