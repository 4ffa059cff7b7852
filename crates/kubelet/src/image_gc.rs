//! Image garbage collection (upstream's `pkg/kubelet/images/image_gc_manager.go`):
//! the images the runtime holds are tracked with when each was first seen
//! and last used by a container; every [`GC_PERIOD`] the image filesystem's
//! usage is checked and, at or above `imageGCHighThresholdPercent`, unused
//! images are removed, least recently used first, until usage is back to
//! `imageGCLowThresholdPercent`. Images younger than `imageMinimumGCAge`,
//! pinned images and the `--pod-infra-container-image` are kept. The
//! eviction manager calls [`ImageGc::delete_unused_images`] under disk
//! pressure before it evicts pods.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::cri::api::Image;
use crate::cri::{CriError, ImageService, RuntimeService};

/// How often usage is checked (upstream's `ImageGCPeriod`).
pub const GC_PERIOD: Duration = Duration::from_secs(300);

/// Upstream's `ImageGCPolicy` with its kubelet defaults.
#[derive(Debug, Clone)]
pub struct ImageGcPolicy {
    /// `imageGCHighThresholdPercent` (85): usage at which collection starts.
    pub high_threshold_percent: u8,
    /// `imageGCLowThresholdPercent` (80): usage collection frees down to.
    pub low_threshold_percent: u8,
    /// `imageMinimumGCAge` (2 m): images seen for less are kept.
    pub min_age: Duration,
    /// `--pod-infra-container-image`: never removed.
    pub pinned_image: Option<String>,
}

impl Default for ImageGcPolicy {
    fn default() -> Self {
        Self {
            high_threshold_percent: 85,
            low_threshold_percent: 80,
            min_age: Duration::from_secs(120),
            pinned_image: Some(DEFAULT_POD_INFRA_IMAGE.into()),
        }
    }
}

/// Upstream's default `--pod-infra-container-image`.
pub const DEFAULT_POD_INFRA_IMAGE: &str = "registry.k8s.io/pause:3.10";

/// Why the policy is refused (upstream's `NewImageGCManager` checks).
pub fn validate(policy: &ImageGcPolicy) -> Result<(), String> {
    let (high, low) = (policy.high_threshold_percent, policy.low_threshold_percent);
    if high > 100 {
        return Err(format!(
            "invalid HighThresholdPercent {high}, must be in range [0-100]"
        ));
    }
    if low > 100 {
        return Err(format!(
            "invalid LowThresholdPercent {low}, must be in range [0-100]"
        ));
    }
    if low > high {
        return Err(format!(
            "LowThresholdPercent {low} can not be higher than HighThresholdPercent {high}"
        ));
    }
    Ok(())
}

#[derive(Debug, Clone, Copy)]
struct Record {
    first_detected: Instant,
    last_used: Instant,
    size: u64,
}

/// What one collection did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Freed {
    /// Ids of the removed images.
    pub removed: Vec<String>,
    pub bytes: u64,
}

/// Why a collection fell short.
#[derive(Debug, thiserror::Error)]
pub enum GcError {
    #[error("{0}")]
    Runtime(#[from] CriError),
    /// Upstream's `FreeDiskSpaceFailed` text.
    #[error("Failed to garbage collect required amount of images. Attempted to free {wanted} bytes, but only found {freed} bytes eligible to free.")]
    NotEnough { wanted: u64, freed: u64 },
    /// No image filesystem to measure.
    #[error("invalid capacity 0 on image filesystem")]
    NoCapacity,
}

/// The image GC manager; clones share the records.
#[derive(Clone)]
pub struct ImageGc {
    runtime: Arc<dyn RuntimeService>,
    images: Arc<dyn ImageService>,
    policy: ImageGcPolicy,
    records: Arc<Mutex<HashMap<String, Record>>>,
}

fn pinned(image: &Image, policy: &ImageGcPolicy) -> bool {
    image.pinned
        || policy
            .pinned_image
            .as_deref()
            .is_some_and(|p| image.id == p || image.repo_tags.iter().any(|t| t == p))
}

impl ImageGc {
    pub fn new(
        runtime: Arc<dyn RuntimeService>,
        images: Arc<dyn ImageService>,
        policy: ImageGcPolicy,
    ) -> Self {
        Self {
            runtime,
            images,
            policy,
            records: Default::default(),
        }
    }

