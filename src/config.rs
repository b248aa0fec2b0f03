//! The configuration model: a TOML file, then `STREAMGATE_<SECTION>__<KEY>` overrides.
//!
//! Unknown keys and out-of-range values are errors that name the key; errors in the file
//! carry its line and column, errors in an override name the variable.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};

pub mod asyncapi_import;
mod auth;
mod bus;
mod http;
mod limits;
mod log;
pub mod mercure;
mod relay;
pub use auth::{AuthConfig, CapabilityMap, KeyConfig};
pub use bus::{Backend, BusConfig};
pub use http::{HttpConfig, check_origin};
pub use limits::LimitsConfig;
pub use log::{LogConfig, LogFormat};
pub use relay::{RelayConfig, RelayMode, Route};

const ENV_PREFIX: &str = "STREAMGATE_";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub channels: ChannelsConfig,
    pub stream: StreamConfig,
    pub poll: PollConfig,
    /// Named upstream APIs, streamed at `/apis/{name}/{path}`.
    #[serde(rename = "api")]
    pub apis: Vec<ApiConfig>,
    /// Upstream SSE servers, relayed under their listen paths.
    #[serde(rename = "relay")]
    pub relays: Vec<RelayConfig>,
    /// API keys and what they may do.
    #[serde(rename = "key")]
    pub keys: Vec<KeyConfig>,
    pub auth: AuthConfig,
    pub limits: LimitsConfig,
    pub http: HttpConfig,
    pub log: LogConfig,
    pub bus: BusConfig,
    /// The Mercure hub; off without the section.
    pub mercure: Option<mercure::MercureConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on; `--listen` overrides it.
    #[serde(deserialize_with = "socket_address")]
    pub listen: SocketAddr,
    /// TLS (HTTP/2 and HTTP/1.1 by ALPN): the certificate chain and its private key, PEM,
    /// read again on SIGHUP and when they change. Both or neither.
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            tls_cert_file: None,
            tls_key_file: None,
        }
    }
}

