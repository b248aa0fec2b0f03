//! The admin API under `/admin/`: the APIs, relays and keys of the catalog
//! (list, read, create, replace, delete), live stats, and its OpenAPI document. Every request
//! needs the `admin` capability on the resource `admin`; until some credential may have it,
//! the admin API is off. What it adds may reach only upstreams the config file allows
//! (see `catalog`).
//!
//! Secrets are shown redacted (`"<redacted>"`): key secrets, the values of injected
//! headers and query parameters, and the query values of a relay's upstream URL. Sending an entry back with a redacted value keeps the
//! stored one, so a client can read, edit and write an entry without knowing its secrets.

mod import;
mod openapi;
mod stats;
mod upstream_query;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

pub use import::asyncapi as import_asyncapi;
pub use openapi::openapi;
pub use stats::stats;

use super::query::Query;
use super::{ApiError, AppState, Segments};
use crate::auth::{ADMIN_RESOURCE, Operation};
use crate::catalog::{Entries, Refused};
use crate::wire::envelope::{ErrorInfo, codes};

/// What stands for a secret in what the admin API shows.
const REDACTED: &str = "<redacted>";

/// The kinds of catalog entries, as they appear in paths.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Apis,
    Relays,
    Keys,
}

impl Kind {
    fn parse(text: &str) -> Result<Kind, ErrorInfo> {
        match text {
            "apis" => Ok(Kind::Apis),
            "relays" => Ok(Kind::Relays),
            "keys" => Ok(Kind::Keys),
            other => Err(ErrorInfo::new(
                codes::NOT_FOUND,
                format!("no admin collection {other:?}; there are apis, relays and keys"),
            )),
        }
    }

    fn list(self, entries: &Entries) -> Vec<Value> {
        let list = match self {
            Kind::Apis => serde_json::to_value(&entries.apis),
            Kind::Relays => serde_json::to_value(&entries.relays),
            Kind::Keys => serde_json::to_value(&entries.keys),
        };
        match list.expect("catalog entries serialize") {
            Value::Array(items) => items,
            _ => unreachable!("a Vec serializes as an array"),
        }
    }

    fn set(self, entries: &mut Entries, list: Vec<Value>) -> Result<(), String> {
        let list = Value::Array(list);
        let why = |e: serde_json::Error| format!("the entry is not valid: {e}");
        match self {
            Kind::Apis => entries.apis = serde_json::from_value(list).map_err(why)?,
            Kind::Relays => entries.relays = serde_json::from_value(list).map_err(why)?,
            Kind::Keys => entries.keys = serde_json::from_value(list).map_err(why)?,
        }
        Ok(())
    }

    /// The members of an entry that hold secrets: a string, or an object of strings.
    fn secret_members(self) -> &'static [&'static str] {
        match self {
            Kind::Apis => &["headers", "query"],
            Kind::Relays => &["headers"],
            Kind::Keys => &["secret"],
        }
    }

    fn redact(self, mut entry: Value) -> Value {
        for member in self.secret_members() {
            match entry.get_mut(*member) {
                Some(Value::Object(values)) => {
                    for value in values.values_mut() {
                        *value = Value::String(REDACTED.into());
                    }
                }
                Some(value @ Value::String(_)) => *value = Value::String(REDACTED.into()),
                _ => {}
            }
        }
        if let Kind::Relays = self
            && let Some(Value::String(upstream)) = entry.get_mut("upstream")
            && let Some(redacted) = upstream_query::redact(upstream)
        {
            *upstream = redacted;
        }
        entry
    }

    /// The member naming where the secrets are sent.
    fn destination(self) -> Option<&'static str> {
        match self {
            Kind::Apis => Some("base_url"),
            Kind::Relays => Some("upstream"),
            Kind::Keys => None,
        }
    }

    /// Puts the stored secrets back where `entry` has the redacted placeholder. Not when the
    /// entry now points elsewhere: a stored secret must not be sent to a new host by
    /// someone who never saw it.
    fn unredact(self, entry: &mut Value, stored: Option<&Value>) -> Result<(), String> {
        if let Kind::Relays = self
            && let Some(Value::String(upstream)) = entry.get_mut("upstream")
        {
            let old = stored
                .and_then(|s| s.get("upstream"))
                .and_then(Value::as_str);
            if let Some(restored) = upstream_query::unredact(upstream, old)? {
                *upstream = restored;
            }
        }
        let moved = self.destination().is_some_and(|member| {
            stored.is_some_and(|stored| stored.get(member) != entry.get(member))
        });
        let stored = if moved { None } else { stored };
        for member in self.secret_members() {
            let old = stored.and_then(|s| s.get(*member));
            match entry.get_mut(*member) {
                Some(Value::Object(values)) => {
                    for (name, value) in values.iter_mut() {
                        if value == REDACTED {
                            *value = old
                                .and_then(|o| o.get(name))
                                .cloned()
                                .ok_or_else(|| missing(member))?;
                        }
                    }
                }
                Some(value) if value == REDACTED => {
                    *value = old.cloned().ok_or_else(|| missing(member))?;
                }
                _ => {}
            }
        }
        Ok(())
    }
}

