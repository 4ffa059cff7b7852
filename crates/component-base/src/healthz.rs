//! Named health checks served as `/healthz`, `/livez` and `/readyz`, with
//! upstream's text (`k8s.io/apiserver/pkg/server/healthz`): `ok`, or with
//! `?verbose` one `[+]name ok` / `[-]name failed: reason withheld` line per
//! check and a closing `healthz check passed|failed`; `/healthz/<name>`
//! runs one check; `?exclude=<name>` skips one.

use std::sync::Arc;

type CheckFn = dyn Fn() -> Result<(), String> + Send + Sync;

/// One named check.
#[derive(Clone)]
pub struct Check {
    name: String,
    check: Arc<CheckFn>,
}

impl Check {
    pub fn new(
        name: impl Into<String>,
        check: impl Fn() -> Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        Self {
            name: name.into(),
            check: Arc::new(check),
        }
    }

    /// `ping`: always healthy.
    pub fn ping() -> Self {
        Self::new("ping", || Ok(()))
    }
}

/// A set of checks behind one endpoint (`healthz`, `livez` or `readyz`).
#[derive(Clone, Default)]
pub struct Checks {
    checks: Vec<Check>,
}

/// What an endpoint answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

impl Checks {
    pub fn new(checks: Vec<Check>) -> Self {
        Self { checks }
    }

    pub fn push(&mut self, check: Check) {
        self.checks.push(check);
    }

    /// Answers `/<endpoint>` or `/<endpoint>/<name>` with the query string.
    /// `None` when `name` is no check of this set (a 404).
    pub fn answer(&self, endpoint: &str, name: Option<&str>, query: &str) -> Option<Answer> {
        let params: Vec<(&str, &str)> = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| p.split_once('=').unwrap_or((p, "")))
            .collect();
        if let Some(name) = name {
            let c = self.checks.iter().find(|c| c.name == name)?;
            return Some(match (c.check)() {
                Ok(()) => Answer {
                    status: 200,
                    body: "ok".into(),
                },
                Err(e) => Answer {
                    status: 500,
                    body: format!("internal server error: {e}\n"),
                },
            });
        }
        let verbose = params.iter().any(|(k, _)| *k == "verbose");
        let excluded: Vec<&str> = params
            .iter()
            .filter(|(k, _)| *k == "exclude")
            .map(|(_, v)| *v)
            .collect();
        let mut lines = String::new();
        let mut failed = false;
        for c in &self.checks {
            if excluded.contains(&c.name.as_str()) {
                lines.push_str(&format!("[+]{} excluded: ok\n", c.name));
                continue;
            }
            match (c.check)() {
                Ok(()) => lines.push_str(&format!("[+]{} ok\n", c.name)),
                Err(e) => {
                    failed = true;
                    tracing::info!(endpoint, check = %c.name, reason = %e, "health check failed");
                    lines.push_str(&format!("[-]{} failed: reason withheld\n", c.name));
                }
            }
        }
        Some(if failed {
            Answer {
                status: 500,
                body: format!("{lines}{endpoint} check failed\n"),
            }
        } else if verbose {
            Answer {
                status: 200,
                body: format!("{lines}{endpoint} check passed\n"),
            }
        } else {
            Answer {
                status: 200,
                body: "ok".into(),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[test]
    fn plain_verbose_single_and_failing_like_upstream() {
        let healthy = Arc::new(AtomicBool::new(true));
        let h = healthy.clone();
        let checks = Checks::new(vec![
            Check::ping(),
            Check::new("leaderElection", move || {
                if h.load(Ordering::SeqCst) {
                    Ok(())
                } else {
                    Err("lease not renewed".into())
                }
            }),
        ]);
        let ok = checks.answer("healthz", None, "").unwrap();
        assert_eq!((ok.status, ok.body.as_str()), (200, "ok"));
        let v = checks.answer("healthz", None, "verbose").unwrap();
        assert_eq!(
            v.body,
            "[+]ping ok\n[+]leaderElection ok\nhealthz check passed\n"
        );
        assert!(checks.answer("healthz", Some("nope"), "").is_none());
        healthy.store(false, Ordering::SeqCst);
        let bad = checks.answer("healthz", None, "").unwrap();
        assert_eq!(bad.status, 500);
        assert_eq!(
            bad.body,
            "[+]ping ok\n[-]leaderElection failed: reason withheld\nhealthz check failed\n"
        );
        let one = checks
            .answer("healthz", Some("leaderElection"), "")
            .unwrap();
        assert_eq!(one.status, 500);
        let excl = checks
            .answer("healthz", None, "verbose&exclude=leaderElection")
            .unwrap();
        assert_eq!(excl.status, 200);
        assert!(excl.body.contains("[+]leaderElection excluded: ok"));
    }
}