impl ServerConfig {
    /// The certificate and key files, when the server speaks TLS.
    pub fn tls_files(&self) -> Option<(&Path, &Path)> {
        Some((
            self.tls_cert_file.as_deref()?,
            self.tls_key_file.as_deref()?,
        ))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChannelsConfig {
    /// Events kept per channel for resume, rewind and the history API.
    #[serde(deserialize_with = "at_least_one")]
    pub history_size: usize,
    /// Age after which an event leaves history.
    #[serde(deserialize_with = "at_least_one")]
    pub history_ttl_s: u64,
    /// Bytes of events a state channel (a delta stream) keeps for resume, counted as the
    /// events' encoded size. Its document is kept apart: a client resuming past this bound
    /// gets it afresh instead of the patches.
    #[serde(deserialize_with = "at_least_one")]
    pub state_history_bytes: usize,
    /// Largest publish request body (one message or a batch), as in Ably.
    #[serde(deserialize_with = "at_least_one")]
    pub max_message_bytes: usize,
    /// How many events a subscriber may fall behind while it is not reading. Past it, a
    /// delta stream sends one fresh snapshot instead of the stale patches, and a pub/sub
    /// stream applies `overflow`. A backlog the client asked for (rewind, resume) is exempt.
    #[serde(deserialize_with = "at_least_one")]
    pub subscriber_queue: usize,
    /// What a pub/sub stream does past `subscriber_queue`: `"skip"` the oldest with an
    /// in-band notice, or `"disconnect"` with an in-band error.
    pub overflow: Overflow,
    /// Channels (patterns, `*` any run of characters) whose subscribers enter presence while
    /// their stream is open, when their credential has a clientId (and the `presence`
    /// capability), and leave when it closes.
    pub presence_on_subscribe: Vec<String>,
}

impl Default for ChannelsConfig {
    fn default() -> Self {
        ChannelsConfig {
            history_size: 1000,
            history_ttl_s: 120,
            state_history_bytes: 4 * 1024 * 1024,
            max_message_bytes: 64 * 1024,
            subscriber_queue: 1000,
            overflow: Overflow::Skip,
            presence_on_subscribe: Vec::new(),
        }
    }
}

/// What happens to a pub/sub stream whose client falls behind by more than its queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Overflow {
    /// Skip the oldest events, keeping the newest queue's worth, with an in-band notice.
    Skip,
    /// End the stream with an in-band error; the client reconnects and resumes.
    Disconnect,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StreamConfig {
    /// Idle time after which a stream gets a keepalive comment (or heartbeat event).
    #[serde(deserialize_with = "at_least_one")]
    pub keepalive_ms: u64,
    /// The `retry:` hint sent when the server shuts down: how long clients wait to reconnect.
    pub retry_ms: u64,
    /// Entries a server-kept cursor remembers per connection (stream changes and deliveries,
    /// about 24 bytes each): how far back such a connection resumes exactly.
    #[serde(deserialize_with = "at_least_one")]
    pub journal_entries: usize,
    /// The longest a stream on a busy server holds a write to gather the events that follow
    /// into it (0: never). A stream whose socket was idle writes at once.
    #[serde(deserialize_with = "window_ms")]
    pub write_window_ms: u64,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            keepalive_ms: 15_000,
            retry_ms: 1_000,
            journal_entries: 10_000,
            write_window_ms: 20,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PollConfig {
    /// URL patterns (`*` matches anything) an ad-hoc `GET /{url}` target must match. Private,
    /// loopback and link-local addresses also need a pattern naming the host literally.
    pub allowed_targets: Vec<String>,
    /// Interval when the request gives no `pollInterval`.
    #[serde(deserialize_with = "at_least_one")]
    pub interval_ms: u64,
    /// Bounds `pollInterval` is clamped to.
    #[serde(deserialize_with = "at_least_one")]
    pub min_interval_ms: u64,
    #[serde(deserialize_with = "at_least_one")]
    pub max_interval_ms: u64,
    /// How long one upstream request may take.
    #[serde(deserialize_with = "at_least_one")]
    pub timeout_ms: u64,
    /// Longest wait between attempts while the target keeps failing.
    #[serde(deserialize_with = "at_least_one")]
    pub max_backoff_ms: u64,
    /// How long a poller outlives its last subscriber (a reconnecting client finds it warm).
    pub linger_ms: u64,
    /// Largest upstream response body accepted.
    #[serde(deserialize_with = "at_least_one")]
    pub max_body_bytes: usize,
    /// PEM files of extra CAs trusted for upstream TLS.
    pub extra_ca_files: Vec<PathBuf>,
}

impl Default for PollConfig {
    fn default() -> Self {
        PollConfig {
            allowed_targets: Vec::new(),
            interval_ms: 5_000,
            min_interval_ms: 1_000,
            max_interval_ms: 300_000,
            timeout_ms: 10_000,
            max_backoff_ms: 60_000,
            linger_ms: 5_000,
            max_body_bytes: 10 * 1024 * 1024,
            extra_ca_files: Vec::new(),
        }
    }
}

/// A named upstream API: `GET /apis/{name}/{path}` polls `{base_url}/{path}`.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    pub name: String,
    pub base_url: reqwest::Url,
    /// Headers sent with every poll (credentials, typically); never shown to clients.
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, String>,
    /// Query parameters added to every poll.
    #[serde(default)]
    pub query: std::collections::BTreeMap<String, String>,
    /// This API's polling interval; defaults to `[poll] interval_ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_ms: Option<u64>,
}

/// An address `ip:port`; a host name is refused with the address to write instead (the
/// gateway resolves no name to listen on: which of a name's addresses would it be?).
fn socket_address<'de, D: Deserializer<'de>>(deserializer: D) -> Result<SocketAddr, D::Error> {
    let text = String::deserialize(deserializer)?;
    text.parse().map_err(|_| {
        let suggestion = match text.rsplit_once(':') {
            Some((host, port)) if port.parse::<u16>().is_ok() => match host {
                "localhost" => format!("\"127.0.0.1:{port}\" (or \"[::1]:{port}\")"),
                _ => format!(
                    "an IP address, e.g. \"0.0.0.0:{port}\" for every interface, or the \
                     address {host:?} resolves to"
                ),
            },
            _ => "\"ip:port\", e.g. \"127.0.0.1:8080\"".to_owned(),
        };
        serde::de::Error::custom(format!(
            "{text:?} is not an address to listen on; write {suggestion}"
        ))
    })
}

/// Why a `[poll] allowed_targets` pattern can never match a URL, if it cannot: patterns are
/// matched against whole URLs, which start with `http://` or `https://`.
fn check_target_pattern(pattern: &str) -> Result<(), String> {
    // A leading `*` matches any scheme, and more.
    if pattern.starts_with('*') {
        return Ok(());
    }
    let Some((scheme, rest)) = pattern.split_once("://") else {
        return Err(
            "can never match a URL: a pattern starts with the scheme, e.g. \
             \"https://api.example.com/*\""
                .into(),
        );
    };
    if !["http", "https"]
        .iter()
        .any(|s| crate::glob::matches(scheme, s))
    {
        return Err(format!(
            "can never match: only http and https URLs are polled, not {scheme}://"
        ));
    }
    if rest.is_empty() || rest.starts_with('/') {
        return Err("names no host: write scheme://host/path (the host may be *)".into());
    }
    if rest.contains(char::is_whitespace) {
        return Err("can never match: URLs hold no spaces".into());
    }
    Ok(())
}

/// Files the config names, each checked to be readable before anything starts (serving
/// would fail on them later, at start-up or at the first use).
pub fn check_files(config: &Config) -> Result<(), String> {
    let mut files: Vec<(String, &Path)> = Vec::new();
    for file in &config.poll.extra_ca_files {
        files.push(("[poll] extra_ca_files".into(), file));
    }
    for file in &config.auth.public_key_files {
        files.push(("[auth] public_key_files".into(), file));
    }
    if let Some(file) = &config.auth.jwks_file {
        files.push(("[auth] jwks_file".into(), file));
    }
    if let Some(file) = &config.bus.redis_ca_file {
        files.push(("[bus] redis_ca_file".into(), file));
    }
    if let Some(mercure) = &config.mercure {
        for (key, file) in [
            ("publisher_jwt_key_file", &mercure.publisher_jwt_key_file),
            ("subscriber_jwt_key_file", &mercure.subscriber_jwt_key_file),
        ] {
            if let Some(file) = file {
                files.push((format!("[mercure] {key}"), file));
            }
        }
    }
    for (key, file) in files {
        std::fs::File::open(file)
            .map_err(|e| format!("{key}: {} cannot be read: {e}", file.display()))?;
    }
    Ok(())
}

fn at_least_one<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + PartialOrd + From<u8>,
{
    let value = T::deserialize(deserializer)?;
    if value < T::from(1) {
        return Err(serde::de::Error::custom("must be at least 1"));
    }
    Ok(value)
}

/// `[stream] write_window_ms`: a hold longer than a second would be a stall, not a window.
fn window_ms<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    let value = u64::deserialize(deserializer)?;
    if value > 1_000 {
        return Err(serde::de::Error::custom(
            "must be at most 1000 (milliseconds; 0 never holds a write)",
        ));
    }
    Ok(value)
}

/// Why a configuration was refused, ready to print.
#[derive(Debug)]
pub struct ConfigError(String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Loads `file` (or the defaults when `None`) and applies the `STREAMGATE_*` variables
    /// found in `env`.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let (origin, text) = match file {
            Some(path) => (
                path.to_path_buf(),
                std::fs::read_to_string(path).map_err(|e| {
                    ConfigError(format!("cannot read config file {}: {e}", path.display()))
                })?,
            ),
            None => (PathBuf::from("<defaults>"), String::new()),
        };
        // Parsing the text itself gives errors with line and column.
        let mut config: Config =
            toml::from_str(&text).map_err(|e| ConfigError(format!("{}: {e}", origin.display())))?;
        let mut table: toml::Table = toml::from_str(&text).expect("parsed just above");
        for (name, value) in env {
            let Some(path) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            apply_override(&mut table, path, &value)
                .map_err(|why| ConfigError(format!("environment variable {name}: {why}")))?;
            // Re-checking after each override lets an error name the variable that caused it.
            config = Config::deserialize(table.clone())
                .map_err(|e| ConfigError(format!("environment variable {name}: {e}")))?;
        }
        config
            .validate()
            .map_err(|e| ConfigError(format!("{}: {e}", origin.display())))?;
        Ok(config)
    }
}

