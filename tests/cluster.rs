//! `[bus] backend = "redis"`: several gateway processes on one real `redis-server` are one
//! system for pub/sub channels: one order, the same ids, resume on any node, idempotent
//! publishing across nodes, and clear errors then recovery when Redis goes away.

mod common;

use std::time::Duration;

use common::redis::{BusUnderTest, Redis, RedisCluster};
use common::sse_upstream::SseUpstream;
use common::upstream::{Behaviour, Upstream};
use common::{
    Server, SseStream, client, envelope, eventually, expect_error, get_json, last_event_id,
    next_relayed, signal, until_ready,
};
use serde_json::{Value, json};

/// Three gateways on `redis`, once they reach it (before, a client gets a 503 to retry).
async fn nodes(redis: &impl BusUnderTest) -> Vec<Server> {
    let nodes: Vec<Server> = (0..3).map(|_| Server::start(&redis.bus_config())).collect();
    until_ready(&nodes).await;
    nodes
}

/// `n` events of `stream` as (message id, SSE id, data).
async fn messages(stream: &mut SseStream, n: usize) -> Vec<(String, String, Value)> {
    let mut seen = Vec::with_capacity(n);
    while seen.len() < n {
        let event = stream.next_event().await.expect("an event");
        let message = envelope(&event);
        let id = message["id"].as_str().unwrap().to_owned();
        seen.push((id, event.id.clone(), message["data"].clone()));
    }
    seen
}

