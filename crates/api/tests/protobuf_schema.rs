//! Generates `api/protobuf/schema.txt`, the wire schema of the built-in
//! types (field numbers, JSON names, kinds), and fails when the committed
//! file drifts from it. `hack/update-protobuf-schema.sh` rewrites it
//! (`UPDATE_PROTOBUF_SCHEMA=1`).
//!
//! Field numbers come from the `k8s-pb` crate's prost types (a dependency,
//! read as source); JSON names come from `k8s-openapi`'s serde code for the
//! same type. Neither crate is compiled for this: both are located with
//! `cargo metadata` and read as text.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

const SCHEMA: &str = "../../api/protobuf/schema.txt";

#[test]
fn protobuf_schema_is_up_to_date() {
    let generated = generate();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(SCHEMA);
    if std::env::var_os("UPDATE_PROTOBUF_SCHEMA").is_some() {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, &generated).expect("write schema");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "api/protobuf/schema.txt is out of date: run hack/update-protobuf-schema.sh"
    );
}

/// One field of a prost message, as read from its `#[prost(...)]` attribute.
struct Field {
    tag: u32,
    rust_name: String,
    /// `opt`, `rep` or `map`.
    card: &'static str,
    /// Scalar kind or `.message.id`; for maps `key value`.
    ty: String,
}

