//! Following one resource type into a kube-rs reflector store, for
//! components that act on the whole state after any change (kube-proxy's
//! rules, the DNS index): the watch retries with kube-rs's default backoff
//! and never ends; every applied event calls `on_change`.

use futures::StreamExt;
use kube::runtime::{reflector, watcher, WatchStreamExt};
use kube::Api;

/// Keeps `writer`'s store in step with `api` until the process ends,
/// calling `on_change` after every event the store applied.
pub async fn follow<K>(api: Api<K>, writer: reflector::store::Writer<K>, on_change: impl Fn())
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .reflect(writer);
    futures::pin_mut!(stream);
    while let Some(ev) = stream.next().await {
        match ev {
            Ok(_) => on_change(),
            Err(e) => {
                tracing::warn!(error = %e, kind = K::kind(&()).as_ref(), "watch failed; retrying")
            }
        }
    }
}
