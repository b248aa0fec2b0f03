//! The load generator behind `streamgate bench`.
