//! Name, label and object-metadata validation.
//!
//! Corresponds to upstream's `apimachinery/pkg/util/validation/validation.go`
//! (with the label-key and label-value checks that moved to
//! `pkg/api/validate/content/kube.go`), `pkg/api/validation/generic.go`,
//! `pkg/api/validation/path/name.go`, `pkg/api/validation/objectmeta.go` and
//! the label part of `pkg/apis/meta/v1/validation/validation.go`.
//!
//! Upstream checks formats with regular expressions and quotes those
//! expressions in its messages; we match by hand (this crate has no regex
//! dependency) but keep the expressions in the messages byte for byte, since
//! clients and tests compare them.

use serde_json::{Map, Value};

use crate::field::{quote, ErrorType, FieldError};

/// A DNS-1123 label's maximum length.
pub const DNS1123_LABEL_MAX_LENGTH: usize = 63;
/// A DNS-1123 subdomain's maximum length.
pub const DNS1123_SUBDOMAIN_MAX_LENGTH: usize = 253;
/// A DNS-1035 label's maximum length.
pub const DNS1035_LABEL_MAX_LENGTH: usize = 63;
/// The maximum length of a label value.
pub const LABEL_VALUE_MAX_LENGTH: usize = 63;
/// The maximum length of the name part of a qualified name (label key).
pub const QUALIFIED_NAME_MAX_LENGTH: usize = 63;
/// The maximum total size of an object's annotations, keys plus values.
pub const TOTAL_ANNOTATION_SIZE_LIMIT_B: usize = 256 * (1 << 10);
/// The message upstream gives for a negative count (`IsNegativeErrorMsg`).
pub const IS_NEGATIVE_ERROR_MSG: &str = "must be greater than or equal to 0";
/// The maximum length of a managed-fields manager name.
pub const FIELD_MANAGER_MAX_LENGTH: usize = 128;
/// The maximum length of a managed-fields subresource name.
pub const MAX_SUBRESOURCE_NAME_LENGTH: usize = 256;

const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_LABEL_ERR_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_ERR_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const DNS1035_LABEL_FMT: &str = "[a-z]([-a-z0-9]*[a-z0-9])?";
const DNS1035_LABEL_ERR_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character";
const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_ERR_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const LABEL_VALUE_ERR_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const C_IDENTIFIER_FMT: &str = "[A-Za-z_][A-Za-z0-9_]*";
const C_IDENTIFIER_ERR_MSG: &str = "a valid C identifier must start with alphabetic character or '_', followed by a string of alphanumeric characters or '_'";

/// The finalizer that orphans dependents (`metav1.FinalizerOrphanDependents`).
pub const FINALIZER_ORPHAN_DEPENDENTS: &str = "orphan";
/// The finalizer that deletes dependents first (`metav1.FinalizerDeleteDependents`).
pub const FINALIZER_DELETE_DEPENDENTS: &str = "foregroundDeletion";

/// Upstream's `MaxLenError`.
pub fn max_len_error(length: usize) -> String {
    format!("must be no more than {length} characters")
}

/// Upstream's `RegexError`: the message, examples and the expression used.
/// The odd double space after each example's comma is upstream's.
pub fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    if examples.is_empty() {
        return format!("{msg} (regex used for validation is '{fmt}')");
    }
    let mut out = format!("{msg} (e.g. ");
    for (i, example) in examples.iter().enumerate() {
        if i > 0 {
            out.push_str(" or ");
        }
        out.push('\'');
        out.push_str(example);
        out.push_str("', ");
    }
    out.push_str("regex used for validation is '");
    out.push_str(fmt);
    out.push_str("')");
    out
}

/// Upstream's `EmptyError`.
pub fn empty_error() -> &'static str {
    "must be non-empty"
}

fn is_lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`
fn matches_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(&first), Some(&last)) => {
            is_lower_alnum(first)
                && is_lower_alnum(last)
                && b.iter().all(|&c| is_lower_alnum(c) || c == b'-')
        }
        _ => false,
    }
}

/// Dot-separated DNS-1123 labels.
fn matches_dns1123_subdomain(s: &str) -> bool {
    s.split('.').all(matches_dns1123_label)
}

/// `[a-z]([-a-z0-9]*[a-z0-9])?`
fn matches_dns1035_label(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(&first), Some(&last)) => {
            first.is_ascii_lowercase()
                && is_lower_alnum(last)
                && b.iter().all(|&c| is_lower_alnum(c) || c == b'-')
        }
        _ => false,
    }
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`
fn matches_qualified_name(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(&first), Some(&last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && b.iter()
                    .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

/// `[A-Za-z_][A-Za-z0-9_]*`
fn matches_c_identifier(s: &str) -> bool {
    let b = s.as_bytes();
    match b.first() {
        Some(&first) => {
            (first.is_ascii_alphabetic() || first == b'_')
                && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'_')
        }
        None => false,
    }
}

/// Tests for a DNS (RFC 1123) label, as upstream's `IsDNS1123Label`.
pub fn is_dns1123_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_LABEL_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_LABEL_MAX_LENGTH));
    }
    if !matches_dns1123_label(value) {
        if matches_dns1123_subdomain(value) {
            // A valid subdomain but not a label: the length was checked, so it's the dots.
            errs.push("must not contain dots".to_string());
        } else {
            errs.push(regex_error(
                DNS1123_LABEL_ERR_MSG,
                DNS1123_LABEL_FMT,
                &["my-name", "123-abc"],
            ));
        }
    }
    errs
}