fn package_dirs() -> HashMap<String, (String, PathBuf)> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--all-features"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata json");
    let mut dirs = HashMap::new();
    for p in meta["packages"].as_array().expect("packages") {
        let name = p["name"].as_str().unwrap_or_default().to_string();
        let version = p["version"].as_str().unwrap_or_default().to_string();
        let manifest = PathBuf::from(p["manifest_path"].as_str().unwrap_or_default());
        dirs.insert(
            name,
            (version, manifest.parent().expect("dir").to_path_buf()),
        );
    }
    dirs
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("read_dir")
        .flatten()
        .collect();
    entries.sort_by_key(|e| e.path());
    for e in entries {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `api/core/v1/mod.rs` → `["api", "core", "v1"]`.
fn module_of(root: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(root).expect("under root");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|s| s.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap_or_default();
    if last != "mod.rs" && last != "lib.rs" {
        parts.push(last.trim_end_matches(".rs").to_string());
    }
    parts
}

/// Resolves a Rust type path written inside `module` to a message id.
fn resolve(module: &[String], path: &str) -> String {
    let mut base: Vec<String> = module.to_vec();
    let mut segs: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
    if segs.first() == Some(&"crate") {
        base.clear();
        segs.remove(0);
    }
    while segs.first() == Some(&"super") {
        base.pop();
        segs.remove(0);
    }
    base.extend(segs.iter().map(|s| s.to_string()));
    base.join(".")
}

/// Strips prost's wrappers from a field type and returns the inner type paths.
fn inner_types(ty: &str) -> Vec<String> {
    let mut t: String = ty.chars().filter(|c| !c.is_whitespace()).collect();
    for w in [
        "::core::option::Option<",
        "::prost::alloc::vec::Vec<",
        "::prost::alloc::boxed::Box<",
        "::prost::alloc::collections::BTreeMap<",
    ] {
        while let Some(i) = t.find(w) {
            t.replace_range(i..i + w.len(), "");
        }
    }
    let t = t.trim_end_matches(['>', ',']).replace('>', "");
    t.split(',').map(str::to_string).collect()
}

fn scalar(kind: &str) -> String {
    match kind.trim() {
        k if k.starts_with("bytes") => "bytes".into(),
        k => k.to_string(),
    }
}

fn parse_attr(module: &[String], attr: &str, rust_name: &str, ty: &str) -> Option<Field> {
    let tag = attr
        .split("tag = \"")
        .nth(1)?
        .split('"')
        .next()?
        .parse()
        .ok()?;
    let inner = inner_types(ty);
    let message_ref = |i: usize| format!(".{}", resolve(module, inner.get(i).map_or("", |s| s)));
    if let Some(kv) = attr
        .strip_prefix("btree_map = \"")
        .or_else(|| attr.strip_prefix("map = \""))
    {
        let kv = kv.split('"').next()?;
        let (k, v) = kv.split_once(',')?;
        let v = if v.trim() == "message" {
            message_ref(1)
        } else {
            scalar(v)
        };
        return Some(Field {
            tag,
            rust_name: rust_name.into(),
            card: "map",
            ty: format!("{} {v}", scalar(k)),
        });
    }
    let kind = attr.split(',').next()?.trim();
    let card = if attr.contains(" repeated") {
        "rep"
    } else {
        "opt"
    };
    let ty = if kind == "message" {
        message_ref(0)
    } else {
        scalar(kind)
    };
    Some(Field {
        tag,
        rust_name: rust_name.into(),
        card,
        ty,
    })
}

struct Parsed {
    messages: BTreeMap<String, Vec<Field>>,
    /// (apiVersion, kind) → message id.
    kinds: BTreeMap<(String, String), String>,
    /// apiVersion → module id, for kinds without a `Resource` impl
    /// (Eviction, Scale, DeleteOptions, TokenRequest …).
    versions: BTreeMap<String, String>,
}

fn parse_k8s_pb(src: &Path) -> Parsed {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut parsed = Parsed {
        messages: BTreeMap::new(),
        kinds: BTreeMap::new(),
        versions: BTreeMap::new(),
    };
    for file in files {
        let module = module_of(src, &file);
        let text = std::fs::read_to_string(&file).expect("read k8s-pb source");
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        let mut current: Option<String> = None;
        let mut resource: Option<(String, Option<String>, Option<String>)> = None;
        let mut i = 0;
        while i < lines.len() {
            let line = lines[i];
            if let Some(name) = line
                .strip_prefix("pub struct ")
                .and_then(|r| r.strip_suffix(" {}"))
            {
                parsed
                    .messages
                    .insert(format!("{}.{name}", module.join(".")), Vec::new());
            } else if let Some(name) = line
                .strip_prefix("pub struct ")
                .and_then(|r| r.strip_suffix(" {"))
            {
                let id = format!("{}.{name}", module.join("."));
                parsed.messages.insert(id.clone(), Vec::new());
                current = Some(id);
            } else if line == "}" {
                current = None;
                if let Some((msg, Some(av), Some(kind))) = resource.take() {
                    parsed.versions.insert(av.clone(), module.join("."));
                    parsed
                        .kinds
                        .insert((av, kind), format!("{}.{msg}", module.join(".")));
                }
            } else if let Some(attr) = line
                .strip_prefix("#[prost(")
                .and_then(|r| r.strip_suffix(")]"))
            {
                // The declaration may be wrapped over several lines by rustfmt.
                let mut decl = String::new();
                let mut j = i + 1;
                while j < lines.len() {
                    decl.push_str(lines[j]);
                    let depth = decl.matches('<').count() as i64 - decl.matches('>').count() as i64;
                    if depth == 0 && lines[j].ends_with(',') {
                        break;
                    }
                    j += 1;
                }
                i = j;
                let (Some(id), Some(rest)) = (current.as_ref(), decl.strip_prefix("pub ")) else {
                    i += 1;
                    continue;
                };
                let (name, ty) = rest.split_once(':').unwrap_or((rest, ""));
                let name = name.trim().trim_start_matches("r#");
                if let Some(f) = parse_attr(&module, attr, name, ty) {
                    parsed.messages.get_mut(id).expect("message").push(f);
                }
            } else if let Some(r) = line.strip_prefix("impl crate::Resource for ") {
                resource = Some((r.trim_end_matches(" {").to_string(), None, None));
            } else if let Some((_, av, kind)) = resource.as_mut() {
                let value = || line.split('"').nth(1).map(str::to_string);
                if line.starts_with("const API_VERSION") {
                    *av = value();
                } else if line.starts_with("const KIND") {
                    *kind = value();
                }
            }
            i += 1;
        }
    }
    parsed
}

/// k8s-openapi: message id (same module layout) → JSON field names.
fn parse_k8s_openapi(src: &Path) -> HashMap<String, Vec<String>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut out = HashMap::new();
    for file in files {
        let mut module = module_of(src, &file);
        module.pop(); // the file is named after the type
        let text = std::fs::read_to_string(&file).expect("read k8s-openapi source");
        let Some(name) = text.lines().find_map(|l| {
            l.strip_prefix("pub struct ")
                .and_then(|r| r.split([' ', '{', '(']).next())
        }) else {
            continue;
        };
        let names: Vec<String> = text
            .lines()
            .filter(|l| l.contains("=> Field::Key_"))
            .filter_map(|l| {
                l.trim()
                    .strip_prefix('"')?
                    .split('"')
                    .next()
                    .map(str::to_string)
            })
            .collect();
        out.insert(format!("{}.{name}", module.join(".")), names);
    }
    out
}

