//! Sources write into channels: HTTP publish, pollers (JSON APIs as state channels) and
//! relays (upstream SSE servers as log channels). Pollers and relays share one lifecycle,
//! the supervisor's: started by a topic's first subscriber, stopped after the last one left
//! (lingering), failures told once and backed off.

pub mod failure;
pub mod figures;
pub mod poller;
pub mod publish;
pub mod relay;
pub mod supervisor;
pub mod target;
pub mod topic;
pub mod upstream;
mod wanted;