impl Config {
    /// Every configured API's `base_url` and relay's `upstream`, their query removed (it does
    /// not choose the destination): `(table, name, member, url)`.
    pub fn upstreams(
        &self,
    ) -> impl Iterator<Item = (&'static str, &str, &'static str, reqwest::Url)> {
        let apis = self
            .apis
            .iter()
            .map(|api| ("[[api]]", api.name.as_str(), "base_url", &api.base_url));
        let relays = self.relays.iter().map(|relay| {
            (
                "[[relay]]",
                relay.name.as_str(),
                "upstream",
                &relay.upstream,
            )
        });
        apis.chain(relays).map(|(table, name, member, url)| {
            let mut url = url.clone();
            url.set_query(None);
            (table, name, member, url)
        })
    }

    /// The ad-hoc target patterns plus every configured API's and relay's base URL: an
    /// upstream named in the config is allowed, private address included, and so are
    /// redirects within it.
    pub fn target_patterns(&self) -> Vec<String> {
        let mut patterns = self.poll.allowed_targets.clone();
        for (_, _, _, base) in self.upstreams() {
            let base = base.as_str().trim_end_matches('/');
            patterns.push(format!("{base}/*"));
            patterns.push(base.to_owned());
        }
        patterns
    }

    /// Checks that involve several keys (single values are checked while parsing).
    /// Capabilities are checked by `auth::Auth::new` (see `config::auth`).
    pub fn validate(&self) -> Result<(), String> {
        let server = &self.server;
        if server.tls_cert_file.is_some() != server.tls_key_file.is_some() {
            return Err(
                "[server] tls_cert_file and tls_key_file go together: set both (TLS) or neither"
                    .into(),
            );
        }
        let poll = &self.poll;
        if poll.min_interval_ms > poll.max_interval_ms {
            return Err("[poll] min_interval_ms is larger than max_interval_ms".into());
        }
        for pattern in &poll.allowed_targets {
            check_target_pattern(pattern)
                .map_err(|e| format!("[poll] allowed_targets: {pattern:?} {e}"))?;
        }
        if let Some(mercure) = &self.mercure {
            mercure.validate()?;
        }
        let mut names = std::collections::HashSet::new();
        for api in &self.apis {
            if api.name.is_empty() || api.name.contains('/') {
                return Err(format!(
                    "[[api]] name {:?} must be non-empty, without '/'",
                    api.name
                ));
            }
            if !names.insert(api.name.as_str()) {
                return Err(format!("[[api]] name {:?} is used twice", api.name));
            }
            if !matches!(api.base_url.scheme(), "http" | "https") {
                return Err(format!(
                    "[[api]] {}: base_url must be http or https",
                    api.name
                ));
            }
            check_headers(&api.headers).map_err(|e| format!("[[api]] {}: {e}", api.name))?;
        }
        let mut key_names = std::collections::HashSet::new();
        for key in &self.keys {
            key.validate()?;
            if !key_names.insert(key.name.as_str()) {
                return Err(format!("[[key]] name {:?} is used twice", key.name));
            }
        }
        self.limits.validate()?;
        self.bus.validate()?;
        let largest_body = self
            .limits
            .max_body_bytes
            .max(self.channels.max_message_bytes);
        if self.limits.max_body_buffer_bytes < largest_body {
            return Err(format!(
                "[limits] max_body_buffer_bytes ({}) is smaller than the largest body an \
                 endpoint takes ({largest_body}, [limits] max_body_bytes or [channels] \
                 max_message_bytes): raise it, or lower those",
                self.limits.max_body_buffer_bytes
            ));
        }
        let mut relay_names = std::collections::HashSet::new();
        let mut paths = std::collections::HashMap::new();
        for relay in &self.relays {
            relay.validate()?;
            if !relay_names.insert(relay.name.as_str()) {
                return Err(format!("[[relay]] name {:?} is used twice", relay.name));
            }
            if let Some(other) = paths.insert(relay.path(), relay.name.as_str()) {
                return Err(format!(
                    "[[relay]] {} and {other} both listen on {}",
                    relay.name,
                    relay.path()
                ));
            }
        }
        Ok(())
    }
}

