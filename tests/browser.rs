//! Headless Chromium against a real gateway: what browsers do with the gateway's surfaces
//! (a page's EventSource and fetch), checked by scripts in `tests/browser/` run with Node and
//! playwright-core. `./test.sh` installs Chromium and the scripts' packages when missing.

mod common;

use std::process::Command;

use common::Server;
use serde_json::json;

/// Runs `tests/browser/{script}` with `args`; panics with its output unless it succeeds.
fn run(script: &str, args: &[&str]) {
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
