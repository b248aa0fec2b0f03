//! Limits on requests and CORS, as layers around the router, plus the publish
//! rate limiter the publish handler asks. Connection limits are counted where connections
//! are accepted (`server::accept`); the channels per connection where streams are added.
//!
//! Every refusal is an ErrorInfo with its own status (docs/LIMITS.md) and is counted in
//! `streamgate_limit_refusals_total`.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tower_http::cors::{AllowOrigin, CorsLayer};

use super::ApiError;
use super::request_body::{BodyLimits, read_whole};
use crate::config::Config;
use crate::metrics::Limit;
use crate::wire::envelope::{ErrorInfo, codes};

/// How long browsers may cache a preflight answer.
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(600);
/// How often (ms) the rate limiter forgets publishers whose bucket has refilled.
const FORGET_EVERY_MS: u64 = 60_000;

/// Wraps `app` in the request limits and, when `[http] cors_origins` is set, CORS.
///
/// Routed endpoints get their body whole, read within its limit (`request_body`); the
/// fallback (passthrough relays, ad-hoc polls) reads none itself, and a passthrough relay
/// streams its body on. CORS is outermost, so a refusal carries the CORS headers a browser
/// needs to read it.
pub fn apply(app: Router, config: &Config) -> Router {
    let max_head = config.limits.max_header_bytes;
    let bodies = BodyLimits::new(config);
    let app = app
        // The body an extractor sees was read whole within its limit already.
        .route_layer(DefaultBodyLimit::disable())
        .route_layer(middleware::from_fn_with_state(bodies, read_whole))
        .layer(middleware::from_fn_with_state(max_head, head_size));
    let origins = &config.http.cors_origins;
    if origins.is_empty() {
        return app;
    }
    let allowed = Allowed::new(origins);
    app.layer(cors(&allowed))
        .layer(middleware::from_fn_with_state(allowed, cors_only_allowed))
}

/// Refuses a request whose head (request line and header fields, as HTTP/1.1 writes them)
/// is larger than `max`.
async fn head_size(State(max): State<usize>, request: Request, next: Next) -> Response {
    let target = request
        .uri()
        .path_and_query()
        .map_or(1, |p| p.as_str().len());
    let line = request.method().as_str().len() + 1 + target + " HTTP/1.1\r\n".len();
    let size = request
        .headers()
        .iter()
        .fold(line + "\r\n".len(), |n, (name, value)| {
            n + name.as_str().len() + ": ".len() + value.len() + "\r\n".len()
        });
    if size <= max {
        return next.run(request).await;
    }
    Limit::HeaderSize.refused();
    ApiError(ErrorInfo::new(
        codes::HEADERS_TOO_LARGE,
        format!(
            "the request head (request line and headers) is {size} bytes; at most {max} are \
             allowed ([limits] max_header_bytes): send fewer or shorter headers"
        ),
    ))
    .into_response()
}

/// The origins `[http] cors_origins` allows.
#[derive(Clone)]
struct Allowed {
    any: bool,
    origins: Vec<HeaderValue>,
}

impl Allowed {
    fn new(origins: &[String]) -> Allowed {
        Allowed {
            any: origins.iter().any(|o| o == "*"),
            // The config checked each is an ASCII origin, so none is dropped here.
            origins: origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o).ok())
                .collect(),
        }
    }

    fn allows(&self, origin: &HeaderValue) -> bool {
        self.any || self.origins.contains(origin)
    }
}

/// Preflight answers and `Access-Control-Allow-Origin` on every response to an allowed
/// origin (`*` when any is allowed, else the origin itself, with `Vary: Origin`). Origins
/// listed by name may send credentials (a Mercure subscriber's cookie, with
/// `EventSource(url, {withCredentials: true})`); `*` never allows them.
fn cors(allowed: &Allowed) -> CorsLayer {
    let (origin, credentials) = if allowed.any {
        (AllowOrigin::any(), false)
    } else {
        (AllowOrigin::list(allowed.origins.iter().cloned()), true)
    };
    CorsLayer::new()
        .allow_origin(origin)
        .allow_credentials(credentials)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            header::CACHE_CONTROL,
            HeaderName::from_static("last-event-id"),
            HeaderName::from_static("x-sd-token"),
        ])
        // A browser shows a script only the safelisted response headers, unless told.
        .expose_headers([header::RETRY_AFTER])
        .max_age(PREFLIGHT_MAX_AGE)
}

