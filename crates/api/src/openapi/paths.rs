//! One operation per resource, verb and subresource, in a neutral form that
//! `v2.rs` and `v3.rs` render (upstream's `endpoints/installer.go`
//! `registerResourceHandlers`, which names operations `listCoreV1NamespacedPod`
//! and sets `x-kubernetes-action`).

use super::names;
use crate::registry::ResourceDef;

/// A parameter's JSON type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    String,
    Integer,
    Boolean,
}

/// A query or path parameter.
#[derive(Debug, Clone, Copy)]
pub struct Param {
    pub name: &'static str,
    pub ty: Type,
    pub description: &'static str,
}

const fn p(name: &'static str, ty: Type, description: &'static str) -> Param {
    Param {
        name,
        ty,
        description,
    }
}

use Type::{Boolean, Integer, String as Str};

pub const NAME: Param = p("name", Str, "name of the object");
pub const NAMESPACE: Param = p(
    "namespace",
    Str,
    "object name and auth scope, such as for teams and projects",
);
pub const PRETTY: Param = p("pretty", Str, "If 'true', then the output is pretty printed. Defaults to 'false' unless the user-agent indicates a browser or command-line HTTP tool (curl and wget).");
const ALLOW_WATCH_BOOKMARKS: Param = p("allowWatchBookmarks", Boolean, "allowWatchBookmarks requests watch events with type \"BOOKMARK\". Servers that do not implement bookmarks may ignore this flag and bookmarks are sent at the server's discretion.");
const CONTINUE: Param = p("continue", Str, "The continue option should be set when retrieving more results from the server. Since this value is server defined, clients may only use the continue value from a previous query result with identical query parameters (except for the value of continue).");
const DRY_RUN: Param = p("dryRun", Str, "When present, indicates that modifications should not be persisted. An invalid or unrecognized dryRun directive will result in an error response and no further processing of the request. Valid values are: - All: all dry run stages will be processed");
const FIELD_MANAGER: Param = p("fieldManager", Str, "fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters, as defined by https://golang.org/pkg/unicode/#IsPrint.");
const FIELD_SELECTOR: Param = p(
    "fieldSelector",
    Str,
    "A selector to restrict the list of returned objects by their fields. Defaults to everything.",
);
const FIELD_VALIDATION: Param = p("fieldValidation", Str, "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore: This will ignore any unknown fields that are silently dropped from the object, and will ignore all but the last duplicate field that the decoder encounters. - Warn: This will send a warning via the standard warning response header for each unknown field that is dropped from the object, and for each duplicate field that is encountered. - Strict: This will fail the request with a BadRequest error if any unknown fields would be dropped from the object, or if any duplicate fields are present. The error returned from the server will contain all unknown and duplicate fields encountered.");
const FORCE: Param = p("force", Boolean, "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people. Force flag must be unset for non-apply patch requests.");
const GRACE_PERIOD: Param = p("gracePeriodSeconds", Integer, "The duration in seconds before the object should be deleted. Value must be non-negative integer. The value zero indicates delete immediately. If this value is nil, the default grace period for the specified type will be used.");
const LABEL_SELECTOR: Param = p(
    "labelSelector",
    Str,
    "A selector to restrict the list of returned objects by their labels. Defaults to everything.",
);
const LIMIT: Param = p("limit", Integer, "limit is a maximum number of responses to return for a list call. If more items exist, the server will set the `continue` field on the list metadata to a value that can be used with the same initial query to retrieve the next set of results.");
const ORPHAN: Param = p("orphanDependents", Boolean, "Deprecated: please use the PropagationPolicy, this field will be deprecated in 1.7. Should the dependent objects be orphaned. If true/false, the \"orphan\" finalizer will be added to/removed from the object's finalizers list. Either this field or PropagationPolicy may be set, but not both.");
const PROPAGATION: Param = p("propagationPolicy", Str, "Whether and how garbage collection will be performed. Either this field or OrphanDependents may be set, but not both. Acceptable values are: 'Orphan', 'Background' and 'Foreground'.");
const RESOURCE_VERSION: Param = p("resourceVersion", Str, "resourceVersion sets a constraint on what resource versions a request may be served from. See https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions for details. Defaults to unset");
const RESOURCE_VERSION_MATCH: Param = p("resourceVersionMatch", Str, "resourceVersionMatch determines how resourceVersion is applied to list calls. It is highly recommended that resourceVersionMatch be set for list calls where resourceVersion is set.");
const SEND_INITIAL_EVENTS: Param = p("sendInitialEvents", Boolean, "`sendInitialEvents=true` may be set together with `watch=true`. In that case, the watch stream will begin with synthetic events to produce the current state of objects in the collection.");
const TIMEOUT: Param = p("timeoutSeconds", Integer, "Timeout for the list/watch call. This limits the duration of the call, regardless of any activity or inactivity.");
const WATCH: Param = p("watch", Boolean, "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications. Specify resourceVersion.");

