//! Publishing: one HTTP request per message, paced to a rate, with bounded concurrency.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{Client, Method, Url};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::args::Settings;
use super::clock;
use super::histogram::Histogram;
use super::marker::{self, RunId, Stamp};

/// Longest a single publish request may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How to publish one message.
pub struct Publisher {
    client: Client,
    url: Url,
    method: Method,
    headers: HeaderMap,
    template: String,
    run: RunId,
    payload_bytes: usize,
    /// Seqs whose request has not finished: the lowest bounds every message's `settled`.
    pending: Mutex<BTreeSet<u64>>,
}

/// Publish outcomes, updated as responses arrive.
#[derive(Default)]
pub struct Published {
    pub accepted: AtomicU64,
    pub failed: AtomicU64,
    /// Unix micros when the first request was sent and when the last response arrived.
    pub first_send_us: AtomicU64,
    pub last_ack_us: AtomicU64,
    /// Request to response of accepted publishes: how long the server kept publishers
    /// waiting while it fanned out.
    pub round_trip: Histogram,
    first_error: Mutex<Option<String>>,
}

impl Published {
    pub fn first_error(&self) -> Option<String> {
        self.first_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn fail(&self, why: String) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first_error.lock().unwrap_or_else(|e| e.into_inner());
        first.get_or_insert(why);
    }
}

/// Pacing and concurrency of a publish run.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    pub messages: u64,
    /// Messages per second; 0 sends as fast as `concurrency` allows.
    pub rate: u32,
    pub concurrency: usize,
}

impl Publisher {
    pub fn new(settings: &Settings) -> Result<Publisher, String> {
        let concurrency = settings.args.publish_concurrency as usize;
        // One pooled keep-alive connection per request in flight; proxies from the
        // environment must not sit between the tool and a local server.
        let mut client = Client::builder()
            .no_proxy()
            .http1_only()
            .pool_max_idle_per_host(concurrency)
            .timeout(REQUEST_TIMEOUT);
        if let Some(tls) = &settings.tls {
            client = client.tls_certs_only([tls.certificate()?]);
        }
        let client = client
            .build()
            .map_err(|e| format!("cannot set up the HTTP client: {e}"))?;
        Ok(Publisher {
            client,
            url: settings.publish_url.clone(),
            method: settings.publish_method.clone(),
            headers: settings.publish_headers.clone(),
            template: settings.args.publish_body.clone(),
            run: settings.run,
            payload_bytes: settings.args.payload_bytes as usize,
            pending: Mutex::default(),
        })
    }

    /// Publishes messages `0..pace.messages`; returns when every request has finished.
    pub async fn run(self: Arc<Self>, pace: Pace, published: Arc<Published>) {
        let in_flight = Arc::new(Semaphore::new(pace.concurrency));
        let mut requests = JoinSet::new();
        let start = Instant::now();
        for seq in 0..pace.messages {
            if pace.rate > 0 {
                let due = start + Duration::from_secs_f64(seq as f64 / f64::from(pace.rate));
                tokio::time::sleep_until(due).await;
            }
            let Ok(permit) = Arc::clone(&in_flight).acquire_owned().await else {
                return;
            };
            self.pending().insert(seq);
            let (publisher, published) = (Arc::clone(&self), Arc::clone(&published));
            requests.spawn(async move {
                publisher.publish_one(seq, &published).await;
                drop(permit);
            });
            while requests.try_join_next().is_some() {}
        }
        while requests.join_next().await.is_some() {}
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, BTreeSet<u64>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn publish_one(&self, seq: u64, published: &Published) {
        let settled = self.pending().first().copied().unwrap_or(seq);
        let sent_us = clock::unix_micros();
        let _ = published.first_send_us.compare_exchange(
            0,
            sent_us,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
        let stamp = Stamp {
            seq,
            settled,
            sent_us,
        };
        let payload = marker::payload(self.run, stamp, self.payload_bytes);
        let body = self.template.replacen("{payload}", &payload, 1);
        let response = self
            .client
            .request(self.method.clone(), self.url.clone())
            .headers(self.headers.clone())
            .body(body)
            .send()
            .await;
        let outcome = match response {
            Ok(response) => {
                let status = response.status();
                // Reading the body to its end returns the connection to the pool.
                let text = response.text().await.unwrap_or_default();
                if status.is_success() {
                    Ok(())
                } else {
                    let text: String = text.chars().take(200).collect();
                    Err(format!("publish answered {status}: {text}"))
                }
            }
            Err(e) => Err(format!("publish request failed: {e}")),
        };
        self.pending().remove(&seq);
        let answered_us = clock::unix_micros();
        match outcome {
            Ok(()) => {
                published.accepted.fetch_add(1, Ordering::Relaxed);
                published
                    .round_trip
                    .record(answered_us.saturating_sub(sent_us));
            }
            Err(why) => published.fail(why),
        }
        published
            .last_ack_us
            .fetch_max(answered_us, Ordering::Relaxed);
    }
}