fn missing(member: &str) -> String {
    format!(
        "{member}: \"{REDACTED}\" stands for a stored value, and there is none for this \
         entry and destination; give the value"
    )
}

fn name_of(entry: &Value) -> Option<&str> {
    entry.get("name").and_then(Value::as_str)
}

/// A request whose credential has the admin capability: taking it as an argument makes a
/// handler admin-only.
pub struct Admitted;

impl FromRequestParts<AppState> for Admitted {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        // Off by default: with no keys every other request is allowed, and an open admin API
        // would let anyone add an API or relay.
        if !state.auth.admin_enabled() {
            return Err(ErrorInfo::new(
                codes::FORBIDDEN,
                "the admin API is off: turn it on by configuring a [[key]] with the admin \
                 capability, e.g. capabilities = { admin = [\"admin\"] }, or token keys \
                 ([auth] public_key_files or jwks_file)",
            )
            .into());
        }
        let credential = Query::parse(parts.uri.query()).credential(&parts.headers)?;
        state
            .auth
            .authorize(&credential, Operation::Admin, ADMIN_RESOURCE)?;
        Ok(Admitted)
    }
}

pub async fn list(
    State(state): State<AppState>,
    Segments(kind): Segments<String>,
    _: Admitted,
) -> Result<Response, ApiError> {
    let kind = Kind::parse(&kind)?;
    let items: Vec<Value> = kind
        .list(&state.catalog.entries())
        .into_iter()
        .map(|e| kind.redact(e))
        .collect();
    Ok(Json(items).into_response())
}

pub async fn get(
    State(state): State<AppState>,
    Segments((kind, name)): Segments<(String, String)>,
    _: Admitted,
) -> Result<Response, ApiError> {
    let kind = Kind::parse(&kind)?;
    let entry = kind
        .list(&state.catalog.entries())
        .into_iter()
        .find(|e| name_of(e) == Some(name.as_str()))
        .ok_or_else(|| not_found(kind, &name))?;
    Ok(Json(kind.redact(entry)).into_response())
}

/// `POST /admin/{kind}`: adds an entry; its name must be new.
pub async fn create(
    State(state): State<AppState>,
    Segments(kind): Segments<String>,
    _: Admitted,
    body: Bytes,
) -> Result<Response, ApiError> {
    let kind = Kind::parse(&kind)?;
    let mut entry = entry_from(&body)?;
    if name_of(&entry).is_none() {
        return Err(ErrorInfo::bad_request("the entry needs a \"name\"").into());
    }
    kind.unredact(&mut entry, None)
        .map_err(ErrorInfo::bad_request)?;
    add(&state, kind, vec![entry.clone()]).await?;
    Ok((StatusCode::CREATED, Json(kind.redact(entry))).into_response())
}

