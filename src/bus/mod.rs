//! What must outlive the process: channels' history, kept on disk when `[bus] data_dir` is
//! set. The hub keeps fan-out to local subscribers; the store owns what a restart or a crash
//! must not lose.
//!
//! - [`store`]: the embedded store (redb) and its writer, which groups the commits of
//!   concurrent publishes.

pub mod store;