/// Tests for a DNS (RFC 1123) subdomain, as upstream's `IsDNS1123Subdomain`.
pub fn is_dns1123_subdomain(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH));
    }
    if !matches_dns1123_subdomain(value) {
        errs.push(regex_error(
            DNS1123_SUBDOMAIN_ERR_MSG,
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errs
}

/// Tests for a DNS (RFC 1035) label, as upstream's `IsDNS1035Label`.
pub fn is_dns1035_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1035_LABEL_MAX_LENGTH {
        errs.push(max_len_error(DNS1035_LABEL_MAX_LENGTH));
    }
    if !matches_dns1035_label(value) {
        errs.push(regex_error(
            DNS1035_LABEL_ERR_MSG,
            DNS1035_LABEL_FMT,
            &["my-name", "abc-123"],
        ));
    }
    errs
}

/// Tests for a "qualified name" (a label key): an optional DNS-subdomain
/// prefix and '/', then a name of at most 63 characters. Upstream's
/// `IsQualifiedName` (now `content.IsLabelKey`).
pub fn is_qualified_name(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push(format!("prefix part {}", empty_error()));
            } else {
                errs.extend(
                    is_dns1123_subdomain(prefix)
                        .into_iter()
                        .map(|m| format!("prefix part {m}")),
                );
            }
            *name
        }
        _ => {
            errs.push(format!(
                "a valid label key {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(QUALIFIED_NAME_ERR_MSG, QUALIFIED_NAME_FMT, &["MyName", "my.name", "123-abc"])
            ));
            return errs;
        }
    };
    if name.is_empty() {
        errs.push(format!("name part {}", empty_error()));
    } else if name.len() > QUALIFIED_NAME_MAX_LENGTH {
        errs.push(format!(
            "name part {}",
            max_len_error(QUALIFIED_NAME_MAX_LENGTH)
        ));
    }
    if !matches_qualified_name(name) {
        errs.push(format!(
            "name part {}",
            regex_error(
                QUALIFIED_NAME_ERR_MSG,
                QUALIFIED_NAME_FMT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    errs
}

/// Tests for a label value (empty, or a qualified name without prefix), as
/// upstream's `IsValidLabelValue`.
pub fn is_valid_label_value(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > LABEL_VALUE_MAX_LENGTH {
        errs.push(max_len_error(LABEL_VALUE_MAX_LENGTH));
    }
    if !value.is_empty() && !matches_qualified_name(value) {
        errs.push(regex_error(
            LABEL_VALUE_ERR_MSG,
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

/// Tests for a C identifier (format only, not length), as upstream's `IsCIdentifier`.
pub fn is_c_identifier(value: &str) -> Vec<String> {
    if matches_c_identifier(value) {
        Vec::new()
    } else {
        vec![regex_error(
            C_IDENTIFIER_ERR_MSG,
            C_IDENTIFIER_FMT,
            &["my_name", "MY_NAME", "MyName"],
        )]
    }
}

/// Tests that a name can be used as one path segment (upstream's
/// `IsValidPathSegmentName`): not `.` or `..`, and without `/` or `%`.
pub fn is_valid_path_segment_name(name: &str) -> Vec<String> {
    for illegal in [".", ".."] {
        if name == illegal {
            return vec![format!("may not be '{illegal}'")];
        }
    }
    is_valid_path_segment_prefix(name)
}

/// Like [`is_valid_path_segment_name`] for a prefix that will have a suffix
/// appended, so `.` and `..` are allowed (upstream's `IsValidPathSegmentPrefix`).
pub fn is_valid_path_segment_prefix(name: &str) -> Vec<String> {
    ["/", "%"]
        .iter()
        .filter(|illegal| name.contains(*illegal))
        .map(|illegal| format!("may not contain '{illegal}'"))
        .collect()
}

/// The rule a resource's object names must follow (upstream's
/// `ValidateNameFunc` implementations).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameValidation {
    /// `NameIsDNSSubdomain`: most resources.
    Dns1123Subdomain,
    /// `NameIsDNSLabel`: namespaces, and resources whose names become host names.
    Dns1123Label,
    /// `NameIsDNS1035Label`: services.
    Dns1035Label,
    /// `ValidatePathSegmentName`: anything that can be one URL path segment
    /// (not `.` or `..`, without `/` or `%`), as for RBAC objects.
    PathSegment,
}

/// Whether a value is a whole name or a `generateName` prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameForm {
    /// A complete `metadata.name`.
    Name,
    /// A `metadata.generateName`: random characters will be appended, so a
    /// trailing `-` is allowed.
    Prefix,
}

/// Upstream's `maskTrailingDash`. It drops two characters, not one, before
/// appending the `a`; we keep that so the same prefixes pass.
fn mask_trailing_dash(name: &str) -> String {
    if name.len() > 1 && name.ends_with('-') {
        let cut = name.len() - 2;
        match name.get(..cut) {
            Some(head) => format!("{head}a"),
            // A multi-byte character before the dash: it can't be valid anyway.
            None => format!("{}a", &name[..name.len() - 1]),
        }
    } else {
        name.to_string()
    }
}

/// Validates a name or a `generateName` prefix by the given rule; returns
/// upstream's messages, empty when valid.
pub fn validate_name(kind: NameValidation, name: &str, form: NameForm) -> Vec<String> {
    let masked;
    let checked = match (kind, form) {
        (NameValidation::PathSegment, NameForm::Name) => return is_valid_path_segment_name(name),
        (NameValidation::PathSegment, NameForm::Prefix) => {
            return is_valid_path_segment_prefix(name)
        }
        (_, NameForm::Prefix) => {
            masked = mask_trailing_dash(name);
            masked.as_str()
        }
        (_, NameForm::Name) => name,
    };
    match kind {
        NameValidation::Dns1123Subdomain => is_dns1123_subdomain(checked),
        NameValidation::Dns1123Label => is_dns1123_label(checked),
        NameValidation::Dns1035Label => is_dns1035_label(checked),
        NameValidation::PathSegment => Vec::new(),
    }
}

/// Validates a namespace name (upstream's `ValidateNamespaceName`, a DNS-1123 label).
pub fn validate_namespace_name(name: &str, form: NameForm) -> Vec<String> {
    validate_name(NameValidation::Dns1123Label, name, form)
}

fn child(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

fn str_of<'a>(meta: &'a Map<String, Value>, key: &str) -> &'a str {
    meta.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Validates label keys and values (upstream's `v1validation.ValidateLabels`).
/// Non-string values are left to the decoder, which rejects them first.
pub fn validate_labels(labels: &Map<String, Value>, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (k, v) in labels {
        errs.extend(validate_label_name(k, path));
        if let Some(v) = v.as_str() {
            for msg in is_valid_label_value(v) {
                errs.push(FieldError::invalid_str(path, v, msg));
            }
        }
    }
    errs
}

/// Validates one label key (upstream's `ValidateLabelName`).
pub fn validate_label_name(name: &str, path: &str) -> Vec<FieldError> {
    is_qualified_name(name)
        .into_iter()
        .map(|msg| FieldError::invalid_str(path, name, msg))
        .collect()
}

/// Validates annotation keys (qualified names, case-insensitively) and the
/// total size (upstream's `ValidateAnnotations`).
pub fn validate_annotations(annotations: &Map<String, Value>, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut total = 0usize;
    for (k, v) in annotations {
        for msg in is_qualified_name(&k.to_lowercase()) {
            errs.push(FieldError::invalid_str(path, k, msg));
        }
        total += k.len() + v.as_str().map_or(0, str::len);
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT_B {
        errs.push(FieldError::too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT_B));
    }
    errs
}

/// Renders an owner reference the way Go's `json.Marshal` prints
/// `metav1.OwnerReference`: struct field order, optional booleans omitted.
fn owner_reference_json(r: &Map<String, Value>) -> String {
    let mut parts = Vec::new();
    for key in ["apiVersion", "kind", "name", "uid"] {
        parts.push(format!("{}:{}", quote(key), quote(str_of(r, key))));
    }
    for key in ["controller", "blockOwnerDeletion"] {
        if let Some(b) = r.get(key).and_then(Value::as_bool) {
            parts.push(format!("{}:{b}", quote(key)));
        }
    }
    format!("{{{}}}", parts.join(","))
}

/// Splits an apiVersion like upstream's `schema.ParseGroupVersion`; a
/// malformed one (more than one `/`) yields an empty version.
fn version_of(api_version: &str) -> &str {
    if api_version.is_empty() || api_version == "/" {
        return "";
    }
    match api_version.matches('/').count() {
        0 => api_version,
        1 => api_version.split_once('/').map_or("", |(_, v)| v),
        _ => "",
    }
}

fn group_of(api_version: &str) -> &str {
    match api_version.matches('/').count() {
        1 => api_version.split_once('/').map_or("", |(g, _)| g),
        _ => "",
    }
}

/// Validates owner references (upstream's `ValidateOwnerReferences`). As
/// upstream, errors name the list's path, not an element's index.
pub fn validate_owner_references(refs: &[Value], path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut first_controller: Option<String> = None;
    let empty = Map::new();
    for r in refs {
        let r = r.as_object().unwrap_or(&empty);
        let api_version = str_of(r, "apiVersion");
        let kind = str_of(r, "kind");
        let version = version_of(api_version);
        if version.is_empty() {
            errs.push(FieldError::invalid_str(
                child(path, "apiVersion"),
                api_version,
                "version must not be empty",
            ));
        }
        if kind.is_empty() {
            errs.push(FieldError::invalid_str(
                child(path, "kind"),
                kind,
                "must not be empty",
            ));
        }
        for key in ["name", "uid"] {
            let v = str_of(r, key);
            if v.is_empty() {
                errs.push(FieldError::invalid_str(
                    child(path, key),
                    v,
                    "must not be empty",
                ));
            }
        }
        let group = if version.is_empty() {
            ""
        } else {
            group_of(api_version)
        };
        if group.is_empty() && version == "v1" && kind == "Event" {
            errs.push(FieldError::new(
                ErrorType::Invalid,
                path,
                Some(owner_reference_json(r)),
                format!("{group}/{version}, Kind={kind} is disallowed from being an owner"),
            ));
        }
        if r.get("controller").and_then(Value::as_bool) == Some(true) {
            let current = format!("{kind}/{}", str_of(r, "name"));
            match &first_controller {
                Some(first) => {
                    let all: Vec<String> = refs
                        .iter()
                        .map(|r| owner_reference_json(r.as_object().unwrap_or(&empty)))
                        .collect();
                    errs.push(FieldError::new(
                        ErrorType::Invalid,
                        path,
                        Some(format!("[{}]", all.join(","))),
                        format!(
                            "Only one reference can have Controller set to true. Found \"true\" in references for {first} and {current}"
                        ),
                    ));
                }
                None => first_controller = Some(current),
            }
        }
    }
    errs
}

/// Validates finalizer names and that `orphan` and `foregroundDeletion` are
/// not both set (upstream's `ValidateFinalizers`).
pub fn validate_finalizers(finalizers: &[Value], path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut orphan = false;
    let mut foreground = false;
    for f in finalizers.iter().filter_map(Value::as_str) {
        for msg in is_qualified_name(f) {
            errs.push(FieldError::invalid_str(path, f, msg));
        }
        orphan |= f == FINALIZER_ORPHAN_DEPENDENTS;
        foreground |= f == FINALIZER_DELETE_DEPENDENTS;
    }
    if orphan && foreground {
        errs.push(FieldError::invalid(
            path,
            &Value::Array(finalizers.to_vec()),
            format!("finalizer {FINALIZER_ORPHAN_DEPENDENTS} and {FINALIZER_DELETE_DEPENDENTS} cannot be both set"),
        ));
    }
    errs
}

/// Go's `unicode.IsPrint`, as near as std allows: no control characters and
/// no white space other than the ASCII space.
fn is_print(c: char) -> bool {
    !c.is_control() && (c == ' ' || !c.is_whitespace())
}

/// Validates a field manager name (upstream's `ValidateFieldManager`).
pub fn validate_field_manager(manager: &str, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if manager.len() > FIELD_MANAGER_MAX_LENGTH {
        errs.push(FieldError::too_long(path, FIELD_MANAGER_MAX_LENGTH));
    }
    for (i, c) in manager.char_indices() {
        if !is_print(c) {
            errs.push(FieldError::invalid_str(
                path,
                manager,
                format!("invalid character U+{:04X} (at position {i})", c as u32),
            ));
        }
    }
    errs
}

/// Validates `metadata.managedFields` (upstream's `ValidateManagedFields`).
pub fn validate_managed_fields(entries: &[Value], path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let empty = Map::new();
    for (i, entry) in entries.iter().enumerate() {
        let entry = entry.as_object().unwrap_or(&empty);
        let at = format!("{path}[{i}]");
        let operation = str_of(entry, "operation");
        if operation != "Apply" && operation != "Update" {
            errs.push(FieldError::invalid_str(
                child(&at, "operation"),
                operation,
                "must be `Apply` or `Update`",
            ));
        }
        let fields_type = str_of(entry, "fieldsType");
        if !fields_type.is_empty() && fields_type != "FieldsV1" {
            errs.push(FieldError::invalid_str(
                child(&at, "fieldsType"),
                fields_type,
                "must be `FieldsV1`",
            ));
        }
        errs.extend(validate_field_manager(
            str_of(entry, "manager"),
            &child(&at, "manager"),
        ));
        if str_of(entry, "subresource").len() > MAX_SUBRESOURCE_NAME_LENGTH {
            errs.push(FieldError::too_long(
                child(&at, "subresource"),
                MAX_SUBRESOURCE_NAME_LENGTH,
            ));
        }
    }
    errs
}

/// Validates an object's metadata on creation (upstream's
/// `ValidateObjectMeta`/`ValidateObjectMetaAccessor`). `meta` is the
/// `metadata` object itself; `path` is its field path, usually `metadata`.
/// Name generation is expected to have run already, so a missing `name` is
/// reported even when `generateName` is set.
///
/// Fields of the wrong JSON type are skipped: the decoder rejects those first.
pub fn validate_object_meta(
    meta: &Value,
    namespaced: bool,
    names: NameValidation,
    path: &str,
) -> Vec<FieldError> {
    let empty = Map::new();
    let meta = meta.as_object().unwrap_or(&empty);
    let mut errs = Vec::new();

    let generate_name = str_of(meta, "generateName");
    if !generate_name.is_empty() {
        for msg in validate_name(names, generate_name, NameForm::Prefix) {
            errs.push(FieldError::invalid_str(
                child(path, "generateName"),
                generate_name,
                msg,
            ));
        }
    }
    let name = str_of(meta, "name");
    if name.is_empty() {
        errs.push(FieldError::required(
            child(path, "name"),
            "name or generateName is required",
        ));
    } else {
        for msg in validate_name(names, name, NameForm::Name) {
            errs.push(FieldError::invalid_str(child(path, "name"), name, msg));
        }
    }

    let namespace = str_of(meta, "namespace");
    if namespaced {
        if namespace.is_empty() {
            errs.push(FieldError::required(child(path, "namespace"), ""));
        } else {
            for msg in validate_namespace_name(namespace, NameForm::Name) {
                errs.push(FieldError::invalid_str(
                    child(path, "namespace"),
                    namespace,
                    msg,
                ));
            }
        }
    } else if !namespace.is_empty() {
        errs.push(FieldError::forbidden(
            child(path, "namespace"),
            "not allowed on this type",
        ));
    }

    if let Some(generation) = meta.get("generation").and_then(Value::as_i64) {
        if generation < 0 {
            errs.push(FieldError::invalid(
                child(path, "generation"),
                &Value::from(generation),
                IS_NEGATIVE_ERROR_MSG,
            ));
        }
    }
    if let Some(labels) = meta.get("labels").and_then(Value::as_object) {
        errs.extend(validate_labels(labels, &child(path, "labels")));
    }
    if let Some(annotations) = meta.get("annotations").and_then(Value::as_object) {
        errs.extend(validate_annotations(
            annotations,
            &child(path, "annotations"),
        ));
    }
    if let Some(refs) = meta.get("ownerReferences").and_then(Value::as_array) {
        errs.extend(validate_owner_references(
            refs,
            &child(path, "ownerReferences"),
        ));
    }
    if let Some(finalizers) = meta.get("finalizers").and_then(Value::as_array) {
        errs.extend(validate_finalizers(finalizers, &child(path, "finalizers")));
    }
    if let Some(entries) = meta.get("managedFields").and_then(Value::as_array) {
        errs.extend(validate_managed_fields(
            entries,
            &child(path, "managedFields"),
        ));
    }
    errs
}

#[cfg(test)]
#[allow(clippy::type_complexity)] // test tables
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dns1123_label() {
        let good = [
            "a",
            "ab",
            "abc",
            "a1",
            "a-1",
            "a--1--2--b",
            "0",
            "01",
            "012",
            "1a",
            "1-a",
            "1--a--b--2",
        ];
        for v in good.iter().map(|s| s.to_string()).chain([("a".repeat(63))]) {
            assert!(is_dns1123_label(&v).is_empty(), "{v}");
        }
        let bad = [
            "", "A", "ABC", "aBc", "A1", "A-1", "1-A", "-", "a-", "-a", "1-", "-1", "_", "a_",
            "_a", "a_b", "1_", "_1", "1_2", ".", "a.", ".a", "a.b", "1.", ".1", "1.2", " ", "a ",
            " a", "a b", "1 ", " 1", "1 2", "ä",
        ];
        for v in bad.iter().map(|s| s.to_string()).chain([("a".repeat(64))]) {
            assert!(!is_dns1123_label(&v).is_empty(), "{v}");
        }
        assert_eq!(is_dns1123_label("a.b"), vec!["must not contain dots"]);
        assert_eq!(
            is_dns1123_label("A"),
            vec!["a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"]
        );
        assert_eq!(
            is_dns1123_label(&"a".repeat(64)),
            vec!["must be no more than 63 characters"]
        );
    }

    #[test]
    fn dns1123_subdomain() {
        let good = [
            "a",
            "ab",
            "abc",
            "a1",
            "a-1",
            "a--1--2--b",
            "0",
            "01",
            "012",
            "1a",
            "1-a",
            "1--a--b--2",
            "a.a",
            "ab.a",
            "abc.a",
            "a1.a",
            "a-1.a",
            "a--1--2--b.a",
            "a.1",
            "ab.1",
            "0.a",
            "01.a",
            "1--a--b--2.1",
            "0.1",
            "a.b.c.d.e",
            "aa.bb.cc.dd.ee",
            "1.2.3.4.5",
            "11.22.33.44.55",
        ];
        for v in good
            .iter()
            .map(|s| s.to_string())
            .chain([("a".repeat(253))])
        {
            assert!(is_dns1123_subdomain(&v).is_empty(), "{v}");
        }
        let bad = [
            "",
            "A",
            "ABC",
            "aBc",
            "A1",
            "A-1",
            "1-A",
            "-",
            "a-",
            "-a",
            "1-",
            "-1",
            "_",
            "a_",
            "_a",
            "a_b",
            "1_",
            "_1",
            "1_2",
            ".",
            "a.",
            ".a",
            "a..b",
            "1.",
            ".1",
            "1..2",
            " ",
            "a ",
            " a",
            "a b",
            "1 ",
            " 1",
            "1 2",
            "A.a",
            "aB.a",
            "ab.A",
            "A1.a",
            "a1.A",
            "A.1",
            "aB.1",
            "A1.A",
            "1A.1",
            "0.A",
            "01.A",
            "012.A",
            "1A.a",
            "1a.A",
            "A.B.C.D.E",
            "AA.BB.CC.DD.EE",
            "a.B.c.d.e",
            "aa.bB.cc.dd.ee",
            "a@b",
            "a,b",
            "a_b",
            "a;b",
            "a:b",
            "a%b",
            "a?b",
            "a$b",
        ];
        for v in bad.iter().map(|s| s.to_string()).chain([("a".repeat(254))]) {
            assert!(!is_dns1123_subdomain(&v).is_empty(), "{v}");
        }
        assert_eq!(
            is_dns1123_subdomain("Ab"),
            vec!["a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"]
        );
        assert_eq!(
            is_dns1123_subdomain(&"a".repeat(254)),
            vec!["must be no more than 253 characters"]
        );
    }

    #[test]
    fn dns1035_label() {
        for v in ["a", "ab", "abc", "a1", "a-1", "a--1--2--b"]
            .iter()
            .map(|s| s.to_string())
            .chain([("a".repeat(63))])
        {
            assert!(is_dns1035_label(&v).is_empty(), "{v}");
        }
        for v in [
            "0",
            "01",
            "012",
            "1a",
            "1-a",
            "1--a--b--2",
            "",
            "A",
            "ABC",
            "aBc",
            "a-",
            "-a",
            "a_b",
            "a.b",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([("a".repeat(64))])
        {
            assert!(!is_dns1035_label(&v).is_empty(), "{v}");
        }
        assert_eq!(
            is_dns1035_label("1a"),
            vec!["a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"]
        );
    }

    #[test]
    fn qualified_name() {
        let good = [
            "simple",
            "now-with-dashes",
            "1-starts-with-num",
            "1234",
            "simple/simple",
            "now-with-dashes/simple",
            "now-with-dashes/now-with-dashes",
            "now.with.dots/simple",
            "now-with.dashes-and.dots/simple",
            "1-num.2-num/3-num",
            "1234/5678",
            "1.2.3.4/5678",
            "Uppercase_Is_OK_123",
            "example.com/Uppercase_Is_OK_123",
            "requests.storage-foo",
        ];
        let long = format!("{}/{}", "a".repeat(253), "b".repeat(63));
        for v in good
            .iter()
            .map(|s| s.to_string())
            .chain([("a".repeat(63)), long])
        {
            assert!(is_qualified_name(&v).is_empty(), "{v}");
        }
        let bad = [
            "nospecialchars%^=@",
            "cantendwithadash-",
            "-cantstartwithadash-",
            "only/one/slash",
            "Example.com/abc",
            "example_com/abc",
            "example.com/",
            "/simple",
        ];
        let long = format!("{}/abc", "a".repeat(254));
        for v in bad
            .iter()
            .map(|s| s.to_string())
            .chain([("a".repeat(64)), long])
        {
            assert!(!is_qualified_name(&v).is_empty(), "{v}");
        }
        let name_part = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
        assert_eq!(is_qualified_name("&foo"), vec![name_part]);
        assert_eq!(
            is_qualified_name("example.com/"),
            vec![
                "name part must be non-empty".to_string(),
                name_part.to_string()
            ]
        );
        assert_eq!(
            is_qualified_name("/simple"),
            vec!["prefix part must be non-empty"]
        );
        assert_eq!(
            is_qualified_name(&"a".repeat(64)),
            vec!["name part must be no more than 63 characters"]
        );
        assert_eq!(
            is_qualified_name("a/b/c"),
            vec!["a valid label key must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"]
        );
        assert!(is_qualified_name("Example.com/abc")[0]
            .starts_with("prefix part a lowercase RFC 1123 subdomain"));
    }

    #[test]
    fn label_value() {
        for v in [
            "simple",
            "now-with-dashes",
            "1-starts-with-num",
            "end-with-num-1",
            "1234",
            "",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([("a".repeat(63))])
        {
            assert!(is_valid_label_value(&v).is_empty(), "{v}");
        }
        let bad = [
            "nospecialchars%^=@",
            "Tama-nui-te-rā.is_Māori.sun",
            "\\backslashes\\are\\bad",
            "-starts-with-dash",
            "ends-with-dash-",
            ".starts.with.dot",
            "ends.with.dot.",
        ];
        for v in bad.iter().map(|s| s.to_string()).chain([("a".repeat(64))]) {
            assert!(!is_valid_label_value(&v).is_empty(), "{v}");
        }
        assert_eq!(
            is_valid_label_value("-a"),
            vec!["a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"]
        );
    }

    #[test]
    fn c_identifier() {
        for v in [
            "a", "ab", "abc", "a1", "_a", "a_", "a_b", "a_1", "_1", "A", "AB", "_A", "A_B", "Z",
        ] {
            assert!(is_c_identifier(v).is_empty(), "{v}");
        }
        for v in [
            "", "1", "123", "1a", "-", "a-", "-a", "a-b", "a b", "1 ", " 1", "#a", "a#", "a#b",
            "a.b", "a/b",
        ] {
            assert!(!is_c_identifier(v).is_empty(), "{v}");
        }
    }

    #[test]
    fn names_and_prefixes() {
        use NameForm::*;
        use NameValidation::*;
        let cases: &[(NameValidation, &str, NameForm, bool)] = &[
            (Dns1123Subdomain, "foo.bar", Name, true),
            (Dns1123Subdomain, "foo-", Name, false),
            (Dns1123Subdomain, "foo-", Prefix, true),
            (Dns1123Subdomain, "a-", Prefix, true),
            (Dns1123Subdomain, "-", Prefix, false),
            (Dns1123Subdomain, "Foo-", Prefix, false),
            (Dns1123Label, "foo.bar", Name, false),
            (Dns1123Label, "foo-", Prefix, true),
            (Dns1035Label, "1foo", Name, false),
            (Dns1035Label, "foo-", Prefix, true),
            (PathSegment, "Any:Thing", Name, true),
            (PathSegment, ".", Name, false),
            (PathSegment, "..", Name, false),
            (PathSegment, ".", Prefix, true),
            (PathSegment, "a/b", Prefix, false),
            (PathSegment, "a%b", Name, false),
        ];
        for (kind, name, form, ok) in cases {
            assert_eq!(
                validate_name(*kind, name, *form).is_empty(),
                *ok,
                "{kind:?} {name:?} {form:?}"
            );
        }
        assert_eq!(
            validate_name(PathSegment, "..", Name),
            vec!["may not be '..'"]
        );
        assert_eq!(
            validate_name(PathSegment, "a/%", Name),
            vec!["may not contain '/'", "may not contain '%'"]
        );
    }

    fn render(errs: &[FieldError]) -> Vec<String> {
        errs.iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn object_meta() {
        use NameValidation::Dns1123Subdomain as Sub;
        let ok = json!({"name": "foo", "namespace": "default", "labels": {"app.kubernetes.io/name": "x", "a": ""},
            "annotations": {"Example.com/Anything": "any value at all"}, "finalizers": ["kubernetes.io/pv-protection"],
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u1", "controller": true}]});
        assert_eq!(
            render(&validate_object_meta(&ok, true, Sub, "metadata")),
            Vec::<String>::new()
        );

        let cases: &[(Value, bool, &[&str])] = &[
            (json!({}), true, &["metadata.name: Required value: name or generateName is required", "metadata.namespace: Required value"]),
            (json!({"generateName": "foo-", "namespace": "ns"}), true, &["metadata.name: Required value: name or generateName is required"]),
            (json!({"name": "foo", "namespace": "ns"}), false, &["metadata.namespace: Forbidden: not allowed on this type"]),
            (json!({"name": "foo", "namespace": "Bad_NS"}), true, &["metadata.namespace: Invalid value: \"Bad_NS\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"]),
            (json!({"name": "foo", "generation": -1}), false, &["metadata.generation: Invalid value: -1: must be greater than or equal to 0"]),
            (json!({"name": "foo", "labels": {"a": "-b"}}), false, &["metadata.labels: Invalid value: \"-b\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"]),
            (json!({"name": "foo", "labels": {"&a": "b"}}), false, &["metadata.labels: Invalid value: \"&a\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"]),
            (json!({"name": "foo", "annotations": {"a/b/c": "x"}}), false, &["metadata.annotations: Invalid value: \"a/b/c\": a valid label key must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"]),
            (json!({"name": "foo", "finalizers": ["orphan", "foregroundDeletion"]}), false, &["metadata.finalizers: Invalid value: [\"orphan\",\"foregroundDeletion\"]: finalizer orphan and foregroundDeletion cannot be both set"]),
            (json!({"name": "foo", "finalizers": ["a/b/c"]}), false, &["metadata.finalizers: Invalid value: \"a/b/c\": a valid label key must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"]),
            (json!({"name": "Foo", "generateName": "Foo-"}), false, &[
                "metadata.generateName: Invalid value: \"Foo-\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
                "metadata.name: Invalid value: \"Foo\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
            ]),
            (json!({"name": "foo", "ownerReferences": [{}]}), false, &[
                "metadata.ownerReferences.apiVersion: Invalid value: \"\": version must not be empty",
                "metadata.ownerReferences.kind: Invalid value: \"\": must not be empty",
                "metadata.ownerReferences.name: Invalid value: \"\": must not be empty",
                "metadata.ownerReferences.uid: Invalid value: \"\": must not be empty",
            ]),
            (json!({"name": "foo", "ownerReferences": [{"apiVersion": "v1", "kind": "Event", "name": "e", "uid": "u"}]}), false, &[
                "metadata.ownerReferences: Invalid value: {\"apiVersion\":\"v1\",\"kind\":\"Event\",\"name\":\"e\",\"uid\":\"u\"}: /v1, Kind=Event is disallowed from being an owner",
            ]),
            (json!({"name": "foo", "ownerReferences": [{"apiVersion": "a/b/v1", "kind": "K", "name": "n", "uid": "u"}]}), false, &[
                "metadata.ownerReferences.apiVersion: Invalid value: \"a/b/v1\": version must not be empty",
            ]),
            (json!({"name": "foo", "ownerReferences": [
                {"apiVersion": "v1", "kind": "A", "name": "a", "uid": "1", "controller": true},
                {"apiVersion": "v1", "kind": "B", "name": "b", "uid": "2", "controller": true}]}), false, &[
                "metadata.ownerReferences: Invalid value: [{\"apiVersion\":\"v1\",\"kind\":\"A\",\"name\":\"a\",\"uid\":\"1\",\"controller\":true},{\"apiVersion\":\"v1\",\"kind\":\"B\",\"name\":\"b\",\"uid\":\"2\",\"controller\":true}]: Only one reference can have Controller set to true. Found \"true\" in references for A/a and B/b",
            ]),
            (json!({"name": "foo", "managedFields": [{"operation": "Merge", "manager": "m", "fieldsType": "FieldsV2"}]}), false, &[
                "metadata.managedFields[0].operation: Invalid value: \"Merge\": must be `Apply` or `Update`",
                "metadata.managedFields[0].fieldsType: Invalid value: \"FieldsV2\": must be `FieldsV1`",
            ]),
        ];
        for (meta, namespaced, want) in cases {
            assert_eq!(
                render(&validate_object_meta(meta, *namespaced, Sub, "metadata")),
                *want,
                "{meta}"
            );
        }
    }

    #[test]
    fn annotation_size() {
        let fits = json!({"name": "foo", "annotations": {"a": "x".repeat(TOTAL_ANNOTATION_SIZE_LIMIT_B - 1)}});
        assert!(
            validate_object_meta(&fits, false, NameValidation::Dns1123Subdomain, "metadata")
                .is_empty()
        );
        let big =
            json!({"name": "foo", "annotations": {"a": "x".repeat(TOTAL_ANNOTATION_SIZE_LIMIT_B)}});
        let errs = validate_object_meta(&big, false, NameValidation::Dns1123Subdomain, "metadata");
        assert_eq!(
            render(&errs),
            vec!["metadata.annotations: Too long: may not be more than 262144 bytes"]
        );
        assert_eq!(errs[0].kind, ErrorType::TooLong);
    }
}
