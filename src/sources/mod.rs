//! Sources write into channels: HTTP publish, pollers (JSON APIs as state channels) and
//! relays (upstream SSE servers as log channels).

pub mod failure;
pub mod poller;
pub mod publish;
pub mod relay;
pub mod target;
pub mod topic;
pub mod upstream;