    /// Lists images and containers, records new images, marks the ones a
    /// container (running or not) refers to as used now, forgets removed
    /// ones; returns the images with the ids in use.
    async fn detect(&self, now: Instant) -> Result<(Vec<Image>, HashSet<String>), CriError> {
        let images = self.images.list_images().await?;
        let containers = self.runtime.list_containers(None).await?;
        let mut refs: HashSet<String> = HashSet::new();
        for c in &containers {
            refs.insert(c.image_ref.clone());
            if let Some(spec) = &c.image {
                refs.insert(spec.image.clone());
            }
        }
        let in_use: HashSet<String> = images
            .iter()
            .filter(|i| {
                refs.contains(&i.id)
                    || i.repo_tags.iter().any(|t| refs.contains(t))
                    || i.repo_digests.iter().any(|d| refs.contains(d))
            })
            .map(|i| i.id.clone())
            .collect();
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        let present: HashSet<&str> = images.iter().map(|i| i.id.as_str()).collect();
        records.retain(|id, _| present.contains(id.as_str()));
        for i in &images {
            let r = records.entry(i.id.clone()).or_insert(Record {
                first_detected: now,
                last_used: now,
                size: i.size,
            });
            r.size = i.size;
            if in_use.contains(&i.id) {
                r.last_used = now;
            }
        }
        Ok((images, in_use))
    }

    /// Removes unused images, least recently used first, until `wanted`
    /// bytes are freed (upstream's `freeSpace`).
    async fn free_space(&self, wanted: u64, now: Instant) -> Result<Freed, GcError> {
        let (images, in_use) = self.detect(now).await?;
        let mut candidates: Vec<(String, Record)> = {
            let records = self.records.lock().unwrap_or_else(|e| e.into_inner());
            images
                .iter()
                .filter(|i| !in_use.contains(&i.id) && !pinned(i, &self.policy))
                .filter_map(|i| Some((i.id.clone(), *records.get(&i.id)?)))
                .collect()
        };
        candidates.sort_by(|a, b| {
            (a.1.last_used, a.1.first_detected).cmp(&(b.1.last_used, b.1.first_detected))
        });
        let mut freed = Freed::default();
        for (id, r) in candidates {
            if freed.bytes >= wanted {
                break;
            }
            if now.duration_since(r.first_detected) < self.policy.min_age {
                tracing::debug!(image = %id, "image younger than the minimum GC age, kept");
                continue;
            }
            tracing::info!(image = %id, size = r.size, "removing unused image");
            match self.images.remove_image(&id).await {
                Ok(()) => {
                    freed.bytes += r.size;
                    freed.removed.push(id.clone());
                    if let Ok(mut records) = self.records.lock() {
                        records.remove(&id);
                    }
                }
                Err(e) => tracing::warn!(image = %id, error = %e, "removing an image failed"),
            }
        }
        if freed.bytes < wanted && wanted != u64::MAX {
            return Err(GcError::NotEnough {
                wanted,
                freed: freed.bytes,
            });
        }
        Ok(freed)
    }

    /// Upstream's `GarbageCollect`: frees down to the low threshold when
    /// the image filesystem is at or above the high one.
    pub async fn garbage_collect(&self) -> Result<Freed, GcError> {
        let now = Instant::now();
        let (capacity, available) = self.image_fs_space().await?;
        if capacity == 0 {
            return Err(GcError::NoCapacity);
        }
        let usage_percent = 100 - available.saturating_mul(100) / capacity;
        if usage_percent < u64::from(self.policy.high_threshold_percent) {
            self.detect(now).await?;
            return Ok(Freed::default());
        }
        let wanted = (capacity * (100 - u64::from(self.policy.low_threshold_percent)) / 100)
            .saturating_sub(available);
        tracing::info!(
            usage_percent,
            high = self.policy.high_threshold_percent,
            wanted,
            "image filesystem usage over the high threshold, freeing space"
        );
        self.free_space(wanted, now).await
    }

    /// Every unused image old enough (upstream's `DeleteUnusedImages`).
    pub async fn delete_unused_images(&self) -> Result<Freed, GcError> {
        self.free_space(u64::MAX, Instant::now()).await
    }

    /// The image filesystem's capacity and free bytes: `statvfs` of the
    /// runtime's image mount point.
    async fn image_fs_space(&self) -> Result<(u64, u64), GcError> {
        let fss = self.images.image_fs_info().await?;
        let mount = fss
            .first()
            .and_then(|f| f.fs_id.as_ref())
            .map(|i| i.mountpoint.clone())
            .unwrap_or_default();
        let usage = crate::stats::node::fs_usage(Path::new(&mount)).ok_or(GcError::NoCapacity)?;
        Ok((usage.capacity, usage.available))
    }

