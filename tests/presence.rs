//! Presence on the Ably surface: `POST /channels/{channel}/presence` (enter, update, leave for
//! the credential's clientId), `GET` (members now), and `event: presence` on the streams that
//! ask for it, over real requests with real tokens.

mod common;

use common::presence::*;
use common::{Server, SseStream, client, expect_error};
use serde_json::{Value, json};

/// Publishes `body` to `channel` with `token`, which must be allowed to.
async fn publish_as(server: &Server, channel: &str, token: &str, body: Value) {
    let published = client()
        .post(server.url(&format!("/channels/{channel}/messages")))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(published.status(), 201);
}

#[tokio::test]
async fn members_enter_update_and_leave_and_streams_that_ask_are_told() {
    let server = Server::start(KEYS);
    let watcher = app("watcher");
    let url = format!("/sse?channels=room:a&presence=true&accessToken={watcher}");
    let mut stream = SseStream::open(&server.url(&url)).await;
    let plain_url = format!("/sse?channels=room:a&accessToken={watcher}");
    let mut plain = SseStream::open(&server.url(&plain_url)).await;

    let alice = app("alice");
    let bob = app("bob");
    let entered = post(
        &server,
        "room:a",
        &alice,
        json!({"action": "enter", "data": "hi"}),
    )
    .await;
    assert_eq!(entered.status(), 201);
    let body: Value = entered.json().await.unwrap();
    assert_eq!(body["action"], "enter");
    assert_eq!(body["clientId"], "alice");
    let entered = post(&server, "room:a", &bob, json!({"action": "enter"})).await;
    assert_eq!(entered.status(), 201);
    // Numbers as the client wrote them.
    let updated = client()
        .post(server.url("/channels/room:a/presence"))
        .bearer_auth(&alice)
        .body(r#"{"action": "update", "data": {"mood": 1.50E+3}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(updated.status(), 201);
    let mood: Value = serde_json::from_str(r#"{"mood": 1.50E+3}"#).unwrap();

    let now = members(&server, "room:a", &watcher).await;
    let mut now = summary(&now);
    now.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(
        now,
        [
            ("present".into(), "alice".into(), mood.clone()),
            ("present".into(), "bob".into(), Value::Null),
        ]
    );

    // Leaving without data leaves with the member's last, as Ably does.
    let left = post(&server, "room:a", &alice, json!({"action": "leave"})).await;
    assert_eq!(left.status(), 201);
    assert_eq!(
        summary(&members(&server, "room:a", &watcher).await).len(),
        1
    );

    // The stream that asked hears every change, in order, as Ably's PresenceMessage.
    let events = stream.events(4).await;
    assert!(events.iter().all(|e| e.event == "presence"), "{events:?}");
    let messages: Vec<Value> = events
        .iter()
        .map(|e| serde_json::from_str(&e.data).unwrap())
        .collect();
    assert_eq!(
        summary(&messages),
        [
            ("enter".into(), "alice".into(), json!("hi")),
            ("enter".into(), "bob".into(), Value::Null),
            ("update".into(), "alice".into(), mood.clone()),
            ("leave".into(), "alice".into(), mood.clone()),
        ]
    );
    assert!(
        events[2].data.contains("1.50E+3"),
        "numbers as published: {}",
        events[2].data
    );
    for message in &messages {
        assert_eq!(message["channel"], "room:a");
        assert!(message["id"].as_str().is_some_and(|id| !id.is_empty()));
        assert!(message["timestamp"].as_u64().unwrap() > 0);
    }
    // Messages still come through the same stream; a stream that did not ask hears only
    // them.
    publish_as(&server, "room:a", &alice, json!({"data": "m"})).await;
    let next = stream.next_event().await.unwrap();
    assert_eq!(next.event, "message");
    let only = plain.next_event().await.unwrap();
    assert_eq!(only.event, "message", "{only:?}");

    // Resuming after the second presence event gives exactly the rest.
    let resume = format!("{url}&lastEvent={}", events[1].id);
    let mut resumed = SseStream::open(&server.url(&resume)).await;
    let rest = resumed.events(3).await;
    let kinds: Vec<&str> = rest.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(kinds, ["presence", "presence", "message"]);
}

#[tokio::test]
async fn presence_needs_its_capability_a_client_id_and_a_known_action() {
    let server = Server::start(KEYS);
    // A key without the presence capability may list members, not enter.
    let reader = token("reader", "reader-secret-2", Some("rita"));
    let refused = post(&server, "room:a", &reader, json!({"action": "enter"})).await;
    expect_error(refused, 401, 40160).await;
    assert!(members(&server, "room:a", &reader).await.is_empty());
    // Not on a channel the key does not cover.
    let outside = post(&server, "lobby", &app("alice"), json!({"action": "enter"})).await;
    expect_error(outside, 401, 40160).await;
    // Who enters is the credential's clientId; without one, nobody.
    let anonymous = token("app", "app-secret-1", None);
    let nobody = post(&server, "room:a", &anonymous, json!({"action": "enter"})).await;
    let body = expect_error(nobody, 400, 40000).await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("clientId"),
        "{body}"
    );
    let bad = post(&server, "room:a", &app("alice"), json!({"action": "dance"})).await;
    let body = expect_error(bad, 400, 40000).await;
    assert!(
        body["error"]["message"].as_str().unwrap().contains("enter"),
        "{body}"
    );
    let not_json = client()
        .post(server.url("/channels/room:a/presence"))
        .bearer_auth(app("alice"))
        .body("enter")
        .send()
        .await
        .unwrap();
    expect_error(not_json, 400, 40000).await;
    // Leaving without having entered changes nothing, and says so.
    let left = post(&server, "room:a", &app("carol"), json!({"action": "leave"})).await;
    assert_eq!(left.status(), 200);
    assert!(members(&server, "room:a", &app("alice")).await.is_empty());
}

#[tokio::test]
async fn a_subscriber_enters_while_its_stream_is_open_and_leaves_when_it_drops() {
    let config = format!("{KEYS}\n[channels]\npresence_on_subscribe = [\"room:b\"]\n");
    let server = Server::start(&config);
    let watcher = app("watcher");
    let url = format!("/sse?channels=room:b&presence=true&accessToken={watcher}");
    let mut watching = SseStream::open(&server.url(&url)).await;
    // The watcher is a subscriber too: it hears itself enter.
    let own: Value = serde_json::from_str(&watching.events(1).await[0].data).unwrap();
    assert_eq!(
        (own["action"].as_str(), own["clientId"].as_str()),
        (Some("enter"), Some("watcher"))
    );

    let dave = app("dave");
    let dave_url = format!("/sse?channels=room:b&accessToken={dave}");
    let daves_stream = SseStream::open(&server.url(&dave_url)).await;
    let entered: Value = serde_json::from_str(&watching.events(1).await[0].data).unwrap();
    assert_eq!(entered["action"], "enter");
    assert_eq!(entered["clientId"], "dave");
    let connection = entered["connectionId"].as_str().unwrap().to_owned();
    let now = members(&server, "room:b", &watcher).await;
    let mut ids: Vec<&str> = now
        .iter()
        .map(|m| m["clientId"].as_str().unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids, ["dave", "watcher"]);
    // Filtered as Ably's presence query is.
    let listed = |query: String| {
        let url = server.url(&format!("/channels/room:b/presence?{query}"));
        let request = client().get(url).bearer_auth(&watcher);
        async move {
            let listed: Vec<Value> = request.send().await.unwrap().json().await.unwrap();
            let ids = listed
                .iter()
                .map(|m| m["clientId"].as_str().unwrap().to_owned());
            ids.collect::<Vec<_>>()
        }
    };
    assert_eq!(listed("clientId=dave".into()).await, ["dave"]);
    assert_eq!(listed(format!("connectionId={connection}")).await, ["dave"]);
    let nobody = listed("clientId=watcher&connectionId=nope".into()).await;
    assert!(nobody.is_empty());

    // Dave's stream drops: he leaves, on that connection.
    drop(daves_stream);
    let left: Value = serde_json::from_str(&watching.events(1).await[0].data).unwrap();
    assert_eq!(left["action"], "leave");
    assert_eq!(left["clientId"], "dave");
    assert_eq!(left["connectionId"], connection.as_str());
    let now = members(&server, "room:b", &watcher).await;
    assert_eq!(
        summary(&now),
        [("present".into(), "watcher".into(), Value::Null)]
    );

    // A subscriber without the presence capability, or on a channel not configured, does
    // not enter.
    let reader = token("reader", "reader-secret-2", Some("rita"));
    let _rita =
        SseStream::open(&server.url(&format!("/sse?channels=room:b&accessToken={reader}"))).await;
    let erin = app("erin");
    let elsewhere = format!("/sse?channels=room:c&presence=true&accessToken={erin}");
    let mut elsewhere = SseStream::open(&server.url(&elsewhere)).await;
    watching
        .expect_quiet(std::time::Duration::from_millis(300))
        .await;
    assert_eq!(members(&server, "room:b", &watcher).await.len(), 1);
    elsewhere
        .expect_quiet(std::time::Duration::from_millis(100))
        .await;
    assert!(members(&server, "room:c", &watcher).await.is_empty());

    // A connection resumed with its server-kept token enters again (its old stream left).
    let frank = app("frank");
    let frank_url = format!("/sse?channels=room:b&dynamic=true&accessToken={frank}");
    let mut franks = SseStream::open(&server.url(&frank_url)).await;
    let first = next_presence(&mut watching).await;
    assert_eq!(
        (first["action"].as_str(), first["clientId"].as_str()),
        (Some("enter"), Some("frank"))
    );
    publish_as(
        &server,
        "room:b",
        &frank,
        json!({"data": "to resume after"}),
    )
    .await;
    let token = loop {
        let event = franks.next_event().await.unwrap();
        if event.event == "message" {
            break event.id;
        }
    };
    drop(franks);
    assert_eq!(next_presence(&mut watching).await["action"], "leave");
    let resumed = format!("/sse?lastEvent={token}&accessToken={frank}");
    let _franks = SseStream::open(&server.url(&resumed)).await;
    let again = next_presence(&mut watching).await;
    assert_eq!(
        (again["action"].as_str(), again["clientId"].as_str()),
        (Some("enter"), Some("frank"))
    );
    assert_ne!(again["connectionId"], first["connectionId"]);
}

/// The next presence message `stream` carries, past its messages.
async fn next_presence(stream: &mut SseStream) -> Value {
    loop {
        let event = stream.next_event().await.unwrap();
        if event.event == "presence" {
            return serde_json::from_str(&event.data).unwrap();
        }
    }
}

#[tokio::test]
async fn presence_changes_count_against_the_publish_rate() {
    let config = format!("{KEYS}\n[limits]\npublish_rate_per_key = 1\npublish_burst = 2\n");
    let server = Server::start(&config);
    let alice = app("alice");
    for action in ["enter", "update"] {
        let changed = post(&server, "room:a", &alice, json!({"action": action})).await;
        assert_eq!(changed.status(), 201);
    }
    let refused = post(&server, "room:a", &alice, json!({"action": "leave"})).await;
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().get("retry-after").is_some());
}

