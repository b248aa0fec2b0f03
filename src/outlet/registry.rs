//! The connections a client can address: by id, to change their streams, and to resume.
//!
//! An entry lives while its connection is open and for the history TTL after, so a client
//! that reconnects with a server-kept cursor finds its journal. With a bus, journals are
//! kept there, and the connections closed by a restart are resumable after it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use tokio::sync::{mpsc, oneshot};

use super::StreamSpec;
use super::change::{Answer, Change, read_answer};
use super::journal::Journal;
use crate::bus::journal_log::JournalLog;
use crate::bus::store::Store;
use crate::bus::{Journals, KeptJournal, unreadable};
use crate::hub::entered::Presence;
use crate::wire::envelope::ErrorInfo;

/// How often journals are handed to the bus (see `Connections::keep_all`).
pub const KEEP_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// How many times a shutdown hands journals to their keeper at most: a journal whose write
/// was under way in one round is written in the next.
const FLUSH_ROUNDS: usize = 4;

/// A change asked of a live connection; the outlet answers on the oneshot.
#[derive(Debug)]
pub enum Control {
    Add(Box<StreamSpec>, oneshot::Sender<Result<(), ErrorInfo>>),
    Remove(String, oneshot::Sender<Result<(), ErrorInfo>>),
    /// Another connection resumed this one: end this stream.
    Close,
}

#[derive(Debug)]
struct Entry {
    journal: Arc<Mutex<Journal>>,
    /// What the connection is bound to (see `Principal::binding`).
    credential: Vec<u8>,
    control: Option<mpsc::Sender<Control>>,
    /// The subscriber's presence while the connection is open, when its streams enter it.
    presence: Option<Presence>,
    /// When the connection closed; `None` while it is open.
    closed_at: Option<Instant>,
    /// Which registration holds the entry now (a resume takes it over).
    generation: u64,
}

/// What a connection gets when it registers.
pub struct Registration {
    pub id: String,
    pub generation: u64,
    pub journal: Arc<Mutex<Journal>>,
    /// What the connection is bound to, as opened or resumed (see `Principal::binding`).
    pub credential: Vec<u8>,
    pub control: mpsc::Receiver<Control>,
}

#[derive(Debug, Default)]
pub struct Connections {
    entries: Mutex<HashMap<String, Entry>>,
    /// Where journals are kept, if anywhere.
    journals: Option<Arc<dyn Journals>>,
    /// Where they are logged before the events naming them go out, if anywhere.
    log: Option<Arc<JournalLog>>,
}

impl Connections {
    /// The registry, with the journals `store` kept (each resumable for `keep` from now, as
    /// if its connection had just closed). `Err` names a journal that cannot be read.
    pub fn new(
        store: Arc<Store>,
        journals: Vec<KeptJournal>,
        capacity: usize,
    ) -> Result<Self, String> {
        let mut entries = HashMap::new();
        for kept in journals {
            let journal = Journal::restore(capacity, &kept, true).map_err(|e| {
                let what = format!("a journal of connection {:?}", kept.connection);
                unreadable(&*store, &what, e)
            })?;
            let entry = Entry {
                journal: Arc::new(Mutex::new(journal)),
                credential: kept.credential,
                control: None,
                presence: None,
                closed_at: Some(Instant::now()),
                generation: 0,
            };
            entries.insert(kept.connection, entry);
        }
        Ok(Connections {
            entries: Mutex::new(entries),
            log: Some(store.log()),
            journals: Some(store),
        })
    }

    /// The registry of a node that shares journals with others (Redis): a connection that
    /// closed on one node resumes on another.
    pub fn shared(journals: Arc<dyn Journals>) -> Self {
        Connections {
            entries: Mutex::default(),
            journals: Some(journals),
            log: None,
        }
    }

