//! A volume's files from its sources, as pure functions of what was fetched
//! (upstream's `pkg/volume/configmap` and `pkg/volume/secret` `MakePayload`,
//! `pkg/volume/downwardapi` `CollectData`, `pkg/fieldpath`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{DownwardAPIVolumeFile, KeyToPath, Pod};

use super::atomic_writer::{FileProjection, Payload};
use crate::kuberuntime::container::{resource_field_ref, ContainerSettings};
use crate::kuberuntime::labels::{pod_name, pod_namespace, pod_uid};

/// Upstream's `DefaultMode` for configMap, secret, downwardAPI and projected.
pub const DEFAULT_MODE: u32 = 0o644;

fn mode(m: Option<i32>, default: u32) -> u32 {
    m.map(|m| (m as u32) & 0o7777).unwrap_or(default)
}

/// Which kind of object a key projection reads, for its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    ConfigMap,
    Secret,
}

/// Keys of a ConfigMap (data and binaryData) or Secret as files: every key
/// when `items` is empty, else the listed keys at their paths; a missing
/// key is an error unless `optional`.
pub fn key_payload(
    kind: KeySource,
    data: &BTreeMap<String, Vec<u8>>,
    items: &[KeyToPath],
    default_mode: u32,
    optional: bool,
) -> Result<Payload, String> {
    let mut out = Payload::new();
    if items.is_empty() {
        for (k, v) in data {
            out.insert(
                k.clone(),
                FileProjection {
                    data: v.clone(),
                    mode: default_mode,
                },
            );
        }
        return Ok(out);
    }
    for item in items {
        let Some(v) = data.get(&item.key) else {
            if optional {
                continue;
            }
            return Err(match kind {
                KeySource::ConfigMap => {
                    format!("configmap references non-existent config key: {}", item.key)
                }
                KeySource::Secret => {
                    format!("secret references non-existent secret key: {}", item.key)
                }
            });
        };
        out.insert(
            item.path.clone(),
            FileProjection {
                data: v.clone(),
                mode: mode(item.mode, default_mode),
            },
        );
    }
    Ok(out)
}

