//! Numbers travel as the text they were sent as, on every surface: published messages in
//! history, SSE and NDJSON; polled documents in `data` and in `patch` events. A gateway that
//! rewrites `1E5` as `1e+5` or `-0` as `0` changes what its users' clients read.

mod common;

use std::time::Duration;

use common::upstream::Upstream;
use common::{Server, SseStream, client};
use streamgate::wire::json;

/// Exponents in every spelling, signed zeros, and more digits than any float holds.
const ODD: &str = "[1e400,1E5,1E+5,1e-5,1E-400,2.5e0,-0,-0.0,0.0,1.50,\
                   12345678901234567890123456,-98765432109876543210.12345678901234567890]";

#[tokio::test]
async fn published_numbers_keep_their_text_in_history_sse_and_ndjson() {
    let server = Server::start("");
    let body = format!("{{\"name\":\"odd\",\"data\":{ODD}}}");
    let resp = client()
        .post(server.url("/channels/numbers/messages"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    // A batch goes through the same reader.
    let resp = client()
        .post(server.url("/channels/numbers/messages"))
        .header("content-type", "application/json")
        .body(format!("[{{\"data\":{ODD}}},{{\"data\":-0}}]"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let expected = format!("\"data\":{ODD}");

    let history = common::get_text(&server, "/channels/numbers/messages").await;
    assert_eq!(history.matches(&expected).count(), 2, "{history}");
    assert!(history.contains("\"data\":-0}"), "{history}");

    let mut sse = SseStream::open(&server.url("/sse?channels=numbers&rewind=3")).await;
    for event in sse.events(3).await.iter().take(2) {
        assert!(event.data.contains(&expected), "{}", event.data);
    }
    let mut raw =
        SseStream::open(&server.url("/sse?channels=numbers&rewind=1&enveloped=false")).await;
    assert_eq!(raw.next_event().await.unwrap().data, "-0");

    let ndjson = read_for(
        &server.url("/event-stream?channels=numbers&rewind=3"),
        Duration::from_millis(500),
    )
    .await;
    assert_eq!(ndjson.matches(&expected).count(), 2, "{ndjson}");
}

#[tokio::test]
async fn polled_numbers_keep_their_text_in_data_and_patches() {
    let document = |extra: &str| json::parse(format!("{{\"n\":{ODD}{extra}}}").as_bytes()).unwrap();
    let upstream = Upstream::start(document("")).await;
    let server = Server::start(
        "[poll]\nallowed_targets = [\"http://127.0.0.1:*/*\"]\ninterval_ms = 100\nmin_interval_ms = 50\n",
    );
    let url = server.url(&format!("/{}", upstream.url("/odd")));
    let mut stream = SseStream::open(&url).await;
    let first = stream.next_event().await.unwrap();
    assert_eq!(first.event, "data");
    assert_eq!(first.data, format!("{{\"n\":{ODD}}}"));

    // A new member with odd numbers arrives as a patch carrying them as written.
    upstream.set(document(",\"m\":[1E+2,-0,7e07]"));
    let patch = stream.next_event().await.unwrap();
    assert_eq!(patch.event, "patch", "{patch:?}");
    assert!(patch.data.contains("[1E+2,-0,7e07]"), "{}", patch.data);
}

/// What a non-SSE stream sends within `wait`.
async fn read_for(url: &str, wait: Duration) -> String {
    let mut resp = client().get(url).send().await.unwrap();
    let mut text = Vec::new();
    let deadline = tokio::time::Instant::now() + wait;
    while let Ok(Ok(Some(chunk))) = tokio::time::timeout_at(deadline, resp.chunk()).await {
        text.extend_from_slice(&chunk);
    }
    String::from_utf8(text).unwrap()
}
