//! gRPC probes (upstream's `pkg/probe/grpc`): the gRPC health checking
//! protocol's `grpc.health.v1.Health/Check` for the probe's `service` at the
//! pod's IP and port, over plaintext HTTP/2 (upstream supports no
//! credentials either), bounded by the probe's timeout; `SERVING` is
//! success, anything else a failure with upstream's message.

use std::time::Duration;

use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

/// One check of `service` at `host:port`.
pub async fn probe(host: &str, port: u16, service: &str, timeout: Duration) -> Result<(), String> {
    let addr = match host.parse::<std::net::Ipv6Addr>() {
        Ok(v6) => format!("[{v6}]:{port}"),
        Err(_) => format!("{host}:{port}"),
    };
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| format!("error: failed to connect service at {addr:?}: {e}"))?
        .user_agent("kube-probe/1.33")
        .map_err(|e| e.to_string())?
        .connect_timeout(timeout)
        .timeout(timeout);
    // Like grpc-go's blocking dial, a refused connection is tried again
    // until the timeout.
    let connect = async {
        loop {
            match endpoint.connect().await {
                Ok(c) => return c,
                Err(e) => {
                    tracing::debug!(%addr, error = %e, "gRPC probe dial");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    };
    let Ok(channel) = tokio::time::timeout(timeout, connect).await else {
        return Err(format!(
            "timeout: failed to connect service {addr:?} within {}: context deadline exceeded",
            go_seconds(timeout)
        ));
    };
    let mut client = HealthClient::new(channel);
    let check = client.check(HealthCheckRequest {
        service: service.to_string(),
    });
    let resp = match tokio::time::timeout(timeout, check).await {
        Ok(Ok(r)) => r.into_inner(),
        Ok(Err(s)) if s.code() == tonic::Code::Unimplemented => {
            return Err(format!(
                "error: this server does not implement the grpc health protocol (grpc.health.v1.Health): {}",
                s.message()
            ))
        }
        Ok(Err(s)) if s.code() == tonic::Code::DeadlineExceeded => {
            return Err(format!(
                "timeout: health rpc did not complete within {}",
                go_seconds(timeout)
            ))
        }
        Ok(Err(s)) => {
            return Err(format!(
                "error: health rpc probe failed: rpc error: code = {:?} desc = {}",
                s.code(),
                s.message()
            ))
        }
        Err(_) => {
            return Err(format!(
                "timeout: health rpc did not complete within {}",
                go_seconds(timeout)
            ))
        }
    };
    if resp.status == ServingStatus::Serving as i32 {
        Ok(())
    } else {
        let name = ServingStatus::try_from(resp.status)
            .map(|s| s.as_str_name())
            .unwrap_or("UNKNOWN");
        Err(format!("service unhealthy (responded with {name:?})"))
    }
}

/// A duration as Go prints it (`300ms`, `1s`, `1.5s`).
fn go_seconds(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic_health::server::health_reporter;

    async fn server() -> (u16, tonic_health::server::HealthReporter) {
        let (reporter, service) = health_reporter();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
                .await
                .unwrap();
        });
        (port, reporter)
    }

    #[tokio::test]
    async fn serving_services_pass_and_others_fail_like_upstream() {
        let (port, reporter) = server().await;
        let t = Duration::from_secs(2);
        // The empty service is the server as a whole: SERVING by default.
        assert_eq!(probe("127.0.0.1", port, "", t).await, Ok(()));
        reporter
            .set_service_status("db", tonic_health::ServingStatus::NotServing)
            .await;
        assert_eq!(
            probe("127.0.0.1", port, "db", t).await.unwrap_err(),
            "service unhealthy (responded with \"NOT_SERVING\")"
        );
        reporter
            .set_service_status("db", tonic_health::ServingStatus::Serving)
            .await;
        assert_eq!(probe("127.0.0.1", port, "db", t).await, Ok(()));
        let unknown = probe("127.0.0.1", port, "nope", t).await.unwrap_err();
        assert!(
            unknown
                .starts_with("error: health rpc probe failed: rpc error: code = NotFound desc = "),
            "{unknown}"
        );
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let refused = probe("127.0.0.1", closed, "", Duration::from_millis(300))
            .await
            .unwrap_err();
        assert_eq!(
            refused,
            format!("timeout: failed to connect service \"127.0.0.1:{closed}\" within 300ms: context deadline exceeded")
        );
    }
}
