//! Reading the parameters of `/sse` and `/event-stream` (Ably's SSE API).

use axum::http::HeaderMap;

use super::query::Query;
use crate::auth::Credential;
use crate::hub::{cursor, presence};
use crate::names::validate_name;
use crate::outlet::Start;
use crate::wire::envelope::ErrorInfo;

/// A validated streaming request.
#[derive(Debug)]
pub struct StreamParams {
    /// Sorted, unique channel names with where each starts: the order of cursor positions.
    pub channels: Vec<(String, Start)>,
    pub enveloped: bool,
    pub heartbeats: bool,
    pub credential: Credential,
    /// `dynamic=true`: announce the connection id and accept stream changes.
    pub dynamic: bool,
    /// A server-kept cursor to resume (from `lastEvent` or `Last-Event-ID`); the caller
    /// restores the connection's streams from its journal.
    pub token: Option<cursor::Token>,
    /// The resume id came from `lastEvent` (a request error if it cannot be honoured), not
    /// from a browser's header (then a gap notice).
    pub token_from_query: bool,
}

/// The channel a stream of `channels` is about: a presence stream's, or itself (what the
/// client must be allowed to subscribe to).
pub fn subject(stream: &str) -> &str {
    presence::channel_of(stream).unwrap_or(stream)
}

impl StreamParams {
    pub fn parse(
        query: &Query,
        headers: &HeaderMap,
        max_streams: usize,
    ) -> Result<Self, ErrorInfo> {
        let credential = query.credential(headers)?;
        let dynamic = query.flag("dynamic", false)?;
        // The header wins when it is a token, as in `resume_cursor`.
        let from_header = last_event_id(headers)
            .flatten()
            .and_then(cursor::parse_token);
        let token = match (query.get("lastEvent"), from_header) {
            (_, Some(token)) => Some((token, false)),
            (Some(text), None) => cursor::parse_token(text).map(|t| (t, true)),
            (None, None) => None,
        };
        let list = query
            .text("channels")?
            .or(query.text("channel")?)
            .filter(|l| !l.is_empty());
        // A dynamic connection may start empty; a resumed one gets its streams back.
        let list = match list {
            Some(list) => list,
            None if dynamic || token.is_some() => "",
            None => {
                return Err(ErrorInfo::bad_request(
                    "no channels given; pass channels=name[,name...] (URL-encoded names), \
                     or dynamic=true to add streams later",
                ));
            }
        };
        let separator = query.text("separator")?.unwrap_or(",");
        if separator.is_empty() {
            return Err(ErrorInfo::bad_request("separator must not be empty"));
        }
        let rewind = query.get("rewind").map(parse_rewind).transpose()?;
        let presence = query.flag("presence", false)?;
        let asked = list
            .split(separator)
            .filter(|_| !list.is_empty())
            .map(|item| parse_channel(item, rewind, presence))
            .collect::<Result<Vec<_>, _>>()?;
        // `presence=true`, or a channel's `[?presence]`: its presence stream too, from the
        // same start.
        let mut channels = Vec::with_capacity(asked.len());
        for (name, start, presence) in asked {
            if presence {
                channels.push((presence::stream_of(&name), start));
            }
            channels.push((name, start));
        }
        channels.sort_by(|a, b| a.0.cmp(&b.0));
        channels.dedup_by(|a, b| a.0 == b.0);
        if channels.len() > max_streams {
            crate::metrics::Limit::StreamsPerConnection.refused();
            return Err(ErrorInfo::bad_request(format!(
                "{} channels on one connection; at most {max_streams} are allowed \
                 ([limits] max_streams_per_connection)",
                channels.len()
            )));
        }

        // Resuming wins over rewinding: the client has already seen what rewind would send.
        if token.is_some() {
            // Resumed from the connection's journal by the caller.
        } else if let Some(parsed) = resume_cursor(query, headers, channels.len())? {
            resume(&mut channels, parsed);
        }
        let (token, token_from_query) = token.map_or((None, false), |(t, q)| (Some(t), q));
        Ok(StreamParams {
            channels,
            enveloped: query.flag("enveloped", true)?,
            heartbeats: query.flag("heartbeats", false)?,
            credential,
            dynamic,
            token,
            token_from_query,
        })
    }
}

