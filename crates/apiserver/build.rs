//! Embeds the generated OpenAPI documents (`api/openapi-spec/`, kept equal
//! to what `api::openapi` generates by `crates/api/tests/openapi_spec.rs`)
//! so that the server serves them from its read-only image instead of
//! generating them at run time.

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    // Read at run time: cargo hashes path packages relative to the workspace,
    // so one compiled build script serves every checkout sharing a target
    // directory, and a path baked in with env! would name another checkout.
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR");
    let spec = Path::new(&manifest_dir).join("../../api/openapi-spec");
    let spec = spec.canonicalize().expect("api/openapi-spec exists");
    println!("cargo:rerun-if-changed={}", spec.display());
    println!("cargo:rerun-if-changed={}", spec.join("v3").display());
    let mut out = String::new();
    let swagger = spec.join("swagger.json");
    println!("cargo:rerun-if-changed={}", swagger.display());
    writeln!(
        out,
        "pub const SWAGGER: &[u8] = include_bytes!({:?});",
        swagger.display().to_string()
    )
    .ok();
    let proto = spec.join("swagger.pb");
    println!("cargo:rerun-if-changed={}", proto.display());
    writeln!(
        out,
        "pub const SWAGGER_PB: &[u8] = include_bytes!({:?});",
        proto.display().to_string()
    )
    .ok();
    let mut files: Vec<_> = std::fs::read_dir(spec.join("v3"))
        .expect("api/openapi-spec/v3")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    out.push_str("pub const V3: &[(&str, &[u8])] = &[\n");
    for f in files {
        println!("cargo:rerun-if-changed={}", f.display());
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        // `apis__apps__v1_openapi.json` → `apis/apps/v1`
        let key = name.trim_end_matches("_openapi.json").replace("__", "/");
        writeln!(
            out,
            "    ({key:?}, include_bytes!({:?})),",
            f.display().to_string()
        )
        .ok();
    }
    out.push_str("];\n");
    let dest = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("openapi_spec.rs");
    std::fs::write(dest, out).expect("write openapi_spec.rs");
}
