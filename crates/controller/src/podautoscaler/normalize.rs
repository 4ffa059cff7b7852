//! From the metrics' proposal to the replica count written (upstream's
//! `normalizeDesiredReplicas` and `normalizeDesiredReplicasWithBehaviors`
//! in `horizontal.go`): stabilization over recent recommendations, then the
//! bounds and the rate limits, each with the condition upstream reports.
//!
//! Without `spec.behavior`: the highest recommendation of the last
//! `--horizontal-pod-autoscaler-downscale-stabilization` wins, growth is at
//! most ×2 (at least to 4), and the count stays within min/max. With it:
//! the lowest recommendation of the scale-up window and the highest of the
//! scale-down window bound the result, and each direction's policies
//! (Pods or Percent per period, the Max, Min or Disabled of them) limit
//! the change against the scale events of their periods.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::autoscaling::v2::{HPAScalingRules, HorizontalPodAutoscalerBehavior};

/// A condition to set: type, status, reason, message.
pub type Condition = (&'static str, &'static str, &'static str, String);

#[derive(Debug, Clone, Copy)]
struct Recommendation {
    at: Timestamp,
    replicas: i32,
}

#[derive(Debug, Clone, Copy)]
struct ScaleEvent {
    at: Timestamp,
    change: i32,
    outdated: bool,
}

/// What one autoscaler remembers between syncs (upstream keeps these maps
/// per HPA key in the controller).
#[derive(Debug, Clone, Default)]
pub struct History {
    recommendations: Vec<Recommendation>,
    scale_up: Vec<ScaleEvent>,
    scale_down: Vec<ScaleEvent>,
}

/// The counts one normalization works with.
#[derive(Debug, Clone, Copy)]
pub struct Counts {
    pub min: i32,
    pub max: i32,
    pub current: i32,
    pub desired: i32,
}

fn ago(now: Timestamp, d: Duration) -> Timestamp {
    jiff::SignedDuration::try_from(d)
        .ok()
        .and_then(|d| now.checked_sub(d).ok())
        .unwrap_or(Timestamp::MIN)
}

fn secs(n: Option<i32>) -> Duration {
    Duration::from_secs(u64::try_from(n.unwrap_or(0)).unwrap_or(0))
}

impl History {
    /// Upstream's `recordInitialRecommendation`.
    pub fn record_initial(&mut self, current: i32, now: Timestamp) {
        if self.recommendations.is_empty() {
            self.recommendations.push(Recommendation {
                at: now,
                replicas: current,
            });
        }
    }

    /// Stores `r`, reusing a slot older than `keep` (upstream's
    /// in-place replacement of one old sample).
    fn record(&mut self, replicas: i32, old: impl Fn(Timestamp) -> bool, now: Timestamp) {
        let r = Recommendation { at: now, replicas };
        match self.recommendations.iter().position(|x| old(x.at)) {
            Some(i) => self.recommendations[i] = r,
            None => self.recommendations.push(r),
        }
    }

    /// Upstream's `stabilizeRecommendation`.
    fn stabilize(&mut self, desired: i32, window: Duration, now: Timestamp) -> i32 {
        let cutoff = ago(now, window);
        let max = self
            .recommendations
            .iter()
            .filter(|r| r.at >= cutoff)
            .map(|r| r.replicas)
            .fold(desired, i32::max);
        self.record(desired, |at| at < cutoff, now);
        max
    }

    /// Upstream's `stabilizeRecommendationWithBehaviors`.
    fn stabilize_with_behavior(
        &mut self,
        c: &Counts,
        up_window: Duration,
        down_window: Duration,
        now: Timestamp,
    ) -> (i32, &'static str, &'static str) {
        let (up_cutoff, down_cutoff) = (ago(now, up_window), ago(now, down_window));
        let mut up = c.desired;
        let mut down = c.desired;
        for r in &self.recommendations {
            if r.at > up_cutoff {
                up = up.min(r.replicas);
            }
            if r.at > down_cutoff {
                down = down.max(r.replicas);
            }
        }
        let recommendation = c.current.max(up).min(down);
        self.record(c.desired, |at| at < up_cutoff && at < down_cutoff, now);
        if c.desired >= c.current {
            (
                recommendation,
                "ScaleUpStabilized",
                "recent recommendations were lower than current one, applying the lowest recent recommendation",
            )
        } else {
            (
                recommendation,
                "ScaleDownStabilized",
                "recent recommendations were higher than current one, applying the highest recent recommendation",
            )
        }
    }

    /// Upstream's `storeScaleEvent` (only with a behavior).
    pub fn store_scale_event(
        &mut self,
        behavior: Option<&HorizontalPodAutoscalerBehavior>,
        previous: i32,
        new: i32,
        now: Timestamp,
    ) {
        let Some(b) = behavior else { return };
        let (events, rules, change) = if new > previous {
            (&mut self.scale_up, b.scale_up.as_ref(), new - previous)
        } else {
            (&mut self.scale_down, b.scale_down.as_ref(), previous - new)
        };
        let longest = rules
            .and_then(|r| r.policies.as_ref())
            .into_iter()
            .flatten()
            .map(|p| p.period_seconds)
            .max()
            .unwrap_or(0);
        let cutoff = ago(now, secs(Some(longest)));
        for e in events.iter_mut() {
            if e.at < cutoff {
                e.outdated = true;
            }
        }
        let e = ScaleEvent {
            at: now,
            change,
            outdated: false,
        };
        match events.iter().position(|e| e.outdated) {
            Some(i) => events[i] = e,
            None => events.push(e),
        }
    }
}

/// Upstream's `getReplicasChangePerPeriod`.
fn change_in_period(period_seconds: i32, events: &[ScaleEvent], now: Timestamp) -> i32 {
    let cutoff = ago(now, secs(Some(period_seconds)));
    events
        .iter()
        .filter(|e| e.at > cutoff)
        .map(|e| e.change)
        .sum()
}

fn select_policy(rules: &HPAScalingRules) -> &str {
    rules.select_policy.as_deref().unwrap_or("Max")
}

/// Upstream's `calculateScaleUpLimitWithScalingRules`.
fn scale_up_limit(
    current: i32,
    events: &[ScaleEvent],
    rules: &HPAScalingRules,
    now: Timestamp,
) -> i32 {
    let policy = select_policy(rules);
    if policy == "Disabled" {
        return current;
    }
    let min = policy == "Min";
    let mut result = if min { i32::MAX } else { i32::MIN };
    for p in rules.policies.iter().flatten() {
        let start = current - change_in_period(p.period_seconds, events, now);
        let proposed = match p.type_.as_str() {
            "Pods" => start.saturating_add(p.value),
            _ => (f64::from(start) * (1.0 + f64::from(p.value) / 100.0)).ceil() as i32,
        };
        result = if min {
            result.min(proposed)
        } else {
            result.max(proposed)
        };
    }
    result
}

/// Upstream's `calculateScaleDownLimitWithBehaviors`.
fn scale_down_limit(
    current: i32,
    events: &[ScaleEvent],
    rules: &HPAScalingRules,
    now: Timestamp,
) -> i32 {
    let policy = select_policy(rules);
    if policy == "Disabled" {
        return current;
    }
    // For scaling down, the smallest change ("Min") is the largest count.
    let min = policy == "Min";
    let mut result = if min { i32::MIN } else { i32::MAX };
    for p in rules.policies.iter().flatten() {
        let start = current + change_in_period(p.period_seconds, events, now);
        let proposed = match p.type_.as_str() {
            "Pods" => start - p.value,
            _ => (f64::from(start) * (1.0 - f64::from(p.value) / 100.0)) as i32,
        };
        result = if min {
            result.max(proposed)
        } else {
            result.min(proposed)
        };
    }
    result
}

const WITHIN_RANGE: (&str, &str) = (
    "DesiredWithinRange",
    "the desired count is within the acceptable range",
);
const TOO_MANY: (&str, &str) = (
    "TooManyReplicas",
    "the desired replica count is more than the maximum replica count",
);
const TOO_FEW: (&str, &str) = (
    "TooFewReplicas",
    "the desired replica count is less than the minimum replica count",
);
const UP_LIMIT: (&str, &str) = (
    "ScaleUpLimit",
    "the desired replica count is increasing faster than the maximum scale rate",
);
const DOWN_LIMIT: (&str, &str) = (
    "ScaleDownLimit",
    "the desired replica count is decreasing faster than the maximum scale rate",
);

/// Upstream's `convertDesiredReplicasWithRules` (no behavior).
fn with_rules(
    current: i32,
    desired: i32,
    min: i32,
    max: i32,
) -> (i32, (&'static str, &'static str)) {
    let up_limit = ((2.0 * f64::from(current)).max(4.0)) as i32;
    let (maximum, limiting) = if max > up_limit {
        (up_limit, UP_LIMIT)
    } else {
        (max, TOO_MANY)
    };
    if desired < min {
        (min, TOO_FEW)
    } else if desired > maximum {
        (maximum, limiting)
    } else {
        (desired, WITHIN_RANGE)
    }
}

/// Upstream's `convertDesiredReplicasWithBehaviorRate`.
fn with_behavior_rate(
    history: &History,
    b: &HorizontalPodAutoscalerBehavior,
    c: &Counts,
    now: Timestamp,
) -> (i32, (&'static str, &'static str)) {
    let default_rules = HPAScalingRules::default();
    if c.desired > c.current {
        let rules = b.scale_up.as_ref().unwrap_or(&default_rules);
        let limit = scale_up_limit(c.current, &history.scale_up, rules, now).max(c.current);
        let (maximum, limiting) = if c.max > limit {
            (limit, UP_LIMIT)
        } else {
            (c.max, TOO_MANY)
        };
        if c.desired > maximum {
            return (maximum, limiting);
        }
    } else if c.desired < c.current {
        let rules = b.scale_down.as_ref().unwrap_or(&default_rules);
        let limit = scale_down_limit(c.current, &history.scale_down, rules, now).min(c.current);
        let (minimum, limiting) = if c.min < limit {
            (limit, DOWN_LIMIT)
        } else {
            (c.min, TOO_FEW)
        };
        if c.desired < minimum {
            return (minimum, limiting);
        }
    }
    (c.desired, WITHIN_RANGE)
}

/// The count to write and the AbleToScale and ScalingLimited conditions.
pub fn normalize(
    history: &mut History,
    behavior: Option<&HorizontalPodAutoscalerBehavior>,
    c: Counts,
    downscale_stabilization: Duration,
    now: Timestamp,
) -> (i32, [Condition; 2]) {
    let (stabilized, able) = match behavior {
        None => {
            let s = history.stabilize(c.desired, downscale_stabilization, now);
            (
                s,
                ("ScaleDownStabilized", "recent recommendations were higher than current one, applying the highest recent recommendation"),
            )
        }
        Some(b) => {
            let up = secs(
                b.scale_up
                    .as_ref()
                    .and_then(|r| r.stabilization_window_seconds),
            );
            let down = b
                .scale_down
                .as_ref()
                .and_then(|r| r.stabilization_window_seconds)
                .map_or(downscale_stabilization, |s| secs(Some(s)));
            let (s, reason, message) = history.stabilize_with_behavior(&c, up, down, now);
            (s, (reason, message))
        }
    };
    let able_to_scale = if stabilized != c.desired {
        ("AbleToScale", "True", able.0, able.1.to_string())
    } else {
        (
            "AbleToScale",
            "True",
            "ReadyForNewScale",
            "recommended size matches current size".to_string(),
        )
    };
    let (desired, (reason, message)) = match behavior {
        None => with_rules(c.current, stabilized, c.min, c.max),
        Some(b) => with_behavior_rate(
            history,
            b,
            &Counts {
                desired: stabilized,
                ..c
            },
            now,
        ),
    };
    let limited = if desired == stabilized {
        "False"
    } else {
        "True"
    };
    (
        desired,
        [
            able_to_scale,
            ("ScalingLimited", limited, reason, message.to_string()),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::autoscaling::v2::HPAScalingPolicy;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + s).unwrap()
    }

    const FIVE_MIN: Duration = Duration::from_secs(300);

    fn counts(current: i32, desired: i32) -> Counts {
        Counts {
            min: 1,
            max: 10,
            current,
            desired,
        }
    }

    #[test]
    fn without_behavior_downscales_wait_and_growth_is_bounded() {
        let mut h = History::default();
        h.record_initial(4, t(0));
        // A lower recommendation within five minutes of 4 keeps 4.
        let (n, [able, limited]) = normalize(&mut h, None, counts(4, 2), FIVE_MIN, t(30));
        assert_eq!(n, 4);
        assert_eq!(able.2, "ScaleDownStabilized");
        assert_eq!(limited.2, "DesiredWithinRange");
        // Once the window passed, the highest recent recommendation (2) wins.
        let (n, _) = normalize(&mut h, None, counts(4, 2), FIVE_MIN, t(400));
        assert_eq!(n, 2);
        // Growth: at most double (at least 4).
        let mut h = History::default();
        let (n, [able, limited]) = normalize(&mut h, None, counts(1, 9), FIVE_MIN, t(0));
        assert_eq!(n, 4);
        assert_eq!(able.2, "ReadyForNewScale");
        assert_eq!((limited.1, limited.2), ("True", "ScaleUpLimit"));
        let (n, [_, limited]) = normalize(
            &mut History::default(),
            None,
            Counts {
                max: 3,
                ..counts(2, 9)
            },
            FIVE_MIN,
            t(0),
        );
        assert_eq!((n, limited.2), (3, "TooManyReplicas"));
        let (n, [_, limited]) = normalize(
            &mut History::default(),
            None,
            Counts {
                min: 2,
                ..counts(2, 1)
            },
            FIVE_MIN,
            t(0),
        );
        assert_eq!((n, limited.2), (2, "TooFewReplicas"));
    }

    fn rules(window: Option<i32>, policies: &[(&str, i32, i32)], select: &str) -> HPAScalingRules {
        HPAScalingRules {
            stabilization_window_seconds: window,
            select_policy: Some(select.into()),
            policies: Some(
                policies
                    .iter()
                    .map(|(ty, v, p)| HPAScalingPolicy {
                        type_: ty.to_string(),
                        value: *v,
                        period_seconds: *p,
                    })
                    .collect(),
            ),
            ..Default::default()
        }
    }

    #[test]
    fn behavior_policies_limit_the_rate() {
        let b = HorizontalPodAutoscalerBehavior {
            scale_up: Some(rules(Some(0), &[("Pods", 2, 60)], "Max")),
            scale_down: Some(rules(Some(0), &[("Percent", 50, 60)], "Max")),
        };
        let mut h = History::default();
        let (n, [_, limited]) = normalize(&mut h, Some(&b), counts(2, 8), FIVE_MIN, t(0));
        assert_eq!((n, limited.2), (4, "ScaleUpLimit"));
        h.store_scale_event(Some(&b), 2, 4, t(0));
        // Within the same minute the two added pods use up the policy.
        let (n, _) = normalize(&mut h, Some(&b), counts(4, 8), FIVE_MIN, t(30));
        assert_eq!(n, 4);
        // After the period, two more.
        let (n, _) = normalize(&mut h, Some(&b), counts(4, 8), FIVE_MIN, t(90));
        assert_eq!(n, 6);
        // Down by at most half.
        let (n, [_, limited]) = normalize(
            &mut History::default(),
            Some(&b),
            counts(8, 1),
            FIVE_MIN,
            t(0),
        );
        assert_eq!((n, limited.2), (4, "ScaleDownLimit"));
        // Disabled scale-down keeps the count.
        let off = HorizontalPodAutoscalerBehavior {
            scale_down: Some(rules(Some(0), &[("Percent", 100, 15)], "Disabled")),
            ..b.clone()
        };
        let (n, _) = normalize(
            &mut History::default(),
            Some(&off),
            counts(8, 1),
            FIVE_MIN,
            t(0),
        );
        assert_eq!(n, 8);
    }

    #[test]
    fn behavior_stabilization_windows() {
        // Scale-down window unset: the controller's five minutes apply.
        let b = HorizontalPodAutoscalerBehavior {
            scale_up: Some(rules(Some(60), &[("Percent", 100, 15)], "Max")),
            scale_down: Some(rules(None, &[("Percent", 100, 15)], "Max")),
        };
        let mut h = History::default();
        h.record_initial(5, t(0));
        let (n, [able, _]) = normalize(&mut h, Some(&b), counts(5, 2), FIVE_MIN, t(10));
        assert_eq!((n, able.2), (5, "ScaleDownStabilized"));
        // Up: the lowest recommendation of the last minute (2, just stored, and 5) caps at 5.
        let (n, [able, _]) = normalize(&mut h, Some(&b), counts(5, 9), FIVE_MIN, t(20));
        assert_eq!((n, able.2), (5, "ScaleUpStabilized"));
        let (n, _) = normalize(&mut h, Some(&b), counts(5, 9), FIVE_MIN, t(100));
        assert_eq!(n, 9);
    }
}