/// `CorsLayer` answers every preflight with the allowed methods and headers, whatever the
/// origin, and a passthrough relay's upstream may send CORS headers of its own: a request
/// from an origin that is not allowed (or from no browser page) gets none of them.
async fn cors_only_allowed(
    State(allowed): State<Allowed>,
    request: Request,
    next: Next,
) -> Response {
    let allowed = request
        .headers()
        .get(header::ORIGIN)
        .is_some_and(|origin| allowed.allows(origin));
    let mut response = next.run(request).await;
    if !allowed {
        let headers = response.headers_mut();
        let names: Vec<HeaderName> = headers
            .keys()
            .filter(|name| name.as_str().starts_with("access-control-"))
            .cloned()
            .collect();
        for name in names {
            headers.remove(name);
        }
    }
    response
}

/// Who a publish counts against: a key (or a token's client id), or, for a publisher
/// without a name, its IP address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Publisher {
    Named(String),
    Address(Option<IpAddr>),
}

/// `[limits] publish_rate_per_key`: messages per second per publisher, with a burst.
pub struct PublishRate {
    /// `None`: unlimited.
    limiter: Option<DefaultKeyedRateLimiter<Publisher>>,
    burst: u32,
    started: Instant,
    /// When (ms after `started`) publishers whose bucket refilled were last forgotten.
    forgotten_ms: AtomicU64,
}

impl PublishRate {
    pub fn new(config: &Config) -> PublishRate {
        let limits = &config.limits;
        let rate = NonZeroU32::new(limits.publish_rate_per_key);
        let burst = limits.publish_burst.or(rate);
        PublishRate {
            limiter: rate.zip(burst).map(|(rate, burst)| {
                RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
            }),
            burst: burst.map_or(0, NonZeroU32::get),
            started: Instant::now(),
            forgotten_ms: AtomicU64::new(0),
        }
    }

    /// Takes `messages` from the publisher's allowance, or says when to come back.
    pub fn check(
        &self,
        name: Option<&str>,
        address: Option<IpAddr>,
        messages: usize,
    ) -> Result<(), PublishRefused> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        let Some(n) = NonZeroU32::new(u32::try_from(messages).unwrap_or(u32::MAX)) else {
            return Ok(());
        };
        self.forget_idle(limiter);
        let publisher = match name {
            Some(name) => Publisher::Named(name.to_owned()),
            None => Publisher::Address(address),
        };
        match limiter.check_key_n(&publisher, n) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => {
                Limit::PublishRate.refused();
                Err(PublishRefused::Later(
                    not_until.wait_time_from(limiter.clock().now()),
                ))
            }
            Err(_) => {
                Limit::PublishRate.refused();
                Err(PublishRefused::Never {
                    messages,
                    burst: self.burst,
                })
            }
        }
    }

    /// Drops the state of publishers that are back to a full bucket (those the limiter
    /// cannot tell from new ones), at most once per `FORGET_EVERY_MS`: anonymous publishers
    /// come from ever new addresses.
    fn forget_idle(&self, limiter: &DefaultKeyedRateLimiter<Publisher>) {
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let last = self.forgotten_ms.load(Ordering::Relaxed);
        let due = now.saturating_sub(last) >= FORGET_EVERY_MS;
        if due
            && self
                .forgotten_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

/// A publish over the rate limit.
#[derive(Debug)]
pub enum PublishRefused {
    /// Too fast now: 429, with `Retry-After`.
    Later(Duration),
    /// A batch larger than the burst, which no wait makes fit.
    Never { messages: usize, burst: u32 },
}

impl IntoResponse for PublishRefused {
    fn into_response(self) -> Response {
        match self {
            PublishRefused::Later(wait) => {
                // Whole seconds, rounded up: a client that waits that long gets through.
                let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                let seconds = seconds.max(1);
                let mut response = ApiError(ErrorInfo::new(
                    codes::RATE_LIMITED,
                    format!(
                        "publish rate limit exceeded for this key ([limits] \
                         publish_rate_per_key); retry in {seconds} s"
                    ),
                ))
                .into_response();
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
                response
            }
            PublishRefused::Never { messages, burst } => ApiError(ErrorInfo::bad_request(format!(
                "the batch holds {messages} messages, more than a key may publish at once \
                 ([limits] publish_burst is {burst}); split it into smaller batches"
            )))
            .into_response(),
        }
    }
}
