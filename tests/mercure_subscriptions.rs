//! Mercure's active subscriptions (`[mercure] subscriptions = true`): a private update each
//! time a subscriber starts or stops reading a selector, and
//! `GET /.well-known/mercure/subscriptions[/{topic}[/{subscriber}]]`, over real sockets.

mod common;

use std::time::Duration;

use common::mercure::*;
use common::{SseStream, client, expect_error};
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_are_announced_and_listed_while_they_read() {
    let server = hub_with_subscriptions();
    let watching = token(json!({"subscribe": [EVERY_SUBSCRIPTION]}), KEY);
    let url = subscribe_url(&server, &[EVERY_SUBSCRIPTION]);
    let mut watcher = SseStream::open_with(&url, bearer_headers(&watching)).await;
    // Its own subscription is announced to it.
    let (_, own) = next_subscription(&mut watcher).await;
    assert_eq!(
        (own["topic"].as_str(), own["active"].as_bool()),
        (Some(EVERY_SUBSCRIPTION), Some(true))
    );
    let watcher_id = own["subscriber"].as_str().unwrap().to_owned();
    // An anonymous subscriber of every topic is told nothing: the updates are private.
    let mut anonymous = subscribe(&server, &["*"]).await;
    let (_, everything) = next_subscription(&mut watcher).await;
    assert_eq!(everything["topic"], "*");
    assert!(everything.get("payload").is_none(), "no token, no payload");
    let anonymous_id = everything["subscriber"].as_str().unwrap().to_owned();

    let books = "https://example.com/books/{id}";
    let alice = token(
        json!({"subscribe": ["urn:nothing"], "payload": {"user": "alice"}}),
        KEY,
    );
    let url = subscribe_url(&server, &[books, "urn:a"]);
    let reader = SseStream::open_with(&url, bearer_headers(&alice)).await;
    let mut entered = [
        next_subscription(&mut watcher).await,
        next_subscription(&mut watcher).await,
    ];
    let newest = entered[1].0.clone();
    entered.sort_by(|a, b| a.1["topic"].as_str().cmp(&b.1["topic"].as_str()));
    let subscriber = entered[0].1["subscriber"].as_str().unwrap().to_owned();
    assert!(subscriber.starts_with("urn:uuid:"), "{subscriber}");
    assert_ne!(subscriber, watcher_id);
    for ((event_id, document), topic) in entered.iter().zip([books, "urn:a"]) {
        assert!(event_id.starts_with("urn:uuid:"), "{event_id}");
        let id = format!(
            "/.well-known/mercure/subscriptions/{}/{}",
            segment(topic),
            segment(&subscriber)
        );
        let expected = json!({
            "@context": "https://mercure.rocks/",
            "id": id,
            "type": "Subscription",
            "topic": topic,
            "subscriber": subscriber,
            "active": true,
            "payload": {"user": "alice"},
        });
        assert_eq!(document, &expected);
    }

    // The lists: every subscription, one selector's, one.
    let lister = token(json!({"subscribe": ["*"]}), KEY);
    let (status, all) = list(&server, "/.well-known/mercure/subscriptions", Some(&lister)).await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(all["@context"], "https://mercure.rocks/");
    assert_eq!(all["type"], "Subscriptions");
    assert_eq!(all["id"], "/.well-known/mercure/subscriptions");
    let mut expected = vec![
        (EVERY_SUBSCRIPTION.to_owned(), watcher_id.clone(), true),
        ("*".to_owned(), anonymous_id.clone(), true),
        (books.to_owned(), subscriber.clone(), true),
        ("urn:a".to_owned(), subscriber.clone(), true),
    ];
    expected.sort();
    assert_eq!(summary(&all), expected);
    let of_books = format!("/.well-known/mercure/subscriptions/{}", segment(books));
    let (status, listed) = list(&server, &of_books, Some(&lister)).await;
    assert_eq!(status, 200);
    assert_eq!(listed["id"], of_books.as_str());
    assert_eq!(
        summary(&listed),
        [(books.to_owned(), subscriber.clone(), true)]
    );
    let one = format!("{of_books}/{}", segment(&subscriber));
    let (status, single) = list(&server, &one, Some(&lister)).await;
    assert_eq!(status, 200);
    assert_eq!(single["id"], one.as_str());
    assert_eq!(single["@context"], "https://mercure.rocks/");
    assert_eq!(single["payload"]["user"], "alice");
    // The last update the lister may know of: resuming from it misses no change.
    let last_event_id = single["lastEventID"].as_str().unwrap().to_owned();
    assert_eq!(last_event_id, newest);
    assert_eq!(all["lastEventID"], newest.as_str());

    // The reader leaves: both subscriptions end, with their payload, and are listed no more.
    drop(reader);
    let mut left = [
        next_subscription(&mut watcher).await.1,
        next_subscription(&mut watcher).await.1,
    ];
    left.sort_by(|a, b| a["topic"].as_str().cmp(&b["topic"].as_str()));
    for (document, topic) in left.iter().zip([books, "urn:a"]) {
        assert_eq!(document["topic"], topic);
        assert_eq!(document["subscriber"], subscriber.as_str());
        assert_eq!(document["active"], false);
        assert_eq!(document["payload"]["user"], "alice");
    }
    let (status, _) = list(&server, &one, Some(&lister)).await;
    assert_eq!(status, 404);
    let (_, all) = list(&server, "/.well-known/mercure/subscriptions", Some(&lister)).await;
    let mut expected = vec![
        (EVERY_SUBSCRIPTION.to_owned(), watcher_id, true),
        ("*".to_owned(), anonymous_id, true),
    ];
    expected.sort();
    assert_eq!(summary(&all), expected);

    // Resuming from the list's lastEventID gives the changes after it.
    let mut headers = bearer_headers(&watching);
    headers.insert(
        "last-event-id",
        HeaderValue::from_str(&last_event_id).unwrap(),
    );
    let url = subscribe_url(&server, &[EVERY_SUBSCRIPTION]);
    let mut resumed = SseStream::open_with(&url, headers).await;
    let after: Vec<Value> = [
        next_subscription(&mut resumed).await.1,
        next_subscription(&mut resumed).await.1,
    ]
    .into();
    assert!(
        after
            .iter()
            .all(|d| d["active"] == false && d["subscriber"] == subscriber.as_str()),
        "{after:?}"
    );

    // The anonymous subscriber of `*` got none of it: its first event is a public update.
    let public = publish(&server, &[("topic", "urn:public"), ("data", "hi")]).await;
    assert_eq!(anonymous.next_event().await.unwrap().id, public);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_subscriptions_needs_a_token_whose_selectors_match_the_url() {
    let server = hub_with_subscriptions();
    let all = "/.well-known/mercure/subscriptions";
    let response = client().get(server.url(all)).send().await.unwrap();
    expect_error(response, 401, 40101).await;
    let forged = token(json!({"subscribe": ["*"]}), "another key");
    let (status, _) = list(&server, all, Some(&forged)).await;
    assert_eq!(status, 401);
    let unrelated = token(json!({"subscribe": ["urn:a"]}), KEY);
    let (status, _) = list(&server, all, Some(&unrelated)).await;
    assert_eq!(status, 403);
    // A selector of one topic's subscriptions lists those, not every one.
    let of_a = format!("{all}/{}", segment("urn:a"));
    let narrow = token(
        json!({"subscribe": [format!("{of_a}{{/subscriber}}")]}),
        KEY,
    );
    let (status, listed) = list(&server, &of_a, Some(&narrow)).await;
    assert_eq!((status, listed["subscriptions"].clone()), (200, json!([])));
    assert_eq!(listed["lastEventID"], "earliest");
    let (status, _) = list(&server, all, Some(&narrow)).await;
    assert_eq!(status, 403);
    // The token may come in the query, as a subscriber's does.
    let by_query = format!("{of_a}?authorization={narrow}");
    let (status, _) = list(&server, &by_query, None).await;
    assert_eq!(status, 200);

    // Without `subscriptions = true` there is nothing to list, and subscribing publishes
    // nothing.
    let plain = hub(true);
    let lister = token(json!({"subscribe": ["*"]}), KEY);
    let (status, _) = list(&plain, all, Some(&lister)).await;
    assert_eq!(status, 404);
    let mut watcher =
        SseStream::open_with(&subscribe_url(&plain, &["*"]), bearer_headers(&lister)).await;
    let _reader = subscribe(&plain, &["urn:a"]).await;
    watcher.expect_quiet(Duration::from_millis(300)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_updates_are_resumed_by_subscribers_allowed_to_see_them() {
    let server = hub_with_subscriptions();
    let reader = subscribe(&server, &["urn:a"]).await;
    drop(reader);
    // Two updates for it (active, then not) are in history: a subscriber allowed to see
    // them gets both from `earliest`; one that is not, neither.
    let allowed = token(json!({"subscribe": [EVERY_SUBSCRIPTION]}), KEY);
    let mut headers = bearer_headers(&allowed);
    headers.insert("last-event-id", HeaderValue::from_static("earliest"));
    let url = subscribe_url(&server, &["*"]);
    let mut replay = SseStream::open_with(&url, headers).await;
    let first = next_subscription(&mut replay).await.1;
    let second = next_subscription(&mut replay).await.1;
    assert_eq!(
        (first["topic"].clone(), first["active"].clone()),
        (json!("urn:a"), json!(true))
    );
    assert_eq!(second["active"], false);
    let mut headers = HeaderMap::new();
    headers.insert("last-event-id", HeaderValue::from_static("earliest"));
    let mut anonymous = SseStream::open_with(&url, headers).await;
    let public = publish(&server, &[("topic", "urn:b"), ("data", "x")]).await;
    assert_eq!(anonymous.next_event().await.unwrap().id, public);
}
