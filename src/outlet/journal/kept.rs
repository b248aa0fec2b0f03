//! A journal as the bus keeps it: its streams, entries and base in bytes, and back.
//!
//! Streams are JSON (a polled stream's topic is kept as it was asked for, and made again
//! when read back; a configured API's by its name, path and the client's query, never its
//! URL, headers or channel, which hold the API's secrets: it is made again from the catalog,
//! see `StreamSpec::pending`); entries and the base are fixed-size records, written often.

use std::time::Duration;

use axum::http::{HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};

use super::Entry;
use crate::hub::ChannelKind;
use crate::outlet::{Start, StreamSpec};
use crate::sources::topic::{ApiRef, Topic};

#[derive(Serialize, Deserialize)]
struct KeptSpec {
    name: String,
    channel: String,
    state: bool,
    snapshots_only: bool,
    topic: Option<KeptTopic>,
}

#[derive(Serialize, Deserialize)]
struct KeptTopic {
    requested: String,
    headers: Vec<(String, Vec<u8>)>,
    select: Option<String>,
    interval_ms: u64,
    /// A configured API's stream (then `requested` and `headers` are empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    api: Option<KeptApi>,
}

#[derive(Serialize, Deserialize)]
struct KeptApi {
    name: String,
    path: String,
    query: String,
}

pub(crate) fn spec(spec: &StreamSpec) -> Vec<u8> {
    let api = spec
        .pending
        .as_ref()
        .or(spec.topic.as_ref().and_then(|t| t.api.as_deref()));
    let kept = match api {
        Some(api) => KeptSpec {
            name: spec.name.clone(),
            channel: String::new(),
            state: true,
            snapshots_only: spec.snapshots_only,
            topic: Some(KeptTopic {
                requested: String::new(),
                headers: Vec::new(),
                select: None,
                interval_ms: 0,
                api: Some(KeptApi {
                    name: api.name.clone(),
                    path: api.path.clone(),
                    query: api.query.clone(),
                }),
            }),
        },
        None => KeptSpec {
            name: spec.name.clone(),
            channel: spec.channel.clone(),
            state: spec.kind == ChannelKind::State,
            snapshots_only: spec.snapshots_only,
            topic: spec.topic.as_ref().map(|t| KeptTopic {
                requested: t.requested.to_string(),
                headers: t
                    .headers
                    .iter()
                    .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
                    .collect(),
                select: t.select.clone(),
                interval_ms: t.interval.as_millis() as u64,
                api: None,
            }),
        },
    };
    serde_json::to_vec(&kept).expect("a stream always serializes")
}

pub(crate) fn read_spec(bytes: &[u8]) -> Result<StreamSpec, String> {
    let kept: KeptSpec = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let mut pending = None;
    let topic = match kept.topic {
        None => None,
        Some(KeptTopic { api: Some(api), .. }) => {
            pending = Some(ApiRef {
                name: api.name,
                path: api.path,
                query: api.query,
            });
            None
        }
        Some(t) => {
            let url = t.requested.parse().map_err(|e| format!("{e}"))?;
            let headers = t
                .headers
                .into_iter()
                .map(|(n, v)| {
                    let name = HeaderName::try_from(n).map_err(|e| e.to_string())?;
                    let value = HeaderValue::from_bytes(&v).map_err(|e| e.to_string())?;
                    Ok((name, value))
                })
                .collect::<Result<_, String>>()?;
            let interval = Duration::from_millis(t.interval_ms);
            Some(Topic::new(url, headers, t.select, interval))
        }
    };
    Ok(StreamSpec {
        name: kept.name,
        channel: kept.channel,
        kind: match kept.state {
            true => ChannelKind::State,
            false => ChannelKind::Log,
        },
        // A kept stream is resumed at a journaled position, never started afresh.
        start: Start::Unknown,
        snapshots_only: kept.snapshots_only,
        topic,
        pending,
    })
}

/// Bytes of one packed entry.
const ENTRY_BYTES: usize = 13;

/// A run of consecutive entries, `(number, entry)`, packed, with the last one's number.
pub(super) fn entries(run: &[(u64, Entry)]) -> Option<(u64, Vec<u8>)> {
    let &(last, _) = run.last()?;
    let mut packed = Vec::with_capacity(run.len() * ENTRY_BYTES);
    for &(_, e) in run {
        packed.extend_from_slice(&entry(e));
    }
    Some((last, packed))
}

/// A packed run back, numbered.
pub(super) fn read_entries(last: u64, packed: &[u8]) -> Result<Vec<(u64, Entry)>, String> {
    if !packed.len().is_multiple_of(ENTRY_BYTES) {
        return Err(format!(
            "a run of journal entries of {} bytes",
            packed.len()
        ));
    }
    let count = (packed.len() / ENTRY_BYTES) as u64;
    let first = (last + 1)
        .checked_sub(count)
        .ok_or("a run of journal entries numbered below 0")?;
    packed
        .chunks(ENTRY_BYTES)
        .zip(first..)
        .map(|(bytes, number)| Ok((number, read_entry(bytes)?)))
        .collect()
}

/// An entry: a tag, the stream's index, and a position.
fn entry(entry: Entry) -> Vec<u8> {
    let (tag, stream, position) = match entry {
        Entry::Added {
            stream,
            position: None,
        } => (0, stream, 0),
        Entry::Added {
            stream,
            position: Some(p),
        } => (1, stream, p),
        Entry::Removed { stream } => (2, stream, 0),
        Entry::Delivered { stream, seq } => (3, stream, seq),
    };
    let mut bytes = Vec::with_capacity(13);
    bytes.push(tag);
    bytes.extend_from_slice(&stream.to_le_bytes());
    bytes.extend_from_slice(&position.to_le_bytes());
    bytes
}

fn read_entry(bytes: &[u8]) -> Result<Entry, String> {
    let malformed = || format!("a journal entry of {} bytes is not one", bytes.len());
    let (&tag, rest) = bytes.split_first().ok_or_else(malformed)?;
    let (stream, position) = rest.split_at_checked(4).ok_or_else(malformed)?;
    let stream = u32::from_le_bytes(stream.try_into().map_err(|_| malformed())?);
    let position = u64::from_le_bytes(position.try_into().map_err(|_| malformed())?);
    Ok(match tag {
        0 => Entry::Added {
            stream,
            position: None,
        },
        1 => Entry::Added {
            stream,
            position: Some(position),
        },
        2 => Entry::Removed { stream },
        3 => Entry::Delivered {
            stream,
            seq: position,
        },
        _ => return Err(malformed()),
    })
}

/// The base: per stream, closed (0), open with nothing yet (1), or open at a position (2).
pub(super) fn base(base: &[Option<Option<u64>>]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(base.len() * 9);
    for stream in base {
        let (tag, position) = match stream {
            None => (0, 0),
            Some(None) => (1, 0),
            Some(Some(p)) => (2, *p),
        };
        bytes.push(tag);
        bytes.extend_from_slice(&position.to_le_bytes());
    }
    bytes
}

pub(super) fn read_base(bytes: &[u8]) -> Result<Vec<Option<Option<u64>>>, String> {
    bytes
        .chunks(9)
        .map(|record| {
            let (&tag, position) = record.split_first().expect("chunks are not empty");
            let position = u64::from_le_bytes(
                position
                    .try_into()
                    .map_err(|_| "a journal base is cut short".to_owned())?,
            );
            match tag {
                0 => Ok(None),
                1 => Ok(Some(None)),
                2 => Ok(Some(Some(position))),
                _ => Err(format!("a journal base holds an unknown tag {tag}")),
            }
        })
        .collect()
}
