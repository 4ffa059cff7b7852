//! The horizontal pod autoscaler (upstream's
//! `pkg/controller/podautoscaler/horizontal.go`): every
//! `--horizontal-pod-autoscaler-sync-period` each HorizontalPodAutoscaler
//! reads its target's `scale` subresource, asks the metrics for a replica
//! count, normalizes it and writes the new count to the scale subresource,
//! then records what it saw in the HPA's status (`currentReplicas`,
//! `desiredReplicas`, `currentMetrics`, `lastScaleTime`, the AbleToScale,
//! ScalingActive and ScalingLimited conditions) with upstream's reasons,
//! messages and Events.
//!
//! - [`replicas`]: the replica calculation over pods and their metrics (pure).
//! - [`normalize`]: stabilization, bounds and rate limits (pure).
//! - [`metrics`]: reading `metrics.k8s.io` (Resource, ContainerResource) and
//!   `custom.metrics.k8s.io` (Pods) through the API server.
//!
//! Object and External metrics are not read yet: such a metric is reported
//! as failing (ScalingActive False), and the others still count.

pub mod metrics;
pub mod normalize;
pub mod replicas;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use apimachinery::labels::Selector;
use jiff::Timestamp;
use k8s_openapi::api::autoscaling::v2::{
    ContainerResourceMetricStatus, HorizontalPodAutoscaler, HorizontalPodAutoscalerCondition,
    HorizontalPodAutoscalerStatus, MetricSpec, MetricStatus, MetricValueStatus, PodsMetricStatus,
    ResourceMetricStatus,
};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::Store;
use kube::{Resource, ResourceExt};
use serde_json::{json, Value};

use crate::clock::Clock;
use crate::descriptors::ControllerFuture;
use crate::events::EventRecorder;
use crate::{is_conflict, is_not_found, ControllerContext, Error, StartError};

use normalize::{Condition, Counts, History};
use replicas::Calculator;

pub const NAME: &str = "horizontal-pod-autoscaler-controller";

/// The controller's knobs (upstream's flag defaults in [`Default`]).
#[derive(Debug, Clone, Copy)]
pub struct HpaConfig {
    /// `--horizontal-pod-autoscaler-sync-period`.
    pub sync_period: Duration,
    /// `--horizontal-pod-autoscaler-downscale-stabilization`.
    pub downscale_stabilization: Duration,
    /// `--horizontal-pod-autoscaler-tolerance` and the readiness periods.
    pub calculator: Calculator,
}

impl Default for HpaConfig {
    fn default() -> Self {
        Self {
            sync_period: Duration::from_secs(15),
            downscale_stabilization: Duration::from_secs(5 * 60),
            calculator: Calculator::default(),
        }
    }
}

type Hpa = HorizontalPodAutoscaler;

struct Ctx {
    client: kube::Client,
    pods: Store<Pod>,
    clock: Arc<dyn Clock>,
    events: EventRecorder,
    config: HpaConfig,
    /// Per HPA (namespace/name): recommendations and scale events.
    histories: Mutex<HashMap<String, History>>,
    /// (apiVersion, kind) → resource name, from discovery.
    resources: Mutex<HashMap<(String, String), String>>,
}

/// Upstream's `startHPAController`.
pub fn start(ctx: &ControllerContext) -> Result<ControllerFuture, StartError> {
    let hpas = ctx.informers.informer::<Hpa>();
    let pods = ctx.informers.informer::<Pod>();
    let config = ctx.config.hpa;
    let controller = Controller::for_shared_stream(hpas.subscribe(), hpas.store())
        .with_config(kube::runtime::controller::Config::default().concurrency(5));
    let c = Arc::new(Ctx {
        client: ctx.client.clone(),
        pods: pods.store(),
        clock: ctx.config.clock.clone(),
        events: EventRecorder::new(ctx.client.clone(), "horizontal-pod-autoscaler"),
        config,
        histories: Mutex::default(),
        resources: Mutex::default(),
    });
    Ok(Box::pin(crate::runner::drive(
        NAME,
        controller,
        ctx.metrics.clone(),
        c,
        reconcile,
    )))
}

