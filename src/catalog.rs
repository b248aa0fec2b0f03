//! The catalog: the APIs, relays and keys the admin API changes while the gateway serves.
//!
//! The config file gives the first catalog. Every change through the admin API is checked
//! as a whole config would be, written to the store next to the config file
//! (`{name}.admin.toml`: once it exists, its entries replace the config file's), and then
//! takes effect at once: new requests see the new catalog, and the key rules are rebuilt.
//! Streams already open keep running until their clients leave.
//!
//! Nodes sharing a bus (Redis) share the catalog there instead of in a file: a change made
//! on one node is stored in Redis (refused if another node changed the catalog first) and
//! announced, and every node takes it up at once (`Catalog::reload`).
//!
//! The admin API cannot widen what the gateway may reach: every API's `base_url` and relay's
//! `upstream` must pass the target policy of the config file (its `[poll] allowed_targets`
//! and its own `[[api]]` and `[[relay]]` upstreams), as an ad-hoc poll target must. Nor can it
//! turn itself off: a change that leaves no credential with the `admin` capability is refused.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

use crate::auth::Auth;
use crate::bus::redis::RedisBus;
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
    /// Another node changed the catalog since this one last read it.
    Conflict(String),
}

pub struct Catalog {
    current: RwLock<Arc<Config>>,
    store: Option<PathBuf>,
    /// The shared catalog's keeper, and the version this node has in effect.
    shared: Option<(Arc<RedisBus>, AtomicU64)>,
    /// One change at a time: each starts from the one before.
    changing: tokio::sync::Mutex<()>,
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
            shared: None,
            changing: tokio::sync::Mutex::new(()),
        })
    }

    /// The config with the entries the nodes sharing `bus` keep there, once one of them
    /// changed the catalog (else the config file's).
    pub async fn open_shared(
        mut config: Config,
        bus: Arc<RedisBus>,
        targets: &TargetPolicy,
    ) -> Result<Catalog, String> {
        let mut version = 0;
        if let Some((kept, text)) = bus.catalog().await? {
            read_entries(&text)?.apply_to(&mut config);
            check(&config, targets).map_err(|e| format!("the catalog in redis: {e}"))?;
            version = kept;
        }
        Ok(Catalog {
            current: RwLock::new(Arc::new(config)),
            store: None,
            shared: Some((bus, AtomicU64::new(version))),
            changing: tokio::sync::Mutex::new(()),
        })
    }

    /// Takes up the shared catalog if another node changed it (see `open_shared`).
    pub async fn reload(&self, auth: &Auth, targets: &TargetPolicy) -> Result<(), String> {
        let _one = self.changing.lock().await;
        self.take_up(auth, targets).await
    }

    /// `reload`, with the change lock held.
    async fn take_up(&self, auth: &Auth, targets: &TargetPolicy) -> Result<(), String> {
        let Some((bus, version)) = &self.shared else {
            return Ok(());
        };
        let Some((kept, text)) = bus.catalog().await? else {
            return Ok(());
        };
        if kept <= version.load(Ordering::Acquire) {
            return Ok(());
        }
        let mut config = Config::clone(&self.config());
        read_entries(&text)?.apply_to(&mut config);
        let rules = check(&config, targets).map_err(|e| format!("the catalog in redis: {e}"))?;
        auth.adopt(rules);
        *self.current.write().unwrap() = Arc::new(config);
        version.store(kept, Ordering::Release);
        Ok(())
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
    pub async fn change(
        &self,
        auth: &Auth,
        targets: &TargetPolicy,
        change: impl FnOnce(&mut Entries) -> Result<(), String>,
    ) -> Result<(), Refused> {
        let _one = self.changing.lock().await;
        // A change starts from the newest shared catalog: another node's change may not
        // have been announced here yet.
        self.take_up(auth, targets).await.map_err(Refused::Store)?;
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
        if let Some((bus, version)) = &self.shared {
            let text = toml::to_string(&entries)
                .map_err(|e| Refused::Store(format!("cannot encode the catalog: {e}")))?;
            let from = version.load(Ordering::Acquire);
            match bus
                .change_catalog(from, &text)
                .await
                .map_err(Refused::Store)?
            {
                Some(kept) => version.store(kept, Ordering::Release),
                None => {
                    return Err(Refused::Conflict(
                        "another node changed the catalog meanwhile; read it again and retry"
                            .into(),
                    ));
                }
            }
        } else if let Some(path) = &self.store {
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

/// Entries as a store or Redis holds them (TOML).
fn read_entries(text: &str) -> Result<Entries, String> {
    toml::from_str(text).map_err(|e| format!("the catalog in redis is not readable: {e}"))
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
