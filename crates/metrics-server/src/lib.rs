//! The resource metrics add-on (upstream's kubernetes-sigs/metrics-server):
//! every `--metric-resolution` it scrapes each kubelet's
//! `/metrics/resource` (`scrape`), keeps the last two points of every node
//! and container (`storage`), and serves `metrics.k8s.io/v1beta1`
//! NodeMetrics and PodMetrics (`handler`, `api`) on a secure port behind
//! the API server's aggregator, authenticating callers by client
//! certificate, front-proxy headers or TokenReview and authorizing them by
//! SubjectAccessReview (`auth`). `run` wires it together.

pub mod api;
pub mod auth;
pub mod decode;
pub mod handler;
pub mod run;
pub mod scrape;
pub mod storage;
