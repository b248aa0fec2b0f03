//! Changing a live connection: `POST /connections/{id}/subscriptions` adds a channel or a
//! polled API, `DELETE /connections/{id}/subscriptions/{stream}` removes one, and
//! `GET /connections/{id}` lists them. Only the connection's own credentials may do so.
//!
//! When nodes share a bus, a request may land on a node that does not hold the connection:
//! it checks the request as its own (the key, the stream), then asks the node holding the
//! connection to carry it out (`answer` there), and answers the client with what it said.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::query::Query;
use super::{ApiError, AppState, Segments, polls};
use crate::auth::{Operation, Principal};
use crate::bus::redis::{Asked, RedisBus};
use crate::hub::ChannelKind;
use crate::names::validate_name;
use crate::outlet::change::{Change, answer_bytes};
use crate::outlet::journal::Journal;
use crate::outlet::registry::Control;
use crate::outlet::{Start, StreamSpec};
use crate::sources::topic::ApiRef;
use crate::wire::envelope::{ErrorInfo, codes};

/// Other nodes' changes carried out at once at most (see `answer`).
const ANSWERING: usize = 64;
/// How long carrying out another node's change may take: less than it waits.
const ANSWER_WITHIN: std::time::Duration = std::time::Duration::from_millis(1500);

/// The body of an add: a channel (with an optional rewind) or a polled URL with the poll
/// parameters, in the body or in the URL's query (`pollInterval`, `mode`, `select`, and
/// `headers` as `X-Sd-Header`), each in one place.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Add {
    channel: Option<String>,
    rewind: Option<u64>,
    poll: Option<String>,
    #[serde(rename = "pollInterval")]
    poll_interval: Option<u64>,
    mode: Option<String>,
    select: Option<String>,
    /// Headers to send the target, by name.
    headers: Option<BTreeMap<String, String>>,
}

impl Add {
    /// The URL's query with the body's poll parameters added.
    fn poll_query(&self, url: &reqwest::Url) -> Result<Query, ErrorInfo> {
        let mut query = Query::parse(url.query());
        let interval = self.poll_interval.map(|ms| ms.to_string());
        let given = [
            ("pollInterval", interval.as_deref()),
            ("mode", self.mode.as_deref()),
            ("select", self.select.as_deref()),
        ];
        for (key, value) in given {
            let Some(value) = value else { continue };
            if query.get(key).is_some() {
                return Err(ErrorInfo::bad_request(format!(
                    "{key} is given both in the body and in the poll URL; give it once"
                )));
            }
            query.push(key, value);
        }
        for (name, value) in self.headers.iter().flatten() {
            query.push("X-Sd-Header", &format!("{name}: {value}"));
        }
        Ok(query)
    }

    fn has_poll_parameters(&self) -> bool {
        self.poll_interval.is_some()
            || self.mode.is_some()
            || self.select.is_some()
            || self.headers.is_some()
    }
}