fn key(hpa: &Hpa) -> String {
    format!("{}/{}", hpa.namespace().unwrap_or_default(), hpa.name_any())
}

/// The conditions being built for one sync, upstream's `setCondition`.
struct Conditions {
    list: Vec<HorizontalPodAutoscalerCondition>,
    now: Timestamp,
}

impl Conditions {
    fn set(&mut self, (type_, status, reason, message): Condition) {
        let now = Time(self.now);
        match self.list.iter_mut().find(|c| c.type_ == type_) {
            Some(c) => {
                if c.status != status {
                    c.last_transition_time = Some(now);
                }
                c.status = status.into();
                c.reason = Some(reason.into());
                c.message = Some(message);
            }
            None => self.list.push(HorizontalPodAutoscalerCondition {
                type_: type_.into(),
                status: status.into(),
                reason: Some(reason.into()),
                message: Some(message),
                last_transition_time: Some(now),
            }),
        }
    }
}

/// The target's scale subresource as upstream's autoscaling/v1 Scale.
struct Scale {
    path: String,
    object: Value,
    spec_replicas: i32,
    selector: String,
}

async fn resource_for(ctx: &Ctx, api_version: &str, kind: &str) -> Result<String, String> {
    let k = (api_version.to_string(), kind.to_string());
    if let Some(r) = ctx
        .resources
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&k)
    {
        return Ok(r.clone());
    }
    let list = if api_version.contains('/') {
        ctx.client.list_api_group_resources(api_version).await
    } else {
        ctx.client.list_core_api_resources(api_version).await
    }
    .map_err(|e| e.to_string())?;
    let r = list
        .resources
        .iter()
        .find(|r| r.kind == kind && !r.name.contains('/'))
        .map(|r| r.name.clone())
        .ok_or_else(|| format!("no matches for kind {kind:?} in version {api_version:?}"))?;
    ctx.resources
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(k, r.clone());
    Ok(r)
}

async fn get_scale(ctx: &Ctx, hpa: &Hpa) -> Result<Scale, String> {
    let spec = hpa.spec.as_ref().ok_or("no spec")?;
    let target = &spec.scale_target_ref;
    let api_version = target.api_version.clone().unwrap_or_else(|| "v1".into());
    let resource = resource_for(ctx, &api_version, &target.kind).await?;
    let ns = hpa.namespace().unwrap_or_default();
    let base = if api_version.contains('/') {
        "apis"
    } else {
        "api"
    };
    let path = format!(
        "/{base}/{api_version}/namespaces/{ns}/{resource}/{}/scale",
        target.name
    );
    let req = http::Request::get(&path)
        .body(Vec::new())
        .map_err(|e| e.to_string())?;
    let object: Value = ctx.client.request(req).await.map_err(|e| e.to_string())?;
    let int = |p: &str| object.pointer(p).and_then(Value::as_i64).unwrap_or(0) as i32;
    Ok(Scale {
        spec_replicas: int("/spec/replicas"),
        selector: object
            .pointer("/status/selector")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        path,
        object,
    })
}

