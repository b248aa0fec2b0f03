//! Keys, tokens and capabilities, over real requests: every credential form,
//! accepted and refused, capability patterns per operation, token expiry mid-stream.

mod common;

use std::time::Duration;

use common::upstream::Upstream;
use common::{Server, SseStream, client, expect_error};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use serde_json::{Value, json};

const KEYS: &str = r#"
[[key]]
name = "app"
secret = "app-secret-1"
capabilities = { "orders:*" = ["subscribe", "publish"], "audit" = ["history"], "api:prices" = ["poll"], "relay:market/*" = ["subscribe"] }

[[key]]
name = "ops"
secret = "ops-secret-2"
capabilities = { "*" = ["*"] }
"#;

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// An HS256 token signed with `secret`, naming key `kid`.
fn hs256(kid: &str, secret: &str, claims: Value) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(kid.into());
    jsonwebtoken::encode(
        &header,
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

async fn get(url: &str, headers: HeaderMap) -> reqwest::Response {
    client().get(url).headers(headers).send().await.unwrap()
}

/// Opens a stream and reads its first bytes: a stream that opened answers 200.
async fn status_of_stream(url: &str, headers: HeaderMap) -> u16 {
    let response = get(url, headers).await;
    response.status().as_u16()
}

fn bearer(token: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    h
}

fn basic(user: &str, password: &str) -> HeaderMap {
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let mut h = HeaderMap::new();
    h.insert(
        AUTHORIZATION,
        HeaderValue::from_str(&format!("Basic {encoded}")).unwrap(),
    );
    h
}

#[tokio::test]
async fn every_key_form_is_accepted_and_bad_ones_refused() {
    let server = Server::start(KEYS);
    let sse = |query: &str| server.url(&format!("/sse?channels=orders:1{query}"));
    // Accepted: key=, X-Sd-Token=, HTTP Basic.
    assert_eq!(
        status_of_stream(&sse("&key=app:app-secret-1"), HeaderMap::new()).await,
        200
    );
    assert_eq!(
        status_of_stream(&sse("&X-Sd-Token=app:app-secret-1"), HeaderMap::new()).await,
        200
    );
    assert_eq!(
        status_of_stream(&sse(""), basic("app", "app-secret-1")).await,
        200
    );
    // The X-Sd-Token header, as CORS allows browsers to send it.
    assert_eq!(
        status_of_stream(&sse(""), sd_token("app:app-secret-1")).await,
        200
    );
    // Refused: none, wrong secret, unknown key, malformed key, unknown scheme.
    for (query, headers) in [
        ("", HeaderMap::new()),
        ("&key=app:wrong", HeaderMap::new()),
        ("&key=nobody:app-secret-1", HeaderMap::new()),
        ("&key=app-secret-1", HeaderMap::new()),
        ("", basic("app", "nope")),
        ("", sd_token("app:wrong-secret-1")),
    ] {
        let resp = get(&sse(query), headers).await;
        let body = expect_error(resp, 401, 40101).await;
        assert!(!body.to_string().contains("secret-1"), "{body}");
    }
    let mut digest = HeaderMap::new();
    digest.insert(AUTHORIZATION, HeaderValue::from_static("Digest x"));
    expect_error(get(&sse(""), digest).await, 401, 40101).await;
}

fn sd_token(key: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("x-sd-token", HeaderValue::from_str(key).unwrap());
    h
}

#[tokio::test]
async fn without_keys_malformed_credentials_are_refused_alike_and_well_formed_ones_pass() {
    let server = Server::start("");
    let sse = |query: &str| server.url(&format!("/sse?channels=orders:1{query}"));
    for (query, headers) in [
        ("&key=nocolon", HeaderMap::new()),
        ("&accessToken=garbage", HeaderMap::new()),
        ("&accessToken=", HeaderMap::new()),
        ("", bearer("garbage")),
        ("", sd_token("nocolon")),
    ] {
        let resp = get(&sse(query), headers.clone()).await;
        let body = expect_error(resp, 401, 40101).await;
        assert!(!body.to_string().contains("garbage"), "{body}");
    }
    // Nothing checks a signature or a secret here, but the forms are right.
    let token = hs256(
        "anyone",
        "any-secret",
        json!({"exp": now() + 60, "capability": {}}),
    );
    for (query, headers) in [
        ("&key=a:b".to_owned(), HeaderMap::new()),
        (format!("&accessToken={token}"), HeaderMap::new()),
        (String::new(), bearer(&token)),
        (String::new(), sd_token("a:b")),
    ] {
        assert_eq!(
            status_of_stream(&sse(&query), headers).await,
            200,
            "{query}"
        );
    }
}

#[tokio::test]
async fn capabilities_are_checked_per_operation_and_pattern() {
    let upstream = Upstream::start(json!({"p": 1})).await;
    let relay_upstream = Upstream::start(json!({})).await;
    let server = Server::start(&format!(
        "{KEYS}\n[[api]]\nname = \"prices\"\nbase_url = \"{}\"\n\
         [[api]]\nname = \"other\"\nbase_url = \"{}\"\n\
         [[relay]]\nname = \"market\"\nlisten_path = \"/market\"\nupstream = \"{}\"\n\
         [[relay]]\nname = \"news\"\nlisten_path = \"/news\"\nupstream = \"{}\"\n",
        upstream.url("/"),
        upstream.url("/"),
        relay_upstream.url("/"),
        relay_upstream.url("/"),
    ));
    let app = "key=app:app-secret-1";
    let http = client();
    // publish: orders:* yes, audit no.
    let publish = |channel: &str| {
        http.post(server.url(&format!("/channels/{channel}/messages?{app}")))
            .json(&json!({"data": 1}))
            .send()
    };
    assert_eq!(publish("orders:eu").await.unwrap().status(), 201);
    expect_error(publish("audit").await.unwrap(), 401, 40160).await;
    // history: audit yes, orders no.
    let history = |channel: &str| {
        http.get(server.url(&format!("/channels/{channel}/messages?{app}")))
            .send()
    };
    assert_eq!(history("audit").await.unwrap().status(), 200);
    expect_error(history("orders:eu").await.unwrap(), 401, 40160).await;
    // subscribe: every channel of a connection must be allowed.
    let ok = server.url(&format!("/sse?channels=orders:a,orders:b&{app}"));
    assert_eq!(status_of_stream(&ok, HeaderMap::new()).await, 200);
    let mixed = server.url(&format!("/sse?channels=orders:a,audit&{app}"));
    let body = expect_error(get(&mixed, HeaderMap::new()).await, 401, 40160).await;
    assert!(body.to_string().contains("audit"), "{body}");
    // poll: the API prices, not other, not an ad-hoc URL.
    let poll = server.url(&format!("/apis/prices/doc?{app}"));
    assert_eq!(status_of_stream(&poll, HeaderMap::new()).await, 200);
    let other = server.url(&format!("/apis/other/doc?{app}"));
    expect_error(get(&other, HeaderMap::new()).await, 401, 40160).await;
    // relays: market topics, not news.
    let market = server.url(&format!("/market/ticks?{app}"));
    assert_eq!(status_of_stream(&market, HeaderMap::new()).await, 200);
    let news = server.url(&format!("/news/ticks?{app}"));
    expect_error(get(&news, HeaderMap::new()).await, 401, 40160).await;
    // A key with "*": everything.
    let ops = server.url("/sse?channels=audit,anything&key=ops:ops-secret-2");
    assert_eq!(status_of_stream(&ops, HeaderMap::new()).await, 200);
}

#[tokio::test]
async fn anonymous_requests_get_only_what_auth_anonymous_grants() {
    let server = Server::start(&format!(
        "{KEYS}\n[auth]\nanonymous = {{ \"public:*\" = [\"subscribe\"] }}\n"
    ));
    let url = server.url("/sse?channels=public:news");
    assert_eq!(status_of_stream(&url, HeaderMap::new()).await, 200);
    let resp = client()
        .post(server.url("/channels/public:news/messages"))
        .json(&json!({"data": 1}))
        .send()
        .await
        .unwrap();
    expect_error(resp, 401, 40160).await;
    let private = server.url("/sse?channels=orders:1");
    expect_error(get(&private, HeaderMap::new()).await, 401, 40160).await;
}

#[tokio::test]
async fn hs256_tokens_carry_capabilities_within_their_keys() {
    let server = Server::start(KEYS);
    let exp = now() + 600;
    let narrow = hs256(
        "app",
        "app-secret-1",
        json!({"exp": exp, "iat": now(), "capability": {"orders:*": ["subscribe"]}}),
    );
    let url = |channel: &str| server.url(&format!("/sse?channels={channel}"));
    // Bearer and accessToken= both carry it.
    assert_eq!(
        status_of_stream(&url("orders:1"), bearer(&narrow)).await,
        200
    );
    let with_param = format!("{}&accessToken={narrow}", url("orders:1"));
    assert_eq!(status_of_stream(&with_param, HeaderMap::new()).await, 200);
    // The token allows less than its key: no publish.
    let resp = client()
        .post(server.url("/channels/orders:1/messages"))
        .headers(bearer(&narrow))
        .json(&json!({"data": 1}))
        .send()
        .await
        .unwrap();
    expect_error(resp, 401, 40160).await;
    // A token cannot grant more than the key that signed it; the claim may be a string.
    let greedy = hs256(
        "app",
        "app-secret-1",
        json!({"exp": exp, "x-ably-capability": "{\"*\":[\"*\"]}"}),
    );
    assert_eq!(
        status_of_stream(&url("orders:2"), bearer(&greedy)).await,
        200
    );
    expect_error(get(&url("elsewhere"), bearer(&greedy)).await, 401, 40160).await;
    // Refused: wrong secret, unknown kid, no kid, no capability, not a JWT.
    let claims = json!({"exp": exp, "capability": {"*": ["*"]}});
    let mut no_kid = Header::new(Algorithm::HS256);
    no_kid.kid = None;
    let no_kid =
        jsonwebtoken::encode(&no_kid, &claims, &EncodingKey::from_secret(b"app-secret-1")).unwrap();
    for token in [
        hs256("app", "wrong", claims.clone()),
        hs256("nobody", "app-secret-1", claims.clone()),
        no_kid,
        hs256("app", "app-secret-1", json!({"exp": exp})),
        "not-a-token".to_owned(),
    ] {
        expect_error(get(&url("orders:1"), bearer(&token)).await, 401, 40101).await;
    }
    // Expired before connecting: 40142.
    let old = hs256(
        "app",
        "app-secret-1",
        json!({"exp": now() - 10, "capability": {"*": ["*"]}}),
    );
    expect_error(get(&url("orders:1"), bearer(&old)).await, 401, 40142).await;
}

#[tokio::test]
async fn rs256_and_es256_tokens_verify_with_pem_files_and_jwks() {
    let rsa = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    let ec = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let jwks_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let rsa_pem = dir.path().join("rsa.pem");
    std::fs::write(&rsa_pem, rsa.public_key_pem()).unwrap();
    let ec_pem = dir.path().join("ec.pem");
    std::fs::write(&ec_pem, ec.public_key_pem()).unwrap();
    let jwks_signer = EncodingKey::from_ec_pem(jwks_key.serialize_pem().as_bytes()).unwrap();
    let mut jwk =
        jsonwebtoken::jwk::Jwk::from_encoding_key(&jwks_signer, Algorithm::ES256).unwrap();
    jwk.common.key_id = Some("k1".into());
    let jwks = dir.path().join("jwks.json");
    std::fs::write(
        &jwks,
        serde_json::to_string(&json!({"keys": [jwk]})).unwrap(),
    )
    .unwrap();
    let server = Server::start(&format!(
        "[auth]\npublic_key_files = [{:?}, {:?}]\njwks_file = {:?}\n",
        rsa_pem, ec_pem, jwks
    ));
    let claims = json!({"exp": now() + 600, "capability": {"feed": ["subscribe"]}});
    let sign = |alg: Algorithm, kid: Option<&str>, key: &EncodingKey| {
        let mut header = Header::new(alg);
        header.kid = kid.map(str::to_owned);
        jsonwebtoken::encode(&header, &claims, key).unwrap()
    };
    let rs = sign(
        Algorithm::RS256,
        None,
        &EncodingKey::from_rsa_pem(rsa.serialize_pem().as_bytes()).unwrap(),
    );
    let es = sign(
        Algorithm::ES256,
        None,
        &EncodingKey::from_ec_pem(ec.serialize_pem().as_bytes()).unwrap(),
    );
    let from_jwks = sign(Algorithm::ES256, Some("k1"), &jwks_signer);
    let url = server.url("/sse?channels=feed");
    for token in [&rs, &es, &from_jwks] {
        assert_eq!(status_of_stream(&url, bearer(token)).await, 200);
    }
    // The capability still applies; a key nobody configured is refused.
    let other = server.url("/sse?channels=other");
    expect_error(get(&other, bearer(&rs)).await, 401, 40160).await;
    let stranger = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let forged = sign(
        Algorithm::ES256,
        None,
        &EncodingKey::from_ec_pem(stranger.serialize_pem().as_bytes()).unwrap(),
    );
    expect_error(get(&url, bearer(&forged)).await, 401, 40101).await;
    // No credential at all, with only token keys configured.
    expect_error(get(&url, HeaderMap::new()).await, 401, 40101).await;
}

#[tokio::test]
async fn an_expiring_token_ends_its_stream_with_40142() {
    let server = Server::start(KEYS);
    let exp = now() + 2;
    let token = hs256(
        "app",
        "app-secret-1",
        json!({"exp": exp, "capability": {"orders:*": ["subscribe"]}}),
    );
    let url = server.url(&format!("/sse?channels=orders:1&accessToken={token}"));
    let mut stream = SseStream::open(&url).await;
    let resp = client()
        .post(server.url("/channels/orders:1/messages?key=ops:ops-secret-2"))
        .json(&json!({"data": "before"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let message = stream.next_event().await.expect("the message");
    assert_eq!(message.event, "message");
    let error = stream.next_event().await.expect("an error at expiry");
    let at_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(at_ms >= exp * 1000, "not before the token expired");
    assert_eq!(error.event, "error", "{error:?}");
    let info: Value = serde_json::from_str(&error.data).unwrap();
    assert_eq!(info["code"], 40142, "{info}");
    assert!(
        stream
            .next_frame_within(Duration::from_secs(2))
            .await
            .is_none(),
        "the stream ends after the error"
    );
}

/// A token of key `app` for `client_id` (if any) with `capability`, valid `secs` seconds.
fn app_token(client_id: Option<&str>, capability: Value, secs: u64) -> String {
    let mut claims = json!({"exp": now() + secs, "capability": capability});
    if let Some(id) = client_id {
        claims["clientId"] = json!(id);
    }
    hs256("app", "app-secret-1", claims)
}

/// Opens a dynamic connection with `token` on `orders:a` and reads one message published
/// on it: the connection's id and that message's event id.
async fn connection_with(server: &Server, token: &str) -> (SseStream, String, String) {
    let url = format!("/sse?dynamic=true&channels=orders:a&accessToken={token}");
    let mut stream = SseStream::open(&server.url(&url)).await;
    let connected = stream.next_event().await.unwrap();
    let id = serde_json::from_str::<Value>(&connected.data).unwrap()["connectionId"]
        .as_str()
        .unwrap()
        .to_owned();
    publish_as_ops(server, "first").await;
    let first = stream.next_event().await.unwrap();
    assert_eq!(common::envelope(&first)["data"], "first");
    (stream, id, first.id)
}

async fn publish_as_ops(server: &Server, data: &str) {
    let resp = client()
        .post(server.url("/channels/orders:a/messages"))
        .headers(basic("ops", "ops-secret-2"))
        .json(&json!({"data": data}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
}

/// Resumes a connection after `last` with `token`: the stream and its `connected` event's
/// data, or the refusal's status and ErrorInfo.
async fn resume_with(
    server: &Server,
    token: &str,
    last: &str,
) -> Result<(SseStream, Value), (u16, Value)> {
    let url = format!("/sse?dynamic=true&accessToken={token}&lastEvent={last}");
    let resp = client().get(server.url(&url)).send().await.unwrap();
    if resp.status() != 200 {
        let status = resp.status().as_u16();
        return Err((status, resp.json::<Value>().await.unwrap()["error"].clone()));
    }
    let mut stream = SseStream::of(resp);
    let connected = stream.next_event().await.unwrap();
    assert_eq!(connected.event, "connected", "{connected:?}");
    let data = serde_json::from_str(&connected.data).unwrap();
    Ok((stream, data))
}

/// Asserts that resuming after `last` with `token` is refused with `status` and `code`.
async fn expect_refused(server: &Server, token: &str, last: &str, status: u16, code: u64) {
    let (answered, refused) = resume_with(server, token, last).await.err().unwrap();
    assert_eq!(
        (answered, &refused["code"]),
        (status, &json!(code)),
        "{refused}"
    );
}

#[tokio::test]
async fn a_renewed_token_of_the_same_client_resumes_its_connection() {
    let server = Server::start(KEYS);
    let all = json!({"orders:*": ["subscribe"]});
    let first_token = app_token(Some("alice"), all.clone(), 600);
    let (stream, id, last) = connection_with(&server, &first_token).await;
    drop(stream);
    // Published while the client renews its token: not missed.
    publish_as_ops(&server, "during").await;

    let renewed = app_token(Some("alice"), all.clone(), 900);
    assert_ne!(renewed, first_token);
    let (mut resumed, connected) = resume_with(&server, &renewed, &last).await.unwrap();
    assert_eq!(connected["connectionId"], id);
    let next = resumed.next_event().await.unwrap();
    assert_eq!(common::envelope(&next)["data"], "during");

    // Another client, a token without a client id or with a wildcard one, cannot take the
    // connection over.
    for other in [
        app_token(Some("mallory"), all.clone(), 600),
        app_token(None, all.clone(), 600),
        app_token(Some("*"), all.clone(), 600),
    ] {
        expect_refused(&server, &other, &next.id, 404, 40410).await;
    }
    // A renewed token that no longer allows a stream of the connection: the resume is
    // refused, naming it.
    let narrower = app_token(Some("alice"), json!({"orders:b": ["subscribe"]}), 600);
    expect_refused(&server, &narrower, &next.id, 401, 40160).await;
}

#[tokio::test]
async fn a_token_without_a_client_id_resumes_only_with_itself() {
    let server = Server::start(KEYS);
    let all = json!({"orders:*": ["subscribe"]});
    let token = app_token(None, all.clone(), 600);
    let (stream, id, last) = connection_with(&server, &token).await;
    drop(stream);
    let (_, again) = resume_with(&server, &token, &last).await.unwrap();
    assert_eq!(again["connectionId"], id, "{again}");
    let other = app_token(None, all, 601);
    expect_refused(&server, &other, &last, 404, 40410).await;
}

#[tokio::test]
async fn a_browsers_last_event_id_wins_over_the_lastevent_its_page_put_in_the_url() {
    let server = Server::start(KEYS);
    let token = app_token(Some("alice"), json!({"orders:*": ["subscribe"]}), 600);
    let (mut stream, id, first) = connection_with(&server, &token).await;
    publish_as_ops(&server, "second").await;
    let second = stream.next_event().await.unwrap();
    drop(stream);
    publish_as_ops(&server, "third").await;
    // The URL still says `first`; the browser says `second`, the last it got.
    let url = format!("/sse?dynamic=true&accessToken={token}&lastEvent={first}");
    let mut resumed =
        SseStream::open_with(&server.url(&url), common::last_event_id(&second.id)).await;
    let connected = resumed.next_event().await.unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&connected.data).unwrap()["connectionId"],
        id
    );
    let next = resumed.next_event().await.unwrap();
    assert_eq!(common::envelope(&next)["data"], "third");
}