    /// Runs [`Self::garbage_collect`] every [`GC_PERIOD`]; failures are
    /// reported through `on_failure` (a node Event upstream).
    pub async fn run(self, on_failure: impl Fn(&GcError) + Send) {
        // Upstream records images at once and collects after the first period.
        if let Err(e) = self.detect(Instant::now()).await {
            tracing::debug!(error = %e, "listing images");
        }
        let mut tick = tokio::time::interval(GC_PERIOD);
        tick.tick().await;
        loop {
            tick.tick().await;
            match self.garbage_collect().await {
                Ok(f) if !f.removed.is_empty() => {
                    tracing::info!(
                        images = f.removed.len(),
                        bytes = f.bytes,
                        "image garbage collection freed space"
                    )
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "image garbage collection failed");
                    on_failure(&e);
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::cri::api::{ContainerConfig, ImageSpec, PodSandboxConfig};
    use crate::cri::fake::FakeRuntime;

    /// A container of a new sandbox that runs `image`.
    async fn container_using(fake: &FakeRuntime, image: &str) -> String {
        let sb = fake
            .run_pod_sandbox(PodSandboxConfig::default())
            .await
            .unwrap();
        let config = ContainerConfig {
            image: Some(ImageSpec {
                image: image.into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        fake.create_container(&sb, config, PodSandboxConfig::default())
            .await
            .unwrap()
    }

    fn gc(fake: &FakeRuntime, min_age: Duration) -> ImageGc {
        ImageGc::new(
            Arc::new(fake.clone()),
            Arc::new(fake.clone()),
            ImageGcPolicy {
                min_age,
                pinned_image: Some("pause".into()),
                ..Default::default()
            },
        )
    }

    #[tokio::test]
    async fn unused_images_go_least_recently_used_first_and_in_use_pinned_and_young_ones_stay() {
        let fake = FakeRuntime::new();
        for i in ["old", "newer", "used", "pause"] {
            fake.add_image(i);
        }
        let g = gc(&fake, Duration::from_secs(60));
        let t0 = Instant::now();
        g.detect(t0).await.unwrap();
        // "newer" was last used later than "old".
        let c = container_using(&fake, "newer").await;
        g.detect(t0 + Duration::from_secs(30)).await.unwrap();
        fake.remove_container(&c).await.unwrap();
        container_using(&fake, "used").await;
        fake.add_image("young");
        g.detect(t0 + Duration::from_secs(100)).await.unwrap();

        // One MiB wanted: the least recently used unused image goes.
        let f = g
            .free_space(1 << 20, t0 + Duration::from_secs(120))
            .await
            .unwrap();
        assert_eq!(f.removed, vec!["sha256:old".to_string()]);
        // Everything eligible: "newer" goes; "young" (seen 20 s ago), the
        // image in use and the pinned one stay.
        let f = g
            .free_space(u64::MAX, t0 + Duration::from_secs(120))
            .await
            .unwrap();
        assert_eq!(f.removed, vec!["sha256:newer".to_string()]);
        let mut left: Vec<String> = fake
            .list_images()
            .await
            .unwrap()
            .into_iter()
            .map(|i| i.id)
            .collect();
        left.sort();
        assert_eq!(left, ["sha256:pause", "sha256:used", "sha256:young"]);
        // Asking for more than can be freed is upstream's error.
        let e = g
            .free_space(10 << 20, t0 + Duration::from_secs(120))
            .await
            .unwrap_err();
        assert_eq!(e.to_string(), "Failed to garbage collect required amount of images. Attempted to free 10485760 bytes, but only found 0 bytes eligible to free.");
    }

    #[test]
    fn policy_is_validated_like_upstream() {
        let p = |high, low| ImageGcPolicy {
            high_threshold_percent: high,
            low_threshold_percent: low,
            ..Default::default()
        };
        assert!(validate(&p(85, 80)).is_ok());
        assert_eq!(
            validate(&p(70, 80)).unwrap_err(),
            "LowThresholdPercent 80 can not be higher than HighThresholdPercent 70"
        );
        assert_eq!(
            validate(&p(101, 80)).unwrap_err(),
            "invalid HighThresholdPercent 101, must be in range [0-100]"
        );
    }
}
