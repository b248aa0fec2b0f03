//! `[bus] data_dir`: pub/sub history and polled documents kept on disk, across a real
//! process killed with SIGKILL and restarted on the same folder.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use common::sse_upstream::SseUpstream;
use common::upstream::Upstream;
use common::{Server, SseStream, client, envelope, get_json};
use serde_json::{Value, json};
use streamgate::wire::sse_parser::SseEvent;

/// Longer than the gateway takes to keep a connection's journal (every 250 ms).
const JOURNAL_KEPT: std::time::Duration = std::time::Duration::from_millis(750);

fn config(data: &tempfile::TempDir, extra: &str) -> String {
    format!("[bus]\ndata_dir = {:?}\n{extra}", data.path())
}

/// The whole history of `channel`, oldest first.
async fn all(server: &Server, channel: &str) -> Vec<Value> {
    get_json(
        server,
        &format!("/channels/{channel}/messages?limit=1000&direction=forwards"),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_message_survives_a_kill_in_order_and_resumes_exactly() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(&config(&data, ""));

    // A subscriber notes the SSE id of every message it sees before the kill.
    let seen: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let mut stream = SseStream::open(&server.url("/sse?channels=d")).await;
    let noted = Arc::clone(&seen);
    let watcher = tokio::spawn(async move {
        while let Some(event) = stream.next_event().await {
            let id = envelope(&event)["id"].as_str().unwrap().to_owned();
            noted.lock().unwrap().push((id, event.id.clone()));
        }
    });

    // An id the gateway gives: the next run must not give it again.
    let given = common::publish(&server, "d", json!({"data": "first"})).await;

    // Three publishers, each in order, until the process is killed under them (or, when the
    // restarted process answers first, until they see the kill).
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let killed = Arc::new(AtomicBool::new(false));
    let publishers: Vec<_> = (0..3)
        .map(|p| {
            let (url, acked) = (server.url("/channels/d/messages"), Arc::clone(&acked));
            let killed = Arc::clone(&killed);
            tokio::spawn(async move {
                for i in 0.. {
                    if killed.load(Ordering::Relaxed) {
                        return;
                    }
                    let id = format!("p{p}-{i:05}");
                    // Raw text: the number must come back as it was written.
                    let body = format!(
                        r#"{{"id":"{id}","name":"n","data":{{"p":{p},"i":{i},"x":1.50E+3}}}}"#
                    );
                    let request = client()
                        .post(&url)
                        .header("content-type", "application/json");
                    match request.body(body).send().await {
                        Ok(resp) if resp.status() == 201 => acked.lock().unwrap().push(id),
                        _ => return,
                    }
                }
            })
        })
        .collect();
    common::eventually("publishers acknowledged 150 messages", || {
        acked.lock().unwrap().len() >= 150
    })
    .await;
    killed.store(true, Ordering::Relaxed);
    let server = server.restart(); // SIGKILL, then the same folder
    for publisher in publishers {
        publisher.await.unwrap();
    }
    watcher.abort();
    let acked = acked.lock().unwrap().clone();
    let seen = seen.lock().unwrap().clone();
    assert!(
        seen.len() >= 100,
        "the subscriber saw {} messages",
        seen.len()
    );

    let history = all(&server, "d").await;
    let ids: Vec<&str> = history.iter().map(|m| m["id"].as_str().unwrap()).collect();
    let at: HashMap<&str, usize> = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    assert_eq!(at.len(), ids.len(), "an id twice in {ids:?}");
    for id in &acked {
        assert!(at.contains_key(id.as_str()), "acknowledged {id} is gone");
    }
    // Nothing was seen before it was kept: every message the subscriber got is there, in
    // the order it got them.
    let positions: Vec<usize> = seen.iter().map(|(id, _)| at[id.as_str()]).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    // Each publisher's messages in its order, each as it was sent.
    for p in 0..3 {
        let prefix = format!("p{p}-");
        let mine: Vec<&&str> = ids.iter().filter(|id| id.starts_with(&prefix)).collect();
        assert!(
            mine.windows(2).all(|w| w[0] < w[1]),
            "out of order: {mine:?}"
        );
    }
    // Numbers as they were written (read as text: serde_json would respell them).
    let text = common::get_text(&server, "/channels/d/messages?limit=1").await;
    assert!(text.contains(r#""x":1.50E+3"#), "{text}");

    // Resuming with the id of a message seen before the kill gives exactly the rest.
    let (message, sse_id) = &seen[seen.len() / 2];
    let rest: Vec<&str> = ids[at[message.as_str()] + 1..].to_vec();
    let headers = common::last_event_id(sse_id);
    let mut resumed = SseStream::open_with(&server.url("/sse?channels=d"), headers).await;
    let events = resumed.events(rest.len()).await;
    let got: Vec<String> = events
        .iter()
        .map(|e| envelope(e)["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(got, rest, "resumed after {message}");

    // And publishing goes on after the last kept position, without reusing an id.
    let ids_after = common::publish(&server, "d", json!({"data": "after"})).await;
    let next = resumed.next_event().await.unwrap();
    assert_eq!(envelope(&next)["id"], ids_after[0].as_str());
    assert!(ids.contains(&given[0].as_str()));
    assert_ne!(ids_after, given, "an id given again after the restart");
}

#[tokio::test]
async fn history_limits_apply_on_disk() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(&config(&data, "[channels]\nhistory_size = 5\n"));
    for i in 0..12 {
        common::publish(
            &server,
            "small",
            json!({"id": format!("m{i:02}"), "data": i}),
        )
        .await;
    }
    drop(server); // SIGKILL
    // The file holds no more than history: the older ones were deleted as they left it,
    // not only when a restart reads the store.
    {
        let db = redb::Database::open(data.path().join("history.redb")).unwrap();
        let table: redb::TableDefinition<(&str, u64), &[u8]> =
            redb::TableDefinition::new("messages");
        let txn = db.begin_read().unwrap();
        let count = redb::ReadableTableMetadata::len(&txn.open_table(table).unwrap()).unwrap();
        assert_eq!(count, 5);
    }
    let server = Server::start(&config(&data, "[channels]\nhistory_size = 5\n"));
    let kept: Vec<Value> = all(&server, "small").await;
    let kept: Vec<&str> = kept.iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(kept, ["m07", "m08", "m09", "m10", "m11"]);
}

/// Starts the binary on `data` and returns what it printed when it refused to start.
fn refused_start(data: &tempfile::TempDir) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("streamgate.toml");
    std::fs::write(&file, config(data, "")).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_streamgate"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&file)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A gateway that does start would serve for ever: give it a few seconds.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("started on a store it must refuse");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(!status.success(), "started on a store it must refuse");
    let mut said = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut said).unwrap();
    said
}

#[test]
fn an_unreadable_or_newer_store_stops_the_start_with_a_clear_error() {
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("history.redb"), b"not a database at all").unwrap();
    let said = refused_start(&data);
    assert!(
        said.contains("cannot be read") && said.contains("move it away"),
        "{said}"
    );
    let garbage = std::fs::read(data.path().join("history.redb")).unwrap();
    assert_eq!(garbage, b"not a database at all", "the store was not wiped");

    let data = tempfile::tempdir().unwrap();
    {
        let db = redb::Database::create(data.path().join("history.redb")).unwrap();
        let txn = db.begin_write().unwrap();
        let meta: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("meta");
        txn.open_table(meta)
            .unwrap()
            .insert("format", 99u64.to_le_bytes().as_slice())
            .unwrap();
        txn.commit().unwrap();
    }
    let said = refused_start(&data);
    assert!(
        said.contains("newer streamgate") && said.contains("format 99"),
        "{said}"
    );

    // A store whose parts are not what this version wrote: a polled document that is not
    // JSON, a connection journal whose entry is cut short.
    for (table, key, value) in [
        ("state_documents", "[poll]GET http://h/a", &b"{not json"[..]),
        ("journals", "c0nnection", &b"digest"[..]),
    ] {
        let data = tempfile::tempdir().unwrap();
        {
            let db = redb::Database::create(data.path().join("history.redb")).unwrap();
            let txn = db.begin_write().unwrap();
            let definition: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new(table);
            txn.open_table(definition)
                .unwrap()
                .insert(key, value)
                .unwrap();
            if table == "state_documents" {
                let heads: redb::TableDefinition<&str, u64> =
                    redb::TableDefinition::new("state_heads");
                txn.open_table(heads).unwrap().insert(key, 7).unwrap();
            } else {
                let entries: redb::TableDefinition<(&str, u64), &[u8]> =
                    redb::TableDefinition::new("journal_entries");
                let mut entries = txn.open_table(entries).unwrap();
                entries.insert((key, 1), b"\x03".as_slice()).unwrap();
            }
            txn.commit().unwrap();
        }
        let said = refused_start(&data);
        assert!(
            said.contains("not readable") && said.contains("move the store away"),
            "{table}: {said}"
        );
    }
}

#[tokio::test]
async fn without_a_data_dir_a_restart_keeps_nothing() {
    let server = Server::start("");
    common::publish(&server, "gone", json!({"data": 1})).await;
    let server = server.restart();
    assert!(all(&server, "gone").await.is_empty());
}

#[tokio::test]
async fn two_gateways_cannot_share_a_store() {
    let data = tempfile::tempdir().unwrap();
    let first = Server::start(&config(&data, ""));
    // Answered once committed: the first gateway holds the store by then.
    common::publish(&first, "held", json!({"data": 1})).await;
    let said = refused_start(&data);
    assert!(said.contains("in use by another process"), "{said}");
}

#[tokio::test]
async fn a_restored_backlog_of_several_channels_keeps_the_publish_order() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(&config(&data, ""));
    for (channel, id) in [("b", "b1"), ("a", "a1"), ("b", "b2"), ("a", "a2")] {
        common::publish(&server, channel, json!({"id": id, "data": 0})).await;
        // Distinct timestamps: the order across channels is by time.
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    let server = server.restart();
    let mut stream = SseStream::open(&server.url("/sse?channels=a,b&rewind=10")).await;
    let got: Vec<String> = stream
        .events(4)
        .await
        .iter()
        .map(|e| envelope(e)["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(got, ["b1", "a1", "b2", "a2"]);
}

#[tokio::test]
async fn a_publisher_id_is_still_known_after_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(&config(&data, ""));
    let first = common::publish(&server, "idem", json!({"id": "order-7", "data": 1})).await;
    let server = server.restart();
    // A publish with the same id is acknowledged, not appended: the kept message is the
    // first one (a store that lost it would keep this one).
    let again = common::publish(&server, "idem", json!({"id": "order-7", "data": 2})).await;
    assert_eq!(again, first);
    let kept = all(&server, "idem").await;
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(kept[0]["data"], 1, "{kept:?}");
}

/// A polled topic's subscriber: `data` replaces its document, `patch` is applied (by the
/// `json-patch` crate, independent of the gateway's diff).
struct Holder {
    document: Option<Value>,
    last_id: String,
}

impl Holder {
    /// Applies the next event of `stream`; returns its kind.
    async fn step(&mut self, stream: &mut SseStream) -> String {
        let event = stream.next_event().await.expect("an event");
        let data: Value = serde_json::from_str(&event.data).unwrap();
        match event.event.as_str() {
            "data" => self.document = Some(data),
            "patch" => {
                let patch = streamgate::patch::parse(&data).unwrap();
                let document = self.document.as_mut().expect("a patch after a data event");
                json_patch::patch(document, &patch).expect("the patch applies");
            }
            other => panic!("unexpected {other} event: {event:?}"),
        }
        self.last_id = event.id.clone();
        event.event
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_polled_topic_restarts_from_its_kept_document() {
    // Big enough that a change is a patch, not a fresh `data` (the smaller is sent).
    let document = |v: u64| {
        let items: Vec<Value> = (v..40)
            .map(|i| json!({"id": i, "name": format!("item number {i}"), "price": i}))
            .collect();
        json!({"items": items, "v": v, "x": 1.50E+3})
    };
    let upstream = Upstream::start(document(1)).await;
    let data = tempfile::tempdir().unwrap();
    let poll = "[poll]\nallowed_targets = [\"http://127.0.0.1:*/*\"]\ninterval_ms = 100\n\
                min_interval_ms = 50\nlinger_ms = 300\n";
    let server = Server::start(&config(&data, poll));
    let path = format!("/{}", upstream.url("/quotes"));

    let mut holder = Holder {
        document: None,
        last_id: String::new(),
    };
    let mut stream = SseStream::open(&server.url(&path)).await;
    assert_eq!(holder.step(&mut stream).await, "data");
    upstream.set(document(2));
    assert_eq!(holder.step(&mut stream).await, "patch");
    assert_eq!(holder.document, Some(upstream.document()));

    drop(stream);
    let server = server.restart(); // SIGKILL, then the same folder
    upstream.set(document(3));

    // The first subscriber after the restart, before any poll: its first event is the fresh
    // document, not the patch that takes the kept one to it.
    let mut first = Holder {
        document: None,
        last_id: String::new(),
    };
    let mut early = SseStream::open(&server.url(&path)).await;
    assert_eq!(first.step(&mut early).await, "data");
    assert_eq!(first.document, Some(upstream.document()));
    drop(early);

    // Resuming where it was: the first event is a patch, and it applies to what the client
    // held before the crash.
    let headers = common::last_event_id(&holder.last_id);
    let mut resumed = SseStream::open_with(&server.url(&path), headers).await;
    assert_eq!(holder.step(&mut resumed).await, "patch");
    assert_eq!(holder.document, Some(upstream.document()));

    // A new subscriber gets the fresh document, never the kept (stale) one.
    let mut fresh = Holder {
        document: None,
        last_id: String::new(),
    };
    let mut stream = SseStream::open(&server.url(&path)).await;
    assert_eq!(fresh.step(&mut stream).await, "data");
    assert_eq!(fresh.document, Some(upstream.document()));

    // Nothing changed across a second restart: the resuming client still gets a patch (an
    // empty one), so it knows it is current, and the topic goes on.
    drop((resumed, stream));
    let server = server.restart();
    let headers = common::last_event_id(&holder.last_id);
    let mut resumed = SseStream::open_with(&server.url(&path), headers).await;
    assert_eq!(holder.step(&mut resumed).await, "patch");
    upstream.set(document(4));
    assert_eq!(holder.step(&mut resumed).await, "patch");
    assert_eq!(holder.document, Some(upstream.document()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_kept_cursors_resume_exactly_after_a_kill() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(&config(&data, "[stream]\nkeepalive_ms = 60000\n"));
    let payloads = |events: Vec<SseEvent>| -> Vec<String> {
        let data = |e: &SseEvent| envelope(e)["data"].as_str().unwrap().to_owned();
        events.iter().map(data).collect()
    };

    // A dynamic connection, with a stream added while it is open.
    let (mut dynamic, id) = common::dynamic(&server, "&channels=a").await;
    assert_eq!(
        common::add(&server, &id, json!({"channel": "b"}))
            .await
            .status(),
        201
    );
    for (channel, data) in [("a", "a1"), ("b", "b1"), ("a", "a2"), ("b", "b2")] {
        common::publish(&server, channel, json!({ "data": data })).await;
    }
    let seen = dynamic.events(4).await;
    let token = seen[1].id.clone();
    assert_eq!(payloads(seen), ["a1", "b1", "a2", "b2"]);

    // A connection with more streams than fit in an id.
    let names: Vec<String> = (0..17).map(|i| format!("s{i}")).collect();
    let many_url = server.url(&format!("/sse?channels={}", names.join(",")));
    let mut many = SseStream::open(&many_url).await;
    common::publish(&server, "s0", json!({"data": "s0"})).await;
    let many_token = many.next_event().await.unwrap().id;
    common::publish(&server, "s16", json!({"data": "s16"})).await;
    assert_eq!(payloads(many.events(1).await), ["s16"]);

    drop((dynamic, many));
    // Journals are kept every 250 ms: the tokens above are on disk by now.
    tokio::time::sleep(JOURNAL_KEPT).await;
    let server = server.restart(); // SIGKILL, then the same folder

    // The same connection, with both streams, exactly after the token.
    let mut resumed = common::resume_dynamic(&server, &token, &id).await;
    assert_eq!(payloads(resumed.events(2).await), ["a2", "b2"]);
    common::publish(&server, "b", json!({"data": "b3"})).await;
    assert_eq!(payloads(resumed.events(1).await), ["b3"]);

    let mut resumed = SseStream::open_with(&many_url, common::last_event_id(&many_token)).await;
    assert_eq!(payloads(resumed.events(1).await), ["s16"]);
    common::publish(&server, "s3", json!({"data": "s3"})).await;
    assert_eq!(payloads(resumed.events(1).await), ["s3"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_resumes_exactly_however_soon_the_kill_comes_after_it() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(&config(&data, "[stream]\nkeepalive_ms = 60000\n"));
    let (mut dynamic, id) = common::dynamic(&server, "&channels=a").await;
    // A publisher as fast as the gateway takes it, until the kill.
    let url = server.url("/channels/a/messages");
    let publisher = tokio::spawn(async move {
        for i in 0u64.. {
            let sent = client().post(&url).json(&json!({"data": i})).send().await;
            if !sent.is_ok_and(|r| r.status() == 201) {
                break;
            }
        }
    });
    let mut last_a = None;
    let number = |event: &SseEvent| envelope(event)["data"].as_u64().unwrap();
    for _ in 0..200 {
        let event = dynamic.next_event().await.unwrap();
        last_a = Some(number(&event));
    }
    // A stream added just now, and its first event: the token, killed at once after it.
    assert_eq!(
        common::add(&server, &id, json!({"channel": "c"}))
            .await
            .status(),
        201
    );
    common::publish(&server, "c", json!({"data": "c1"})).await;
    let token = loop {
        let event = dynamic.next_event().await.unwrap();
        match envelope(&event)["data"].as_str() {
            Some("c1") => break event.id,
            _ => last_a = Some(number(&event)),
        }
    };
    let server = server.restart(); // SIGKILL, then the same folder
    publisher.await.unwrap();

    // Both streams, from exactly where the token was: the next messages of `a` in order,
    // nothing twice, no gap notice.
    let mut resumed = common::resume_dynamic(&server, &token, &id).await;
    common::publish(&server, "c", json!({"data": "c2"})).await;
    common::publish(&server, "a", json!({"data": "after"})).await;
    let mut expected = last_a.unwrap() + 1;
    let mut c2 = false;
    loop {
        let event = resumed.next_event().await.unwrap();
        assert_eq!(event.event, "message", "{event:?}");
        match &envelope(&event)["data"] {
            Value::Number(n) => {
                assert_eq!(n.as_u64(), Some(expected), "{event:?}");
                expected += 1;
            }
            Value::String(s) if s == "c2" => c2 = true,
            Value::String(s) if s == "after" => break,
            other => panic!("unexpected {other}"),
        }
    }
    assert!(c2, "the stream added just before the kill resumed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dynamic_connection_with_a_polled_stream_resumes_after_a_kill() {
    let items: Vec<u32> = (0..100).collect();
    let upstream = Upstream::start(json!({"v": 0, "items": items})).await;
    let data = tempfile::tempdir().unwrap();
    let poll = "[stream]\nkeepalive_ms = 60000\n[poll]\nallowed_targets = \
                [\"http://127.0.0.1:*/*\"]\ninterval_ms = 50\nmin_interval_ms = 50\n";
    let server = Server::start(&config(&data, poll));
    let (mut stream, id) = common::dynamic(&server, "&channels=news").await;
    let added = common::add(&server, &id, json!({"poll": upstream.url("/doc?a=1")})).await;
    assert_eq!(added.status(), 201);
    let added: Value = added.json().await.unwrap();
    let poll_name = added["stream"].as_str().unwrap().to_owned();
    assert_eq!(stream.next_event().await.unwrap().event, "data");
    common::publish(&server, "news", json!({"data": "n1"})).await;
    let n1 = stream.next_event().await.unwrap();
    assert_eq!(envelope(&n1)["data"], "n1");
    common::publish(&server, "news", json!({"data": "n2"})).await;
    drop(stream);
    tokio::time::sleep(JOURNAL_KEPT).await;

    let server = server.restart(); // SIGKILL, then the same folder
    upstream.set(json!({"v": 1, "items": items}));

    // The same connection and streams: the message it missed, and the document's change as
    // a patch on what it held (its poller started again from the kept topic).
    let mut resumed = common::resume_dynamic(&server, &n1.id, &id).await;
    let by_kind = common::events_by_kind(&mut resumed, 2).await;
    assert_eq!(by_kind["message"]["data"], "n2", "{by_kind:?}");
    assert_eq!(by_kind["patch"]["channel"], poll_name.as_str());
    assert_eq!(
        by_kind["patch"]["data"],
        json!([{"op": "replace", "path": "/v", "value": 1}])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_target_the_restarted_policy_refuses_is_never_polled_again() {
    let upstream = Upstream::start(json!({"v": 0})).await;
    let data = tempfile::tempdir().unwrap();
    let poll = |allowed: &str| {
        format!("[poll]\nallowed_targets = [{allowed:?}]\ninterval_ms = 50\nmin_interval_ms = 50\n")
    };
    let server = Server::start(&config(&data, &poll("http://127.0.0.1:*/*")));
    let (mut stream, id) = common::dynamic(&server, "").await;
    let added = common::add(&server, &id, json!({"poll": upstream.url("/doc")})).await;
    assert_eq!(added.status(), 201);
    let first = stream.next_event().await.unwrap();
    assert_eq!(first.event, "data");
    drop(stream);
    tokio::time::sleep(JOURNAL_KEPT).await;

    // The operator narrows the policy and restarts: the kept connection's target is out.
    let narrowed = config(&data, &poll("https://api.example.com/*"));
    std::fs::write(server.dir().join("streamgate.toml"), narrowed).unwrap();
    let server = server.restart();
    let before = upstream.requests();
    let resumed = client()
        .get(server.url("/sse?dynamic=true"))
        .headers(common::last_event_id(&first.id))
        .send()
        .await
        .unwrap();
    let body = common::expect_error(resumed, 403, 40300).await;
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("allowed_targets"), "{body}");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(upstream.requests(), before, "a refused target was polled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relayed_topic_keeps_its_history_and_resumes_its_upstream_after_a_kill() {
    let upstream = SseUpstream::start().await;
    let data = tempfile::tempdir().unwrap();
    let relay = format!(
        "[[relay]]\nname = \"market\"\nlisten_path = \"/market\"\nupstream = \"{}\"\n\
         linger_ms = 200\nmax_backoff_ms = 300\n",
        upstream.url("/")
    );
    let server = Server::start(&config(&data, &relay));
    let mut stream = SseStream::open(&server.url("/market/ticks")).await;
    common::eventually("the upstream connection", || upstream.open_streams() == 1).await;
    upstream.send("tick", "1.50E+3");
    upstream.send("tick", "2");
    let first = common::next_relayed(&mut stream).await;
    assert_eq!(first.data, "1.50E+3");
    assert_eq!(common::next_relayed(&mut stream).await.data, "2");
    drop(stream);

    let server = server.restart(); // SIGKILL, then the same folder
    upstream.send("tick", "3");

    // What was relayed before the kill is still in history, and the relay resumed its
    // upstream after the last event kept: nothing lost, nothing twice.
    let headers = common::last_event_id(&first.id);
    let mut back = SseStream::open_with(&server.url("/market/ticks"), headers).await;
    let missed = vec![
        common::next_relayed(&mut back).await.data,
        common::next_relayed(&mut back).await.data,
    ];
    assert_eq!(missed, ["2", "3"]);
    back.expect_quiet(std::time::Duration::from_millis(300))
        .await;
    let resumed = upstream.requests().last().unwrap().last_event_id();
    assert_eq!(resumed.as_deref(), Some(&b"2"[..]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_stop_keeps_the_tokens_it_just_sent() {
    let data = tempfile::tempdir().unwrap();
    let conf = config(&data, "[stream]\nkeepalive_ms = 60000\n");
    let server = Server::start(&conf);
    let (mut stream, id) = common::dynamic(&server, "&channels=a").await;
    common::publish(&server, "a", json!({"data": "a1"})).await;
    common::publish(&server, "a", json!({"data": "a2"})).await;
    let seen = stream.events(2).await;
    drop(stream);
    // At once, well within the time between two periodic keeps of the journal.
    assert!(server.terminate().success());

    let server = Server::start(&conf);
    let mut resumed = common::resume_dynamic(&server, &seen[0].id, &id).await;
    let next = resumed.next_event().await.unwrap();
    assert_eq!(
        envelope(&next)["data"],
        "a2",
        "exactly after the token: {next:?}"
    );
}
