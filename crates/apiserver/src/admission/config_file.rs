//! `--admission-control-config-file` (upstream's `AdmissionConfiguration`
//! of `apiserver.config.k8s.io/v1`, or the older `apiserver.k8s.io/v1alpha1`):
//! per plugin, a configuration inline (`configuration`) or in a file
//! (`path`, relative to the configuration file's directory). Only the
//! plugins this server configures are read; the others are accepted.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

/// Each named plugin's configuration object.
pub type PluginConfigurations = BTreeMap<String, Value>;

const API_VERSIONS: &[&str] = &["apiserver.config.k8s.io/v1", "apiserver.k8s.io/v1alpha1"];

fn yaml(text: &str, what: &str) -> Result<Value, String> {
    serde_yaml::from_str::<Value>(text).map_err(|e| format!("{what}: {e}"))
}

/// Reads `path`; upstream's messages for the wrong kind or version.
pub fn load(path: &Path) -> Result<PluginConfigurations, String> {
    let what = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{what}: {e}"))?;
    parse(&text, path.parent().unwrap_or(Path::new(".")), &what)
}

pub fn parse(text: &str, dir: &Path, what: &str) -> Result<PluginConfigurations, String> {
    let doc = yaml(text, what)?;
    let s = |k: &str| doc.get(k).and_then(Value::as_str).unwrap_or("");
    if s("kind") != "AdmissionConfiguration" || !API_VERSIONS.contains(&s("apiVersion")) {
        return Err(format!(
            "{what}: expected an AdmissionConfiguration of apiserver.config.k8s.io/v1, got {:?} of {:?}",
            s("kind"),
            s("apiVersion")
        ));
    }
    let mut out = PluginConfigurations::new();
    for p in doc
        .get("plugins")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = p
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if name.is_empty() {
            return Err(format!("{what}: a plugin without a name"));
        }
        let config = match (
            p.get("configuration"),
            p.get("path").and_then(Value::as_str),
        ) {
            (Some(c), _) if !c.is_null() => c.clone(),
            (_, Some(file)) if !file.is_empty() => {
                let full = dir.join(file);
                let text = std::fs::read_to_string(&full)
                    .map_err(|e| format!("{}: {e}", full.display()))?;
                yaml(&text, &full.display().to_string())?
            }
            _ => continue,
        };
        out.insert(name, config);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_and_file_configurations() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("psa.yaml"),
            "kind: PodSecurityConfiguration\n",
        )
        .unwrap();
        let text = "apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\nplugins:\n- name: PodSecurity\n  path: psa.yaml\n- name: EventRateLimit\n  configuration: {kind: Configuration}\n- name: Other\n";
        let c = parse(text, dir.path(), "f").unwrap();
        assert_eq!(c["PodSecurity"]["kind"], "PodSecurityConfiguration");
        assert_eq!(c["EventRateLimit"]["kind"], "Configuration");
        assert!(!c.contains_key("Other"));
        assert!(parse("kind: Config\n", dir.path(), "f")
            .unwrap_err()
            .contains("expected an AdmissionConfiguration"));
        assert!(parse(
            "apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\nplugins:\n- name: X\n  path: missing.yaml\n",
            dir.path(),
            "f"
        )
        .unwrap_err()
        .contains("missing.yaml"));
    }
}
