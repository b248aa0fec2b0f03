//! `[bus]`: where channels' history lives beyond the process's memory.

use std::path::PathBuf;

use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BusConfig {
    pub backend: Backend,
    /// The `memory` backend keeps channels' history on disk in this folder, so a restart
    /// (or a crash) loses no published message; without it, history is in memory only.
    pub data_dir: Option<PathBuf>,
    /// The `redis` backend's server: `redis://[:password@]host:port/db`, or `rediss://`
    /// for TLS.
    pub redis_url: Option<String>,
    /// With `rediss://`: the CA certificates (PEM) that sign the server's certificate,
    /// trusted instead of the system's.
    pub redis_ca_file: Option<PathBuf>,
    /// `redis_url` names a node of a Redis Cluster (or several, comma-separated): the
    /// gateway finds the others, and announces through sharded pub/sub.
    pub redis_cluster: bool,
    /// How long a node may go unheard on Redis before the others take it for dead and
    /// its subscribers leave the channels' presence (default 15,000).
    pub node_timeout_ms: Option<u64>,
}

/// `[bus] node_timeout_ms` when unset.
const NODE_TIMEOUT_MS: u64 = 15_000;

/// One node (`memory`), or many nodes sharing pub/sub channels through Redis.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    #[default]
    Memory,
    Redis,
}

impl BusConfig {
    pub fn validate(&self) -> Result<(), String> {
        match (self.backend, &self.data_dir, &self.redis_url) {
            (Backend::Redis, None, Some(urls)) => {
                self.redis_urls()
                    .try_for_each(|url| match url.split_once("://") {
                        Some(("redis" | "rediss", _))
                            if urls.contains(',') && !self.redis_cluster =>
                        {
                            Err(format!(
                                "[bus] redis_url {:?} names several servers: that is a Redis \
                             Cluster's nodes, with redis_cluster = true",
                                shown(urls)
                            ))
                        }
                        Some(("redis" | "rediss", _)) => Ok(()),
                        _ => Err(format!(
                            "[bus] redis_url {:?} must start with redis:// or rediss:// (TLS)",
                            shown(url)
                        )),
                    })
            }
            (Backend::Redis, None, None) => Err("[bus] backend = \"redis\" needs redis_url, \
                 e.g. redis_url = \"redis://127.0.0.1:6379/0\" (or STREAMGATE_BUS__REDIS_URL)"
                .into()),
            (Backend::Redis, Some(_), _) => Err("[bus] data_dir is for the memory backend: \
                 with backend = \"redis\", Redis keeps the history"
                .into()),
            (Backend::Memory, _, Some(_)) => {
                Err("[bus] redis_url needs backend = \"redis\"".into())
            }
            (Backend::Memory, _, None) => Ok(()),
        }?;
        let tls = self
            .redis_url
            .as_deref()
            .is_some_and(|u| u.starts_with("rediss://"));
        if self.redis_ca_file.is_some() && !tls {
            return Err("[bus] redis_ca_file is for a rediss:// (TLS) redis_url".into());
        }
        match self.node_timeout_ms {
            Some(_) if self.backend != Backend::Redis => {
                return Err("[bus] node_timeout_ms needs backend = \"redis\"".into());
            }
            Some(ms) if ms < 300 => {
                return Err(format!(
                    "[bus] node_timeout_ms = {ms} is shorter than a node's beat can be kept \
                     (at least 300 ms; the default is {NODE_TIMEOUT_MS})"
                ));
            }
            _ => {}
        }
        if self.redis_cluster && self.backend != Backend::Redis {
            return Err("[bus] redis_cluster needs backend = \"redis\"".into());
        }
        if self.backend == Backend::Redis && self.redis_urls().next().is_none() {
            return Err("[bus] redis_url names no server, e.g. redis_url = \
                 \"redis://127.0.0.1:6379/0\""
                .into());
        }
        Ok(())
    }

    /// How long a node may go unheard (see `node_timeout_ms`), in ms.
    pub fn node_timeout(&self) -> u64 {
        self.node_timeout_ms.unwrap_or(NODE_TIMEOUT_MS)
    }

    /// The Redis servers `redis_url` names (a Redis Cluster's may be several).
    pub fn redis_urls(&self) -> impl Iterator<Item = &str> {
        let urls = self.redis_url.as_deref().unwrap_or_default();
        urls.split(',').map(str::trim).filter(|u| !u.is_empty())
    }
}

/// `url` cut before any password, for messages.
fn shown(url: &str) -> &str {
    url.split('@').next_back().unwrap_or(url)
}