/// Adds `entries` in one change: all of them, or none when one's name is taken (409).
async fn add(state: &AppState, kind: Kind, entries: Vec<Value>) -> Result<(), ErrorInfo> {
    let mut conflict = false;
    change(state, kind, |list| {
        for entry in entries {
            let name = name_of(&entry).unwrap_or_default();
            if list.iter().any(|e| name_of(e) == Some(name)) {
                conflict = true;
                return Err(format!("{name:?} exists; PUT replaces it"));
            }
            list.push(entry);
        }
        Ok(())
    })
    .await
    .map_err(|e| match conflict {
        true => ErrorInfo::new(codes::CONFLICT, e.message),
        false => e,
    })
}

/// `PUT /admin/{kind}/{name}`: creates or replaces the entry.
pub async fn put(
    State(state): State<AppState>,
    Segments((kind, name)): Segments<(String, String)>,
    _: Admitted,
    body: Bytes,
) -> Result<Response, ApiError> {
    let kind = Kind::parse(&kind)?;
    let mut entry = entry_from(&body)?;
    match name_of(&entry) {
        None => {
            entry["name"] = Value::String(name.clone());
        }
        Some(given) if given != name => {
            return Err(ErrorInfo::bad_request(format!(
                "the entry's name {given:?} differs from the path's {name:?}"
            ))
            .into());
        }
        Some(_) => {}
    }
    let mut created = false;
    let mut stored_entry = entry.clone();
    change(&state, kind, |list| {
        let position = list.iter().position(|e| name_of(e) == Some(name.as_str()));
        kind.unredact(&mut stored_entry, position.map(|i| &list[i]))?;
        match position {
            Some(i) => list[i] = stored_entry.clone(),
            None => {
                created = true;
                list.push(stored_entry.clone());
            }
        }
        Ok(())
    })
    .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(kind.redact(stored_entry))).into_response())
}

pub async fn delete(
    State(state): State<AppState>,
    Segments((kind, name)): Segments<(String, String)>,
    _: Admitted,
) -> Result<Response, ApiError> {
    let kind = Kind::parse(&kind)?;
    let mut absent = false;
    change(&state, kind, |list| {
        let before = list.len();
        list.retain(|e| name_of(e) != Some(name.as_str()));
        absent = list.len() == before;
        match absent {
            true => Err(String::new()),
            false => Ok(()),
        }
    })
    .await
    .map_err(|e| match absent {
        true => not_found(kind, &name),
        false => e,
    })?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Applies a change to one kind's list through the catalog.
async fn change(
    state: &AppState,
    kind: Kind,
    edit: impl FnOnce(&mut Vec<Value>) -> Result<(), String>,
) -> Result<(), ErrorInfo> {
    state
        .catalog
        .change(&state.auth, state.upstream.policy(), |entries| {
            let mut list = kind.list(entries);
            edit(&mut list)?;
            kind.set(entries, list)
        })
        .await
        .map_err(|refused| match refused {
            Refused::Invalid(why) => ErrorInfo::bad_request(why),
            Refused::Conflict(why) => ErrorInfo::new(codes::CONFLICT, why),
            Refused::Store(why) => {
                tracing::error!("admin change not stored: {why}");
                ErrorInfo::new(
                    codes::INTERNAL,
                    format!("the change was not stored, so it was not made: {why}"),
                )
            }
        })
}

fn entry_from(body: &[u8]) -> Result<Value, ErrorInfo> {
    let entry: Value = serde_json::from_slice(body)
        .map_err(|e| ErrorInfo::bad_request(format!("the body is not JSON: {e}")))?;
    if !entry.is_object() {
        return Err(ErrorInfo::bad_request("the body must be a JSON object"));
    }
    Ok(entry)
}

fn not_found(kind: Kind, name: &str) -> ErrorInfo {
    let kind = match kind {
        Kind::Apis => "API",
        Kind::Relays => "relay",
        Kind::Keys => "key",
    };
    ErrorInfo::new(codes::NOT_FOUND, format!("no {kind} named {name:?}"))
}
