//! Keeps `api/openapi-spec/` (swagger.json, its gnostic protobuf form
//! swagger.pb, and v3/*_openapi.json) equal to
//! what the code generates; `UPDATE_OPENAPI_SPEC=1` (hack/update-openapi-spec.sh)
//! rewrites the files instead of failing.

use std::path::{Path, PathBuf};

fn pretty(v: &serde_json::Value) -> Vec<u8> {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_default();
    s.push('\n');
    s.into_bytes()
}

#[test]
fn openapi_spec_matches_the_code() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../api/openapi-spec");
    let docs = api::openapi::documents(&api::builtin_resources());
    let mut want: Vec<(PathBuf, Vec<u8>)> = vec![
        (root.join("swagger.json"), pretty(&docs.v2)),
        (
            root.join("swagger.pb"),
            api::openapi::gnostic::encode(&docs.v2),
        ),
    ];
    for (key, doc) in &docs.v3 {
        want.push((
            root.join("v3").join(api::openapi::v3::file_name(key)),
            pretty(doc),
        ));
    }
    let update = std::env::var("UPDATE_OPENAPI_SPEC").is_ok_and(|v| v == "1");
    if update {
        let v3 = root.join("v3");
        std::fs::create_dir_all(&v3).expect("create api/openapi-spec/v3");
        // Drop documents of group-versions no longer served.
        for e in std::fs::read_dir(&v3)
            .expect("read api/openapi-spec/v3")
            .flatten()
        {
            if !want.iter().any(|(p, _)| *p == e.path()) {
                std::fs::remove_file(e.path()).expect("remove stale document");
            }
        }
        for (path, text) in &want {
            std::fs::write(path, text).expect("write document");
        }
        return;
    }
    let mut stale = Vec::new();
    for (path, text) in &want {
        if std::fs::read(path).ok().as_deref() != Some(text.as_slice()) {
            stale.push(path.display().to_string());
        }
    }
    let extra: Vec<String> = std::fs::read_dir(root.join("v3"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| !want.iter().any(|(p, _)| *p == e.path()))
        .map(|e| e.path().display().to_string())
        .collect();
    assert!(
        stale.is_empty() && extra.is_empty(),
        "api/openapi-spec drifted from the code (run hack/update-openapi-spec.sh): stale {stale:?}, extra {extra:?}"
    );
}