async fn update_scale(ctx: &Ctx, scale: &Scale, replicas: i32) -> Result<(), String> {
    let mut body = scale.object.clone();
    body["spec"]["replicas"] = json!(replicas);
    let req = http::Request::put(&scale.path)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(body.to_string().into_bytes())
        .map_err(|e| e.to_string())?;
    ctx.client
        .request::<Value>(req)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// What one metric proposed.
struct Proposal {
    replicas: i32,
    name: String,
}

/// Upstream's `computeReplicasForMetric`: a proposal, or the condition
/// that explains why there is none.
async fn replicas_for_metric(
    ctx: &Ctx,
    hpa: &Hpa,
    spec: &MetricSpec,
    scale: &Scale,
    selector: &Selector,
    pods: &[&Pod],
    status: &mut Option<MetricStatus>,
) -> Result<Proposal, (Condition, String)> {
    let ns = hpa.namespace().unwrap_or_default();
    let now = ctx.clock.now();
    let calc = &ctx.config.calculator;
    let current = scale.spec_replicas;
    let unable = |reason: &'static str, err: String| {
        let message = format!("the HPA was unable to compute the replica count: {err}");
        (("ScalingActive", "False", reason, message), err)
    };
    let quantity = |milli: i64| {
        Quantity(
            apimachinery::quantity::Quantity::from_nanos(
                i128::from(milli) * 1_000_000,
                apimachinery::quantity::Format::DecimalSI,
            )
            .to_string(),
        )
    };
    match spec.type_.as_str() {
        "Resource" | "ContainerResource" => {
            let (name, container, target) = match (&spec.resource, &spec.container_resource) {
                (Some(r), _) if spec.type_ == "Resource" => (r.name.clone(), None, &r.target),
                (_, Some(c)) => (c.name.clone(), Some(c.container.clone()), &c.target),
                _ => {
                    return Err(unable(
                        "FailedGetResourceMetric",
                        format!("invalid {} metric source: no source given", spec.type_),
                    ))
                }
            };
            let metrics = metrics::resource(
                &ctx.client,
                &ns,
                selector,
                &name,
                container.as_deref(),
            )
            .await
            .map_err(|e| {
                unable(
                    if container.is_some() { "FailedGetContainerResourceMetric" } else { "FailedGetResourceMetric" },
                    format!("failed to get {name} utilization: unable to get metrics for resource {name}: {e}"),
                )
            })?;
            let current_status = |utilization: Option<i32>, raw: i64| {
                let value = MetricValueStatus {
                    average_utilization: utilization,
                    average_value: Some(quantity(raw)),
                    value: None,
                };
                match &container {
                    None => MetricStatus {
                        type_: "Resource".into(),
                        resource: Some(ResourceMetricStatus {
                            name: name.clone(),
                            current: value,
                        }),
                        ..Default::default()
                    },
                    Some(c) => MetricStatus {
                        type_: "ContainerResource".into(),
                        container_resource: Some(ContainerResourceMetricStatus {
                            name: name.clone(),
                            container: c.clone(),
                            current: value,
                        }),
                        ..Default::default()
                    },
                }
            };
            let reason = if container.is_some() {
                "FailedGetContainerResourceMetric"
            } else {
                "FailedGetResourceMetric"
            };
            if let Some(avg) = target.average_value.as_ref() {
                let target_milli = replicas::milli(&avg.0).unwrap_or(0);
                let (replicas, raw) = calc
                    .raw_replicas(current, target_milli, &name, metrics, pods, now)
                    .map_err(|e| unable(reason, format!("failed to get {name} usage: {e}")))?;
                *status = Some(current_status(None, raw));
                return Ok(Proposal {
                    replicas,
                    name: format!("{name} resource"),
                });
            }
            let Some(target_utilization) = target.average_utilization else {
                return Err(unable(
                    reason,
                    "invalid resource metric source: neither an average utilization target nor an average value (usage) target was set".into(),
                ));
            };
            let u = calc
                .resource_replicas(
                    current,
                    target_utilization,
                    &name,
                    container.as_deref(),
                    metrics,
                    pods,
                    now,
                )
                .map_err(|e| unable(reason, format!("failed to get {name} utilization: {e}")))?;
            *status = Some(current_status(Some(u.utilization), u.raw));
            let name = match &container {
                None => format!("{name} resource utilization (percentage of request)"),
                Some(c) => {
                    format!("{name} container resource utilization (percentage of request) of {c}")
                }
            };
            Ok(Proposal {
                replicas: u.replicas,
                name,
            })
        }
        "Pods" => {
            let Some(p) = &spec.pods else {
                return Err(unable(
                    "FailedGetPodsMetric",
                    "invalid pods metric source: no source given".into(),
                ));
            };
            let metric = &p.metric.name;
            let metric_selector = p
                .metric
                .selector
                .as_ref()
                .map(|s| serde_json::to_value(s).unwrap_or_default());
            let values =
                metrics::pods(&ctx.client, &ns, selector, metric, metric_selector.as_ref())
                    .await
                    .map_err(|e| {
                        unable(
                            "FailedGetPodsMetric",
                            format!("unable to get metric {metric}: {e}"),
                        )
                    })?;
            let target = p
                .target
                .average_value
                .as_ref()
                .and_then(|q| replicas::milli(&q.0))
                .unwrap_or(0);
            let (replicas, usage) = calc
                .raw_replicas(current, target, "", values, pods, now)
                .map_err(|e| {
                    unable(
                        "FailedGetPodsMetric",
                        format!("unable to get metric {metric}: {e}"),
                    )
                })?;
            *status = Some(MetricStatus {
                type_: "Pods".into(),
                pods: Some(PodsMetricStatus {
                    metric: p.metric.clone(),
                    current: MetricValueStatus {
                        average_value: Some(quantity(usage)),
                        ..Default::default()
                    },
                }),
                ..Default::default()
            });
            Ok(Proposal {
                replicas,
                name: format!("pods metric {metric}"),
            })
        }
        "Object" => Err(unable(
            "FailedGetObjectMetric",
            "unable to get metric: Object metrics are not read by this controller yet".into(),
        )),
        "External" => Err(unable(
            "FailedGetExternalMetric",
            "unable to get external metric: External metrics are not read by this controller yet"
                .into(),
        )),
        other => Err(unable(
            "InvalidMetricSourceType",
            format!("unknown metric source type {other:?}"),
        )),
    }
}