const LIST: &[Param] = &[
    ALLOW_WATCH_BOOKMARKS,
    CONTINUE,
    FIELD_SELECTOR,
    LABEL_SELECTOR,
    LIMIT,
    RESOURCE_VERSION,
    RESOURCE_VERSION_MATCH,
    SEND_INITIAL_EVENTS,
    TIMEOUT,
    WATCH,
];
const WRITE: &[Param] = &[DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION];
const PATCH: &[Param] = &[DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION, FORCE];
const DELETE: &[Param] = &[DRY_RUN, GRACE_PERIOD, ORPHAN, PROPAGATION];
const DELETE_COLLECTION: &[Param] = &[
    CONTINUE,
    DRY_RUN,
    FIELD_SELECTOR,
    GRACE_PERIOD,
    LABEL_SELECTOR,
    LIMIT,
    ORPHAN,
    PROPAGATION,
    RESOURCE_VERSION,
    RESOURCE_VERSION_MATCH,
    SEND_INITIAL_EVENTS,
    TIMEOUT,
];

pub const PATCH_TYPES: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
];
pub const PRODUCES: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
];
pub const PRODUCES_LIST: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
    "application/json;stream=watch",
    "application/vnd.kubernetes.protobuf;stream=watch",
];
pub const ANY: &[&str] = &["*/*"];

/// A request body.
#[derive(Debug, Clone)]
pub struct Body {
    /// Definition name.
    pub schema: &'static str,
    pub required: bool,
    pub consumes: &'static [&'static str],
}

/// One operation.
#[derive(Debug, Clone)]
pub struct Operation {
    /// `get`, `put`, `post`, `patch`, `delete`.
    pub method: &'static str,
    pub id: String,
    pub description: String,
    /// `x-kubernetes-action`.
    pub action: &'static str,
    /// `x-kubernetes-group-version-kind`.
    pub gvk: (String, String, String),
    /// Query parameters, sorted by name.
    pub params: &'static [Param],
    pub body: Option<(String, Body)>,
    /// Status code, description and (for success) the response schema.
    pub responses: Vec<(u16, &'static str, Option<String>)>,
    pub produces: &'static [&'static str],
    pub tag: String,
}

/// One path with its operations.
#[derive(Debug, Clone)]
pub struct PathItem {
    pub path: String,
    pub group: String,
    pub version: String,
    /// The definition of the resource's kind (what `""` bodies stand for).
    pub kind_schema: String,
    /// Path-level parameters: path parameters, then `pretty`.
    pub path_params: Vec<Param>,
    pub operations: Vec<Operation>,
}

/// `CoreV1`, `AppsV1`, `RbacAuthorizationV1` (upstream's operation-id infix).
pub fn gv_camel(group: &str, version: &str) -> String {
    let g = if group.is_empty() {
        "core"
    } else {
        group.trim_end_matches(".k8s.io")
    };
    let mut out: String = g.split('.').map(upper_first).collect();
    out.push_str(&upper_first(version));
    out
}