    /// The journal of connection `id` for a principal bound by `binding` (see
    /// `Principal::binding`), to resume it: the node's own, or
    /// the one another node kept, newer than this node's copy if it has one (see `claim`).
    /// `Err` when the journals' keeper cannot be reached.
    pub async fn resumable(
        &self,
        id: &str,
        binding: &[u8],
        capacity: usize,
    ) -> Result<Option<Arc<Mutex<Journal>>>, String> {
        let Some(journals) = &self.journals else {
            return Ok(self.journal(id, binding));
        };
        let handed = journals.load_journal(id, binding).await?;
        let local = self.journal(id, binding);
        let handed = match handed {
            Some(handed) if !(handed.ours && local.is_some()) => handed,
            // Not kept elsewhere (or by no keeper at all), or this node holds it: its own
            // copy is as new as the kept one, or newer (writes lag).
            _ => return Ok(local),
        };
        // Held by another node since this one last did: what this node has is stale.
        let journal = Journal::restore(capacity, &handed.journal, self.log.is_some())
            .map_err(|e| format!("the journal of connection {id:?} is not readable: {e}"))?;
        let journal = Arc::new(Mutex::new(journal));
        let mut entries = self.entries.lock().unwrap();
        let fresh = Entry {
            journal: Arc::clone(&journal),
            credential: binding.to_vec(),
            control: None,
            presence: None,
            closed_at: Some(Instant::now()),
            generation: 0,
        };
        if let Some(stale) = entries.insert(id.to_owned(), fresh) {
            // Its outlet, if open still, ends; its close must not mark the new entry.
            if let Some(control) = stale.control {
                let _ = control.try_send(Control::Close);
            }
            if let Some(entry) = entries.get_mut(id) {
                entry.generation = stale.generation + 1;
            }
        }
        Ok(Some(journal))
    }

    /// This node holds connection `id` from now on: a client's resume of it was accepted
    /// here. The node that held it before learns it at its next journal write, ends its
    /// stream if still open, and forgets its copy.
    pub async fn claim(&self, id: &str) -> Result<(), String> {
        match &self.journals {
            Some(journals) => journals.claim_journal(id).await,
            None => Ok(()),
        }
    }

    /// Connections known by id: open ones, and closed ones still resumable.
    pub fn count(&self) -> usize {
        self.entries.lock().unwrap().len()
    }

    /// Registers a connection under a new id, or takes over `resume` (an id whose journal the
    /// caller already read), closing the connection that held it.
    pub fn register(
        &self,
        binding: Vec<u8>,
        journal_capacity: usize,
        resume: Option<&str>,
    ) -> Registration {
        let (tx, rx) = mpsc::channel(16);
        let mut entries = self.entries.lock().unwrap();
        if let Some(id) = resume
            && let Some(entry) = entries.get_mut(id)
        {
            if let Some(old) = entry.control.replace(tx) {
                let _ = old.try_send(Control::Close);
            }
            entry.closed_at = None;
            entry.presence = None;
            entry.credential = binding;
            entry.generation += 1;
            return Registration {
                id: id.to_owned(),
                generation: entry.generation,
                journal: Arc::clone(&entry.journal),
                credential: entry.credential.clone(),
                control: rx,
            };
        }
        let id = new_id();
        let journal = match self.journals {
            Some(_) => Journal::kept(journal_capacity, self.log.is_some()),
            None => Journal::new(journal_capacity),
        };
        let journal = Arc::new(Mutex::new(journal));
        entries.insert(
            id.clone(),
            Entry {
                journal: Arc::clone(&journal),
                credential: binding.clone(),
                control: Some(tx),
                presence: None,
                closed_at: None,
                generation: 0,
            },
        );
        Registration {
            id,
            generation: 0,
            journal,
            credential: binding,
            control: rx,
        }
    }

    /// The journal of a connection, open or recently closed, for the credential that opened
    /// it (a resume id alone does not let anyone take a connection over).
    pub fn journal(&self, id: &str, binding: &[u8]) -> Option<Arc<Mutex<Journal>>> {
        let entries = self.entries.lock().unwrap();
        entries
            .get(id)
            .filter(|e| e.credential == binding)
            .map(|e| Arc::clone(&e.journal))
    }

    /// Hands what each journal recorded since its last write to the bus. Run every
    /// `KEEP_EVERY`: a token a client got is kept within that time, and the cost of keeping
    /// is one write per connection per period, whatever the rate of events.
    pub fn keep_all(&self) -> usize {
        let Some(journals) = &self.journals else {
            return 0;
        };
        let mut handed = 0;
        let mut entries = self.entries.lock().unwrap();
        entries.retain(|id, entry| {
            let mut journal = entry.journal.lock().unwrap();
            if journal.moved() {
                // Resumed on another node, which holds the connection now.
                if let Some(control) = entry.control.take() {
                    let _ = control.try_send(Control::Close);
                }
                return false;
            }
            if journal.writing() {
                // Its last write is under way: this one waits for it.
                handed += 1;
            } else if let Some(mut write) = journal.unkept() {
                write.connection = id.clone();
                write.credential = entry.credential.clone();
                journals.keep_journal(write);
                handed += 1;
            }
            true
        });
        handed
    }

