//! Authorization (upstream's `k8s.io/apiserver/pkg/authorization` and
//! `pkg/kubeapiserver/authorizer`): every authenticated request is asked of
//! the authorizers `--authorization-mode` names, in order, after members of
//! `system:masters`, who may do anything. The first that allows or denies
//! decides; when none does the request is refused with 403 and the
//! reasons the authorizers gave.
//!
//! Modes: `AlwaysAllow` (the default, as upstream's), `AlwaysDeny`, `RBAC`
//! ([`rbac`]), and `Node` ([`node`]).

pub mod bootstrap;
pub mod escalation;
pub mod impersonation;
pub mod node;
pub mod policy;
pub mod rbac;
pub mod rules;

use apimachinery::{ApiError, GroupResource};
use component_base::authn::User;
use component_base::metrics::{Counter, Family};

use crate::handlers::Query;
use crate::request_info::RequestInfo;
use crate::state::ApiState;

/// The group whose members every authorizer configuration allows
/// (upstream's `user.SystemPrivilegedGroup`).
pub const PRIVILEGED_GROUP: &str = "system:masters";

/// One `--authorization-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    AlwaysAllow,
    AlwaysDeny,
    Node,
    Rbac,
}

impl Mode {
    /// The flag's spelling (the `type` label of the decisions metric).
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::AlwaysAllow => "AlwaysAllow",
            Mode::AlwaysDeny => "AlwaysDeny",
            Mode::Node => "Node",
            Mode::Rbac => "RBAC",
        }
    }

    fn parse(s: &str) -> Result<Self, String> {
        match s {
            "AlwaysAllow" => Ok(Mode::AlwaysAllow),
            "AlwaysDeny" => Ok(Mode::AlwaysDeny),
            "Node" => Ok(Mode::Node),
            "RBAC" => Ok(Mode::Rbac),
            "ABAC" | "Webhook" => Err(format!(
                "authorization-mode {s:?} is not supported by this server"
            )),
            other => Err(format!(
                "authorization-mode {other:?} is not a valid mode (AlwaysAllow, AlwaysDeny, Node, RBAC)"
            )),
        }
    }

    /// Parses `--authorization-mode` (comma separated, each once).
    pub fn parse_list(modes: &[String]) -> Result<Vec<Mode>, String> {
        let mut out = Vec::new();
        for m in modes.iter().map(|m| m.trim()).filter(|m| !m.is_empty()) {
            let mode = Mode::parse(m)?;
            if out.contains(&mode) {
                return Err(format!(
                    "authorization-mode {m:?} has mode specified more than once"
                ));
            }
            out.push(mode);
        }
        if out.is_empty() {
            out.push(Mode::AlwaysAllow);
        }
        Ok(out)
    }
}

/// What is asked (upstream's `authorizer.Attributes`).
#[derive(Debug, Clone)]
pub struct Attributes<'a> {
    pub user: &'a User,
    pub verb: &'a str,
    pub resource_request: bool,
    pub namespace: &'a str,
    pub api_group: &'a str,
    pub resource: &'a str,
    pub subresource: &'a str,
    pub name: &'a str,
    /// The URL path of a non-resource request.
    pub path: &'a str,
}

impl<'a> Attributes<'a> {
    /// The attributes of a parsed request. A list or watch with the field
    /// selector `metadata.name=x` is about `x` (upstream sets the name so
    /// that rules with resourceNames apply).
    pub fn of_request(
        user: &'a User,
        info: &'a RequestInfo,
        path: &'a str,
        selected_name: Option<&'a str>,
    ) -> Self {
        let name = match (info.verb.as_str(), selected_name) {
            ("list" | "watch", Some(n)) if info.name.is_empty() => n,
            _ => info.name.as_str(),
        };
        Attributes {
            user,
            verb: &info.verb,
            resource_request: info.is_resource,
            namespace: &info.namespace,
            api_group: &info.group,
            resource: &info.resource,
            subresource: &info.subresource,
            name,
            path,
        }
    }
}

/// The `metadata.name` a field selector asks for exactly, if it asks for
/// only that.
pub fn selected_name(query: &Query) -> Option<String> {
    let sel = query.get("fieldSelector")?;
    let rest = sel
        .strip_prefix("metadata.name==")
        .or_else(|| sel.strip_prefix("metadata.name="))?;
    (!rest.contains(',') && !rest.is_empty()).then(|| rest.to_string())
}

/// An authorizer's answer, with its reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow(String),
    Deny(String),
    NoOpinion(String),
}

