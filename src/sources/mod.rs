//! Sources write into channels. This one is HTTP publish; pollers and relays follow.

pub mod publish;
pub mod target;
