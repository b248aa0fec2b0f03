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
}

/// One node; the history of many nodes on Redis is not available yet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    #[default]
    Memory,
}