pub async fn add(
    State(state): State<AppState>,
    Segments(id): Segments<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let query = Query::parse(query.as_deref());
    let credential = query.credential(&headers)?;
    let principal = state.auth.principal(&credential)?;
    let add: Add = serde_json::from_slice(&body).map_err(|e| {
        ErrorInfo::bad_request(format!(
            "the body must be {{\"channel\": name, \"rewind\"?: n}} or {{\"poll\": url, \
             \"pollInterval\"?: ms, \"mode\"?, \"select\"?, \"headers\"?: {{name: value}}}}: {e}"
        ))
    })?;
    if add.channel.is_some() && add.has_poll_parameters() {
        return Err(ErrorInfo::bad_request(
            "pollInterval, mode, select and headers go with \"poll\", not \"channel\"",
        )
        .into());
    }
    let spec = match (&add.channel, &add.poll) {
        (Some(channel), None) => {
            let channel = channel.clone();
            validate_name(&channel)?;
            principal.check(Operation::Subscribe, &channel)?;
            let start = add.rewind.map_or(Start::Live, Start::Rewind);
            StreamSpec::log(channel, start)
        }
        // A configured API by its gateway path, as `GET /apis/{api}/{path}` takes it.
        (None, Some(poll)) if poll.starts_with("/apis/") => {
            let url = reqwest::Url::parse("http://gateway")
                .and_then(|base| base.join(poll))
                .map_err(|e| ErrorInfo::bad_request(format!("poll is not a path: {e}")))?;
            let poll_query = add.poll_query(&url)?;
            let rest = url.path().trim_start_matches("/apis/");
            let (name, path) = rest.split_once('/').unwrap_or((rest, ""));
            let decode = |part: &str| {
                percent_encoding::percent_decode_str(part)
                    .decode_utf8()
                    .map(|p| p.into_owned())
                    .map_err(|_| ErrorInfo::bad_request("poll: the path is not UTF-8"))
            };
            let api = ApiRef {
                name: decode(name)?,
                path: path
                    .split('/')
                    .map(decode)
                    .collect::<Result<Vec<_>, _>>()?
                    .join("/"),
                query: polls::kept_query(&poll_query),
            };
            principal.check(Operation::Poll, &format!("api:{}", api.name))?;
            polls::api_stream(&state, api, &poll_query, Start::Live)?
        }
        (None, Some(poll)) => {
            let url: reqwest::Url = poll
                .parse()
                .map_err(|e| ErrorInfo::bad_request(format!("poll is not a URL: {e}")))?;
            let poll_query = add.poll_query(&url)?;
            let mut target = url.clone();
            target.set_query(None);
            let target = polls::adhoc_target(&state, target.as_str(), &poll_query)?;
            let interval = state.config.poll.interval_ms;
            // The connection's credential, like a channel added to it.
            principal.check(Operation::Poll, target.as_str())?;
            polls::stream(
                &state,
                target,
                &poll_query,
                Vec::new(),
                interval,
                Start::Live,
            )?
        }
        _ => {
            return Err(
                ErrorInfo::bad_request("give exactly one of \"channel\" and \"poll\"").into(),
            );
        }
    };
    let mut added = change(&state, &id, &principal, Change::Add(Box::new(spec))).await?;
    added["connectionId"] = json!(id);
    Ok((StatusCode::CREATED, Json(added)))
}

