//! An AsyncAPI 2.x or 3.0 document read as relays (`streamgate import asyncapi`,
//! `POST /admin/import/asyncapi`), as WSO2 makes an SSE API of one.
//!
//! A document this gateway wrote (`GET /asyncapi.json`) says which relay each of its channels
//! is (`x-streamgate-relay`: the relay's config without its secrets), and reads back as those
//! relays. Any other document: each HTTP server is an upstream SSE server, a relay named
//! after the server's key, at `/{name}`, and each channel's address one of its topics (an
//! address that ends in a parameter, `/prices/{symbol}`, is the topic `prices/*`). What does
//! not map (another protocol, a parameter inside an address, a channel of no server) is named
//! in `skipped`, with why.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::RelayConfig;

/// The member of a channel of our own documents that holds its relay.
pub const EXTENSION: &str = "x-streamgate-relay";

/// What a document makes.
#[derive(Debug)]
pub struct Imported {
    pub relays: Vec<RelayConfig>,
    /// What did not map, and why.
    pub skipped: Vec<String>,
}

/// The relays `document` describes; an error when it is not an AsyncAPI 2.x or 3.0 document,
/// or one of the relays it makes is not valid.
pub fn relays(document: &Value) -> Result<Imported, String> {
    let version = document["asyncapi"].as_str().ok_or(
        "not an AsyncAPI document: it has no \"asyncapi\" member saying its version (2.x or 3.0)",
    )?;
    let three = match version.split('.').next() {
        Some("2") => false,
        Some("3") => true,
        _ => return Err(format!("AsyncAPI {version} is not read: 2.x and 3.0 are")),
    };
    let channels = document["channels"]
        .as_object()
        .ok_or("the document has no \"channels\" to make relays of")?;
    let ours = channels.values().any(|c| c.get(EXTENSION).is_some());
    let imported = match ours {
        true => own(channels)?,
        false => foreign(document, channels, three),
    };
    // A relay that would not be valid is skipped, and said why; each keeps a name of its own.
    let Imported {
        relays,
        mut skipped,
    } = imported;
    let mut valid: Vec<RelayConfig> = Vec::new();
    for mut relay in relays {
        let base = relay.name.clone();
        let mut n = 1;
        while valid.iter().any(|r| r.name == relay.name) {
            n += 1;
            relay.name = format!("{base}-{n}");
            relay.listen_path = format!("/{}", relay.name);
        }
        match relay.validate() {
            Ok(()) => valid.push(relay),
            Err(why) => skipped.push(format!("relay {}: {why}", relay.name)),
        }
    }
    Ok(Imported {
        relays: valid,
        skipped,
    })
}

/// A document this gateway wrote: its relays as they were (without their secrets).
fn own(channels: &serde_json::Map<String, Value>) -> Result<Imported, String> {
    let mut relays: Vec<RelayConfig> = Vec::new();
    let mut skipped = Vec::new();
    for (id, channel) in channels {
        let Some(relay) = channel.get(EXTENSION) else {
            skipped.push(format!("channel {id}: not a relay (the gateway's own)"));
            continue;
        };
        let relay: RelayConfig = serde_json::from_value(relay.clone())
            .map_err(|e| format!("channel {id}: {EXTENSION} is not a relay: {e}"))?;
        if !relays.iter().any(|r| r.name == relay.name) {
            relays.push(relay);
        }
    }
    Ok(Imported { relays, skipped })
}