/// What `computeReplicasForMetrics` concluded.
enum Computed {
    /// A count (the largest proposal) and its metric's name, plus an error
    /// for metrics that failed while others succeeded.
    Replicas(i32, String, Option<String>),
    /// No usable count: the error for the FailedComputeMetricsReplicas Event.
    Failed(String),
}

async fn compute_replicas(
    ctx: &Ctx,
    hpa: &Hpa,
    scale: &Scale,
    conditions: &mut Conditions,
    statuses: &mut Vec<MetricStatus>,
) -> Computed {
    let reference = hpa.object_ref(&());
    if scale.selector.is_empty() {
        ctx.events.warning(
            &reference,
            "SelectorRequired",
            "selector is required".into(),
        );
        conditions.set((
            "ScalingActive",
            "False",
            "InvalidSelector",
            "the HPA target's scale is missing a selector".into(),
        ));
        return Computed::Failed("selector is required".into());
    }
    let selector = match Selector::parse(&scale.selector) {
        Ok(s) => s,
        Err(e) => {
            let msg = format!(
                "couldn't convert selector into a corresponding internal selector object: {e}"
            );
            ctx.events
                .warning(&reference, "InvalidSelector", msg.clone());
            conditions.set((
                "ScalingActive",
                "False",
                "InvalidSelector",
                format!("the HPA target's scale has an invalid selector: {e}"),
            ));
            return Computed::Failed(msg);
        }
    };
    let ns = hpa.namespace();
    let all_pods = ctx.pods.state();
    let pods: Vec<&Pod> = all_pods
        .iter()
        .filter(|p| p.namespace() == ns && selector.matches(p.labels()))
        .map(|p| &**p)
        .collect();
    let specs = hpa
        .spec
        .as_ref()
        .and_then(|s| s.metrics.clone())
        .unwrap_or_default();
    let mut best: Option<Proposal> = None;
    let mut invalid = 0usize;
    let mut first_error: Option<(Condition, String)> = None;
    for spec in &specs {
        let mut status = None;
        match replicas_for_metric(ctx, hpa, spec, scale, &selector, &pods, &mut status).await {
            Ok(p) => {
                if best
                    .as_ref()
                    .is_none_or(|b| b.replicas == 0 || p.replicas > b.replicas)
                {
                    best = Some(p);
                }
            }
            Err((condition, err)) => {
                ctx.events.warning(&reference, condition.2, err.clone());
                invalid += 1;
                first_error.get_or_insert((condition, err));
            }
        }
        statuses.push(status.unwrap_or_else(|| MetricStatus {
            type_: String::new(),
            ..Default::default()
        }));
    }
    let error = first_error.as_ref().map(|(_, e)| {
        format!(
            "invalid metrics ({invalid} invalid out of {}), first error is: {e}",
            specs.len()
        )
    });
    let replicas = best.as_ref().map_or(0, |b| b.replicas);
    if invalid >= specs.len() || (invalid > 0 && replicas < scale.spec_replicas) {
        if let Some((condition, _)) = first_error {
            conditions.set(condition);
        }
        return Computed::Failed(error.unwrap_or_else(|| "no metrics".into()));
    }
    let name = best.map(|b| b.name).unwrap_or_default();
    conditions.set((
        "ScalingActive",
        "True",
        "ValidMetricFound",
        format!("the HPA was able to successfully calculate a replica count from {name}"),
    ));
    Computed::Replicas(replicas, name, error)
}