async fn publish_status(server: &Server, channel: &str, body: Value) -> reqwest::Response {
    client()
        .post(server.url(&format!("/channels/{channel}/messages")))
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_delivers_every_message_in_one_order_with_the_same_ids() {
    every_node_delivers_every_message_in_one_order_with_the_same_ids_on(&Redis::start()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_redis_cluster_every_node_delivers_every_message_in_one_order() {
    every_node_delivers_every_message_in_one_order_with_the_same_ids_on(&RedisCluster::start())
        .await;
}

async fn every_node_delivers_every_message_in_one_order_with_the_same_ids_on(
    redis: &impl BusUnderTest,
) {
    let nodes = nodes(redis).await;
    let mut streams = Vec::new();
    for node in &nodes {
        streams.push(SseStream::open(&node.url("/sse?channels=orders")).await);
    }
    // One publisher per node, all at once, each in its own order.
    let publishers: Vec<_> = nodes
        .iter()
        .enumerate()
        .map(|(p, node)| {
            let url = node.url("/channels/orders/messages");
            tokio::spawn(async move {
                for i in 0..40 {
                    let body = json!({"data": {"p": p, "i": i}});
                    let resp = client().post(&url).json(&body).send().await.unwrap();
                    assert_eq!(resp.status(), 201);
                }
            })
        })
        .collect();
    for publisher in publishers {
        publisher.await.unwrap();
    }
    let mut seen = Vec::new();
    for stream in &mut streams {
        seen.push(messages(stream, 120).await);
    }
    assert_eq!(seen[0], seen[1], "nodes 0 and 1 agree");
    assert_eq!(seen[0], seen[2], "nodes 0 and 2 agree");
    for p in 0..3 {
        let order: Vec<&Value> = seen[0]
            .iter()
            .map(|(_, _, d)| d)
            .filter(|d| d["p"] == p)
            .map(|d| &d["i"])
            .collect();
        let expected: Vec<Value> = (0..40).map(|i| json!(i)).collect();
        assert_eq!(order, expected.iter().collect::<Vec<_>>(), "publisher {p}");
    }
    // History is one too, on every node.
    let path = "/channels/orders/messages?limit=1000&direction=forwards";
    let first: Vec<Value> = get_json(&nodes[0], path).await;
    assert_eq!(first.len(), 120);
    for node in &nodes[1..] {
        let other: Vec<Value> = get_json(node, path).await;
        assert_eq!(other, first);
    }
    let ids: Vec<&str> = first.iter().map(|m| m["id"].as_str().unwrap()).collect();
    let streamed: Vec<&str> = seen[0].iter().map(|(id, ..)| id.as_str()).collect();
    assert_eq!(ids, streamed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_redis_cluster_announcements_go_only_to_the_shard_of_their_channel() {
    let cluster = RedisCluster::start();
    let nodes = nodes(&cluster).await;
    // `}odd{` would cut a hash tag short: its keys must still share one slot.
    let url = "/sse?channels=a,b,c,d,%7Dodd%7B";
    let mut stream = SseStream::open(&nodes[1].url(url)).await;
    for channel in ["a", "b", "c", "d", "%7Dodd%7B"] {
        common::publish(&nodes[0], channel, json!({"data": channel})).await;
    }
    let data: Vec<Value> = messages(&mut stream, 5)
        .await
        .into_iter()
        .map(|m| m.2)
        .collect();
    let sent = ["a", "b", "c", "d", "%7Dodd%7B"];
    assert_eq!(data, sent.map(|c| json!(c)));
    // Sharded pub/sub only: a classic channel would be broadcast to every shard.
    let (sharded, classic) = cluster.channels();
    assert!(classic.is_empty(), "classic channels: {classic:?}");
    for channel in ["a", "b", "c", "d"] {
        let notify = format!("sg:{{{channel}}}:n");
        assert!(sharded.contains(&notify), "{notify} not in {sharded:?}");
    }
    assert!(sharded.contains(&"sg:catalog".to_owned()), "{sharded:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_redis_cluster_a_channel_moved_to_another_shard_is_still_heard() {
    let cluster = RedisCluster::start();
    let nodes = nodes(&cluster).await;
    let mut stream = SseStream::open(&nodes[1].url("/sse?channels=moved")).await;
    common::publish(&nodes[0], "moved", json!({"data": "m1"})).await;
    assert_eq!(messages(&mut stream, 1).await[0].2, json!("m1"));
    // Resharding: the channel's keys and its announcements now live on another shard,
    // which never had the node's subscription.
    cluster.move_slot_of("sg:{moved}:n");
    common::publish(&nodes[0], "moved", json!({"data": "m2"})).await;
    let next = messages(&mut stream, 1).await;
    assert_eq!(next[0].2, json!("m2"));
    common::publish(&nodes[2], "moved", json!({"data": "m3"})).await;
    assert_eq!(messages(&mut stream, 1).await[0].2, json!("m3"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_resumes_on_another_node_exactly() {
    a_client_resumes_on_another_node_exactly_on(&Redis::start()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_redis_cluster_a_client_resumes_on_another_node_exactly() {
    a_client_resumes_on_another_node_exactly_on(&RedisCluster::start()).await;
}

async fn a_client_resumes_on_another_node_exactly_on(redis: &impl BusUnderTest) {
    let nodes = nodes(redis).await;
    let mut first = SseStream::open(&nodes[0].url("/sse?channels=feed")).await;
    for i in 0..10 {
        common::publish(&nodes[i % 3], "feed", json!({"data": i})).await;
    }
    let got = messages(&mut first, 4).await;
    drop(first);
    for i in 10..15 {
        common::publish(&nodes[2], "feed", json!({"data": i})).await;
    }
    // Last-Event-ID as a browser sends it, on another node.
    let last = &got[3].1;
    let mut resumed =
        SseStream::open_with(&nodes[1].url("/sse?channels=feed"), last_event_id(last)).await;
    let rest = messages(&mut resumed, 11).await;
    let data: Vec<Value> = rest.iter().map(|(_, _, d)| d.clone()).collect();
    assert_eq!(data, (4..15).map(|i| json!(i)).collect::<Vec<_>>());
    resumed.expect_quiet(Duration::from_millis(300)).await;
    // `lastEvent` on the third node, and a rewind there.
    let url = format!("/sse?channels=feed&lastEvent={}", rest[5].1);
    let mut again = SseStream::open(&nodes[2].url(&url)).await;
    let tail = messages(&mut again, 5).await;
    assert_eq!(tail, rest[6..].to_vec());
    let mut rewound = SseStream::open(&nodes[2].url("/sse?channels=feed&rewind=3")).await;
    assert_eq!(messages(&mut rewound, 3).await, rest[8..].to_vec());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_id_is_kept_once_across_nodes() {
    let redis = Redis::start();
    let nodes = nodes(&redis).await;
    let mut stream = SseStream::open(&nodes[2].url("/sse?channels=pay")).await;
    for node in &nodes[..2] {
        let ids = common::publish(node, "pay", json!({"id": "order-7", "data": 7})).await;
        assert_eq!(ids, ["order-7"]);
    }
    common::publish(&nodes[1], "pay", json!({"id": "order-8", "data": 8})).await;
    let got = messages(&mut stream, 2).await;
    let data: Vec<&Value> = got.iter().map(|(_, _, d)| d).collect();
    assert_eq!(data, [&json!(7), &json!(8)]);
    let history: Vec<Value> = get_json(&nodes[0], "/channels/pay/messages").await;
    assert_eq!(history.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_missed_announcements_catches_up_once_heard_again() {
    let redis = Redis::start();
    let nodes = nodes(&redis).await;
    let mut stream = SseStream::open(&nodes[1].url("/sse?channels=late")).await;
    common::publish(&nodes[0], "late", json!({"data": 0})).await;
    assert_eq!(messages(&mut stream, 1).await[0].2, json!(0));
    // Every node's announcement connection is cut: what is published until they are heard
    // again is read from the stream, not lost.
    redis.cli(&["CLIENT", "KILL", "TYPE", "pubsub"]);
    for i in 1..6 {
        common::publish(&nodes[0], "late", json!({"data": i})).await;
    }
    let got = messages(&mut stream, 5).await;
    let data: Vec<Value> = got.iter().map(|(_, _, d)| d.clone()).collect();
    assert_eq!(data, (1..6).map(|i| json!(i)).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_a_publish_is_refused_at_once_and_streams_recover_after() {
    without_redis_a_publish_is_refused_and_streams_recover_on(&mut Redis::start()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_its_redis_cluster_a_publish_is_refused_and_streams_recover_after() {
    without_redis_a_publish_is_refused_and_streams_recover_on(&mut RedisCluster::start()).await;
}

async fn without_redis_a_publish_is_refused_and_streams_recover_on(redis: &mut impl BusUnderTest) {
    let nodes = nodes(redis).await;
    let mut stream = SseStream::open(&nodes[1].url("/sse?channels=up")).await;
    common::publish(&nodes[0], "up", json!({"data": "before"})).await;
    assert_eq!(messages(&mut stream, 1).await[0].2, json!("before"));

    redis.kill();
    let started = std::time::Instant::now();
    let resp = publish_status(&nodes[0], "up", json!({"data": "lost"})).await;
    assert_eq!(resp.headers()["retry-after"], "1");
    let body = expect_error(resp, 503, 50300).await;
    assert!(
        body["error"]["message"].as_str().unwrap().contains("redis"),
        "{body}"
    );
    assert!(started.elapsed() < Duration::from_secs(5), "never a hang");
    let ready = client().get(nodes[1].url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    // A new subscriber is refused clearly too, not left waiting.
    let refused = client()
        .get(nodes[2].url("/sse?channels=up2"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.headers()["retry-after"], "1");
    expect_error(refused, 503, 50300).await;

    // Redis comes back empty: nodes notice, become ready, and the open stream goes on
    // (told of the gap: the history it resumed in is gone).
    redis.restart();
    until_ready(&nodes).await;
    common::publish(&nodes[2], "up", json!({"data": "after"})).await;
    let gap = stream.next_event().await.unwrap();
    assert_eq!(gap.event, "error", "{gap:?}");
    let notice: Value = serde_json::from_str(&gap.data).unwrap();
    assert_eq!(notice["code"], 40900);
    assert_eq!(messages(&mut stream, 1).await[0].2, json!("after"));
}

/// While its Redis Cluster is down a node says so once, whatever its clients keep trying,
/// and once that it is back: never a line per attempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_cluster_down_is_logged_once_and_its_return_once() {
    let mut redis = RedisCluster::start();
    let node = Server::start_logged_with(&redis.bus_config(), &[("RUST_LOG", "info")]);
    until_ready(std::slice::from_ref(&node)).await;
    let _stream = SseStream::open(&node.url("/sse?channels=up")).await;
    redis.kill();
    for _ in 0..30 {
        let resp = publish_status(&node, "up", json!({"data": "refused"})).await;
        assert_eq!(resp.status(), 503);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    redis.restart();
    until_ready(std::slice::from_ref(&node)).await;
    let logs = node.logs();
    let warned: Vec<&str> = logs
        .lines()
        .filter(|line| line.contains("WARN") || line.contains("ERROR"))
        .collect();
    assert!(
        (1..=4).contains(&warned.len()),
        "{} lines:\n{}",
        warned.len(),
        warned[..warned.len().min(20)].join("\n")
    );
    assert!(logs.contains("reachable again"), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_gone_back_to_an_older_state_never_reuses_an_id_a_client_saw() {
    let mut redis = Redis::start_saving();
    let nodes = nodes(&redis).await;
    let mut stream = SseStream::open(&nodes[1].url("/sse?channels=c")).await;
    common::publish(&nodes[0], "c", json!({"data": "m1"})).await;
    assert_eq!(messages(&mut stream, 1).await[0].2, json!("m1"));
    redis.cli(&["SAVE"]);
    common::publish(&nodes[0], "c", json!({"data": "m2"})).await;
    common::publish(&nodes[0], "c", json!({"data": "m3"})).await;
    let seen = messages(&mut stream, 2).await;
    // Redis comes back as it was at the snapshot, as a replica that lagged would when
    // promoted: m2 and m3 are gone from it, though a client saw them.
    redis.restart();
    until_ready(&nodes).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    common::publish(&nodes[0], "c", json!({"data": "m4"})).await;
    // The client is told of the gap, then gets what the history holds now (m1 again, with
    // its message id: it may tell it saw it) and the new message, under ids it never saw.
    let gap = stream.next_event().await.unwrap();
    assert_eq!(gap.event, "error", "{gap:?}");
    let notice: Value = serde_json::from_str(&gap.data).unwrap();
    assert_eq!(notice["code"], 40900);
    let mut after = Vec::new();
    while after.last().is_none_or(|(_, _, data)| *data != json!("m4")) {
        after.extend(messages(&mut stream, 1).await);
    }
    for (_, id, data) in &after {
        assert!(*data == json!("m1") || *data == json!("m4"), "{data}");
        assert!(
            !seen.iter().any(|(_, seen, _)| seen == id),
            "the id {id} given twice"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_password_may_come_from_the_environment_and_is_never_shown() {
    let redis = Redis::start_with_password("s3cret-pw");
    let url = format!("redis://:s3cret-pw@127.0.0.1:{}/0", redis.port);
    // The file names the backend; the URL, with its password, is in the environment.
    let config = "[bus]\nbackend = \"redis\"\n";
    let env = [("STREAMGATE_BUS__REDIS_URL", url.as_str())];
    let nodes = [
        Server::start_logged_with(config, &env),
        Server::start_with(config, &[], &env),
    ];
    let mut stream = SseStream::open(&nodes[1].url("/sse?channels=p")).await;
    common::publish(&nodes[0], "p", json!({"data": "through"})).await;
    assert_eq!(messages(&mut stream, 1).await[0].2, json!("through"));
    assert_eq!(redis.cli(&["EXISTS", "sg:{p}:s"]).trim(), "1");
    let ready = client().get(nodes[0].url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let logs = nodes[0].logs();
    assert!(logs.contains("redis"), "{logs}");
    assert!(!logs.contains("s3cret-pw"), "the password was logged");
}

#[test]
fn the_redis_backend_needs_a_url() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("streamgate.toml");
    let check = |config: &str| {
        std::fs::write(&path, config).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_streamgate"))
            .arg("check-config")
            .arg(&path)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, err) = check("[bus]\nbackend = \"redis\"\n");
    assert!(!ok && err.contains("redis_url"), "{err}");
    let (ok, err) = check("[bus]\nbackend = \"redis\"\nredis_url = \"http://h\"\n");
    assert!(!ok && err.contains("redis://"), "{err}");
    let (ok, err) =
        check("[bus]\nbackend = \"redis\"\nredis_url = \"redis://h\"\ndata_dir = \"/x\"\n");
    assert!(!ok && err.contains("data_dir"), "{err}");
    let (ok, err) = check("[bus]\nbackend = \"redis\"\nredis_url = \"rediss://:pw@h:6380/0\"\n");
    assert!(ok, "{err}");
    let (ok, err) = check(
        "[bus]\nbackend = \"redis\"\nredis_url = \"redis://h\"\nredis_ca_file = \"/ca.pem\"\n",
    );
    assert!(!ok && err.contains("rediss://"), "{err}");
    // Several servers are a cluster's nodes; a cluster is Redis's.
    let (ok, err) = check("[bus]\nbackend = \"redis\"\nredis_url = \"redis://a,redis://b\"\n");
    assert!(!ok && err.contains("redis_cluster = true"), "{err}");
    let (ok, err) = check(
        "[bus]\nbackend = \"redis\"\nredis_cluster = true\nredis_url = \"redis://a:7000, redis://b:7000\"\n",
    );
    assert!(ok, "{err}");
    let (ok, err) = check("[bus]\nredis_cluster = true\n");
    assert!(!ok && err.contains("backend = \"redis\""), "{err}");
    let (ok, err) = check("[bus]\nbackend = \"redis\"\nredis_url = \" , \"\n");
    assert!(!ok && err.contains("names no server"), "{err}");
}

/// A delta stream's events as a client applies them.
struct Document {
    stream: SseStream,
    value: Option<Value>,
    kinds: Vec<String>,
}

impl Document {
    async fn open(node: &Server, path: &str) -> Document {
        Document {
            stream: SseStream::open(&node.url(path)).await,
            value: None,
            kinds: Vec::new(),
        }
    }

    /// Follows events until the document is `expected`.
    async fn until(&mut self, expected: &Value) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while self.value.as_ref() != Some(expected) {
            let next = tokio::time::timeout_at(deadline, self.stream.next_event()).await;
            let Ok(event) = next else {
                panic!("never {expected}: {:?}", self.value);
            };
            let event = event.expect("an event");
            assert!(!event.id.is_empty(), "every event has an id");
            let data: Value = serde_json::from_str(&event.data).unwrap();
            match event.event.as_str() {
                "data" => self.value = Some(data),
                "patch" => {
                    let patch = streamgate::patch::parse(&data).unwrap();
                    let doc = self.value.as_mut().expect("a patch after a data event");
                    json_patch::patch(doc, &patch).expect("the patch applies");
                }
                other => panic!("unexpected event {other}: {}", event.data),
            }
            self.kinds.push(event.event);
        }
    }
}

fn quotes(version: u64) -> Value {
    // One price moves per version: a patch is much smaller than the document.
    let items: Vec<Value> = (0..50)
        .map(|i| json!({"symbol": format!("S{i:03}"), "price": 100 + i + version * u64::from(i == 7)}))
        .collect();
    json!({"version": version, "items": items})
}

fn polled(redis: &impl BusUnderTest, upstream: &Upstream) -> String {
    format!(
        "{}[poll]\nmin_interval_ms = 100\n[[api]]\nname = \"q\"\nbase_url = \"{}\"\n\
         interval_ms = 200\n",
        redis.bus_config(),
        upstream.url("")
    )
}

/// `n` nodes polling `upstream`, each with a client that holds its first document.
async fn polling_nodes(
    n: usize,
    redis: &impl BusUnderTest,
    upstream: &Upstream,
) -> (Vec<Server>, Vec<Document>) {
    let nodes: Vec<Server> = (0..n)
        .map(|_| Server::start(&polled(redis, upstream)))
        .collect();
    let mut docs = Vec::new();
    for node in &nodes {
        let mut doc = Document::open(node, "/apis/q/quotes").await;
        doc.until(&quotes(0)).await;
        docs.push(doc);
    }
    (nodes, docs)
}

/// Asserts that `upstream` is polled once per interval (200 ms) for the whole cluster.
async fn assert_one_poll_per_interval(upstream: &Upstream) {
    let before = upstream.requests();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let polls = upstream.requests() - before;
    assert!((7..=14).contains(&polls), "{polls} polls in 2 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_node_polls_a_topic_for_subscribers_on_every_node() {
    one_node_polls_a_topic_for_subscribers_on_every_node_on(&Redis::start()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_redis_cluster_one_node_polls_a_topic_and_its_parts() {
    one_node_polls_a_topic_for_subscribers_on_every_node_on(&RedisCluster::start()).await;
}

async fn one_node_polls_a_topic_for_subscribers_on_every_node_on(redis: &impl BusUnderTest) {
    let upstream = Upstream::start(quotes(0)).await;
    let (nodes, mut docs) = polling_nodes(3, redis, &upstream).await;
    // A selected part of the same topic, on one node.
    let mut part = Document::open(&nodes[0], "/apis/q/quotes?select=/items/7").await;
    part.until(&quotes(0)["items"][7]).await;
    upstream.set(quotes(1));
    for doc in &mut docs {
        doc.until(&quotes(1)).await;
        assert_eq!(doc.kinds.last().unwrap(), "patch", "{:?}", doc.kinds);
    }
    part.until(&quotes(1)["items"][7]).await;
    // Polled once per interval for the cluster, not once per node: 2 s at 200 ms is ten
    // polls (three nodes each polling would make thirty).
    assert_one_poll_per_interval(&upstream).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_part_watched_only_on_a_node_that_does_not_poll_is_fed_by_the_one_that_does() {
    let redis = Redis::start();
    let upstream = Upstream::start(quotes(0)).await;
    let nodes: Vec<Server> = (0..2)
        .map(|_| Server::start(&polled(&redis, &upstream)))
        .collect();
    // The first node polls for its client of the whole document; the second node's only
    // client watches one part.
    let mut whole = Document::open(&nodes[0], "/apis/q/quotes").await;
    whole.until(&quotes(0)).await;
    let mut part = Document::open(&nodes[1], "/apis/q/quotes?select=/items").await;
    part.until(&quotes(0)["items"]).await;
    upstream.set(quotes(1));
    part.until(&quotes(1)["items"]).await;
    assert_eq!(part.kinds, ["data", "patch"]);
    // Still one poll per interval for the cluster.
    assert_one_poll_per_interval(&upstream).await;
    drop(whole);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_polling_node_dies_another_goes_on_with_the_same_patch_chain() {
    let redis = Redis::start();
    let upstream = Upstream::start(quotes(0)).await;
    let mut nodes: Vec<Server> = (0..3)
        .map(|_| Server::start(&polled(&redis, &upstream)))
        .collect();
    // The first node's subscriber starts the poll there: that node holds the lease.
    let mut first = Document::open(&nodes[0], "/apis/q/quotes").await;
    first.until(&quotes(0)).await;
    let mut docs = Vec::new();
    for node in &nodes[1..] {
        let mut doc = Document::open(node, "/apis/q/quotes").await;
        doc.until(&quotes(0)).await;
        docs.push(doc);
    }
    drop(first);
    drop(nodes.remove(0)); // SIGKILL
    let killed = std::time::Instant::now();
    upstream.set(quotes(2));
    for doc in &mut docs {
        doc.until(&quotes(2)).await;
        // No reset: the new poller diffs against the document the clients hold.
        assert_eq!(doc.kinds, ["data", "patch"], "{:?}", doc.kinds);
    }
    let failover = killed.elapsed();
    assert!(failover < Duration::from_secs(8), "took {failover:?}");
    // A subscriber arriving now gets the current document at once.
    let mut late = Document::open(&nodes[1], "/apis/q/quotes").await;
    late.until(&quotes(2)).await;
    assert_eq!(late.kinds, ["data"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_taking_its_lapsed_lease_back_goes_on_from_what_another_published() {
    let redis = Redis::start();
    let flagged = |version: u64, flag: u64| {
        let mut document = quotes(version);
        document["flag"] = json!(flag);
        document
    };
    let upstream = Upstream::start(flagged(0, 0)).await;
    let mut nodes: Vec<Server> = (0..2)
        .map(|_| Server::start(&polled(&redis, &upstream)))
        .collect();
    let mut first = Document::open(&nodes[0], "/apis/q/quotes").await;
    first.until(&flagged(0, 0)).await;
    let mut second = Document::open(&nodes[1], "/apis/q/quotes").await;
    second.until(&flagged(0, 0)).await;
    // The polling node stalls; its lease lapses and the other node publishes a version.
    signal(&nodes[0], "STOP");
    upstream.set(flagged(1, 1));
    second.until(&flagged(1, 1)).await;
    // That node goes away, and its lease lapses too, before the first node wakes up and
    // takes the lease back with the same claim it had: what it last diffed against is two
    // versions old, and the flag is back to the value it knew.
    drop(second);
    drop(nodes.remove(1));
    tokio::time::sleep(Duration::from_millis(3500)).await;
    upstream.set(flagged(2, 0));
    signal(&nodes[0], "CONT");
    first.until(&flagged(2, 0)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_slower_than_the_lease_keeps_it_on_one_node() {
    let redis = Redis::start();
    let upstream = Upstream::start(quotes(0)).await;
    let (_nodes, mut docs) = polling_nodes(2, &redis, &upstream).await;
    // Each answer takes longer than a lease lasts unrenewed: the polling node renews it
    // while it waits, and the other never polls alongside.
    upstream.set(quotes(1));
    upstream.behave(Behaviour::Slow(Duration::from_millis(4500)));
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(upstream.slow_peak(), 1, "two nodes polled at once");
    for doc in &mut docs {
        doc.until(&quotes(1)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_backing_off_longer_than_the_lease_keeps_it_on_one_node() {
    let redis = Redis::start();
    let upstream = SseUpstream::start().await;
    // Every connection sends one event asking for 5 s before the next connection, and ends.
    upstream.script_every_time("/quotes", b"retry: 5000\ndata: x\n\n");
    let (_nodes, _streams) = relaying_nodes(2, &redis, &upstream).await;
    // One node connects every 5 s: three connections in 12 s. Were the lease not renewed
    // while it waits, the other node would take it within 3.5 s and connect at once, and so
    // on back and forth.
    tokio::time::sleep(Duration::from_secs(12)).await;
    let connects = upstream.requests().len();
    assert!(
        (2..=3).contains(&connects),
        "{connects} connections in 12 s"
    );
}

fn relayed(redis: &impl BusUnderTest, upstream: &SseUpstream) -> String {
    format!(
        "{}[[relay]]\nname = \"market\"\nlisten_path = \"/market\"\nupstream = \"{}\"\n",
        redis.bus_config(),
        upstream.url("/")
    )
}

/// `n` nodes relaying `upstream`, each with a client of its topic `quotes`.
async fn relaying_nodes(
    n: usize,
    redis: &impl BusUnderTest,
    upstream: &SseUpstream,
) -> (Vec<Server>, Vec<SseStream>) {
    let nodes: Vec<Server> = (0..n)
        .map(|_| Server::start(&relayed(redis, upstream)))
        .collect();
    let mut streams = Vec::new();
    for node in &nodes {
        streams.push(SseStream::open(&node.url("/market/quotes")).await);
    }
    (nodes, streams)
}

/// The next `n` relayed events of `stream` as (SSE id, data).
async fn relayed_events(stream: &mut SseStream, n: usize) -> Vec<(String, String)> {
    let mut events = Vec::new();
    for _ in 0..n {
        let event = next_relayed(stream).await;
        events.push((event.id, event.data));
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_upstream_connection_per_relay_topic_for_subscribers_on_every_node() {
    one_upstream_connection_per_relay_topic_for_subscribers_on_every_node_on(&Redis::start()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_redis_cluster_one_upstream_connection_per_relay_topic() {
    one_upstream_connection_per_relay_topic_for_subscribers_on_every_node_on(&RedisCluster::start()).await;
}

async fn one_upstream_connection_per_relay_topic_for_subscribers_on_every_node_on(
    redis: &impl BusUnderTest,
) {
    let upstream = SseUpstream::start().await;
    let (_nodes, mut streams) = relaying_nodes(3, redis, &upstream).await;
    eventually("the upstream connection", || upstream.open_streams() == 1).await;
    for i in 0..3 {
        upstream.send("quote", &format!("{{\"n\":{i}}}"));
    }
    let mut seen = Vec::new();
    for stream in &mut streams {
        seen.push(relayed_events(stream, 3).await);
    }
    assert_eq!(seen[0], seen[1]);
    assert_eq!(seen[0], seen[2]);
    // Still one connection, and only ever one request, a while later.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(upstream.open_streams(), 1);
    assert_eq!(upstream.requests().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_relaying_node_dies_another_resumes_the_upstream_after_the_last_event() {
    let redis = Redis::start();
    let upstream = SseUpstream::start().await;
    let mut nodes: Vec<Server> = (0..3)
        .map(|_| Server::start(&relayed(&redis, &upstream)))
        .collect();
    // The first node's subscriber starts the relay there: that node holds the lease.
    let mut first = SseStream::open(&nodes[0].url("/market/quotes")).await;
    eventually("the upstream connection", || upstream.open_streams() == 1).await;
    let mut streams = Vec::new();
    for node in &nodes[1..] {
        streams.push(SseStream::open(&node.url("/market/quotes")).await);
    }
    for i in 1..=2 {
        upstream.send("quote", &format!("{{\"n\":{i}}}"));
    }
    relayed_events(&mut first, 2).await;
    for stream in &mut streams {
        relayed_events(stream, 2).await;
    }
    drop(first);
    drop(nodes.remove(0)); // SIGKILL
    eventually("a second upstream request", || {
        upstream.requests().len() == 2
    })
    .await;
    let resumed = upstream.requests()[1].last_event_id();
    assert_eq!(
        resumed.as_deref(),
        Some(&b"2"[..]),
        "resumed after the last kept"
    );
    eventually("the new upstream connection", || {
        upstream.open_streams() == 1
    })
    .await;
    upstream.send("quote", "{\"n\":3}");
    for stream in &mut streams {
        let next = relayed_events(stream, 1).await;
        assert_eq!(next[0].1, "{\"n\":3}", "no event lost or doubled");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_kept_cursors_resume_on_another_node_after_a_kill() {
    let redis = Redis::start();
    let mut nodes = nodes(&redis).await;
    let payloads = |events: Vec<streamgate::wire::sse_parser::SseEvent>| -> Vec<String> {
        let data = |e: &streamgate::wire::sse_parser::SseEvent| {
            envelope(e)["data"].as_str().unwrap().to_owned()
        };
        events.iter().map(data).collect()
    };
    // A dynamic connection on the first node, with a stream added while it is open.
    let (mut dynamic, id) = common::dynamic(&nodes[0], "&channels=a").await;
    let added = common::add(&nodes[0], &id, json!({"channel": "b"})).await;
    assert_eq!(added.status(), 201);
    for (channel, data) in [("a", "a1"), ("b", "b1"), ("a", "a2"), ("b", "b2")] {
        common::publish(&nodes[1], channel, json!({ "data": data })).await;
    }
    let seen = dynamic.events(4).await;
    let token = seen[1].id.clone();
    assert_eq!(payloads(seen), ["a1", "b1", "a2", "b2"]);
    // A connection with more streams than fit in an id.
    let names: Vec<String> = (0..17).map(|i| format!("s{i}")).collect();
    let many_path = format!("/sse?channels={}", names.join(","));
    let mut many = SseStream::open(&nodes[0].url(&many_path)).await;
    common::publish(&nodes[2], "s0", json!({"data": "s0"})).await;
    let many_token = many.next_event().await.unwrap().id;
    common::publish(&nodes[2], "s16", json!({"data": "s16"})).await;
    assert_eq!(payloads(many.events(1).await), ["s16"]);

    drop((dynamic, many));
    // Journals are kept every 250 ms: the tokens above are in Redis by now.
    tokio::time::sleep(Duration::from_millis(750)).await;
    drop(nodes.remove(0)); // SIGKILL

    // The same connection, with both streams, exactly after the token, on another node.
    let mut resumed = common::resume_dynamic(&nodes[0], &token, &id).await;
    assert_eq!(payloads(resumed.events(2).await), ["a2", "b2"]);
    common::publish(&nodes[1], "b", json!({"data": "b3"})).await;
    assert_eq!(payloads(resumed.events(1).await), ["b3"]);
    // Its streams can be changed on the node that holds it now.
    let added = common::add(&nodes[0], &id, json!({"channel": "c"})).await;
    assert_eq!(added.status(), 201);

    let headers = last_event_id(&many_token);
    let mut resumed = SseStream::open_with(&nodes[1].url(&many_path), headers).await;
    assert_eq!(payloads(resumed.events(1).await), ["s16"]);
    common::publish(&nodes[0], "s3", json!({"data": "s3"})).await;
    assert_eq!(payloads(resumed.events(1).await), ["s3"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dynamic_connection_is_changed_through_any_node() {
    a_dynamic_connection_is_changed_through_any_node_on(&Redis::start()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_redis_cluster_a_dynamic_connection_is_changed_through_any_node() {
    a_dynamic_connection_is_changed_through_any_node_on(&RedisCluster::start()).await;
}

async fn a_dynamic_connection_is_changed_through_any_node_on(redis: &impl BusUnderTest) {
    let nodes = nodes(redis).await;
    let (mut dynamic, id) = common::dynamic(&nodes[0], "&channels=a").await;
    // Its journal, which names the node holding it, is in Redis within 250 ms.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    // Added through another node than the one holding its stream.
    let added = common::add(&nodes[1], &id, json!({"channel": "b"})).await;
    assert_eq!(added.status(), 201);
    let body: Value = added.json().await.unwrap();
    assert_eq!(
        body,
        json!({"connectionId": id, "stream": "b", "kind": "channel"})
    );
    common::publish(&nodes[2], "b", json!({"data": "b1"})).await;
    let event = dynamic.events(1).await.remove(0);
    assert_eq!(envelope(&event)["data"], "b1");
    // Listed and removed through the third node.
    let listed: Value = get_json(&nodes[2], &format!("/connections/{id}")).await;
    assert_eq!(listed["streams"].as_array().unwrap().len(), 2, "{listed}");
    let url = nodes[2].url(&format!("/connections/{id}/subscriptions/b"));
    let removed = client().delete(&url).send().await.unwrap();
    assert_eq!(removed.status(), 204);
    let listed: Value = get_json(&nodes[1], &format!("/connections/{id}")).await;
    assert_eq!(
        listed["streams"],
        json!([{"stream": "a", "kind": "channel"}])
    );
    // The holder's refusals reach the client as they are (a stream it already carries);
    // an unknown connection is 404.
    let again = common::add(&nodes[1], &id, json!({"channel": "a"})).await;
    let body = expect_error(again, 400, 40000).await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already"),
        "{body}"
    );
    let unknown = common::add(&nodes[1], "nosuchconnection", json!({"channel": "b"})).await;
    expect_error(unknown, 404, 40400).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dynamic_connection_opened_empty_is_changed_through_any_node() {
    let redis = Redis::start();
    let nodes = nodes(&redis).await;
    let (mut dynamic, id) = common::dynamic(&nodes[0], "").await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let added = common::add(&nodes[1], &id, json!({"channel": "b"})).await;
    assert_eq!(added.status(), 201);
    common::publish(&nodes[2], "b", json!({"data": "b1"})).await;
    let event = dynamic.events(1).await.remove(0);
    assert_eq!(envelope(&event)["data"], "b1");
}

/// A configured API's stream added through another node than the holder's travels without
/// the API's secrets, and the holder makes it from its own config.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_api_added_through_another_node_is_made_by_the_holder() {
    let redis = Redis::start();
    let upstream = Upstream::start(quotes(0)).await;
    let config = format!(
        "{}[poll]\ninterval_ms = 100\nmin_interval_ms = 50\n\
         [[api]]\nname = \"quotes\"\nbase_url = \"{}\"\nquery = {{ apikey = \"s3cret\" }}\n",
        redis.bus_config(),
        upstream.url("/")
    );
    let nodes: Vec<Server> = (0..2).map(|_| Server::start(&config)).collect();
    until_ready(&nodes).await;
    let (mut dynamic, id) = common::dynamic(&nodes[0], "").await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let added = common::add(&nodes[1], &id, json!({"poll": "/apis/quotes/q"})).await;
    assert_eq!(added.status(), 201);
    let first = dynamic.next_event().await.unwrap();
    assert_eq!(first.event, "data", "{first:?}");
    let body: Value = serde_json::from_str(&first.data).unwrap();
    assert_eq!(body["channel"], "/apis/quotes/q");
    let (_, query) = upstream.last_request("/q");
    assert_eq!(query.as_deref(), Some("apikey=s3cret"));
    let keys = redis.cli(&["KEYS", "*"]);
    assert!(!keys.contains("s3cret"), "a secret in a Redis key: {keys}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_holder_polls_a_stream_added_elsewhere_only_if_its_own_policy_allows() {
    let redis = Redis::start();
    let upstream = Upstream::start(quotes(0)).await;
    // The node holding the connection allows no ad-hoc target; the one asked allows it.
    let strict = Server::start(&redis.bus_config());
    let open = format!(
        "{}[poll]\nallowed_targets = [\"http://127.0.0.1:*/*\"]\n",
        redis.bus_config()
    );
    let lenient = Server::start(&open);
    let (mut dynamic, id) = common::dynamic(&strict, "&channels=a").await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let added = common::add(&lenient, &id, json!({"poll": upstream.url("/quotes")})).await;
    assert_eq!(added.status(), 201);
    // The holder tells its client the target is refused, and never requests it.
    let event = dynamic.next_event().await.unwrap();
    assert_eq!(event.event, "error", "{event:?}");
    let error: Value = serde_json::from_str(&event.data).unwrap();
    assert_eq!(error["data"]["status"], 2005, "{error}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(upstream.requests(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_resumed_elsewhere_moves_there_and_back_exactly() {
    /// The next event's id and data.
    async fn data(stream: &mut SseStream) -> (String, String) {
        let event = stream.events(1).await.remove(0);
        let data = envelope(&event)["data"].as_str().unwrap().to_owned();
        (event.id, data)
    }
    let redis = Redis::start();
    let nodes = nodes(&redis).await;
    let (mut first, id) = common::dynamic(&nodes[0], "&channels=a").await;
    common::publish(&nodes[2], "a", json!({"data": "a1"})).await;
    let (token, _) = data(&mut first).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    // Resumed on the second node while the first one's stream is still open: that stream
    // ends once its node learns the connection moved (at its next delivery).
    let mut second = common::resume_dynamic(&nodes[1], &token, &id).await;
    common::publish(&nodes[2], "a", json!({"data": "a2"})).await;
    assert_eq!(data(&mut second).await.1, "a2");
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while first.next_event().await.is_some() {}
    });
    assert!(ended.await.is_ok(), "the first node's stream ended");
    // A stream added there, and a message on it.
    let added = common::add(&nodes[1], &id, json!({"channel": "b"})).await;
    assert_eq!(added.status(), 201);
    common::publish(&nodes[2], "b", json!({"data": "b1"})).await;
    let (token, payload) = data(&mut second).await;
    assert_eq!(payload, "b1");
    drop(second);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    // Back on the first node, which knew the connection before it moved: it resumes from
    // what the second node kept, both streams exactly after the token.
    let mut back = common::resume_dynamic(&nodes[0], &token, &id).await;
    common::publish(&nodes[2], "a", json!({"data": "a3"})).await;
    common::publish(&nodes[2], "b", json!({"data": "b2"})).await;
    let mut seen = vec![data(&mut back).await.1, data(&mut back).await.1];
    seen.sort();
    assert_eq!(seen, ["a3", "b2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_change_on_one_node_applies_on_every_node() {
    an_admin_change_on_one_node_applies_on_every_node_on(&Redis::start()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_redis_cluster_an_admin_change_applies_on_every_node() {
    an_admin_change_on_one_node_applies_on_every_node_on(&RedisCluster::start()).await;
}

async fn an_admin_change_on_one_node_applies_on_every_node_on(redis: &impl BusUnderTest) {
    let upstream = Upstream::start(json!({"price": 1})).await;
    let config = format!(
        "{}[[key]]\nname = \"root\"\nsecret = \"root-secret\"\ncapabilities = {{ \"*\" = [\"*\"] }}\n\
         [poll]\nallowed_targets = [\"http://127.0.0.1:*/*\"]\n",
        redis.bus_config()
    );
    let nodes: Vec<Server> = (0..3).map(|_| Server::start(&config)).collect();
    let admin = |node: &Server, path: &str| node.url(&format!("{path}?key=root:root-secret"));
    // An API added on the first node is served by the others at once.
    let api = json!({"name": "prices", "base_url": upstream.url("/v1")});
    let resp = client()
        .post(admin(&nodes[0], "/admin/apis"))
        .json(&api)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    // A key added on the second node lets a client in on the third.
    let key = json!({"name": "app", "secret": "app-secret", "capabilities": {"*": ["poll"]}});
    let resp = client()
        .post(admin(&nodes[1], "/admin/keys"))
        .json(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let url = nodes[2].url("/apis/prices/quote?key=app:app-secret");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut stream = loop {
        let resp = client().get(&url).send().await.unwrap();
        if resp.status() == 200 {
            break resp;
        }
        assert!(std::time::Instant::now() < deadline, "{}", resp.status());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let first = stream.chunk().await.unwrap().unwrap();
    assert!(
        String::from_utf8_lossy(&first).contains("\"price\":1"),
        "{first:?}"
    );
    // Every node lists the same catalog.
    for node in &nodes {
        let apis: Vec<Value> = client()
            .get(admin(node, "/admin/apis"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(apis.len(), 1, "{apis:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catalog_change_a_node_could_not_take_up_is_taken_up_later() {
    /// Waits until `node` lists the keys `expected`.
    async fn until_keys(node: &Server, expected: [&str; 2]) {
        let deadline = std::time::Instant::now() + Duration::from_secs(12);
        loop {
            let keys: Vec<Value> = get_json(node, "/admin/keys?key=root:root-secret").await;
            let mut names: Vec<&str> = keys.iter().map(|k| k["name"].as_str().unwrap()).collect();
            names.sort();
            if names == expected {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "{names:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let redis = Redis::start();
    let config = format!(
        "{}[[key]]\nname = \"root\"\nsecret = \"root-secret\"\ncapabilities = {{ \"*\" = [\"*\"] }}\n",
        redis.bus_config()
    );
    let nodes: Vec<Server> = (0..2).map(|_| Server::start(&config)).collect();
    let key = json!({"name": "app", "secret": "app-secret", "capabilities": {"*": ["subscribe"]}});
    let resp = client()
        .post(nodes[0].url("/admin/keys?key=root:root-secret"))
        .json(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    until_keys(&nodes[1], ["app", "root"]).await;
    // A catalog no node can read is announced: every reload fails. Then a good one is
    // stored without an announcement (as if it were lost): nodes take it up on their own.
    let version: u64 = redis
        .cli(&["HGET", "sg:catalog", "version"])
        .trim()
        .parse()
        .unwrap();
    let text = redis.cli(&["HGET", "sg:catalog", "text"]);
    let (bad, good) = ((version + 1).to_string(), (version + 2).to_string());
    redis.cli(&[
        "HSET",
        "sg:catalog",
        "version",
        &bad,
        "text",
        "[[[ not toml",
    ]);
    redis.cli(&["PUBLISH", "sg:catalog", &bad]);
    let renamed = text.trim_end().replace("\"app\"", "\"renamed\"");
    assert_ne!(renamed, text.trim_end());
    tokio::time::sleep(Duration::from_millis(500)).await;
    redis.cli(&["HSET", "sg:catalog", "version", &good, "text", &renamed]);
    for node in &nodes {
        until_keys(node, ["renamed", "root"]).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_reach_redis_over_tls_with_a_private_ca() {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let redis = Redis::start_tls(&leaf.pem(), &key.serialize_pem());
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let config = format!(
        "[bus]\nbackend = \"redis\"\nredis_url = \"rediss://127.0.0.1:{}/0\"\nredis_ca_file = {:?}\n",
        redis.port, ca_file
    );
    let nodes: Vec<Server> = (0..2).map(|_| Server::start(&config)).collect();
    // Connected over TLS once ready (a loaded machine takes a while to start both).
    until_ready(&nodes).await;
    let mut stream = SseStream::open(&nodes[1].url("/sse?channels=secure")).await;
    common::publish(&nodes[0], "secure", json!({"data": "over tls"})).await;
    assert_eq!(messages(&mut stream, 1).await[0].2, json!("over tls"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_stopping_keeps_its_connections_last_entries_for_the_others() {
    let redis = Redis::start();
    let mut nodes = nodes(&redis).await;
    let (mut dynamic, id) = common::dynamic(&nodes[0], "&channels=a").await;
    common::publish(&nodes[1], "a", json!({"data": "a1"})).await;
    common::publish(&nodes[1], "a", json!({"data": "a2"})).await;
    let seen = dynamic.events(2).await;
    // Stopped at once, well within the 250 ms between journal writes: the stop itself
    // writes the last entries.
    let status = nodes.remove(0).terminate();
    assert!(status.success(), "{status:?}");
    drop(dynamic);
    let mut resumed = common::resume_dynamic(&nodes[0], &seen[0].id, &id).await;
    let next = resumed.next_event().await.unwrap();
    assert_eq!(envelope(&next)["data"], "a2", "exactly after the token");
}
