//! The catalog: the APIs, relays and keys the admin API changes while the gateway serves.
//!
//! The config file gives the first catalog. Every change through the admin API is checked
//! as a whole config would be, written to the store next to the config file
//! (`{name}.admin.toml`: once it exists, its entries replace the config file's), and then
//! takes effect at once: new requests see the new catalog, and the key rules are rebuilt.
//! Streams already open keep running until their clients leave.
//!
//! The admin API cannot widen what the gateway may reach: every API's `base_url` and relay's
//! `upstream` must pass the target policy of the config file (its `[poll] allowed_targets`
//! and its own `[[api]]` and `[[relay]]` upstreams), as an ad-hoc poll target must. Nor can it
//! turn itself off: a change that leaves no credential with the `admin` capability is refused.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use serde::{Deserialize, Serialize};

use crate::auth::Auth;
use crate::config::{ApiConfig, Config, KeyConfig, RelayConfig};
use crate::sources::target::TargetPolicy;

/// The parts of the config the admin API edits, as the store holds them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entries {
    #[serde(rename = "api", default)]
    pub apis: Vec<ApiConfig>,
    #[serde(rename = "relay", default)]
    pub relays: Vec<RelayConfig>,
    #[serde(rename = "key", default)]
    pub keys: Vec<KeyConfig>,
}

/// Why a change was refused: a request error (the change is invalid) or a failure to
/// store it.
#[derive(Debug)]
pub enum Refused {
    Invalid(String),
    Store(String),
}

pub struct Catalog {
    current: RwLock<Arc<Config>>,
    store: Option<PathBuf>,
    /// One change at a time: each starts from the one before.
    changing: Mutex<()>,
}

impl Catalog {
    /// Where the store of a config file lives: beside it, `{stem}.admin.toml`.
    pub fn store_path(config_file: &Path) -> PathBuf {
        let stem = config_file
            .file_stem()
            .map_or_else(|| "streamgate".into(), |s| s.to_string_lossy().into_owned());
        config_file.with_file_name(format!("{stem}.admin.toml"))
    }

    /// The config with the store's entries (when the store exists) in place of the file's;
    /// `targets` is the config file's target policy.
    pub fn open(
        mut config: Config,
        store: Option<PathBuf>,
        targets: &TargetPolicy,
    ) -> Result<Catalog, String> {
        if let Some(path) = store.as_deref().filter(|p| p.exists()) {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let entries: Entries =
                toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
            entries.apply_to(&mut config);
            check(&config, targets).map_err(|e| format!("{}: {e}", path.display()))?;
        }
        Ok(Catalog {
            current: RwLock::new(Arc::new(config)),
            store,
            changing: Mutex::new(()),
        })
    }

    /// The whole config as it is now.
    pub fn config(&self) -> Arc<Config> {
        Arc::clone(&self.current.read().unwrap())
    }

    pub fn entries(&self) -> Entries {
        Entries::of(&self.config())
    }

    /// Applies `change` to the entries: checked (also against `targets`, the config file's
    /// target policy), stored, then in effect for `auth`. Nothing changes when any step
    /// fails.
    pub fn change(
        &self,
        auth: &Auth,
        targets: &TargetPolicy,
        change: impl FnOnce(&mut Entries) -> Result<(), String>,
    ) -> Result<(), Refused> {
        let _one = self.changing.lock().unwrap();
        let mut config = Config::clone(&self.config());
        let mut entries = Entries::of(&config);
        change(&mut entries).map_err(Refused::Invalid)?;
        entries.clone().apply_to(&mut config);
        // Builds the key rules first: a key file that cannot be read refuses the change, and
        // nothing can fail after the store is written.
        let rules = check(&config, targets).map_err(Refused::Invalid)?;
        if !rules.admin_enabled() {
            return Err(Refused::Invalid(
                "the change leaves no key with the admin capability, which would turn the \
                 admin API off; keep or add one"
                    .into(),
            ));
        }
        if let Some(path) = &self.store {
            write_store(path, &entries).map_err(Refused::Store)?;
        }
        auth.adopt(rules);
        *self.current.write().unwrap() = Arc::new(config);
        Ok(())
    }
}

impl Entries {
    fn of(config: &Config) -> Entries {
        Entries {
            apis: config.apis.clone(),
            relays: config.relays.clone(),
            keys: config.keys.clone(),
        }
    }

    fn apply_to(self, config: &mut Config) {
        config.apis = self.apis;
        config.relays = self.relays;
        config.keys = self.keys;
    }
}

/// Checks a config with changed entries as loading it does, and builds its key rules (where
/// capabilities are checked): the config's own checks, then its upstreams against `targets`.
fn check(config: &Config, targets: &TargetPolicy) -> Result<Auth, String> {
    config.validate()?;
    check_upstreams(config, targets)?;
    Auth::new(config)
}

/// Checks that every API's and relay's upstream is one the target policy allows.
fn check_upstreams(config: &Config, targets: &TargetPolicy) -> Result<(), String> {
    for (table, name, member, url) in config.upstreams() {
        targets.check(&url).map_err(|refusal| {
            format!(
                "{table} {name}: {member}: {refusal}; what the admin API adds may reach only \
                 what the config file allows (its [poll] allowed_targets, [[api]] and [[relay]])"
            )
        })?;
    }
    Ok(())
}

/// Writes the store atomically (a reader never sees half a file), readable only by the
/// owner: it holds key secrets.
fn write_store(path: &Path, entries: &Entries) -> Result<(), String> {
    let text = toml::to_string(entries).map_err(|e| format!("cannot encode the store: {e}"))?;
    let header = "# Written by the streamgate admin API: its entries replace the config \
                  file's [[api]], [[relay]] and [[key]].\n";
    let temporary = path.with_extension("toml.tmp");
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&temporary)?;
        file.write_all(header.as_bytes())?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)
    };
    write().map_err(|e| format!("cannot write {}: {e}", path.display()))
}
