//! # streamgate
//!
//! A streaming API gateway: it turns what people already have into live streams over HTTP
//! standards. One idea holds the code together: **every stream is a channel; sources write
//! into channels; connections (outlets) read out of them.**
//!
//! ## Map
//! - [`config`]: the TOML model, `STREAMGATE_<SECTION>__<KEY>` overrides, validation.
//! - [`catalog`]: the APIs, relays and keys the admin API changes while serving, stored
//!   next to the config file.
//! - [`hub`]: channels (ordered, bounded history, subscriber wakers), the one append path
//!   every source writes through, resume cursors, the event type whose wire encodings are
//!   computed once and shared by every subscriber.
//! - [`bus`]: where appended events get their positions, and what must outlive the process
//!   or span nodes, behind the `Bus` the hub calls: memory only, pub/sub history and polled
//!   documents on disk (`[bus] data_dir`, committed in groups before a publish is
//!   acknowledged or an event delivered), or Redis for many nodes.
//! - [`sources`]: what writes into channels: HTTP publish, pollers that turn a JSON API
//!   into a state channel, relays that share one upstream SSE connection per topic through a
//!   log channel (the supervisor that starts and stops both with their subscribers, topics,
//!   failures as in-band errors, the target policy against SSRF, the upstream client).
//! - [`outlet`]: one client connection: its positions in its channels, keepalive, batching,
//!   gap notices. Its queue is the channels' history; it holds only positions.
//! - [`wire`]: SSE, NDJSON and Mercure encoding, Ably's `Message` / `ErrorInfo`, an SSE
//!   parser, YAML.
//! - [`http`]: the router and one file per surface (channels, streams, polls, relays and
//!   passthrough, connections, the Mercure hub, the AsyncAPI document, health), and the
//!   request limits and CORS layered around them.
//! - [`auth`]: credentials (`key`, `accessToken`, `Authorization`), API keys and JWTs, and
//!   capabilities: who may do what on which channel, API or relay.
//! - [`metrics`]: Prometheus handles for the hot paths.
//! - [`procfs`]: a process's memory, CPU and open files, from `/proc`.
//! - [`names`]: what clients name, checked alike on every surface: channel names and the
//!   gateway's own query parameters.
//! - [`clock`]: the wall-clock milliseconds events, history and tokens are stamped with.
//! - [`glob`]: the `*` patterns of target policies and capabilities.
//! - [`server`]: wiring it all up: the accept loop with its connection limits, the own
//!   HTTP/1 loop that writes streams straight to their sockets (hyper serves requests with
//!   a body and HTTP/2), graceful shutdown.
//! - [`patch`]: the JSON Patch (RFC 6902) diff engine and atomic apply.
//! - [`demo`]: the built-in changing API behind `serve --demo`.
//! - [`tail`]: `streamgate tail`, a terminal client: a delta stream's live document or a
//!   channel's messages, on a screen fitted to the terminal, or as lines for scripts.
//! - [`bench`]: `streamgate bench`, the load generator.
//!
//! ## Layers
//! Imports run one way: [`server`] → the surfaces ([`http`], [`demo`], [`tail`], [`bench`])
//! → [`outlet`] and [`catalog`] → [`sources`] → [`hub`] → the leaves, which every layer may
//! use ([`auth`] → [`config`] and [`patch`] → [`names`] → [`wire`], [`metrics`], [`clock`],
//! [`glob`] → [`procfs`]). `tests/module_imports.rs` checks it.

pub mod auth;
pub mod bench;
pub mod bus;
pub mod catalog;
pub mod clock;
pub mod config;
pub mod demo;
pub mod glob;
pub mod http;
pub mod hub;
pub mod metrics;
pub mod names;
pub mod outlet;
pub mod patch;
pub mod procfs;
pub mod server;
pub mod sources;
pub mod tail;
pub mod wire;