/// `core_v1`, `apps_v1`, `rbacAuthorization_v1` (upstream's tags).
pub fn gv_tag(group: &str, version: &str) -> String {
    let g = if group.is_empty() {
        "core"
    } else {
        group.trim_end_matches(".k8s.io")
    };
    let mut parts = g.split('.');
    let mut out = parts.next().unwrap_or_default().to_string();
    out.extend(parts.map(upper_first));
    format!("{out}_{version}")
}

fn upper_first(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// Builds the paths of `def`; `schema` is its kind's definition name.
pub fn resource_paths(def: &ResourceDef, schema: &str) -> Vec<PathItem> {
    let prefix = if def.group.is_empty() {
        format!("/api/{}", def.version)
    } else {
        format!("/apis/{}/{}", def.group, def.version)
    };
    let gv = gv_camel(&def.group, &def.version);
    let ns = if def.namespaced() { "Namespaced" } else { "" };
    let kind = &def.kind;
    let gvk = (def.group.clone(), def.version.clone(), def.kind.clone());
    let list_schema = format!("{schema}List");
    let has = |v: &str| def.verbs.contains(&v);
    let (coll, coll_params) = if def.namespaced() {
        (
            format!("{prefix}/namespaces/{{namespace}}/{}", def.plural),
            vec![NAMESPACE, PRETTY],
        )
    } else {
        (format!("{prefix}/{}", def.plural), vec![PRETTY])
    };
    let obj = format!("{coll}/{{name}}");
    let mut obj_params = vec![NAME];
    obj_params.extend(coll_params.iter().copied());
    let item = |path: String, path_params: Vec<Param>, operations: Vec<Operation>| PathItem {
        path,
        group: def.group.clone(),
        version: def.version.clone(),
        kind_schema: schema.to_string(),
        path_params,
        operations,
    };
    let op = |method,
              id: String,
              description: String,
              action,
              params,
              body: Option<(String, Body)>,
              ok: Vec<(u16, &'static str, Option<String>)>,
              produces| {
        let mut responses = ok;
        responses.push((401, "Unauthorized", None));
        Operation {
            method,
            id,
            description,
            action,
            gvk: gvk.clone(),
            params,
            body,
            responses,
            produces,
            tag: gv_tag(&def.group, &def.version),
        }
    };
    let body = |schema: &'static str, consumes| {
        Some((
            "body".to_string(),
            Body {
                schema,
                required: true,
                consumes,
            },
        ))
    };
    let mut out = Vec::new();
    if !def.stored() {
        let ok = vec![
            (200, "OK", Some(schema.to_string())),
            (201, "Created", Some(schema.to_string())),
            (202, "Accepted", Some(schema.to_string())),
        ];
        let b = Some((
            "body".to_string(),
            Body {
                schema: "",
                required: true,
                consumes: ANY,
            },
        ));
        out.push(item(
            coll,
            coll_params,
            vec![op(
                "post",
                format!("create{gv}{ns}{kind}"),
                format!("create a {kind}"),
                "post",
                WRITE,
                b,
                ok,
                PRODUCES,
            )],
        ));
        return out;
    }
    let one = |code, desc| vec![(code, desc, Some(schema.to_string()))];
    let mut coll_ops = Vec::new();
    if has("list") {
        coll_ops.push(op(
            "get",
            format!("list{gv}{ns}{kind}"),
            format!("list or watch objects of kind {kind}"),
            "list",
            LIST,
            None,
            vec![(200, "OK", Some(list_schema.clone()))],
            PRODUCES_LIST,
        ));
    }
    if has("create") {
        let ok = vec![
            (200, "OK", Some(schema.to_string())),
            (201, "Created", Some(schema.to_string())),
            (202, "Accepted", Some(schema.to_string())),
        ];
        coll_ops.push(op(
            "post",
            format!("create{gv}{ns}{kind}"),
            format!("create a {kind}"),
            "post",
            WRITE,
            body("", ANY),
            ok,
            PRODUCES,
        ));
    }
    if has("deletecollection") {
        let b = Some((
            "body".to_string(),
            Body {
                schema: names::DELETE_OPTIONS,
                required: false,
                consumes: ANY,
            },
        ));
        coll_ops.push(op(
            "delete",
            format!("delete{gv}Collection{ns}{kind}"),
            format!("delete collection of {kind}"),
            "deletecollection",
            DELETE_COLLECTION,
            b,
            vec![(200, "OK", Some(names::STATUS.into()))],
            PRODUCES,
        ));
    }
    out.push(item(coll.clone(), coll_params.clone(), coll_ops));
    let mut obj_ops = Vec::new();
    if has("get") {
        obj_ops.push(op(
            "get",
            format!("read{gv}{ns}{kind}"),
            format!("read the specified {kind}"),
            "get",
            &[],
            None,
            one(200, "OK"),
            PRODUCES,
        ));
    }
    if has("update") {
        obj_ops.push(op(
            "put",
            format!("replace{gv}{ns}{kind}"),
            format!("replace the specified {kind}"),
            "put",
            WRITE,
            body("", ANY),
            vec![
                (200, "OK", Some(schema.into())),
                (201, "Created", Some(schema.into())),
            ],
            PRODUCES,
        ));
    }
    if has("patch") {
        obj_ops.push(op(
            "patch",
            format!("patch{gv}{ns}{kind}"),
            format!("partially update the specified {kind}"),
            "patch",
            PATCH,
            body(names::PATCH, PATCH_TYPES),
            vec![
                (200, "OK", Some(schema.into())),
                (201, "Created", Some(schema.into())),
            ],
            PRODUCES,
        ));
    }
    if has("delete") {
        let b = Some((
            "body".to_string(),
            Body {
                schema: names::DELETE_OPTIONS,
                required: false,
                consumes: ANY,
            },
        ));
        obj_ops.push(op(
            "delete",
            format!("delete{gv}{ns}{kind}"),
            format!("delete a {kind}"),
            "delete",
            DELETE,
            b,
            vec![
                (200, "OK", Some(schema.into())),
                (202, "Accepted", Some(schema.into())),
            ],
            PRODUCES,
        ));
    }
    out.push(item(obj.clone(), obj_params.clone(), obj_ops));
    if def.namespaced() && has("list") {
        let ops = vec![op(
            "get",
            format!("list{gv}{kind}ForAllNamespaces"),
            format!("list or watch objects of kind {kind}"),
            "list",
            LIST,
            None,
            vec![(200, "OK", Some(list_schema.clone()))],
            PRODUCES_LIST,
        )];
        out.push(item(format!("{prefix}/{}", def.plural), vec![PRETTY], ops));
    }
    if has("watch") {
        let ev = || vec![(200, "OK", Some(names::WATCH_EVENT.to_string()))];
        let watch_coll = coll.replacen(&prefix, &format!("{prefix}/watch"), 1);
        out.push(item(watch_coll.clone(), coll_params.clone(), vec![op("get", format!("watch{gv}{ns}{kind}List"), format!("watch individual changes to a list of {kind}. deprecated: use the 'watch' parameter with a list operation instead."), "watchlist", LIST, None, ev(), PRODUCES_LIST)]));
        out.push(item(format!("{watch_coll}/{{name}}"), obj_params.clone(), vec![op("get", format!("watch{gv}{ns}{kind}"), format!("watch changes to an object of kind {kind}. deprecated: use the 'watch' parameter with a list operation instead, filtered to a single item with the 'fieldSelector' parameter."), "watch", LIST, None, ev(), PRODUCES_LIST)]));
        if def.namespaced() {
            out.push(item(format!("{prefix}/watch/{}", def.plural), vec![PRETTY], vec![op("get", format!("watch{gv}{kind}ListForAllNamespaces"), format!("watch individual changes to a list of {kind}. deprecated: use the 'watch' parameter with a list operation instead."), "watchlist", LIST, None, ev(), PRODUCES_LIST)]));
        }
    }
    if def.has_subresource("status") {
        let ops = vec![
            op(
                "get",
                format!("read{gv}{ns}{kind}Status"),
                format!("read status of the specified {kind}"),
                "get",
                &[],
                None,
                one(200, "OK"),
                PRODUCES,
            ),
            op(
                "put",
                format!("replace{gv}{ns}{kind}Status"),
                format!("replace status of the specified {kind}"),
                "put",
                WRITE,
                body("", ANY),
                vec![
                    (200, "OK", Some(schema.into())),
                    (201, "Created", Some(schema.into())),
                ],
                PRODUCES,
            ),
            op(
                "patch",
                format!("patch{gv}{ns}{kind}Status"),
                format!("partially update status of the specified {kind}"),
                "patch",
                PATCH,
                body(names::PATCH, PATCH_TYPES),
                vec![
                    (200, "OK", Some(schema.into())),
                    (201, "Created", Some(schema.into())),
                ],
                PRODUCES,
            ),
        ];
        out.push(item(format!("{obj}/status"), obj_params.clone(), ops));
    }
    if def.has_subresource("scale") {
        let scale = || Some(names::SCALE.to_string());
        let mut ops = vec![
            op(
                "get",
                format!("read{gv}{ns}{kind}Scale"),
                format!("read scale of the specified {kind}"),
                "get",
                &[],
                None,
                vec![(200, "OK", scale())],
                PRODUCES,
            ),
            op(
                "put",
                format!("replace{gv}{ns}{kind}Scale"),
                format!("replace scale of the specified {kind}"),
                "put",
                WRITE,
                body(names::SCALE, ANY),
                vec![(200, "OK", scale()), (201, "Created", scale())],
                PRODUCES,
            ),
            op(
                "patch",
                format!("patch{gv}{ns}{kind}Scale"),
                format!("partially update scale of the specified {kind}"),
                "patch",
                PATCH,
                body(names::PATCH, PATCH_TYPES),
                vec![(200, "OK", scale()), (201, "Created", scale())],
                PRODUCES,
            ),
        ];
        for o in &mut ops {
            o.gvk = ("autoscaling".into(), "v1".into(), "Scale".into());
        }
        out.push(item(format!("{obj}/scale"), obj_params, ops));
    }
    out
}

/// The definition a body refers to (`""` stands for the operation's kind).
pub fn body_schema<'a>(b: &'a Body, kind_schema: &'a str) -> &'a str {
    if b.schema.is_empty() {
        kind_schema
    } else {
        b.schema
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_upstream() {
        assert_eq!(gv_camel("", "v1"), "CoreV1");
        assert_eq!(
            gv_camel("rbac.authorization.k8s.io", "v1"),
            "RbacAuthorizationV1"
        );
        assert_eq!(
            gv_tag("rbac.authorization.k8s.io", "v1"),
            "rbacAuthorization_v1"
        );
        assert_eq!(gv_tag("apps", "v1"), "apps_v1");
        let pods = crate::registry::builtin_resources()
            .into_iter()
            .find(|d| d.plural == "pods");
        let Some(pods) = pods else { panic!("no pods") };
        let paths = resource_paths(&pods, "io.k8s.api.core.v1.Pod");
        let ids: Vec<&str> = paths
            .iter()
            .flat_map(|p| p.operations.iter().map(|o| o.id.as_str()))
            .collect();
        for id in [
            "listCoreV1NamespacedPod",
            "createCoreV1NamespacedPod",
            "deleteCoreV1CollectionNamespacedPod",
            "readCoreV1NamespacedPod",
            "patchCoreV1NamespacedPodStatus",
            "listCoreV1PodForAllNamespaces",
            "watchCoreV1NamespacedPodList",
        ] {
            assert!(ids.contains(&id), "{id} missing from {ids:?}");
        }
    }
}
