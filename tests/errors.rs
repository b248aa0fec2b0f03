//! Every ErrorInfo's `href` leads to the error reference the gateway serves, and that
//! reference describes every code the gateway can send.

mod common;

use common::{Server, client, expect_error};

const REFERENCE: &str = include_str!("../docs/ERRORS.md");
const CODES_SOURCE: &str = include_str!("../src/wire/envelope.rs");

#[tokio::test]
async fn hrefs_lead_to_the_served_error_reference() {
    let server = Server::start("");
    let bad_json = client()
        .post(server.url("/channels/x/messages"))
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    let not_found = client().get(server.url("/nowhere")).send().await.unwrap();
    for (resp, status, code) in [(bad_json, 400, 40000), (not_found, 404, 40400)] {
        let body = expect_error(resp, status, code).await;
        let href = body["error"]["href"].as_str().unwrap().to_owned();
        assert_eq!(href, format!("/docs/errors#{code}"));
        let (path, anchor) = href.split_once('#').unwrap();
        let page = client().get(server.url(path)).send().await.unwrap();
        assert_eq!(page.status(), 200);
        assert_eq!(
            page.headers()["content-type"],
            "text/markdown; charset=utf-8"
        );
        let text = page.text().await.unwrap();
        assert_eq!(text, REFERENCE);
        assert!(text.contains(&format!("<a id=\"{anchor}\"></a>")));
    }
}

#[test]
fn the_reference_lists_every_code() {
    let codes: Vec<&str> = CODES_SOURCE
        .lines()
        .filter_map(|line| line.trim().strip_prefix("pub const "))
        .filter_map(|rest| rest.split_once(": u32 = "))
        .map(|(_, value)| value.trim_end_matches(';'))
        .collect();
    assert!(codes.len() >= 17, "codes found: {codes:?}");
    for code in codes {
        assert!(
            REFERENCE.contains(&format!("| <a id=\"{code}\"></a>{code} |")),
            "docs/ERRORS.md does not describe {code}"
        );
    }
}
