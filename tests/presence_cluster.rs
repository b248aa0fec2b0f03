//! Presence on many nodes (`[bus] backend = "redis"`): a channel's members are those of every
//! node, every node's streams hear every change, and the members of a node that stops
//! beating leave after `[bus] node_timeout_ms`, over real processes and a real Redis.

mod common;

use common::presence::*;
use common::redis::{BusUnderTest, Redis, RedisCluster};
use common::{Server, SseStream, signal, until_ready};
use serde_json::{Value, json};

/// A node of `redis` whose subscribers of `room:*` enter its presence, taken for dead by
/// the others after 1.5 s without a beat.
fn node(redis: &impl BusUnderTest) -> Server {
    let config = format!(
        "{}node_timeout_ms = 1500\n{KEYS}\n[channels]\npresence_on_subscribe = [\"room:*\"]\n",
        redis.bus_config()
    );
    Server::start(&config)
}

/// The clientIds present on `room:a` as `server` lists them.
async fn present(server: &Server) -> Vec<String> {
    let listed = members(server, "room:a", &app("watcher")).await;
    let mut ids: Vec<String> = summary(&listed).into_iter().map(|m| m.1).collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_are_shared_by_the_nodes_and_a_dead_nodes_leave() {
    members_are_shared_by_the_nodes_and_a_dead_nodes_leave_on(&Redis::start()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_redis_cluster_members_are_shared_and_a_dead_nodes_leave() {
    members_are_shared_by_the_nodes_and_a_dead_nodes_leave_on(&RedisCluster::start()).await;
}

async fn members_are_shared_by_the_nodes_and_a_dead_nodes_leave_on(redis: &impl BusUnderTest) {
    let nodes = [node(redis), node(redis)];
    until_ready(&nodes).await;
    let [a, b] = nodes;
    // A stream on b that asks for presence without entering (`reader` may not).
    let reader = token("reader", "reader-secret-2", Some("reader"));
    let url = format!("/sse?channels=room:a&presence=true&accessToken={reader}");
    let mut watching = SseStream::open(&b.url(&url)).await;

    // Alice's stream on a enters her there; b's stream hears it.
    let alice_url = format!("/sse?channels=room:a&accessToken={}", app("alice"));
    let _alice = SseStream::open(&a.url(&alice_url)).await;
    assert_eq!(
        next_change(&mut watching).await,
        ("enter".into(), "alice".into(), Value::Null)
    );
    // Bob enters over REST on b: bound to no node.
    let entered = post(
        &b,
        "room:a",
        &app("bob"),
        json!({"action": "enter", "data": 7}),
    )
    .await;
    assert_eq!(entered.status(), 201);
    assert_eq!(
        next_change(&mut watching).await,
        ("enter".into(), "bob".into(), json!(7))
    );
    // Every node lists every member.
    assert_eq!(present(&a).await, ["alice", "bob"]);
    assert_eq!(present(&b).await, ["alice", "bob"]);
    // Bob leaves through a: the member b entered is gone for both.
    let left = post(&a, "room:a", &app("bob"), json!({"action": "leave"})).await;
    assert_eq!(left.status(), 201);
    assert_eq!(
        next_change(&mut watching).await,
        ("leave".into(), "bob".into(), json!(7))
    );
    assert_eq!(present(&b).await, ["alice"]);

    // a stops beating (paused longer than the timeout): b takes it for dead, and alice
    // leaves; heard again, a enters her again.
    signal(&a, "STOP");
    let gone = next_change(&mut watching).await;
    signal(&a, "CONT");
    assert_eq!(gone, ("leave".into(), "alice".into(), Value::Null));
    assert_eq!(
        next_change(&mut watching).await,
        ("enter".into(), "alice".into(), Value::Null)
    );
    assert_eq!(present(&b).await, ["alice"]);

    // a dies: its members leave, announced by b.
    drop(a);
    assert_eq!(
        next_change(&mut watching).await,
        ("leave".into(), "alice".into(), Value::Null)
    );
    assert!(present(&b).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_whose_stream_closes_while_redis_stalls_still_leaves() {
    let redis = Redis::start();
    let config = format!(
        "{}{KEYS}\n[channels]\npresence_on_subscribe = [\"room:*\"]\n",
        redis.bus_config()
    );
    let nodes = [Server::start(&config)];
    until_ready(&nodes).await;
    let [node] = nodes;
    let reader = token("reader", "reader-secret-2", Some("reader"));
    let url = format!("/sse?channels=room:a&presence=true&accessToken={reader}");
    let mut watching = SseStream::open(&node.url(&url)).await;
    let alice_url = format!("/sse?channels=room:a&accessToken={}", app("alice"));
    let alice = SseStream::open(&node.url(&alice_url)).await;
    assert_eq!(next_change(&mut watching).await.0, "enter");
    // Redis holds every write for 3 s, longer than a command may wait: the first leave
    // fails, and the member must not stay.
    redis.cli(&["CLIENT", "PAUSE", "3000", "WRITE"]);
    drop(alice);
    assert_eq!(
        next_change(&mut watching).await,
        ("leave".into(), "alice".into(), Value::Null)
    );
    assert!(present(&node).await.is_empty());
}
