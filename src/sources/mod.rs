//! Sources write into channels. This one is HTTP publish; pollers and relays follow.

pub mod poller;
pub mod publish;
pub mod target;
pub mod topic;
pub mod upstream;