fn normalize(s: &str) -> String {
    s.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn lower_camel(snake: &str) -> String {
    let mut out = String::new();
    for (i, part) in snake.split('_').filter(|p| !p.is_empty()).enumerate() {
        let mut cs = part.chars();
        if let Some(c) = cs.next() {
            out.push(if i == 0 { c } else { c.to_ascii_uppercase() });
            out.extend(cs);
        }
    }
    out
}

fn generate() -> String {
    let dirs = package_dirs();
    let (pb_version, pb_dir) = dirs
        .get("k8s-pb")
        .expect("k8s-pb in the dependency graph")
        .clone();
    let (oa_version, oa_dir) = dirs.get("k8s-openapi").expect("k8s-openapi").clone();
    let parsed = parse_k8s_pb(&pb_dir.join("src"));
    let json = parse_k8s_openapi(&oa_dir.join("src/v1_33"));

    // JSON names seen anywhere, for types k8s-openapi lacks (newer types, or
    // Go embedded structs such as EphemeralContainerCommon).
    let mut global: HashMap<String, Option<String>> = HashMap::new();
    for n in json.values().flatten() {
        let e = global
            .entry(normalize(n))
            .or_insert_with(|| Some(n.clone()));
        if e.as_deref() != Some(n.as_str()) {
            *e = None;
        }
    }
    let mut out = format!(
        "# Wire schema of the built-in types for the protobuf request decoder.\n\
         # Generated by crates/api/tests/protobuf_schema.rs from k8s-pb {pb_version} (field numbers)\n\
         # and k8s-openapi {oa_version} (JSON names); regenerate with hack/update-protobuf-schema.sh.\n\
         # version <apiVersion> <module> | kind <apiVersion> <kind> <message> | message <id>\n\
         # <tag> <json> opt|rep <type> | <tag> <json> map <key> <value> | <tag> - inline <message>\n"
    );
    let mut versions = parsed.versions.clone();
    versions.insert(
        "meta.k8s.io/v1".into(),
        "apimachinery.pkg.apis.meta.v1".into(),
    );
    for (av, module) in &versions {
        out.push_str(&format!("version {av} {module}\n"));
    }
    for ((av, kind), id) in &parsed.kinds {
        out.push_str(&format!("kind {av} {kind} {id}\n"));
    }
    for (id, fields) in &parsed.messages {
        let names = json.get(id);
        out.push_str(&format!("message {id}\n"));
        let mut fields: Vec<&Field> = fields.iter().collect();
        fields.sort_by_key(|f| f.tag);
        for f in fields {
            let want = normalize(&f.rust_name);
            let found = names
                .and_then(|ns| ns.iter().find(|n| normalize(n) == want))
                .cloned();
            // A message field that the JSON form does not name is a Go
            // embedded struct (`json:",inline"`): its fields join ours.
            let embedded = |ns: &Vec<String>| {
                let Some(inner) = parsed.messages.get(f.ty.trim_start_matches('.')) else {
                    return false;
                };
                let ns: Vec<String> = ns.iter().map(|n| normalize(n)).collect();
                // Most, not all: the embedded type may have gained fields
                // after the k8s-openapi version we read names from.
                let known = inner
                    .iter()
                    .filter(|g| ns.contains(&normalize(&g.rust_name)))
                    .count();
                known > 0 && known * 2 >= inner.len()
            };
            if found.is_none() && f.card == "opt" && names.is_some_and(embedded) {
                out.push_str(&format!("{} - inline {}\n", f.tag, f.ty));
                continue;
            }
            let name = found
                .or_else(|| global.get(&want).cloned().flatten())
                .unwrap_or_else(|| lower_camel(&f.rust_name));
            out.push_str(&format!("{} {name} {} {}\n", f.tag, f.card, f.ty));
        }
    }
    out
}