async fn reconcile(hpa: Arc<Hpa>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let requeue = Action::requeue(ctx.config.sync_period);
    if hpa.meta().deletion_timestamp.is_some() {
        ctx.histories
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&key(&hpa));
        return Ok(Action::await_change());
    }
    let now = ctx.clock.now();
    let reference = hpa.object_ref(&());
    let old_status = hpa.status.clone().unwrap_or_default();
    let mut conditions = Conditions {
        list: old_status.conditions.clone().unwrap_or_default(),
        now,
    };
    let spec = hpa.spec.clone().unwrap_or_default();
    let target = &spec.scale_target_ref;
    let scale = match get_scale(&ctx, &hpa).await {
        Ok(s) => s,
        Err(e) => {
            let msg =
                format!("the HPA controller was unable to get the target's current scale: {e}");
            ctx.events.warning(&reference, "FailedGetScale", e.clone());
            conditions.set(("AbleToScale", "False", "FailedGetScale", msg));
            let status = HorizontalPodAutoscalerStatus {
                conditions: Some(conditions.list),
                ..old_status.clone()
            };
            write_status(&ctx.client, &hpa, status).await?;
            tracing::debug!(hpa = %key(&hpa), target = %format!("{}/{}", target.kind, target.name), error = %e, "failed to get scale");
            return Ok(requeue);
        }
    };
    conditions.set((
        "AbleToScale",
        "True",
        "SucceededGetScale",
        "the HPA controller was able to get the target's current scale".into(),
    ));
    let current = scale.spec_replicas;
    let min = spec.min_replicas.unwrap_or(1);
    let max = spec.max_replicas;
    let hkey = key(&hpa);
    ctx.histories
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(hkey.clone())
        .or_default()
        .record_initial(current, now);
    let mut statuses = Vec::new();
    let mut reason = String::new();
    let desired = if current == 0 && min != 0 {
        conditions.set((
            "ScalingActive",
            "False",
            "ScalingDisabled",
            "scaling is disabled since the replica count of the target is zero".into(),
        ));
        0
    } else if current > max {
        reason = "Current number of replicas above Spec.MaxReplicas".into();
        max
    } else if min != 0 && current < min {
        reason = "Current number of replicas below Spec.MinReplicas".into();
        min
    } else {
        match compute_replicas(&ctx, &hpa, &scale, &mut conditions, &mut statuses).await {
            Computed::Failed(e) => {
                ctx.events.warning(
                    &reference,
                    "FailedComputeMetricsReplicas",
                    format!("failed to compute desired number of replicas based on listed metrics for {}/{}/{}: {e}", target.kind, hpa.namespace().unwrap_or_default(), target.name),
                );
                let status = HorizontalPodAutoscalerStatus {
                    current_replicas: Some(current),
                    current_metrics: Some(statuses).filter(|s| !s.is_empty()),
                    conditions: Some(conditions.list),
                    ..old_status.clone()
                };
                write_status(&ctx.client, &hpa, status).await?;
                return Ok(requeue);
            }
            Computed::Replicas(proposal, metric, partial) => {
                if let Some(e) = partial {
                    tracing::info!(hpa = %hkey, error = %e, "some metrics failed; scaling on the rest");
                }
                let proposal = proposal.max(0);
                if proposal > current {
                    reason = format!("{metric} above target");
                } else if proposal < current {
                    reason = "All metrics below target".into();
                }
                let mut histories = ctx.histories.lock().unwrap_or_else(|p| p.into_inner());
                let history = histories.entry(hkey.clone()).or_default();
                let (n, [able, limited]) = normalize::normalize(
                    history,
                    spec.behavior.as_ref(),
                    Counts {
                        min,
                        max,
                        current,
                        desired: proposal,
                    },
                    ctx.config.downscale_stabilization,
                    now,
                );
                conditions.set(able);
                conditions.set(limited);
                n
            }
        }
    };
    let rescale = desired != current && !(current == 0 && min != 0);
    if rescale {
        if let Err(e) = update_scale(&ctx, &scale, desired).await {
            ctx.events.warning(
                &reference,
                "FailedRescale",
                format!("New size: {desired}; reason: {reason}; error: {e}"),
            );
            conditions.set((
                "AbleToScale",
                "False",
                "FailedUpdateScale",
                format!("the HPA controller was unable to update the target scale: {e}"),
            ));
            let status = HorizontalPodAutoscalerStatus {
                current_replicas: Some(current),
                current_metrics: Some(statuses).filter(|s| !s.is_empty()),
                conditions: Some(conditions.list),
                ..old_status.clone()
            };
            write_status(&ctx.client, &hpa, status).await?;
            return Ok(requeue);
        }
        conditions.set((
            "AbleToScale",
            "True",
            "SucceededRescale",
            format!("the HPA controller was able to update the target scale to {desired}"),
        ));
        ctx.events.normal(
            &reference,
            "SuccessfulRescale",
            format!("New size: {desired}; reason: {reason}"),
        );
        tracing::info!(hpa = %hkey, from = current, to = desired, %reason, "rescaled");
        ctx.histories
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(hkey)
            .or_default()
            .store_scale_event(spec.behavior.as_ref(), current, desired, now);
    }
    let status = HorizontalPodAutoscalerStatus {
        current_replicas: Some(current),
        desired_replicas: if rescale { desired } else { current },
        current_metrics: Some(statuses).filter(|s| !s.is_empty()),
        conditions: Some(conditions.list),
        last_scale_time: if rescale {
            Some(Time(now))
        } else {
            old_status.last_scale_time.clone()
        },
        observed_generation: hpa.meta().generation,
    };
    write_status(&ctx.client, &hpa, status).await?;
    Ok(requeue)
}

/// `PUT …/horizontalpodautoscalers/<name>/status` when the status changed.
async fn write_status(
    client: &kube::Client,
    hpa: &Hpa,
    status: HorizontalPodAutoscalerStatus,
) -> Result<(), Error> {
    if hpa.status.as_ref() == Some(&status) {
        return Ok(());
    }
    let ns = hpa.namespace().unwrap_or_default();
    let name = hpa.name_any();
    let mut updated = hpa.clone();
    updated.status = Some(status);
    let api: Api<Hpa> = Api::namespaced(client.clone(), &ns);
    match api
        .replace_status(&name, &PostParams::default(), &updated)
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) if is_conflict(&e) => Err(Error::Pending(format!("hpa {ns}/{name}: conflict"))),
        Err(e) => Err(Error::api("update status of", format!("hpa {ns}/{name}"))(
            e,
        )),
    }
}