/// Go's `strconv.Quote` (what `%q` prints).
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() => {
                if (c as u32) <= 0xffff {
                    out.push_str(&format!("\\u{:04x}", c as u32))
                } else {
                    out.push_str(&format!("\\U{:08x}", c as u32))
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Upstream's `fieldpath.FormatMap`: `key="value"` lines in key order,
/// without a final newline.
pub fn format_map(m: &BTreeMap<String, String>) -> String {
    m.iter()
        .map(|(k, v)| format!("{k}={}", go_quote(v)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Upstream's `fieldpath.ExtractFieldPathAsString`: the metadata fields a
/// downward API volume may show.
pub fn field_path_value(pod: &Pod, path: &str) -> Result<String, String> {
    let meta = &pod.metadata;
    let sub = |prefix: &str| -> Option<String> {
        path.strip_prefix(prefix)?
            .strip_prefix("['")?
            .strip_suffix("']")
            .map(str::to_string)
    };
    let labels = meta.labels.clone().unwrap_or_default();
    let annotations = meta.annotations.clone().unwrap_or_default();
    if let Some(k) = sub("metadata.labels") {
        return Ok(labels.get(&k).cloned().unwrap_or_default());
    }
    if let Some(k) = sub("metadata.annotations") {
        return Ok(annotations.get(&k).cloned().unwrap_or_default());
    }
    Ok(match path {
        "metadata.name" => pod_name(pod).into(),
        "metadata.namespace" => pod_namespace(pod).into(),
        "metadata.uid" => pod_uid(pod).into(),
        "metadata.labels" => format_map(&labels),
        "metadata.annotations" => format_map(&annotations),
        other => return Err(format!("unsupported fieldPath: {other}")),
    })
}

/// A downward API volume's files (upstream's `CollectData`); every item is
/// tried and the errors are joined as upstream's aggregate prints them.
pub fn downward_api_payload(
    pod: &Pod,
    items: &[DownwardAPIVolumeFile],
    default_mode: u32,
    s: &ContainerSettings,
) -> Result<Payload, String> {
    let mut out = Payload::new();
    let mut errors = Vec::new();
    for item in items {
        let value = if let Some(f) = &item.field_ref {
            field_path_value(pod, &f.field_path)
        } else if let Some(r) = &item.resource_field_ref {
            let name = r.container_name.as_deref().unwrap_or_default();
            let container = pod.spec.as_ref().and_then(|spec| {
                spec.containers
                    .iter()
                    .chain(spec.init_containers.iter().flatten())
                    .find(|c| c.name == name)
            });
            match container {
                Some(c) => resource_field_ref(c, r, s).map_err(|e| e.to_string()),
                None => Err(format!("container {name} not found")),
            }
        } else {
            Ok(String::new())
        };
        match value {
            Ok(v) => {
                out.insert(
                    item.path.clone(),
                    FileProjection {
                        data: v.into_bytes(),
                        mode: mode(item.mode, default_mode),
                    },
                );
            }
            Err(e) => errors.push(e),
        }
    }
    aggregate(errors).map(|()| out)
}

/// Upstream's `utilerrors.NewAggregate(...).Error()`.
pub fn aggregate(errors: Vec<String>) -> Result<(), String> {
    match errors.len() {
        0 => Ok(()),
        1 => Err(errors.into_iter().next().unwrap_or_default()),
        _ => Err(format!("[{}]", errors.join(", "))),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        Container, ObjectFieldSelector, PodSpec, ResourceFieldSelector, ResourceRequirements,
    };
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn kp(key: &str, path: &str, mode: Option<i32>) -> KeyToPath {
        KeyToPath {
            key: key.into(),
            path: path.into(),
            mode,
        }
    }

    #[test]
    fn items_modes_and_missing_keys() {
        let data: BTreeMap<String, Vec<u8>> = [
            ("a".to_string(), b"1".to_vec()),
            ("b".to_string(), vec![0, 255]),
        ]
        .into();
        let all = key_payload(KeySource::ConfigMap, &data, &[], 0o640, false).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all["b"].data, vec![0, 255]);
        assert_eq!(all["a"].mode, 0o640);

        let items = [kp("a", "dir/x", Some(0o400)), kp("b", "y", None)];
        let some = key_payload(KeySource::Secret, &data, &items, DEFAULT_MODE, false).unwrap();
        assert_eq!(some.keys().collect::<Vec<_>>(), ["dir/x", "y"]);
        assert_eq!(some["dir/x"].mode, 0o400);
        assert_eq!(some["y"].mode, 0o644);

        let missing = [kp("nope", "z", None)];
        assert_eq!(
            key_payload(KeySource::ConfigMap, &data, &missing, DEFAULT_MODE, false).unwrap_err(),
            "configmap references non-existent config key: nope"
        );
        assert_eq!(
            key_payload(KeySource::Secret, &data, &missing, DEFAULT_MODE, false).unwrap_err(),
            "secret references non-existent secret key: nope"
        );
        assert!(
            key_payload(KeySource::Secret, &data, &missing, DEFAULT_MODE, true)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn downward_api_rendering() {
        let pod = Pod {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("ns1".into()),
                uid: Some("u1".into()),
                labels: Some(
                    [
                        ("app".to_string(), "x".to_string()),
                        ("tier".to_string(), "a \"b\"\n".to_string()),
                    ]
                    .into(),
                ),
                ..Default::default()
            },
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "c".into(),
                    resources: Some(ResourceRequirements {
                        limits: Some([("memory".to_string(), Quantity("64Mi".into()))].into()),
                        ..Default::default()
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        };
        let field = |path: &str, fp: &str| DownwardAPIVolumeFile {
            path: path.into(),
            field_ref: Some(ObjectFieldSelector {
                field_path: fp.into(),
                api_version: None,
            }),
            ..Default::default()
        };
        let items = vec![
            field("name", "metadata.name"),
            field("ns", "metadata.namespace"),
            field("uid", "metadata.uid"),
            field("labels", "metadata.labels"),
            field("app", "metadata.labels['app']"),
            DownwardAPIVolumeFile {
                path: "mem".into(),
                resource_field_ref: Some(ResourceFieldSelector {
                    container_name: Some("c".into()),
                    resource: "limits.memory".into(),
                    divisor: Some(Quantity("1Mi".into())),
                }),
                mode: Some(0o400),
                ..Default::default()
            },
        ];
        let p = downward_api_payload(&pod, &items, DEFAULT_MODE, &Default::default()).unwrap();
        let text = |k: &str| String::from_utf8(p[k].data.clone()).unwrap();
        assert_eq!(text("name"), "web");
        assert_eq!(text("ns"), "ns1");
        assert_eq!(text("uid"), "u1");
        assert_eq!(text("labels"), "app=\"x\"\ntier=\"a \\\"b\\\"\\n\"");
        assert_eq!(text("app"), "x");
        assert_eq!(text("mem"), "64");
        assert_eq!(p["mem"].mode, 0o400);
        assert_eq!(p["name"].mode, 0o644);

        let bad = [field("ip", "status.podIP"), field("x", "spec.nodeName")];
        assert_eq!(
            downward_api_payload(&pod, &bad, DEFAULT_MODE, &Default::default()).unwrap_err(),
            "[unsupported fieldPath: status.podIP, unsupported fieldPath: spec.nodeName]"
        );
    }
}
