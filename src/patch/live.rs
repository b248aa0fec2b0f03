//! A delta stream's document as a client keeps it: a `data` event replaces it, a `patch`
//! event is applied to it. Shared by `streamgate tail` and `streamgate bench poll`.

use serde_json::Value;

use crate::wire::json;
use crate::wire::sse_parser::SseEvent;

#[derive(Debug, Default, Clone)]
pub struct LiveDocument {
    document: Option<Value>,
}

impl LiveDocument {
    /// The document as of the last `data` or `patch` event.
    pub fn get(&self) -> Option<&Value> {
        self.document.as_ref()
    }

    /// Takes in one event: `Ok(true)` when it changed the document, `Ok(false)` for an event
    /// that does not touch it (`error`, `heartbeat`, messages). An `Err` means the document is
    /// out of step and has been forgotten: the client should reconnect for a fresh `data`.
    pub fn apply(&mut self, event: &SseEvent) -> Result<bool, String> {
        let data = || json::parse(event.data.as_bytes()).map_err(|e| format!("not JSON: {e}"));
        let applied = match event.event.as_str() {
            "data" => data().map(|document| self.document = Some(document)),
            "patch" => match (self.document.as_mut(), data()) {
                (Some(document), Ok(ops)) => super::parse(&ops)
                    .and_then(|p| super::apply(document, &p).map_err(|e| e.to_string())),
                (None, _) => Err("a patch came before any document".into()),
                (_, Err(e)) => Err(e),
            },
            _ => return Ok(false),
        };
        applied.map(|()| true).map_err(|e| {
            self.document = None;
            format!("cannot apply a {} event ({e})", event.event)
        })
    }
}
