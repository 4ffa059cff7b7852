//! How one kind is created and updated (upstream's `rest.RESTCreateStrategy`
//! and `RESTUpdateStrategy`), as plain function pointers so that every
//! resource's behaviour is listed in one table (`registry.rs`).

use apimachinery::field::FieldError;
use apimachinery::validation::NameValidation;
use serde_json::Value;

use crate::decode::Decoded;

pub type AttrsFn = fn(&Value) -> Vec<(&'static str, String)>;
pub type DecodeFn = fn(Value) -> Result<Decoded, String>;
pub type ValidateFn = fn(&Value) -> Vec<FieldError>;
pub type ValidateUpdateFn = fn(&Value, &Value) -> Vec<FieldError>;

/// Where a kind's status lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusPolicy {
    /// A `status` subresource: writes to the main resource keep the old status,
    /// writes to `/status` keep the old spec (and metadata except labels/annotations).
    Subresource,
    /// No separate status: the object is written whole.
    Whole,
}

/// When `metadata.generation` is bumped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GenerationPolicy {
    /// On `spec` changes (most kinds with a spec), and when deletion starts.
    Spec,
    /// On any change outside metadata and status (custom resources).
    NonMetadata,
    /// Generation is set to 1 at create and never bumped.
    None,
}

/// The behaviour of one kind.
#[derive(Clone, Copy)]
pub struct Strategy {
    /// Decodes, prunes and defaults; an error is a 400.
    pub decode: Option<DecodeFn>,
    pub validate: ValidateFn,
    pub validate_update: ValidateUpdateFn,
    pub names: NameValidation,
    pub status: StatusPolicy,
    pub generation: GenerationPolicy,
    pub attrs: Option<AttrsFn>,
    /// Objects expire after `--event-ttl` (Events).
    pub ttl: bool,
    /// PUT may create a missing object (upstream's AllowCreateOnUpdate).
    pub create_on_update: bool,
    /// The default deletion propagation when none is given (Orphan for some legacy kinds).
    pub default_orphan: bool,
    /// Changes made only when an object is created (upstream's PrepareForCreate).
    pub prepare_create: Option<fn(&mut Value)>,
    /// A finalizer every deletion adds, so that a controller cleans up first
    /// (CRDs: their custom resources).
    pub delete_finalizer: Option<&'static str>,
    /// Records who created the object (CSRs: `spec.username`, `uid`,
    /// `groups`, `extra`); the second argument is the requester as a
    /// `UserInfo` JSON object.
    pub record_requester: Option<fn(&mut Value, &Value)>,
    /// What a write through a subresource other than `status` (or the
    /// status itself, beyond the generic rules) keeps of the old object:
    /// `(subresource, new, old)`, after the generic update rules ran.
    pub prepare_subresource_update: Option<fn(&str, &mut Value, &Value)>,
}

fn no_errors(_: &Value) -> Vec<FieldError> {
    Vec::new()
}
fn no_update_errors(_: &Value, _: &Value) -> Vec<FieldError> {
    Vec::new()
}

impl Strategy {
    /// A kind with a status subresource, generation on spec changes, no extra checks.
    pub const fn new(decode: DecodeFn) -> Self {
        Strategy {
            decode: Some(decode),
            validate: no_errors,
            validate_update: no_update_errors,
            names: NameValidation::Dns1123Subdomain,
            status: StatusPolicy::Subresource,
            generation: GenerationPolicy::Spec,
            attrs: None,
            ttl: false,
            create_on_update: false,
            default_orphan: false,
            prepare_create: None,
            delete_finalizer: None,
            record_requester: None,
            prepare_subresource_update: None,
        }
    }

    /// A kind without status (ConfigMap, Secret, RBAC …), written whole.
    pub const fn whole(decode: DecodeFn) -> Self {
        let mut s = Strategy::new(decode);
        s.status = StatusPolicy::Whole;
        s.generation = GenerationPolicy::None;
        s
    }

    pub const fn validate(mut self, f: ValidateFn) -> Self {
        self.validate = f;
        self
    }
    pub const fn validate_update(mut self, f: ValidateUpdateFn) -> Self {
        self.validate_update = f;
        self
    }
    pub const fn attrs(mut self, f: AttrsFn) -> Self {
        self.attrs = Some(f);
        self
    }
    pub const fn names(mut self, n: NameValidation) -> Self {
        self.names = n;
        self
    }
    pub const fn ttl(mut self) -> Self {
        self.ttl = true;
        self
    }
    pub const fn create_on_update(mut self) -> Self {
        self.create_on_update = true;
        self
    }
    pub const fn on_create(mut self, f: fn(&mut Value)) -> Self {
        self.prepare_create = Some(f);
        self
    }
    pub const fn delete_finalizer(mut self, f: &'static str) -> Self {
        self.delete_finalizer = Some(f);
        self
    }
    pub const fn generation(mut self, g: GenerationPolicy) -> Self {
        self.generation = g;
        self
    }
    pub const fn record_requester(mut self, f: fn(&mut Value, &Value)) -> Self {
        self.record_requester = Some(f);
        self
    }
    pub const fn subresource_update(mut self, f: fn(&str, &mut Value, &Value)) -> Self {
        self.prepare_subresource_update = Some(f);
        self
    }

    /// The strategy of a custom resource.
    pub const fn custom(status: StatusPolicy) -> Self {
        Strategy {
            decode: None,
            validate: no_errors,
            validate_update: no_update_errors,
            names: NameValidation::Dns1123Subdomain,
            status,
            generation: GenerationPolicy::NonMetadata,
            attrs: None,
            ttl: false,
            create_on_update: false,
            default_orphan: false,
            prepare_create: None,
            delete_finalizer: None,
            record_requester: None,
            prepare_subresource_update: None,
        }
    }
}