/// Where a request for `streams` streams resumes: the `Last-Event-ID` header when it is an
/// id this server issued for that many streams, else `lastEvent` (a request error when it
/// is not such an id), else the header as an unknown position (an id we cannot read as one
/// of ours, browsers sending raw bytes: `Some(None)`), else nowhere (`None`).
///
/// The header wins: a browser sends it when its `EventSource` reconnects by itself, with the
/// last id it got, newer than a `lastEvent` its page put in the URL when it opened it.
pub(super) fn resume_cursor(
    query: &Query,
    headers: &HeaderMap,
    streams: usize,
) -> Result<Option<Option<cursor::Cursor>>, ErrorInfo> {
    let header = last_event_id(headers);
    let ours = header
        .flatten()
        .and_then(cursor::parse)
        .filter(|c| c.positions.len() == streams);
    if ours.is_some() {
        return Ok(Some(ours));
    }
    if let Some(text) = query.get("lastEvent") {
        let parsed = cursor::parse(text).ok_or_else(|| not_an_event_id(text))?;
        if parsed.positions.len() != streams {
            return Err(ErrorInfo::bad_request(format!(
                "lastEvent holds {} positions but the request names {streams} streams; resume \
                 with the same streams the id came from",
                parsed.positions.len(),
            )));
        }
        return Ok(Some(Some(parsed)));
    }
    Ok(header.map(|_| None))
}

/// The `Last-Event-ID` header, if not empty: its text, or `None` when it is not UTF-8
/// (browsers send an id back as the raw bytes they got).
fn last_event_id(headers: &HeaderMap) -> Option<Option<&str>> {
    let header = headers.get("last-event-id").filter(|h| !h.is_empty())?;
    Some(std::str::from_utf8(header.as_bytes()).ok())
}

/// The error for a `lastEvent` that is no event id of this server's. A message's id
/// (`{epoch}:{n}`, in `messageIds` and a message's `id`) is what clients mistake for one:
/// said so, with where the event id is.
fn not_an_event_id(text: &str) -> ErrorInfo {
    let hint = match text.split_once(':') {
        Some((epoch, n)) if !epoch.is_empty() && n.parse::<u64>().is_ok() => {
            " It looks like a message id (the `id` of a message, as publishing answers it in \
             `messageIds`); lastEvent takes an event id: the SSE `id:` line of an event \
             (`lastEventId` in a browser), or the `id` of an NDJSON line, e.g. `k3x-41`."
        }
        _ => "",
    };
    ErrorInfo::bad_request(format!(
        "lastEvent {text:?} is not an event id this server issued; resume with the id of the \
         last event received.{hint}"
    ))
}

/// Sets every channel's start from a cursor of the right length, or to `Unknown`.
fn resume(channels: &mut [(String, Start)], parsed: Option<cursor::Cursor>) {
    match parsed {
        Some(c) => {
            for ((_, start), p) in channels.iter_mut().zip(c.positions) {
                *start = Start::After(p);
            }
        }
        None => {
            for (_, start) in channels.iter_mut() {
                *start = Start::Unknown;
            }
        }
    }
}

/// One item of the channel list: `name`, or `[?params]name` with `rewind=N` and
/// `presence` (or `presence=true|false`) joined by `&`: the channel, where it starts, and
/// whether its presence events come too (`rewind` and `presence` are the request's unless
/// the qualifier says).
fn parse_channel(
    item: &str,
    rewind: Option<Start>,
    presence: bool,
) -> Result<(String, Start, bool), ErrorInfo> {
    let (mut start, mut presence) = (rewind.unwrap_or(Start::Live), presence);
    let name = match item.strip_prefix("[?") {
        Some(rest) => {
            let (params, name) = rest.split_once(']').ok_or_else(|| {
                ErrorInfo::bad_request(format!("channel qualifier in {item:?} is not closed"))
            })?;
            for (key, value) in Query::parse(Some(params)).pairs() {
                match (key.as_str(), value.as_str()) {
                    ("rewind", value) => start = parse_rewind(value)?,
                    ("presence", "" | "true") => presence = true,
                    ("presence", "false") => presence = false,
                    _ => {
                        return Err(ErrorInfo::bad_request(format!(
                            "unsupported channel parameters in {item:?}: [?rewind=N&presence]name \
                             takes rewind (a count or an age) and presence (true or false)"
                        )));
                    }
                }
            }
            name
        }
        None => item,
    };
    validate_name(name)?;
    Ok((name.to_owned(), start, presence))
}

/// `rewind` is a count of messages (`10`) or an age (`30s`, `2m`, `1h`).
pub(super) fn parse_rewind(value: &str) -> Result<Start, ErrorInfo> {
    let bad = || {
        ErrorInfo::bad_request(format!(
            "rewind must be a number of messages (e.g. 10) or an age (e.g. 30s, 2m), not {value:?}"
        ))
    };
    if let Ok(n) = value.parse::<u64>() {
        return Ok(Start::Rewind(n));
    }
    let split = value.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (digits, unit) = value.split_at(split);
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let unit_ms = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(bad()),
    };
    Ok(Start::RewindMs(n.saturating_mul(unit_ms)))
}
