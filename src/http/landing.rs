//! `GET /`: a page that says what this gateway serves, made from the live config: the
//! pub/sub surface, each configured API and relay by name and path (never their upstreams,
//! which may carry credentials), and where the machine-readable descriptions are; and the
//! node's figures, live over `GET /figures` (`clients/landing.js`). It shows what anyone may
//! see (`/asyncapi.json` and `/metrics` say as much); the per-channel and per-connection
//! detail is read from `/admin/stats` with an admin key the visitor types in.

use std::fmt::Write;

use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, LINK};
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::config::Config;

pub async fn page(State(state): State<AppState>) -> Response {
    let config = state.catalog.config();
    let headers = [
        (CONTENT_TYPE, "text/html; charset=utf-8"),
        (CACHE_CONTROL, "no-cache"),
    ];
    let mut response = (headers, render(&config)).into_response();
    if state.mercure.is_some() {
        response
            .headers_mut()
            .insert(LINK, super::mercure::DISCOVERY);
    }
    response
}

const STYLE: &str = "body{font:16px/1.5 system-ui,sans-serif;max-width:46rem;margin:2rem auto;\
    padding:0 1rem;color:#222}code{background:#f3f3f3;padding:0 .2em}h2{margin-top:2rem}\
    #figures{display:grid;grid-template-columns:repeat(auto-fill,minmax(10rem,1fr));gap:.5rem;\
    margin:0}#figures div{background:#f6f8fa;border-radius:6px;padding:.4rem .7rem}\
    #figures dt{font-size:.8rem;color:#666}#figures dd{margin:0;font-size:1.4rem;\
    font-variant-numeric:tabular-nums}#chart{width:100%;height:120px;background:#fbfbfb;\
    border:1px solid #eee;margin-top:.7rem}#chart polyline{fill:none;stroke-width:1.5}\
    .delivered{stroke:#0a7d4f}.published{stroke:#3158c9}.small{font-size:.85rem;color:#666}\
    table{border-collapse:collapse;width:100%;font-size:.85rem}th,td{text-align:left;\
    padding:.2rem .4rem;border-bottom:1px solid #eee;word-break:break-all}";

/// The live figures, their chart and the admin sign-in; `clients/landing.js` fills them.
const FIGURES: &str = concat!(
    "<h2>Live figures <span class=\"small\" id=\"figures-state\">connecting…</span></h2>\n\
     <dl id=\"figures\">\n\
     <div><dt>Open streams</dt><dd data-figure=\"connections\">–</dd></div>\n\
     <div><dt>Published / s</dt><dd data-figure=\"publishedPerSecond\">–</dd></div>\n\
     <div><dt>Delivered / s</dt><dd data-figure=\"deliveredPerSecond\">–</dd></div>\n\
     <div><dt>Polls / s</dt><dd data-figure=\"pollsPerSecond\">–</dd></div>\n\
     <div><dt>Polled topics</dt><dd data-figure=\"polledTopics\">–</dd></div>\n\
     <div><dt>Failing topics</dt><dd data-figure=\"failingTopics\">–</dd></div>\n\
     <div><dt>Relay upstreams</dt><dd data-figure=\"relayUpstreams\">–</dd></div>\n\
     <div><dt>… connected</dt><dd data-figure=\"relayUpstreamsConnected\">–</dd></div>\n\
     </dl>\n\
     <svg id=\"chart\" viewBox=\"0 0 600 120\" preserveAspectRatio=\"none\" role=\"img\" \
     aria-label=\"messages per second, last minutes\"><polyline class=\"delivered\"/>\
     <polyline class=\"published\"/></svg>\n\
     <p class=\"small\">Messages per second over the last minutes (<span id=\"chart-points\">0\
     </span> seconds, top <span id=\"chart-top\">1/s</span>): <span style=\"color:#0a7d4f\">\
     delivered</span> and <span style=\"color:#3158c9\">published</span>. This node only; \
     also at <a href=\"/figures\">/figures</a> (server-sent events, one a second).</p>\n\
     <h2>Detail</h2>\n<p class=\"small\">Channels, topics and connections one by one, with an \
     admin key (<code>name:secret</code>) or token, held by this page only.</p>\n\
     <form id=\"sign-in\"><input name=\"key\" type=\"password\" placeholder=\"admin key\" \
     autocomplete=\"off\" required> <button>Sign in</button> <span class=\"small\" \
     id=\"sign-in-state\"></span></form>\n<div id=\"detail\"></div>\n<script type=\"module\">\n",
    include_str!("../../clients/landing.js"),
    "</script>\n"
);

