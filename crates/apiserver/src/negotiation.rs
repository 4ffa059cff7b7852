//! Content negotiation (upstream's `endpoints/handlers/negotiation`): which
//! representation a client accepts, and which body formats we decode.

use apimachinery::ApiError;

/// What the response should be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Json,
    /// `as=Table;g=meta.k8s.io;v=v1` (or v1beta1).
    Table,
    /// `as=APIGroupDiscoveryList;g=apidiscovery.k8s.io;v=v2` (or v2beta1).
    Discovery(DiscoveryVersion),
    /// `as=PartialObjectMetadata` (or `…List`) `;g=meta.k8s.io;v=v1` (or
    /// v1beta1): objects reduced to their metadata, as metadata informers
    /// (the garbage collector, metrics-server) ask.
    Metadata(MetaVersion),
}

/// The `meta.k8s.io` version a metadata-only answer is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaVersion {
    V1,
    V1Beta1,
}

impl MetaVersion {
    pub fn api_version(self) -> &'static str {
        match self {
            MetaVersion::V1 => "meta.k8s.io/v1",
            MetaVersion::V1Beta1 => "meta.k8s.io/v1beta1",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiscoveryVersion {
    V2,
    V2Beta1,
}

struct MediaRange<'a> {
    essence: &'a str,
    params: Vec<(&'a str, &'a str)>,
}

fn ranges(accept: &str) -> Vec<MediaRange<'_>> {
    accept
        .split(',')
        .map(|r| {
            let mut parts = r.split(';').map(str::trim);
            let essence = parts.next().unwrap_or("");
            let params = parts
                .filter_map(|p| p.split_once('='))
                .map(|(k, v)| (k.trim(), v.trim()))
                .collect();
            MediaRange { essence, params }
        })
        .collect()
}

/// Picks the output for an `Accept` header; `allow_table`/`allow_discovery`
/// say what this endpoint can produce. 406 when nothing acceptable is left.
pub fn negotiate(
    accept: Option<&str>,
    allow_table: bool,
    allow_discovery: bool,
) -> Result<Output, ApiError> {
    let accept = accept.unwrap_or("").trim();
    if accept.is_empty() {
        return Ok(Output::Json);
    }
    for r in ranges(accept) {
        let p = |k: &str| r.params.iter().find(|(n, _)| *n == k).map(|(_, v)| *v);
        let json_like = matches!(
            r.essence,
            "application/json"
                | "*/*"
                | "application/*"
                | "application/yaml"
                | "application/json-patch+json"
        );
        match p("as") {
            Some("Table")
                if allow_table
                    && r.essence == "application/json"
                    && p("g") == Some("meta.k8s.io")
                    && matches!(p("v"), Some("v1") | Some("v1beta1")) =>
            {
                return Ok(Output::Table)
            }
            Some("PartialObjectMetadata" | "PartialObjectMetadataList")
                if allow_table
                    && r.essence == "application/json"
                    && p("g") == Some("meta.k8s.io") =>
            {
                match p("v") {
                    Some("v1") => return Ok(Output::Metadata(MetaVersion::V1)),
                    Some("v1beta1") => return Ok(Output::Metadata(MetaVersion::V1Beta1)),
                    _ => continue,
                }
            }
            Some("APIGroupDiscoveryList")
                if allow_discovery
                    && r.essence == "application/json"
                    && p("g") == Some("apidiscovery.k8s.io") =>
            {
                match p("v") {
                    Some("v2") => return Ok(Output::Discovery(DiscoveryVersion::V2)),
                    Some("v2beta1") => return Ok(Output::Discovery(DiscoveryVersion::V2Beta1)),
                    _ => continue,
                }
            }
            Some(_) => continue,
            None if json_like => return Ok(Output::Json),
            None => continue,
        }
    }
    Err(ApiError::not_acceptable(
        "application/json, application/yaml, application/vnd.kubernetes.protobuf",
    ))
}

/// The format of a request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    Json,
    Yaml,
    /// `application/vnd.kubernetes.protobuf`: the `k8s\0` envelope, read
    /// into JSON by `api::protobuf`.
    Protobuf,
    JsonPatch,
    MergePatch,
    StrategicMergePatch,
    ApplyPatch,
}

/// Reads `Content-Type`; 415 for what we cannot decode.
pub fn body_format(content_type: Option<&str>, patch: bool) -> Result<BodyFormat, ApiError> {
    let ct = content_type.unwrap_or("application/json");
    let essence = ct.split(';').next().unwrap_or("").trim();
    let f = match essence {
        "application/json" | "" if !patch => BodyFormat::Json,
        "application/yaml" if !patch => BodyFormat::Yaml,
        "application/vnd.kubernetes.protobuf" if !patch => BodyFormat::Protobuf,
        "application/json-patch+json" if patch => BodyFormat::JsonPatch,
        "application/merge-patch+json" if patch => BodyFormat::MergePatch,
        "application/strategic-merge-patch+json" if patch => BodyFormat::StrategicMergePatch,
        "application/apply-patch+yaml" if patch => BodyFormat::ApplyPatch,
        _ => return Err(ApiError::unsupported_media_type(ct)),
    };
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiates_like_kubectl_asks() {
        assert_eq!(negotiate(Some("application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"), true, false).unwrap(), Output::Table);
        assert_eq!(
            negotiate(
                Some("application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"),
                true,
                false
            )
            .unwrap(),
            Output::Metadata(MetaVersion::V1)
        );
        assert_eq!(
            negotiate(
                Some(
                    "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v2,application/json"
                ),
                true,
                false
            )
            .unwrap(),
            Output::Json
        );
        assert_eq!(
            negotiate(
                Some("application/json;as=Table;v=v1;g=meta.k8s.io,application/json"),
                false,
                false
            )
            .unwrap(),
            Output::Json
        );
        assert_eq!(
            negotiate(Some("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json"), false, true).unwrap(),
            Output::Discovery(DiscoveryVersion::V2)
        );
        assert_eq!(
            negotiate(
                Some("application/vnd.kubernetes.protobuf, */*"),
                false,
                false
            )
            .unwrap(),
            Output::Json
        );
        assert_eq!(
            negotiate(Some("text/html"), true, true).unwrap_err().code,
            406
        );
        assert_eq!(
            body_format(Some("text/plain"), false).unwrap_err().code,
            415
        );
        assert_eq!(
            body_format(Some("application/vnd.kubernetes.protobuf"), false).unwrap(),
            BodyFormat::Protobuf
        );
        assert_eq!(
            body_format(Some("application/vnd.kubernetes.protobuf"), true)
                .unwrap_err()
                .code,
            415
        );
        assert_eq!(
            body_format(Some("application/apply-patch+yaml"), true).unwrap(),
            BodyFormat::ApplyPatch
        );
    }
}
