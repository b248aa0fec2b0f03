//! Why a request to an upstream failed, sorted into what subscribers see in `error` events.

use std::time::Duration;

use rand::Rng;

use super::target::Refusal;

/// Status codes of `error` events for failures that are not an HTTP status.
pub mod status {
    /// The connection failed (refused, reset, DNS).
    pub const CONNECT: u16 = 2000;
    /// TLS failed (untrusted, expired or mismatched certificate).
    pub const TLS: u16 = 2001;
    pub const TIMEOUT: u16 = 2002;
    pub const NOT_JSON: u16 = 2003;
    pub const TOO_LARGE: u16 = 2004;
    /// The target (after DNS or a redirect) is not allowed.
    pub const REFUSED: u16 = 2005;
    /// A relayed upstream ended its event stream (it is reconnected).
    pub const CLOSED: u16 = 2006;
    /// A relayed upstream answered with something other than `text/event-stream`.
    pub const NOT_SSE: u16 = 2007;
    /// The part a poll's `select` pointer names is not in the target's document (yet).
    pub const SELECT_MISSING: u16 = 2008;
    /// The gateway's store could not keep a relayed upstream's events (it is reconnected
    /// after the last event kept).
    pub const NOT_KEPT: u16 = 2009;
}

/// Why a request failed, as subscribers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub status: u16,
    pub cause: &'static str,
    pub message: String,
}

impl Failure {
    /// The upstream answered with a status that is not a success.
    pub fn status(status: reqwest::StatusCode) -> Failure {
        Failure {
            status: status.as_u16(),
            cause: "status",
            message: format!("the target answered {status}"),
        }
    }

    /// What the metrics call it: the status an upstream answered, or the cause.
    pub fn reason(&self) -> std::borrow::Cow<'static, str> {
        match self.cause {
            "status" => self.status.to_string().into(),
            cause => cause.into(),
        }
    }

    /// The `select` pointer matches nothing in the target's document.
    pub fn select_missing(pointer: &str) -> Failure {
        Failure {
            status: status::SELECT_MISSING,
            cause: "select",
            message: format!(
                "the target's document has nothing at {pointer:?} (select); data follows once it does"
            ),
        }
    }

    /// The `data` of the `error` event subscribers get.
    pub fn to_json(&self, session: &str) -> serde_json::Value {
        serde_json::json!({
            "status": self.status,
            "cause": self.cause,
            "message": self.message,
            "timestamp": crate::clock::now_ms(),
            "sessionId": session,
        })
    }
}

/// The wait before the next attempt: `base_ms` while all is well, doubling with each
/// consecutive failure up to `max_ms` (or `base_ms` if that is longer).
pub fn backoff(base_ms: u64, failures: u32, max_ms: u64) -> Duration {
    if failures == 0 {
        return Duration::from_millis(base_ms);
    }
    let backoff = base_ms
        .saturating_mul(1u64 << failures.min(20))
        .min(max_ms.max(base_ms));
    // "Equal jitter": half fixed, half random, so failing sources do not move in step.
    let half = backoff / 2;
    Duration::from_millis(half + rand::rng().random_range(0..=half))
}

impl From<Refusal> for Failure {
    fn from(refusal: Refusal) -> Failure {
        Failure {
            status: status::REFUSED,
            cause: "refused",
            message: refusal.0,
        }
    }
}

/// Sorts a request error into the statuses subscribers see. The message never includes the
/// URL: its query may hold credentials.
pub fn classify(error: reqwest::Error) -> Failure {
    if let Some(refusal) = chain(&error).find_map(|e| e.downcast_ref::<Refusal>()) {
        return refusal.clone().into();
    }
    if let Some(tls) = chain(&error).find_map(|e| e.downcast_ref::<rustls::Error>()) {
        return Failure {
            status: status::TLS,
            cause: "tls",
            message: format!("TLS with the target failed: {tls}"),
        };
    }
    if error.is_timeout() {
        return Failure {
            status: status::TIMEOUT,
            cause: "timeout",
            message: "the target did not answer in time".into(),
        };
    }
    // The innermost cause says what happened ("Connection refused", "dns error: ...").
    let root = chain(&error)
        .last()
        .expect("the chain starts with the error");
    Failure {
        status: status::CONNECT,
        cause: "connect",
        message: format!("cannot reach the target: {root}"),
    }
}

/// Every error in `error`'s chain, looking inside `io::Error`s too (their `source` skips the
/// error they wrap, and connectors nest them).
fn chain<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    let mut next = Some(error);
    std::iter::from_fn(move || {
        let current = next?;
        next = current
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .map(|inner| inner as &(dyn std::error::Error + 'static))
            .or_else(|| current.source());
        Some(current)
    })
}