/// The page for `config`.
fn render(config: &Config) -> String {
    let mut html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>streamgate</title><style>{STYLE}</style></head><body>\n\
         <h1>streamgate</h1>\n<p>A streaming API gateway, version {}: pub/sub channels, \
         JSON APIs as live delta streams, and upstream SSE servers fanned out.</p>\n",
        env!("CARGO_PKG_VERSION")
    );
    html.push_str(FIGURES);
    html.push_str(
        "<h2>Pub/sub channels</h2>\n<p>Publish with <code>POST /channels/{channel}/messages\
         </code>; subscribe with <code>GET /sse?channels=a,b</code> (server-sent events) or \
         <code>GET /event-stream?channels=a,b</code> (NDJSON); read history with \
         <code>GET /channels/{channel}/messages</code>.</p>\n<h2>Polled APIs</h2>\n",
    );
    if config.apis.is_empty() {
        html.push_str("<p>None configured.</p>\n");
    } else {
        html.push_str("<ul>\n");
        for api in &config.apis {
            let every = api.interval_ms.unwrap_or(config.poll.interval_ms);
            let _ = writeln!(
                html,
                "<li><code>GET /apis/{}/{{path}}</code>: polled every {every} ms, sent as a \
                 <code>data</code> snapshot then <code>patch</code> events</li>",
                escape(&api.name)
            );
        }
        html.push_str("</ul>\n");
    }
    if !config.poll.allowed_targets.is_empty() {
        html.push_str(
            "<p>Any allowed URL too: <code>GET /{url}</code>, e.g. \
             <code>/https://api.example.com/items</code>.</p>\n",
        );
    }
    html.push_str("<h2>Relays of upstream SSE servers</h2>\n");
    if config.relays.is_empty() {
        html.push_str("<p>None configured.</p>\n");
    } else {
        html.push_str("<ul>\n");
        for relay in &config.relays {
            let _ = writeln!(
                html,
                "<li>{} at <code>GET {}</code></li>",
                escape(&relay.name),
                escape(&relay.listen_path)
            );
        }
        html.push_str("</ul>\n");
    }
    if let Some(mercure) = &config.mercure {
        let who = match mercure.anonymous {
            true => "anyone may subscribe to public updates",
            false => "subscribers need a token",
        };
        let _ = writeln!(
            html,
            "<h2>Mercure hub</h2>\n<p>At <code>/.well-known/mercure</code>: publish with a form \
             <code>POST</code> and a JWT, subscribe with <code>GET ?topic=...</code>; {who}.</p>"
        );
    }
    html.push_str(
        "<h2>Descriptions</h2>\n<ul>\n\
         <li><a href=\"/asyncapi.json\">/asyncapi.json</a> and \
         <a href=\"/asyncapi.yaml\">/asyncapi.yaml</a>: what is served, as AsyncAPI 3.0</li>\n\
         <li><a href=\"/metrics\">/metrics</a> (Prometheus), \
         <a href=\"/healthz\">/healthz</a>, <a href=\"/readyz\">/readyz</a></li>\n\
         <li><a href=\"/admin/openapi.json\">/admin/openapi.json</a>: the admin API \
         (with an admin key)</li>\n</ul>\n<h2>Documentation</h2>\n<ul>\n",
    );
    for (page, title, _) in super::docs::PAGES {
        let _ = writeln!(
            html,
            "<li><a href=\"/docs/{page}\">/docs/{page}</a>: {title}</li>"
        );
    }
    html.push_str("</ul>\n</body></html>\n");
    html
}

/// `text` as HTML text or attribute value.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