type Labels = Vec<(&'static str, String)>;

/// The configured authorizers and the policy they read.
pub struct Authorizer {
    modes: Vec<Mode>,
    pub rbac: rbac::Rbac,
    /// Upstream's `apiserver_authorization_decisions_total` (type, name,
    /// decision), counted when an authorizer decides.
    pub decisions: Family<Labels, Counter>,
}

impl Authorizer {
    pub fn new(modes: Vec<Mode>) -> Self {
        Authorizer {
            modes,
            rbac: rbac::Rbac::default(),
            decisions: Family::default(),
        }
    }

    /// Adds the decisions counter to the server's registry.
    pub fn register(&self, registry: &component_base::metrics::Metrics) {
        registry.register(
            "apiserver_authorization_decisions",
            "Total number of terminal decisions made by an authorizer split by authorizer type, name, and decision.",
            self.decisions.clone(),
        );
    }

    pub fn has(&self, mode: Mode) -> bool {
        self.modes.contains(&mode)
    }

    /// The union of the authorizers (upstream's `union.New` behind the
    /// privileged-group authorizer): the first allow or deny wins, else
    /// NoOpinion with every reason given.
    pub fn authorize(&self, state: &ApiState, a: &Attributes) -> Decision {
        if a.user.groups.iter().any(|g| g == PRIVILEGED_GROUP) {
            return Decision::Allow(String::new());
        }
        let mut reasons = Vec::new();
        for mode in &self.modes {
            let d = match mode {
                Mode::AlwaysAllow => Decision::Allow(String::new()),
                Mode::AlwaysDeny => Decision::Deny("Everything is forbidden.".into()),
                Mode::Rbac => self.rbac.authorize(a),
                Mode::Node => node::authorize(state, a),
            };
            let decision = match &d {
                Decision::NoOpinion(r) => {
                    if !r.is_empty() {
                        reasons.push(r.clone());
                    }
                    continue;
                }
                Decision::Allow(_) => "allowed",
                Decision::Deny(_) => "denied",
            };
            self.decisions
                .get_or_create(&vec![
                    ("type", mode.as_str().to_string()),
                    ("name", mode.as_str().to_lowercase()),
                    ("decision", decision.to_string()),
                ])
                .inc();
            return d;
        }
        Decision::NoOpinion(reasons.join(", "))
    }

    /// Whether the request is allowed.
    pub fn allows(&self, state: &ApiState, a: &Attributes) -> bool {
        matches!(self.authorize(state, a), Decision::Allow(_))
    }

    /// The rules `user` holds in `namespace` (upstream's `RulesFor`, for
    /// SelfSubjectRulesReview and the escalation check): with AlwaysAllow
    /// or as a privileged user, everything.
    pub fn rules_for(&self, user: &User, namespace: &str) -> (Vec<rules::Rule>, Vec<String>) {
        let everything = user.groups.iter().any(|g| g == PRIVILEGED_GROUP)
            || self.modes.first() == Some(&Mode::AlwaysAllow);
        if everything {
            return (rules::everything(), Vec::new());
        }
        let mut out = Vec::new();
        let mut errors = Vec::new();
        for mode in &self.modes {
            match mode {
                Mode::AlwaysAllow => {
                    out.extend(rules::everything());
                    break;
                }
                Mode::AlwaysDeny => break,
                Mode::Node => {}
                Mode::Rbac => {
                    let (r, e) = self.rbac.rules_for(user, namespace);
                    out.extend(r);
                    errors.extend(e);
                }
            }
        }
        (out, errors)
    }
}

/// Upstream's `forbiddenMessage`.
fn forbidden_message(a: &Attributes) -> String {
    let user = &a.user.name;
    if !a.resource_request {
        return format!("User {user:?} cannot {} path {:?}", a.verb, a.path);
    }
    let resource = if a.subresource.is_empty() {
        a.resource.to_string()
    } else {
        format!("{}/{}", a.resource, a.subresource)
    };
    if a.namespace.is_empty() {
        format!(
            "User {user:?} cannot {} resource {resource:?} in API group {:?} at the cluster scope",
            a.verb, a.api_group
        )
    } else {
        format!(
            "User {user:?} cannot {} resource {resource:?} in API group {:?} in the namespace {:?}",
            a.verb, a.api_group, a.namespace
        )
    }
}

/// The 403 upstream's `responsewriters.Forbidden` writes.
pub fn forbidden(a: &Attributes, reason: &str) -> ApiError {
    let mut why = forbidden_message(a);
    if !reason.is_empty() {
        why = format!("{why}: {reason}");
    }
    if !a.resource_request || a.resource.is_empty() {
        return ApiError::forbidden(format!("forbidden: {why}"));
    }
    ApiError::forbidden_named(&GroupResource::new(a.api_group, a.resource), a.name, why)
}

/// Authorizes a request: Ok when allowed, the 403 otherwise.
pub fn check(state: &ApiState, a: &Attributes) -> Result<(), ApiError> {
    match state.authorizer.authorize(state, a) {
        Decision::Allow(_) => Ok(()),
        Decision::Deny(r) | Decision::NoOpinion(r) => {
            tracing::debug!(user = %a.user.name, verb = a.verb, resource = a.resource, path = a.path, reason = %r, "forbidden");
            Err(forbidden(a, &r))
        }
    }
}