#[tokio::test]
async fn channels_added_to_a_dynamic_connection_enter_and_leave_with_it() {
    let config = format!("{KEYS}\n[channels]\npresence_on_subscribe = [\"room:*\"]\n");
    let server = Server::start(&config);
    let reader = token("reader", "reader-secret-2", Some("reader"));
    let url = format!("/sse?channels=room:c&presence=true&accessToken={reader}");
    let mut watching = SseStream::open(&server.url(&url)).await;
    let credential = format!("accessToken={}", app("dave"));
    let (daves_stream, id) = common::dynamic(&server, &format!("&{credential}")).await;
    let subscriptions = server.url(&format!("/connections/{id}/subscriptions?{credential}"));
    let add = || {
        let request = client().post(&subscriptions);
        request.json(&json!({"channel": "room:c"})).send()
    };
    assert_eq!(add().await.unwrap().status(), 201);
    assert_eq!(
        next_change(&mut watching).await,
        ("enter".into(), "dave".into(), Value::Null)
    );
    let listed = members(&server, "room:c", &reader).await;
    assert_eq!(summary(&listed)[0].1, "dave");
    let channel = format!("/connections/{id}/subscriptions/room:c?{credential}");
    let removed = client().delete(server.url(&channel)).send().await.unwrap();
    assert_eq!(removed.status(), 204);
    assert_eq!(
        next_change(&mut watching).await,
        ("leave".into(), "dave".into(), Value::Null)
    );
    // Added again, then the stream closes: it leaves with it.
    assert_eq!(add().await.unwrap().status(), 201);
    assert_eq!(next_change(&mut watching).await.0, "enter");
    drop(daves_stream);
    assert_eq!(next_change(&mut watching).await.0, "leave");
    assert!(members(&server, "room:c", &reader).await.is_empty());
}

