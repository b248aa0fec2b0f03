//! Asking the node that holds a connection to change it.
//!
//! A dynamic connection's streams are changed by requests a load balancer may send to any
//! node, but only the node holding the connection's stream can change it. Each node hears
//! its own pub/sub channel (`sg:node:{id}`, on the announcement connection); a node that
//! gets a change for a connection it does not hold looks up the holder (the journal's
//! `owner`), asks it there, and waits for the answer on its own channel.
//!
//! A question: `q`, the asker, the question's number, the connection, the credential's
//! digest (hex), then the change, one per line. An answer: `a`, the number, the answer.
//! The change and the answer are opaque here (`outlet::change` reads them).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{mpsc, oneshot};

use super::{RedisBus, TIMEOUT, hex, journal_key};

/// Questions waiting to be taken up by this node at most; beyond, they go unanswered (the
/// asker times out and its client tries again).
pub(super) const QUESTIONS: usize = 256;

/// A change another node asks of a connection this node holds.
#[derive(Debug)]
pub struct Asked {
    pub connection: String,
    /// The digest of the credential the change came with.
    pub credential: Vec<u8>,
    pub change: Vec<u8>,
    asker: String,
    number: u64,
}

/// The questions this node asked and waits for, and where their answers come.
#[derive(Debug)]
pub(super) struct Waiting {
    /// This node's pub/sub channel (named once: every announcement is compared with it).
    inbox: String,
    next: AtomicU64,
    answers: Mutex<HashMap<u64, oneshot::Sender<Vec<u8>>>>,
}

impl RedisBus {
    /// The pub/sub channel this node hears questions and answers on.
    pub(super) fn inbox(&self) -> &str {
        &self.waiting.inbox
    }

    /// Asks the node holding `connection` to carry out `change` for the credential whose
    /// digest is `credential`: its answer, or `None` when no other node holds it. `Err` when
    /// Redis or that node does not answer in time.
    pub async fn ask(
        &self,
        connection: &str,
        credential: &[u8],
        change: &[u8],
    ) -> Result<Option<Vec<u8>>, String> {
        let mut commands = self.commands.clone();
        let mut owner = redis::cmd("HGET");
        owner.arg(journal_key(connection)).arg("owner");
        let owner: Option<String> = self.timed(owner.query_async(&mut commands)).await?;
        let Some(owner) = owner.filter(|owner| *owner != self.owner) else {
            return Ok(None);
        };
        let number = self.waiting.next.fetch_add(1, Ordering::Relaxed);
        let (answered, answer) = oneshot::channel();
        self.waiting
            .answers
            .lock()
            .unwrap()
            .insert(number, answered);
        // Forgotten however this ends, the asker's client gone included.
        let _forget = Forget(&self.waiting, number);
        let mut question = format!(
            "q\n{}\n{number}\n{connection}\n{}\n",
            self.owner,
            hex(credential)
        )
        .into_bytes();
        question.extend_from_slice(change);
        let mut publish = redis::cmd(self.publish);
        publish.arg(inbox(&owner)).arg(question);
        let heard: i64 = self.timed(publish.query_async(&mut commands)).await?;
        let late = || {
            format!("the node holding connection {connection:?} did not answer in time; try again")
        };
        // Nobody heard: that node is reconnecting to Redis, or gone (its client then
        // resumes elsewhere, which moves the connection).
        if heard == 0 {
            return Err(late());
        }
        match tokio::time::timeout(TIMEOUT, answer).await {
            Ok(Ok(answer)) => Ok(Some(answer)),
            _ => Err(late()),
        }
    }

    /// Sends `answer` to the node that asked `asked`.
    pub async fn answer(&self, asked: &Asked, answer: &[u8]) -> Result<(), String> {
        let mut message = format!("a\n{}\n", asked.number).into_bytes();
        message.extend_from_slice(answer);
        let mut publish = redis::cmd(self.publish);
        publish.arg(inbox(&asked.asker)).arg(message);
        let mut commands = self.commands.clone();
        self.timed(publish.query_async::<i64>(&mut commands))
            .await?;
        Ok(())
    }

    /// A message on this node's inbox: a question goes to `questions`, an answer to the
    /// question waiting for it. Unreadable ones are dropped.
    pub(super) fn heard(&self, payload: &[u8], questions: &mpsc::Sender<Asked>) {
        let mut parts = payload.splitn(6, |&b| b == b'\n');
        match parts.next() {
            Some(b"q") => {
                let mut text = || String::from_utf8(parts.next()?.to_vec()).ok();
                let (Some(asker), Some(number), Some(connection), Some(credential)) =
                    (text(), text(), text(), text())
                else {
                    return;
                };
                let (Ok(number), Some(credential), Some(change)) =
                    (number.parse(), unhex(&credential), parts.next())
                else {
                    return;
                };
                let asked = Asked {
                    connection,
                    credential,
                    change: change.to_vec(),
                    asker,
                    number,
                };
                // A node too busy to take it leaves the asker to time out.
                let _ = questions.try_send(asked);
            }
            Some(b"a") => {
                let Some(rest) = payload.strip_prefix(b"a\n") else {
                    return;
                };
                let mut rest = rest.splitn(2, |&b| b == b'\n');
                let number = rest
                    .next()
                    .and_then(|n| std::str::from_utf8(n).ok()?.parse().ok());
                let (Some(number), Some(answer)) = (number, rest.next()) else {
                    return;
                };
                let waiting = self.waiting.answers.lock().unwrap().remove(&number);
                if let Some(waiting) = waiting {
                    let _ = waiting.send(answer.to_vec());
                }
            }
            _ => {}
        }
    }
}

impl Waiting {
    /// Nothing asked yet by `node`.
    pub(super) fn of(node: &str) -> Waiting {
        Waiting {
            inbox: inbox(node),
            next: AtomicU64::default(),
            answers: Mutex::default(),
        }
    }
}

/// Drops a question's place among those waiting for an answer.
struct Forget<'a>(&'a Waiting, u64);

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.0.answers.lock().unwrap().remove(&self.1);
    }
}

fn inbox(node: &str) -> String {
    format!("sg:node:{node}")
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_read_back() {
        let digest = [0u8, 1, 0xab, 0xff];
        assert_eq!(unhex(&hex(&digest)), Some(digest.to_vec()));
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("zz"), None);
    }
}
