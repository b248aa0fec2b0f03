//! Headless Chromium against a real gateway: what browsers do with the gateway's surfaces
//! (a page's EventSource and fetch, the JavaScript client), checked by scripts in
//! `tests/browser/` run with Node and playwright-core. `./test.sh` installs Chromium and the
//! scripts' packages when missing.

mod common;

use std::process::Command;

use common::upstream::Upstream;
use common::{Server, client, get_json};
use serde_json::json;

/// One browser at a time: two at once on a small machine make each slow enough to time out.
static ONE_BROWSER: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `tests/browser/{script}` with `args`; panics with its output unless it succeeds.
fn run(script: &str, args: &[&str]) {
    let _turn = ONE_BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        dir.join("node_modules/playwright-core").exists(),
        "tests/browser has no node_modules: run ./test.sh, which installs them"
    );
    let output = Command::new("node")
        .arg(dir.join(script))
        .args(args)
        .output()
        .expect("running node (./test.sh checks it is there)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{script} failed:\n{stdout}\n{stderr}"
    );
    println!("{stdout}");
}

#[test]
fn a_page_subscribes_and_publishes_through_the_mercure_hub() {
    let key = "!ChangeThisMercureHubJWTSecretKey!";
    let server = Server::start(&format!(
        "[mercure]\npublisher_jwt_key = {key:?}\nanonymous = true\n"
    ));
    let claims = json!({"mercure": {"publish": ["*"], "subscribe": ["*"]}});
    let key = jsonwebtoken::EncodingKey::from_secret(key.as_bytes());
    let jwt = jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).unwrap();
    run("mercure.mjs", &[&server.url(""), &jwt]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_javascript_client_keeps_channels_and_a_document_over_one_connection() {
    // A document of which each version changes a little (so the gateway sends patches);
    // client.mjs knows the same shape, and checks every version the page holds is whole.
    let version = |v: u64| {
        let items: Vec<_> = (0..20)
            .map(|n| json!({"n": n, "name": format!("item {n}")}))
            .collect();
        json!({"v": v, "price": v * 3, "key/with~": v % 3, "items": items})
    };
    let upstream = Upstream::start(version(1)).await;
    let server = Server::start(&format!(
        "[poll]\nallowed_targets = [\"http://127.0.0.1:*/*\"]\ninterval_ms = 100\n\
         min_interval_ms = 50\n[[api]]\nname = \"market\"\nbase_url = \"{}\"\n\
         query = {{ apikey = \"s3cret\" }}\n",
        upstream.url("/")
    ));
    let api = upstream.url("/quotes");
    // The API changes for as long as the page watches it (it may wait for its browser).
    let changing = tokio::spawn(async move {
        for v in 2.. {
            tokio::time::sleep(std::time::Duration::from_millis(150)).await;
            upstream.set(version(v));
        }
    });
    let base = server.url("");
    let page = tokio::task::spawn_blocking(move || {
        run("client.mjs", &[&base, &api, "/apis/market/quotes"])
    });
    page.await.unwrap();
    changing.abort();
}

#[tokio::test]
async fn the_client_is_served_with_an_etag_to_revalidate() {
    let server = Server::start("");
    let url = server.url("/client/streamgate.js");
    let first = client().get(&url).send().await.unwrap();
    assert_eq!(first.status(), 200);
    let headers = first.headers().clone();
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert_eq!(headers["cache-control"], "public, no-cache");
    let etag = headers["etag"].to_str().unwrap().to_owned();
    let source = first.text().await.unwrap();
    let packaged = include_str!("../clients/js/streamgate.js");
    assert_eq!(source, packaged, "the source in clients/js, as it is");
    let again = client()
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(again.headers()["etag"], etag.as_str());
    let stale = client()
        .get(&url)
        .header("if-none-match", "\"another\"")
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 200);
}

#[test]
fn the_demo_page_shows_live_quotes_and_publishes_on_its_channel() {
    let server = Server::start_with("", &["--demo"], &[]);
    run("demo.mjs", &[&server.url("")]);
}

#[test]
fn the_client_asks_for_a_new_token_when_its_token_expires() {
    // The page signs its tokens with the key `app` of KEYS as it starts (its browser may
    // wait for another test's): the first expires seconds later.
    let server = Server::start(common::presence::KEYS);
    run(
        "client_token.mjs",
        &[&server.url(""), "app", "app-secret-1"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_subscribes_again_when_a_restarted_gateway_forgot_its_connection() {
    // Without data_dir: the connection is forgotten.
    restart_under_the_client("", "forgotten").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_resumes_its_connection_on_a_restarted_gateway_that_kept_it() {
    let data = tempfile::tempdir().unwrap();
    restart_under_the_client(&format!("[bus]\ndata_dir = {:?}\n", data.path()), "kept").await;
}

/// Runs `client_restart.mjs` in `mode` against a gateway with `config`, restarted once the
/// page has its first message, then publishes `after`: once on a gateway that kept the
/// connection, until the page has it on one that forgot it.
async fn restart_under_the_client(config: &str, mode: &'static str) {
    let server = Server::start(config);
    let base = server.url("");
    let page = tokio::task::spawn_blocking(move || run("client_restart.mjs", &[&base, mode]));
    // Once the page has published (its browser may wait for another test's).
    let history = format!("/channels/restarts-{mode}/messages");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let kept: Vec<serde_json::Value> = get_json(&server, &history).await;
        if !kept.is_empty() || std::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // The page has `before` by now: the stream wrote it as it was published.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let server = server.restart();
    let channel = server.url(&history);
    loop {
        let published = client()
            .post(&channel)
            .json(&json!({"data": "after"}))
            .send()
            .await;
        if mode == "kept" {
            assert_eq!(published.unwrap().status(), 201);
            break;
        }
        if page.is_finished() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    page.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_landing_page_shows_live_figures_and_the_detail_to_an_admin() {
    let server = Server::start(common::OPS_AND_APP);
    let base = server.url("");
    let page = tokio::task::spawn_blocking(move || {
        run(
            "landing.mjs",
            &[&base, "ops:ops-secret", "orders-on-the-landing-page"],
        );
    });
    // A few messages a second, for as long as the page watches.
    let channel = server.url("/channels/orders-on-the-landing-page/messages?key=app:app-secret");
    while !page.is_finished() {
        let resp = client()
            .post(&channel)
            .json(&json!({"data": 1}))
            .send()
            .await;
        assert_eq!(resp.unwrap().status(), 201);
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    page.await.unwrap();
}

#[test]
fn a_page_over_tls_opens_more_streams_than_http1_allows() {
    let certs = tempfile::tempdir().unwrap();
    common::tls::issue(certs.path());
    let server = Server::start(&common::tls::config(certs.path(), ""));
    run("http2.mjs", &[&server.url("")]);
}