    /// Logs what a connection's journal recorded since it was last logged, if there is a
    /// log: called before the events whose ids name it are written.
    pub fn log(&self, registration: &Registration) {
        let Some(log) = &self.log else {
            return;
        };
        let mut journal = registration.journal.lock().unwrap();
        let Some(mut write) = journal.unlogged() else {
            return;
        };
        write.connection = registration.id.clone();
        // Needed where the journal starts (over); the log's other records continue it.
        if write.reset {
            write.credential = registration.credential.clone();
        }
        if !log.append(&write) {
            journal.log_lost();
        }
    }

    /// Hands every journal's last entries to their keeper and waits until they are kept:
    /// they name the ids clients reconnect with (at shutdown). A journal whose last write
    /// was under way gets its next one in a later round.
    pub async fn flush(&self) -> Result<(), String> {
        let Some(journals) = &self.journals else {
            return Ok(());
        };
        for _ in 0..FLUSH_ROUNDS {
            let handed = self.keep_all();
            journals.flush().await?;
            if handed == 0 {
                break;
            }
        }
        Ok(())
    }

    /// The control line of an open connection, for a principal bound as the one that
    /// opened it (see `Principal::binding`).
    pub fn control(
        &self,
        id: &str,
        binding: &[u8],
    ) -> Result<(mpsc::Sender<Control>, Arc<Mutex<Journal>>), ErrorInfo> {
        let entries = self.entries.lock().unwrap();
        let not_found = || {
            ErrorInfo::new(
                crate::wire::envelope::codes::NOT_FOUND,
                format!("no open connection {id:?}"),
            )
        };
        let entry = entries.get(id).ok_or_else(not_found)?;
        if entry.credential != binding {
            return Err(ErrorInfo::new(
                crate::wire::envelope::codes::NOT_PERMITTED,
                "only the connection's own credentials may change it",
            ));
        }
        let control = entry.control.clone().ok_or_else(not_found)?;
        Ok((control, Arc::clone(&entry.journal)))
    }

    /// Asks the node holding connection `id`, when another node does (nodes sharing a bus),
    /// to carry out `change`: its answer, or `None`.
    pub async fn ask_holder(
        &self,
        id: &str,
        binding: &[u8],
        change: &Change,
    ) -> Result<Option<Answer>, ErrorInfo> {
        let Some(journals) = &self.journals else {
            return Ok(None);
        };
        let unavailable = |e: String| ErrorInfo::new(crate::wire::envelope::codes::UNAVAILABLE, e);
        let answer = journals
            .ask_holder(id, binding, change.to_bytes())
            .await
            .map_err(unavailable)?;
        answer
            .map(|bytes| read_answer(&bytes))
            .transpose()
            .map_err(|e| {
                unavailable(format!(
                    "the node holding connection {id:?} answered oddly: {e}"
                ))
            })
    }

    /// Keeps the presence of connection `id`'s subscriber, for the changes of its streams,
    /// unless another has taken it over since.
    pub fn set_presence(&self, id: &str, generation: u64, presence: Presence) {
        let mut entries = self.entries.lock().unwrap();
        if let Some(entry) = entries.get_mut(id)
            && entry.generation == generation
        {
            entry.presence = Some(presence);
        }
    }

    /// The presence of connection `id`'s subscriber, if its streams enter it.
    pub fn presence(&self, id: &str) -> Option<Presence> {
        let entries = self.entries.lock().unwrap();
        entries.get(id)?.presence.clone()
    }

    /// Marks a connection closed, unless another has taken it over since.
    pub fn closed(&self, id: &str, generation: u64) {
        let mut entries = self.entries.lock().unwrap();
        if let Some(entry) = entries.get_mut(id)
            && entry.generation == generation
        {
            entry.control = None;
            entry.presence = None;
            entry.closed_at = Some(Instant::now());
        }
    }

    /// Forgets connections closed for longer than `keep`.
    pub fn sweep(&self, keep: Duration) {
        let mut entries = self.entries.lock().unwrap();
        entries.retain(|id, e| {
            let live = e.closed_at.is_none_or(|t| t.elapsed() < keep);
            if let (false, Some(journals)) = (live, &self.journals) {
                journals.forget_journal(id);
            }
            live
        });
    }
}

/// Connection ids: 12 base-36 characters, unguessable enough that knowing one is not how a
/// client gets in (credentials are checked too).
fn new_id() -> String {
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::rng();
    (0..12)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}
