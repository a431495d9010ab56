//! The HTTP client the OTLP exporters post with: blocking, one timeout per request, no async
//! runtime.

use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// A blocking HTTP/1.1 client for the OTLP exporter: [`ureq`], with one overall timeout per
/// request and every status code returned as a response (the exporter classifies them).
#[derive(Debug)]
pub(crate) struct UreqClient {
    agent: ureq::Agent,
    /// The last transport error's text (the exporter reports only "network error").
    last_error: Arc<Mutex<Option<String>>>,
}

impl UreqClient {
    pub(crate) fn new(timeout: Duration, last_error: Arc<Mutex<Option<String>>>) -> Self {
        let cfg = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .user_agent(concat!("carina-otel/", env!("CARGO_PKG_VERSION")))
            .build();
        UreqClient {
            agent: ureq::Agent::new_with_config(cfg),
            last_error,
        }
    }
}

/// Largest response body read (the collector's answer is a few bytes).
const MAX_RESPONSE_BYTES: u64 = 4 << 20;

#[async_trait::async_trait]
impl HttpClient for UreqClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let (parts, body) = request.into_parts();
        let sent = self
            .agent
            .run(Request::from_parts(parts, &body[..]))
            .and_then(|response| {
                let (parts, mut body) = response.into_parts();
                let bytes = body.with_config().limit(MAX_RESPONSE_BYTES).read_to_vec()?;
                Ok(Response::from_parts(parts, Bytes::from(bytes)))
            });
        if let Err(e) = &sent {
            // A poisoned lock only means a panic elsewhere; the text is still worth keeping.
            *self
                .last_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(e.to_string());
        }
        Ok(sent?)
    }
}
