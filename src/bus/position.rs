//! A channel's position: `{epoch, offset}`, packed in a `u64` (the epoch in the high
//! `64 - OFFSET_BITS` bits). The bus gives positions (one node's bus right after the hub's
//! copy of the channel; a shared bus its own), and a channel draws a new epoch whenever its
//! history starts afresh, so a position of an earlier incarnation is never one of this one
//! (see `hub::cursor`, which writes positions for clients).

use rand::Rng;

/// Bits of a position that hold the offset; the epoch takes the other 20 (about a million
/// epochs, and 2^44 events per incarnation: five years at 100,000 events a second).
pub const OFFSET_BITS: u32 = 44;
pub const EPOCH_LIMIT: u64 = 1 << (64 - OFFSET_BITS);
const OFFSET_MASK: u64 = (1 << OFFSET_BITS) - 1;

/// The first position of a channel incarnation with a fresh epoch (never 0, so a position 0
/// is never anyone's).
pub fn fresh_base() -> u64 {
    position(fresh_epoch(), 0)
}

/// A fresh epoch, never 0.
pub fn fresh_epoch() -> u64 {
    rand::rng().random_range(1..EPOCH_LIMIT)
}

/// The position at `offset` of epoch `epoch` (below `2^20`; a larger one is cut).
pub fn position(epoch: u64, offset: u64) -> u64 {
    (epoch % EPOCH_LIMIT) << OFFSET_BITS | (offset & OFFSET_MASK)
}

/// The epoch and offset of `position`.
pub fn split(position: u64) -> (u64, u64) {
    (position >> OFFSET_BITS, position & OFFSET_MASK)
}