#[tokio::test]
async fn a_channel_qualifier_asks_for_that_channels_presence_only() {
    let server = Server::start(KEYS);
    let watcher = app("watcher");
    // `[?presence]room:a,room:b`, URL-encoded.
    let url = format!("/sse?channels=%5B%3Fpresence%5Droom:a,room:b&accessToken={watcher}");
    let mut stream = SseStream::open(&server.url(&url)).await;
    let alice = app("alice");
    for channel in ["room:b", "room:a"] {
        let entered = post(&server, channel, &alice, json!({"action": "enter"})).await;
        assert_eq!(entered.status(), 201);
    }
    publish_as(&server, "room:b", &alice, json!({"data": "m"})).await;
    let events = stream.events(2).await;
    let kinds: Vec<&str> = events.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(kinds, ["presence", "message"]);
    let change: Value = serde_json::from_str(&events[0].data).unwrap();
    assert_eq!(change["channel"], "room:a");

    // With a rewind, and `presence=false` undoing the request's `presence=true`.
    let both = format!(
        "/sse?channels=%5B%3Frewind%3D1%26presence%3Dfalse%5Droom:b&presence=true&accessToken={watcher}"
    );
    let mut stream = SseStream::open(&server.url(&both)).await;
    let rewound = stream.events(1).await;
    assert_eq!(rewound[0].event, "message");
    stream
        .expect_quiet(std::time::Duration::from_millis(200))
        .await;

    let unknown = "/sse?channels=%5B%3Fdelta%3Dvcdiff%5Droom:a";
    let response = client()
        .get(server.url(&format!("{unknown}&accessToken={watcher}")))
        .send()
        .await
        .unwrap();
    let error = expect_error(response, 400, 40000).await;
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("presence")
    );
}