pub async fn remove(
    State(state): State<AppState>,
    Segments((id, stream)): Segments<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let credential = Query::parse(query.as_deref()).credential(&headers)?;
    let principal = state.auth.principal(&credential)?;
    change(&state, &id, &principal, Change::Remove(stream)).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list(
    State(state): State<AppState>,
    Segments(id): Segments<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    let credential = Query::parse(query.as_deref()).credential(&headers)?;
    let principal = state.auth.principal(&credential)?;
    let streams = change(&state, &id, &principal, Change::List).await?;
    Ok(Json(json!({ "connectionId": id, "streams": streams })))
}

/// Carries out `change` on connection `id`: here when this node holds it, else on the node
/// that does.
async fn change(
    state: &AppState,
    id: &str,
    principal: &Principal,
    change: Change,
) -> Result<Value, ErrorInfo> {
    match state.connections.control(id, &principal.binding) {
        Ok((control, journal)) => carry_out(state, id, &control, &journal, change).await,
        Err(here) if here.code == codes::NOT_FOUND => {
            match state
                .connections
                .ask_holder(id, &principal.binding, &change)
                .await?
            {
                Some(answer) => answer,
                None => Err(here),
            }
        }
        Err(refused) => Err(refused),
    }
}

/// Carries out `change` on a connection this node holds.
async fn carry_out(
    state: &AppState,
    id: &str,
    control: &mpsc::Sender<Control>,
    journal: &Mutex<Journal>,
    change: Change,
) -> Result<Value, ErrorInfo> {
    let unavailable = |e| ErrorInfo::new(codes::UNAVAILABLE, e);
    // The connection's subscriber, when its streams enter the channels' presence.
    let presence = state.connections.presence(id);
    match change {
        Change::Add(spec) => {
            // Asked for through another node: a configured API's comes without its secrets.
            let spec = Box::new(polls::resolve(state, *spec)?);
            let (name, kind, topic) = (spec.name.clone(), spec.kind, spec.topic.clone());
            let channel = spec.channel.to_string();
            state.hub.prepare(&[&channel]).await.map_err(unavailable)?;
            ask(control, |reply| Control::Add(spec, reply)).await?;
            // After the outlet subscribed, so a stopping poller sees the subscriber.
            if let Some(topic) = topic {
                state.pollers.ensure(&topic);
            }
            if let Some(presence) = presence.filter(|p| p.admits(&channel)) {
                presence.enter(channel).await.map_err(unavailable)?;
            }
            Ok(json!({ "stream": name, "kind": kind_name(kind) }))
        }
        Change::Remove(stream) => {
            ask(control, |reply| Control::Remove(stream.clone(), reply)).await?;
            if let Some(presence) = presence {
                presence.leave(stream).await.map_err(unavailable)?;
            }
            Ok(Value::Null)
        }
        Change::List => {
            let streams: Vec<_> = journal
                .lock()
                .unwrap()
                .open_streams()
                .into_iter()
                .map(|(_, spec)| json!({ "stream": spec.name, "kind": kind_name(spec.kind) }))
                .collect();
            Ok(json!(streams))
        }
    }
}

/// Answers other nodes' changes of the connections this node holds, as they come: a few
/// at a time, each within `ANSWER_WITHIN` (an outlet busy writing, or whose client does
/// not read, takes its changes late), else 503, so the asker hears before it gives up.
pub async fn answer(state: AppState, bus: Arc<RedisBus>, mut asked: mpsc::Receiver<Asked>) {
    let slots = Arc::new(Semaphore::new(ANSWERING));
    while let Some(question) = asked.recv().await {
        let (state, bus) = (state.clone(), Arc::clone(&bus));
        let slot = Arc::clone(&slots).try_acquire_owned();
        tokio::spawn(async move {
            let busy = || {
                ErrorInfo::new(
                    codes::UNAVAILABLE,
                    "the node holding the connection is busy; try again",
                )
            };
            let answer = match (slot, Change::from_bytes(&question.change)) {
                (Err(_), _) => Err(busy()),
                (Ok(_slot), Ok(change)) => {
                    let held = state
                        .connections
                        .control(&question.connection, &question.credential);
                    match held {
                        Ok((control, journal)) => {
                            let connection = &question.connection;
                            let carried = carry_out(&state, connection, &control, &journal, change);
                            tokio::time::timeout(ANSWER_WITHIN, carried)
                                .await
                                .unwrap_or_else(|_| Err(busy()))
                        }
                        Err(e) => Err(e),
                    }
                }
                (Ok(_), Err(e)) => Err(ErrorInfo::bad_request(format!(
                    "a change not understood: {e}"
                ))),
            };
            if let Err(e) = bus.answer(&question, &answer_bytes(&answer)).await {
                tracing::debug!("another node's change was not answered: {e}");
            }
        });
    }
}

fn kind_name(kind: ChannelKind) -> &'static str {
    match kind {
        ChannelKind::Log => "channel",
        ChannelKind::State => "poll",
    }
}

/// Sends a change to the connection's outlet and waits for its answer.
async fn ask(
    control: &tokio::sync::mpsc::Sender<Control>,
    message: impl FnOnce(oneshot::Sender<Result<(), ErrorInfo>>) -> Control,
) -> Result<(), ErrorInfo> {
    let gone = || ErrorInfo::new(codes::NOT_FOUND, "the connection has closed");
    let (reply, answer) = oneshot::channel();
    control.send(message(reply)).await.map_err(|_| gone())?;
    answer.await.map_err(|_| gone())?
}
