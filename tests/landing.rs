//! The landing page's sources over real sockets: the node's figures (`GET /figures`), the
//! documentation pages it links, and the per-connection detail of `/admin/stats`. The page
//! itself is driven in Chromium by tests/browser.rs.

mod common;

use std::time::Duration;

use common::{Server, SseStream, client, expect_error, get_text, last_event_id};
use serde_json::{Value, json};
use streamgate::wire::sse_parser::SseFrame;

const FIGURE_KEYS: [&str; 10] = [
    "channels",
    "connections",
    "deliveredPerSecond",
    "failingTopics",
    "polledTopics",
    "pollsPerSecond",
    "publishedPerSecond",
    "relayUpstreams",
    "relayUpstreamsConnected",
    "time",
];

async fn next_figures(stream: &mut SseStream) -> Value {
    let event = stream.next_event().await.expect("figures every second");
    let figures: Value = serde_json::from_str(&event.data).unwrap();
    let mut keys: Vec<&str> = figures
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(keys, FIGURE_KEYS, "node-wide sums only: {figures}");
    figures
}

async fn publish_as_app(server: &Server, channel: &str, count: usize) {
    for i in 0..count {
        let resp = client()
            .post(server.url(&format!("/channels/{channel}/messages?key=app:app-secret")))
            .json(&json!({ "data": i }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201);
    }
}

#[tokio::test]
async fn figures_tell_anyone_the_nodes_traffic_once_a_second() {
    let server = Server::start(common::OPS_AND_APP);
    // Anonymous, on a gateway that asks credentials for everything else.
    let mut figures = SseStream::open(&server.url("/figures")).await;
    let first = next_figures(&mut figures).await;
    let second = next_figures(&mut figures).await;
    let apart = second["time"].as_u64().unwrap() - first["time"].as_u64().unwrap();
    assert!((900..=1500).contains(&apart), "{apart} ms apart");
    // The figures' own messages are not counted as published, nor as delivered.
    assert_eq!(second["publishedPerSecond"], 0.0, "{second}");
    assert_eq!(second["deliveredPerSecond"], 0.0, "{second}");
    assert!(second["connections"].as_u64().unwrap() >= 1, "{second}");

    publish_as_app(&server, "orders", 5).await;
    // Five messages, told within the next seconds' rates.
    let mut published = 0.0;
    for _ in 0..3 {
        published += next_figures(&mut figures).await["publishedPerSecond"]
            .as_f64()
            .unwrap();
    }
    assert!((4.0..=6.0).contains(&published), "{published} published");
}

#[tokio::test]
async fn a_new_watcher_gets_the_last_minutes_first_and_resumes_after_its_last() {
    let server = Server::start("");
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let mut figures = SseStream::open(&server.url("/figures")).await;
    // What the node told before anyone watched comes at once.
    let mut kept = Vec::new();
    while let Some(SseFrame::Event(event)) =
        figures.next_frame_within(Duration::from_millis(300)).await
    {
        kept.push(event);
    }
    assert!(kept.len() >= 3, "{} kept", kept.len());
    let resumed_from = &kept[kept.len() - 2];
    let mut resumed =
        SseStream::open_with(&server.url("/figures"), last_event_id(&resumed_from.id)).await;
    let next = resumed.next_event().await.unwrap();
    assert_eq!(next.id, kept[kept.len() - 1].id);
}

#[tokio::test]
async fn the_documentation_is_served_and_linked_from_the_landing_page() {
    let server = Server::start("");
    let landing = get_text(&server, "/").await;
    for page in ["channels", "polling", "client", "errors"] {
        assert!(
            landing.contains(&format!("href=\"/docs/{page}\"")),
            "{page}"
        );
        let resp = client()
            .get(server.url(&format!("/docs/{page}")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(
            resp.headers()["content-type"],
            "text/markdown; charset=utf-8"
        );
        assert!(resp.text().await.unwrap().starts_with("# "));
    }
    assert!(landing.contains("id=\"figures\""));
    let resp = client().get(server.url("/docs/nope")).send().await.unwrap();
    expect_error(resp, 404, 40400).await;
    let resp = client().get(server.url("/docs/%ff")).send().await.unwrap();
    expect_error(resp, 400, 40000).await;
}

#[tokio::test]
async fn admin_stats_list_each_open_stream_with_its_channels() {
    let server = Server::start(common::OPS_AND_APP);
    let read_stats = || async {
        let stats: Value = client()
            .get(server.url("/admin/stats?key=ops:ops-secret"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        stats
    };
    let mut plain =
        SseStream::open(&server.url("/sse?channels=room,lobby&key=app:app-secret")).await;
    let (dynamic, id) = common::dynamic(&server, "&key=app:app-secret").await;
    publish_as_app(&server, "room", 2).await;
    plain.events(2).await;
    let added = client()
        .post(server.url(&format!(
            "/connections/{id}/subscriptions?key=app:app-secret"
        )))
        .json(&json!({"channel": "hall"}))
        .send()
        .await
        .unwrap();
    assert!(added.status().is_success(), "{}", added.status());

    let stats = read_stats().await;
    let list = stats["connections"]["list"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{stats}");
    assert_eq!(stats["connections"]["open"], 2, "{stats}");
    // Oldest first.
    assert_eq!(list[0]["channels"], json!(["lobby", "room"]), "{stats}");
    assert_eq!(list[0]["delivered"], 2, "{stats}");
    assert!(list[0].get("connectionId").is_none(), "{stats}");
    assert_eq!(list[1]["channels"], json!(["hall"]), "{stats}");
    assert_eq!(list[1]["connectionId"], id, "{stats}");
    assert!(list[1]["openedAt"].as_u64().unwrap() >= list[0]["openedAt"].as_u64().unwrap());

    drop(plain);
    let removed = client()
        .delete(server.url(&format!(
            "/connections/{id}/subscriptions/hall?key=app:app-secret"
        )))
        .send()
        .await
        .unwrap();
    assert!(removed.status().is_success(), "{}", removed.status());
    let mut left = Value::Null;
    for _ in 0..50 {
        left = read_stats().await;
        if left["connections"]["list"].as_array().unwrap().len() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        left["connections"]["list"],
        json!([{"connectionId": id, "openedAt": list[1]["openedAt"], "channels": [], "delivered": 0}]),
        "{left}"
    );
    drop(dynamic);
}
