//! The Rust types behind every served kind (upstream registers them in each
//! group's `install` package, and `GetOpenAPIDefinitions` lists their schemas).
//! k8s-openapi's `JsonSchema` impls carry upstream's definition names.

use k8s_openapi::api as k;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiext;
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1 as apireg;
use k8s_openapi::schemars::{Schema, SchemaGenerator};

/// Registers a type's definition and returns its `$ref` schema.
pub type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

/// One served kind and its type. k8s-openapi has no list types with schemas
/// (`List<T>` is generic), so `definitions` writes the `<Kind>List`s.
pub struct KindType {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub object: SchemaFn,
}

macro_rules! s {
    ($t:ty) => {
        (|g: &mut SchemaGenerator| g.subschema_for::<$t>()) as SchemaFn
    };
}

macro_rules! kinds {
    ($( $g:literal $v:literal $kind:ident $t:ty ;)*) => {
        &[$(KindType { group: $g, version: $v, kind: stringify!($kind), object: s!($t) },)*]
    };
}

/// Every kind of `registry::builtin_resources()` (a test holds the two lists together).
pub const KINDS: &[KindType] = kinds! {
    "" "v1" Pod k::core::v1::Pod;
    "" "v1" Binding k::core::v1::Binding;
    "" "v1" Namespace k::core::v1::Namespace;
    "" "v1" Node k::core::v1::Node;
    "" "v1" Service k::core::v1::Service;
    "" "v1" Endpoints k::core::v1::Endpoints;
    "" "v1" ConfigMap k::core::v1::ConfigMap;
    "" "v1" Secret k::core::v1::Secret;
    "" "v1" ServiceAccount k::core::v1::ServiceAccount;
    "" "v1" Event k::core::v1::Event;
    "" "v1" PersistentVolume k::core::v1::PersistentVolume;
    "" "v1" PersistentVolumeClaim k::core::v1::PersistentVolumeClaim;
    "" "v1" ReplicationController k::core::v1::ReplicationController;
    "" "v1" LimitRange k::core::v1::LimitRange;
    "" "v1" ResourceQuota k::core::v1::ResourceQuota;
    "" "v1" PodTemplate k::core::v1::PodTemplate;
    "apps" "v1" Deployment k::apps::v1::Deployment;
    "apps" "v1" ReplicaSet k::apps::v1::ReplicaSet;
    "apps" "v1" StatefulSet k::apps::v1::StatefulSet;
    "apps" "v1" DaemonSet k::apps::v1::DaemonSet;
    "apps" "v1" ControllerRevision k::apps::v1::ControllerRevision;
    "batch" "v1" Job k::batch::v1::Job;
    "batch" "v1" CronJob k::batch::v1::CronJob;
    "autoscaling" "v2" HorizontalPodAutoscaler k::autoscaling::v2::HorizontalPodAutoscaler;
    "autoscaling" "v1" HorizontalPodAutoscaler k::autoscaling::v1::HorizontalPodAutoscaler;
    "coordination.k8s.io" "v1" Lease k::coordination::v1::Lease;
    "events.k8s.io" "v1" Event k::events::v1::Event;
    "discovery.k8s.io" "v1" EndpointSlice k::discovery::v1::EndpointSlice;
    "rbac.authorization.k8s.io" "v1" ClusterRole k::rbac::v1::ClusterRole;
    "rbac.authorization.k8s.io" "v1" ClusterRoleBinding k::rbac::v1::ClusterRoleBinding;
    "rbac.authorization.k8s.io" "v1" Role k::rbac::v1::Role;
    "rbac.authorization.k8s.io" "v1" RoleBinding k::rbac::v1::RoleBinding;
    "policy" "v1" PodDisruptionBudget k::policy::v1::PodDisruptionBudget;
    "networking.k8s.io" "v1" Ingress k::networking::v1::Ingress;
    "networking.k8s.io" "v1" IngressClass k::networking::v1::IngressClass;
    "networking.k8s.io" "v1" NetworkPolicy k::networking::v1::NetworkPolicy;
    "storage.k8s.io" "v1" StorageClass k::storage::v1::StorageClass;
    "storage.k8s.io" "v1" CSIDriver k::storage::v1::CSIDriver;
    "storage.k8s.io" "v1" CSINode k::storage::v1::CSINode;
    "storage.k8s.io" "v1" VolumeAttachment k::storage::v1::VolumeAttachment;
    "admissionregistration.k8s.io" "v1" MutatingWebhookConfiguration k::admissionregistration::v1::MutatingWebhookConfiguration;
    "admissionregistration.k8s.io" "v1" ValidatingWebhookConfiguration k::admissionregistration::v1::ValidatingWebhookConfiguration;
    "scheduling.k8s.io" "v1" PriorityClass k::scheduling::v1::PriorityClass;
    "node.k8s.io" "v1" RuntimeClass k::node::v1::RuntimeClass;
    "certificates.k8s.io" "v1" CertificateSigningRequest k::certificates::v1::CertificateSigningRequest;
    "authentication.k8s.io" "v1" TokenReview k::authentication::v1::TokenReview;
    "authentication.k8s.io" "v1" SelfSubjectReview k::authentication::v1::SelfSubjectReview;
    "authorization.k8s.io" "v1" SubjectAccessReview k::authorization::v1::SubjectAccessReview;
    "authorization.k8s.io" "v1" SelfSubjectAccessReview k::authorization::v1::SelfSubjectAccessReview;
    "authorization.k8s.io" "v1" LocalSubjectAccessReview k::authorization::v1::LocalSubjectAccessReview;
    "authorization.k8s.io" "v1" SelfSubjectRulesReview k::authorization::v1::SelfSubjectRulesReview;
    "apiextensions.k8s.io" "v1" CustomResourceDefinition apiext::CustomResourceDefinition;
    "apiregistration.k8s.io" "v1" APIService apireg::APIService;
};

/// The `scale` subresource's kind (autoscaling/v1 Scale).
pub const SCALE: SchemaFn = s!(k::autoscaling::v1::Scale);

/// Meta types the paths refer to, by upstream's names.
pub const DELETE_OPTIONS: SchemaFn = s!(meta::DeleteOptions);
pub const STATUS: SchemaFn = s!(meta::Status);
pub const WATCH_EVENT: SchemaFn = s!(meta::WatchEvent<serde_json::Value>);
pub const PATCH: SchemaFn = s!(meta::Patch);
pub const API_RESOURCE_LIST: SchemaFn = s!(meta::APIResourceList);

pub fn find(group: &str, version: &str, kind: &str) -> Option<&'static KindType> {
    KINDS
        .iter()
        .find(|k| k.group == group && k.version == version && k.kind == kind)
}
