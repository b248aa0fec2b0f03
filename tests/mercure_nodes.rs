//! The Mercure hub beyond one process: its updates kept on disk across a restart
//! (`[bus] data_dir`), and shared by every node on Redis (`[bus] backend = "redis"`): one
//! order, every subscriber on every node, resume on any node, every node's subscriptions
//! listed and announced, a dead node's ended.

mod common;

use common::mercure::*;
use common::redis::{BusUnderTest, Redis, RedisCluster};
use common::{Server, SseStream, until_ready};
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::json;

const A: &str = "https://example.com/books/1";
const B: &str = "https://example.com/books/2";
const TEMPLATE: &str = "https://example.com/books/{id}";

/// A subscriber of `selectors` resuming after update `last`.
async fn resume(server: &Server, selectors: &[&str], last: &str) -> SseStream {
    let mut headers = HeaderMap::new();
    headers.insert("last-event-id", HeaderValue::from_str(last).unwrap());
    SseStream::open_with(&subscribe_url(server, selectors), headers).await
}

/// The ids of the next `n` updates a stream gets.
async fn ids(stream: &mut SseStream, n: usize) -> Vec<String> {
    stream.events(n).await.into_iter().map(|e| e.id).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_survive_a_restart_and_resume_on_every_kind_of_selector() {
    let data = tempfile::tempdir().unwrap();
    let config = format!("[bus]\ndata_dir = {:?}\n{}", data.path(), hub_config(true));
    let server = Server::start(&config);
    let mut published = Vec::new();
    for (topics, data) in [(&[A][..], "1"), (&[B], "2"), (&[A, B], "3"), (&[B], "4")] {
        let mut fields: Vec<(&str, &str)> = topics.iter().map(|t| ("topic", *t)).collect();
        fields.push(("data", data));
        published.push(publish(&server, &fields).await);
    }
    let server = server.restart(); // SIGKILL, then the same folder
    // The topics' channels are made again from the updates kept: an exact topic resumes
    // after an update of another topic as a template does.
    let mut exact = resume(&server, &[A], &published[1]).await;
    assert_eq!(
        exact.response.headers()["last-event-id"],
        published[1].as_str()
    );
    assert_eq!(ids(&mut exact, 1).await, [published[2].clone()]);
    let mut both = resume(&server, &[A, B], &published[0]).await;
    assert_eq!(ids(&mut both, 3).await, published[1..]);
    let mut template = resume(&server, &[TEMPLATE], "earliest").await;
    assert_eq!(ids(&mut template, 4).await, published);
    // And go on live.
    let next = publish(&server, &[("topic", A), ("data", "5")]).await;
    for stream in [&mut exact, &mut both, &mut template] {
        assert_eq!(ids(stream, 1).await, std::slice::from_ref(&next));
    }
    exact
        .expect_quiet(std::time::Duration::from_millis(200))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_serves_every_update_in_one_order() {
    every_node_serves_every_update_in_one_order_on(&Redis::start()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_redis_cluster_every_node_serves_every_update_in_one_order() {
    every_node_serves_every_update_in_one_order_on(&RedisCluster::start()).await;
}

async fn every_node_serves_every_update_in_one_order_on(redis: &impl BusUnderTest) {
    let config = format!("{}{}", redis.bus_config(), hub_config(true));
    let nodes = [Server::start(&config), Server::start(&config)];
    until_ready(&nodes).await;
    let mut streams = Vec::new();
    for node in &nodes {
        for selectors in [&[A][..], &[A, B], &[TEMPLATE], &["*"]] {
            streams.push((
                selectors,
                SseStream::open(&subscribe_url(node, selectors)).await,
            ));
        }
    }
    // Published through both nodes at once: one order all the same.
    let publishing = (0..20).map(|i| {
        let node = &nodes[i % 2];
        let topic = if i % 3 == 0 { B } else { A };
        async move {
            let data = i.to_string();
            publish(node, &[("topic", topic), ("data", &data)]).await
        }
    });
    let published = futures_util::future::join_all(publishing).await;
    let of_a = published
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 3 != 0)
        .count();
    let mut orders: Vec<Vec<String>> = Vec::new();
    for (selectors, stream) in &mut streams {
        let n = if *selectors == [A] {
            of_a
        } else {
            published.len()
        };
        orders.push(ids(stream, n).await);
    }
    for order in &orders {
        let mut sorted = order.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), order.len(), "each update once");
    }
    // Every stream that gets every update gets them in one order, and the stream of one
    // topic gets its updates in that order too.
    let everything = &orders[1];
    for (order, (selectors, _)) in orders.iter().zip(&streams) {
        let expected: Vec<&String> = everything
            .iter()
            .filter(|id| *selectors != [A] || order.contains(*id))
            .collect();
        assert_eq!(order.iter().collect::<Vec<_>>(), expected, "{selectors:?}");
    }
    // A subscriber resumes on the other node exactly after the update it names.
    let middle = &everything[9];
    let mut resumed = resume(&nodes[0], &[A, B], middle).await;
    assert_eq!(ids(&mut resumed, 10).await, everything[10..]);
    let mut resumed = resume(&nodes[1], &[TEMPLATE], middle).await;
    assert_eq!(ids(&mut resumed, 10).await, everything[10..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_lists_and_announces_every_subscription_and_a_dead_nodes_end() {
    every_node_lists_and_announces_every_subscription_on(&Redis::start()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_redis_cluster_every_node_lists_and_announces_every_subscription() {
    every_node_lists_and_announces_every_subscription_on(&RedisCluster::start()).await;
}

async fn every_node_lists_and_announces_every_subscription_on(redis: &impl BusUnderTest) {
    // A node not heard for 1.5 s is dead.
    let config = format!(
        "{}node_timeout_ms = 1500\n{}subscriptions = true\n",
        redis.bus_config(),
        hub_config(true)
    );
    let nodes = [Server::start(&config), Server::start(&config)];
    until_ready(&nodes).await;
    let [a, b] = nodes;
    let watching = token(json!({"subscribe": [EVERY_SUBSCRIPTION]}), KEY);
    let url = subscribe_url(&b, &[EVERY_SUBSCRIPTION]);
    let mut watcher = SseStream::open_with(&url, bearer_headers(&watching)).await;
    let watcher_id = next_subscription(&mut watcher).await.1["subscriber"].clone();

    // A subscriber on a: b's watcher is told, and b lists it.
    let reader = token(json!({"payload": {"user": "alice"}}), KEY);
    let url = subscribe_url(&a, &["urn:a"]);
    let _reading = SseStream::open_with(&url, bearer_headers(&reader)).await;
    let (_, started) = next_subscription(&mut watcher).await;
    assert_eq!(
        (&started["topic"], &started["active"], &started["payload"]),
        (&json!("urn:a"), &json!(true), &json!({"user": "alice"}))
    );
    let lister = token(json!({"subscribe": ["*"]}), KEY);
    for node in [&a, &b] {
        let (status, all) = list(node, "/.well-known/mercure/subscriptions", Some(&lister)).await;
        assert_eq!(status, 200, "{all}");
        let mut listed = summary(&all);
        listed.retain(|(_, subscriber, _)| *subscriber != watcher_id);
        let reader_id = started["subscriber"].as_str().unwrap().to_owned();
        assert_eq!(listed, [("urn:a".to_owned(), reader_id, true)]);
    }

    // a dies: b ends its subscriptions, and says so.
    drop(a);
    let (_, ended) = next_subscription(&mut watcher).await;
    assert_eq!(
        (&ended["subscriber"], &ended["active"], &ended["payload"]),
        (
            &started["subscriber"],
            &json!(false),
            &json!({"user": "alice"})
        )
    );
    let (_, all) = list(&b, "/.well-known/mercure/subscriptions", Some(&lister)).await;
    let listed = summary(&all);
    assert_eq!(listed.len(), 1, "the watcher's own only: {listed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restart_a_new_subscriber_gets_no_update_from_before_it() {
    let data = tempfile::tempdir().unwrap();
    let config = format!(
        "[bus]\ndata_dir = {:?}\n[channels]\nhistory_size = 5000\n{}",
        data.path(),
        hub_config(true)
    );
    let server = Server::start(&config);
    for i in 0..3000 {
        publish(&server, &[("topic", A), ("data", &i.to_string())]).await;
    }
    let server = server.restart();
    // Subscribed while the node may still be copying the kept updates to their topics'
    // channels: those copies are not new to it.
    let mut exact = SseStream::open(&subscribe_url(&server, &[A])).await;
    let next = publish(&server, &[("topic", A), ("data", "new")]).await;
    assert_eq!(ids(&mut exact, 1).await, std::slice::from_ref(&next));
}