/// Any other document: a relay per HTTP server, a topic per channel address.
fn foreign(document: &Value, channels: &serde_json::Map<String, Value>, three: bool) -> Imported {
    let mut skipped = Vec::new();
    let mut relays = Vec::new();
    let no_servers = serde_json::Map::new();
    let servers = document["servers"].as_object().unwrap_or(&no_servers);
    if servers.is_empty() {
        skipped.push("the document names no server: a relay needs its upstream's URL".into());
    }
    for (key, server) in servers {
        let url = match server_url(server, three) {
            Ok(url) => url,
            Err(why) => {
                skipped.push(format!("server {key}: {why}"));
                continue;
            }
        };
        let mut topics = BTreeMap::new();
        for (id, channel) in channels {
            if !on_server(channel, key, three) {
                continue;
            }
            let address = match three {
                true => channel["address"].as_str(),
                false => Some(id.as_str()),
            };
            let Some(address) = address else {
                skipped.push(format!("channel {id}: it has no address"));
                continue;
            };
            // In 2.x a channel clients only publish to has nothing to relay.
            if !three && channel.get("subscribe").is_none() && channel.get("publish").is_some() {
                skipped.push(format!("channel {id}: clients only publish to it"));
                continue;
            }
            match topic(address) {
                Ok((topic, _)) if topics.contains_key(&topic) => {
                    skipped.push(format!("channel {id}: the topic {topic:?} is another's"));
                }
                Ok((topic, upstream)) => {
                    topics.insert(topic, upstream);
                }
                Err(why) => skipped.push(format!("channel {id}: {why}")),
            }
        }
        if topics.is_empty() {
            skipped.push(format!("server {key}: no channel of it maps to a topic"));
            continue;
        }
        let name = slug(key);
        let relay = json!({
            "name": name,
            "listen_path": format!("/{name}"),
            "upstream": url,
            "topics": topics,
        });
        match serde_json::from_value::<RelayConfig>(relay) {
            Ok(relay) => relays.push(relay),
            Err(e) => skipped.push(format!("server {key}: {e}")),
        }
    }
    for id in channels.keys() {
        let on_any = servers
            .keys()
            .any(|key| on_server(&channels[id], key, three));
        if !on_any && !servers.is_empty() {
            skipped.push(format!("channel {id}: on no server of the document"));
        }
    }
    Imported { relays, skipped }
}

/// A server's URL: HTTP or HTTPS only, its variables given their defaults.
fn server_url(server: &Value, three: bool) -> Result<String, String> {
    let protocol = server["protocol"].as_str().unwrap_or("");
    if !matches!(protocol, "http" | "https") {
        return Err(format!(
            "protocol {protocol:?} is not HTTP: a relay's upstream is an HTTP SSE server"
        ));
    }
    let text = match three {
        true => format!(
            "{protocol}://{}{}",
            server["host"].as_str().unwrap_or(""),
            server["pathname"].as_str().unwrap_or("")
        ),
        false => match server["url"].as_str().unwrap_or("") {
            url if url.contains("://") => url.to_owned(),
            url => format!("{protocol}://{url}"),
        },
    };
    let mut url = text.clone();
    if let Some(variables) = server["variables"].as_object() {
        for (name, variable) in variables {
            if let Some(default) = variable["default"].as_str() {
                url = url.replace(&format!("{{{name}}}"), default);
            }
        }
    }
    if url.contains('{') {
        return Err(format!("{text:?} has a variable without a default"));
    }
    reqwest::Url::parse(&url)
        .map(|u| u.to_string())
        .map_err(|e| format!("{url:?} is not a URL: {e}"))
}

/// Whether `channel` is on the server `key` (a channel that names none is on all of them).
fn on_server(channel: &Value, key: &str, three: bool) -> bool {
    let Some(servers) = channel["servers"].as_array() else {
        return true;
    };
    servers.iter().any(|s| match three {
        true => s["$ref"].as_str() == Some(&format!("#/servers/{}", escape(key))),
        false => s.as_str() == Some(key),
    })
}

/// A channel address as a topic and its upstream path: `/prices/{symbol}` is `prices/*` of
/// `/prices/*`.
fn topic(address: &str) -> Result<(String, String), String> {
    let address = address.split(['?', '#']).next().unwrap_or("");
    let address = address.trim_start_matches('/');
    match address.find('{') {
        None => Ok((address.to_owned(), format!("/{address}"))),
        Some(at) => {
            let end = address[at..].find('}').map(|e| at + e + 1);
            if end != Some(address.len()) {
                return Err(format!(
                    "the address {address:?} has a parameter before its end; a relay topic may \
                     only end with one"
                ));
            }
            let prefix = &address[..at];
            Ok((format!("{prefix}*"), format!("/{prefix}*")))
        }
    }
}