/// Injected headers as requests carry them; the config was checked with `check_headers`.
pub fn header_list(
    headers: &std::collections::BTreeMap<String, String>,
) -> Vec<(reqwest::header::HeaderName, reqwest::header::HeaderValue)> {
    headers
        .iter()
        .map(|(name, value)| {
            let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .expect("checked when loading");
            let value =
                reqwest::header::HeaderValue::from_str(value).expect("checked when loading");
            (name, value)
        })
        .collect()
}

/// Checks injected headers: valid names, and values a request can carry. A value is never
/// shown in the message: it may be a secret.
fn check_headers(headers: &std::collections::BTreeMap<String, String>) -> Result<(), String> {
    for (name, value) in headers {
        if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(format!("{name:?} is not a header name"));
        }
        if reqwest::header::HeaderValue::from_str(value).is_err() {
            return Err(format!(
                "the value of header {name:?} is not valid (visible ASCII, spaces and tabs \
                 only)"
            ));
        }
    }
    Ok(())
}

fn apply_override(table: &mut toml::Table, path: &str, value: &str) -> Result<(), String> {
    let Some((section, key)) = path.split_once("__") else {
        return Err(format!(
            "not a config override; name it {ENV_PREFIX}<SECTION>__<KEY>, \
             e.g. {ENV_PREFIX}CHANNELS__HISTORY_SIZE"
        ));
    };
    let (section, key) = (section.to_ascii_lowercase(), key.to_ascii_lowercase());
    // A value that reads as TOML (a number, a boolean, a quoted string) is taken as such;
    // anything else is a bare string.
    let value = toml::from_str::<toml::Table>(&format!("v = {value}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_owned()));
    let section_table = table
        .entry(section.clone())
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    match section_table {
        toml::Value::Table(t) => {
            t.insert(key, value);
            Ok(())
        }
        _ => Err(format!("[{section}] is not a table")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("streamgate.toml");
        std::fs::write(&path, text).unwrap();
        Config::load(
            Some(&path),
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
    }

    #[test]
    fn defaults_apply_to_an_empty_file() {
        let c = load_text("", &[]).unwrap();
        assert_eq!(c.channels.history_size, 1000);
        assert_eq!(c.channels.history_ttl_s, 120);
        assert_eq!(c.channels.state_history_bytes, 4 * 1024 * 1024);
        assert_eq!(c.channels.max_message_bytes, 65536);
        assert_eq!(c.stream.keepalive_ms, 15000);
        assert_eq!(c.stream.write_window_ms, 20);
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:8080");
    }

    #[test]
    fn a_write_window_over_a_second_is_refused() {
        assert_eq!(
            load_text("[stream]\nwrite_window_ms = 0\n", &[])
                .unwrap()
                .stream
                .write_window_ms,
            0
        );
        let err = load_text("[stream]\nwrite_window_ms = 5000\n", &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("write_window_ms") && err.contains("at most 1000"),
            "{err}"
        );
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let err = load_text("[channels]\nhistory_size = 5\nhistroy_ttl_s = 3\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("histroy_ttl_s"), "{err}");
        assert!(err.contains("line 3"), "{err}");
    }

    #[test]
    fn out_of_range_value_is_named_with_its_line() {
        let err = load_text("[stream]\n\nkeepalive_ms = 0\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("must be at least 1"), "{err}");
        assert!(err.contains("line 3"), "{err}");
    }

    #[test]
    fn env_overrides_win_and_bad_ones_name_the_variable() {
        let c = load_text(
            "[channels]\nhistory_size = 5\n",
            &[("STREAMGATE_CHANNELS__HISTORY_SIZE", "7"), ("PATH", "/bin")],
        )
        .unwrap();
        assert_eq!(c.channels.history_size, 7);

        let c = load_text("", &[("STREAMGATE_CHANNELS__STATE_HISTORY_BYTES", "20000")]).unwrap();
        assert_eq!(c.channels.state_history_bytes, 20000);

        let err = load_text("", &[("STREAMGATE_CHANNELS__HISTORY_SIZE", "lots")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("STREAMGATE_CHANNELS__HISTORY_SIZE"), "{err}");

        let err = load_text("", &[("STREAMGATE_CHANNELS__NOPE", "1")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("STREAMGATE_CHANNELS__NOPE") && err.contains("nope"),
            "{err}"
        );

        let err = load_text("", &[("STREAMGATE_LISTEN", "1")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("<SECTION>__<KEY>"), "{err}");
    }

    #[test]
    fn what_would_fail_later_is_refused_now() {
        let err = |text: &str| load_text(text, &[]).unwrap_err().to_string();
        let listen = err("[server]\nlisten = \"localhost:8080\"\n");
        assert!(listen.contains("write \"127.0.0.1:8080\""), "{listen}");
        let named = err("[server]\nlisten = \"gw.internal:9000\"\n");
        assert!(named.contains("\"0.0.0.0:9000\""), "{named}");
        for (pattern, why) in [
            ("api.example.com/*", "starts with the scheme"),
            ("ftp://files.example.com/*", "only http and https"),
            ("https:///x", "names no host"),
            ("https://a b/", "no spaces"),
        ] {
            let text = format!("[poll]\nallowed_targets = [{pattern:?}]\n");
            let message = err(&text);
            assert!(message.contains(why), "{pattern}: {message}");
        }
        for fine in [
            "*",
            "http*://*",
            "https://*.example.com/*",
            "http://127.0.0.1:*/*",
        ] {
            let text = format!("[poll]\nallowed_targets = [{fine:?}]\n");
            assert!(load_text(&text, &[]).is_ok(), "{fine}");
        }
        let config = load_text("[poll]\nextra_ca_files = [\"/nowhere/ca.pem\"]\n", &[]).unwrap();
        let missing = check_files(&config).unwrap_err();
        assert!(
            missing.starts_with("[poll] extra_ca_files: /nowhere/ca.pem cannot be read"),
            "{missing}"
        );
    }
}