/// A key as a JSON Pointer token (RFC 6901).
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// A server key as a relay name and path segment: lower-case letters, digits and `-`.
fn slug(key: &str) -> String {
    let slug: String = key
        .chars()
        .map(|c| match c.is_ascii_alphanumeric() {
            true => c.to_ascii_lowercase(),
            false => '-',
        })
        .collect();
    let slug = slug.trim_matches('-');
    match slug.is_empty() {
        true => "imported".to_owned(),
        false => slug.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_foreign_document_makes_a_relay_per_http_server() {
        let document = json!({
            "asyncapi": "3.0.0",
            "servers": {
                "Market Feed": {"host": "feed.example.com:8443", "protocol": "https", "pathname": "/v1"},
                "broker": {"host": "kafka:9092", "protocol": "kafka"},
            },
            "channels": {
                "ticks": {"address": "/ticks/{symbol}", "servers": [{"$ref": "#/servers/Market Feed"}]},
                "news": {"address": "/news"},
                "odd": {"address": "/a/{x}/b"},
            },
        });
        let imported = relays(&document).unwrap();
        assert_eq!(imported.relays.len(), 1, "{imported:?}");
        let relay = &imported.relays[0];
        assert_eq!(relay.name, "market-feed");
        assert_eq!(relay.listen_path, "/market-feed");
        assert_eq!(relay.upstream.as_str(), "https://feed.example.com:8443/v1");
        let topics = relay.topics.as_ref().unwrap();
        assert_eq!(topics["ticks/*"], "/ticks/*");
        assert_eq!(topics["news"], "/news");
        let skipped = imported.skipped.join("\n");
        assert!(
            skipped.contains("server broker: protocol \"kafka\""),
            "{skipped}"
        );
        assert!(skipped.contains("channel odd: the address"), "{skipped}");
    }

    #[test]
    fn names_stay_unique_and_an_invalid_relay_is_skipped() {
        let server = |host: &str| json!({"host": host, "protocol": "http"});
        let document = json!({
            "asyncapi": "3.0.0",
            "servers": {"prod": server("a.example"), "Prod": server("b.example"),
                        "sse": server("c.example")},
            "channels": {"ticks": {"address": "/ticks"}},
        });
        let imported = relays(&document).unwrap();
        let names: Vec<&str> = imported.relays.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["prod", "prod-2"], "{imported:?}");
        let skipped = imported.skipped.join("\n");
        assert!(
            skipped.contains("relay sse: "),
            "the gateway's own /sse: {skipped}"
        );
    }

    #[test]
    fn version_2_servers_take_their_variables_defaults() {
        let document = json!({
            "asyncapi": "2.6.0",
            "servers": {"prod": {"url": "{host}/stream", "protocol": "http",
                                  "variables": {"host": {"default": "sse.example.com"}}}},
            "channels": {"/prices": {"subscribe": {}}},
        });
        let imported = relays(&document).unwrap();
        assert_eq!(
            imported.relays[0].upstream.as_str(),
            "http://sse.example.com/stream"
        );
        assert_eq!(
            imported.relays[0].topics.as_ref().unwrap()["prices"],
            "/prices"
        );
    }

    #[test]
    fn what_is_not_asyncapi_is_said_to_be_so() {
        let e = relays(&json!({"openapi": "3.1.0"})).unwrap_err();
        assert!(e.contains("not an AsyncAPI document"), "{e}");
        let e = relays(&json!({"asyncapi": "1.2.0", "channels": {}})).unwrap_err();
        assert!(e.contains("2.x and 3.0"), "{e}");
    }
}
