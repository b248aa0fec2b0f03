//! Series of document versions, as a poller would see them, for measuring the diff: each
//! series is deterministic (a fixed seed), so figures can be compared across runs and
//! machines.
//!
//! - `quotes`: 500 quotes `{symbol, price, change, volume}`; each tick a few prices take a
//!   random step.
//! - `quotes_sorted`: the same, re-sorted by price each tick, so the changed quotes move.
//! - `news`: a 100-item feed; each tick one to three items arrive at the head and as many
//!   leave at the tail.
//! - `tweets`: a 40-status window sliding over `tests/fixtures/corpus/twitter.json`, newer statuses
//!   arriving at the head.

use std::path::PathBuf;

use serde_json::{Map, Value, json};

/// One series: its name and its successive documents.
pub struct Series {
    pub name: &'static str,
    pub docs: Vec<Value>,
}

/// Every series, with `ticks` changes each (the tweet window stops when the corpus runs out).
pub fn all(ticks: usize) -> Vec<Series> {
    vec![
        Series {
            name: "quotes",
            docs: quotes(ticks, false),
        },
        Series {
            name: "quotes_sorted",
            docs: quotes(ticks, true),
        },
        Series {
            name: "news",
            docs: news(ticks),
        },
        Series {
            name: "tweets",
            docs: tweets(ticks),
        },
    ]
}

/// SplitMix64: small, fast, and fixed here rather than taken from `rand`, so the series (and
/// the figures recorded from them) stay the same whatever `rand` version is in the lock file.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A decimal number from an amount in cents, written the shortest way (`12.3`, not `12.30`)
/// as most encoders would, so that other implementations re-encode it identically.
fn cents(amount: i64) -> Value {
    let sign = if amount < 0 { "-" } else { "" };
    let fraction = format!("{:02}", amount.abs() % 100);
    let fraction = match fraction.trim_end_matches('0') {
        "" => "0",
        trimmed => trimmed,
    };
    let text = format!("{sign}{}.{fraction}", amount.abs() / 100);
    serde_json::from_str(&text).expect("a valid number")
}

struct Quote {
    symbol: String,
    open: i64,
    price: i64,
    volume: u64,
}

impl Quote {
    fn to_json(&self) -> Value {
        json!({
            "symbol": self.symbol,
            "price": cents(self.price),
            "change": cents(self.price - self.open),
            "volume": self.volume,
        })
    }
}

fn quotes(ticks: usize, sorted: bool) -> Vec<Value> {
    let mut rng = Rng(0x5eed_0001);
    let mut book: Vec<Quote> = (0..500)
        .map(|i| {
            let symbol: String = (0..4)
                .map(|k| char::from(b'A' + ((i as u64 * 7 + k * 13 + rng.below(26)) % 26) as u8))
                .collect();
            let open = 500 + rng.below(50_000) as i64;
            Quote {
                symbol,
                open,
                price: open,
                volume: rng.below(1_000_000),
            }
        })
        .collect();
    let snapshot = |book: &[Quote]| {
        let mut items: Vec<&Quote> = book.iter().collect();
        if sorted {
            items.sort_by_key(|q| std::cmp::Reverse(q.price));
        }
        json!({"quotes": items.iter().map(|q| q.to_json()).collect::<Vec<_>>()})
    };
    let mut docs = vec![snapshot(&book)];
    for _ in 0..ticks {
        for _ in 0..1 + rng.below(5) {
            let quote = &mut book[rng.below(500) as usize];
            let step = rng.below(201) as i64 - 100;
            quote.price = (quote.price + step * quote.price / 10_000).max(1);
            quote.volume += 100 * (1 + rng.below(50));
        }
        docs.push(snapshot(&book));
    }
    docs
}

fn news_item(id: u64, rng: &mut Rng) -> Value {
    const WORDS: &[&str] = &[
        "market", "rally", "central", "bank", "rates", "storm", "election", "vote", "launch",
        "record", "team", "wins", "court", "ruling", "energy", "prices", "talks", "deal",
    ];
    let mut words = |n: usize| {
        (0..n)
            .map(|_| WORDS[rng.below(WORDS.len() as u64) as usize])
            .collect::<Vec<_>>()
            .join(" ")
    };
    json!({
        "id": id,
        "title": words(6),
        "summary": words(30),
        "url": format!("https://news.example.com/articles/{id}"),
        "published": 1_700_000_000 + id * 60,
        "tags": [words(1), words(1)],
    })
}

fn news(ticks: usize) -> Vec<Value> {
    let mut rng = Rng(0x5eed_0002);
    let mut next_id = 0;
    let mut feed: Vec<Value> = Vec::new();
    for _ in 0..100 {
        feed.insert(0, news_item(next_id, &mut rng));
        next_id += 1;
    }
    let mut docs = vec![json!({"items": feed})];
    for _ in 0..ticks {
        for _ in 0..1 + rng.below(3) {
            feed.insert(0, news_item(next_id, &mut rng));
            next_id += 1;
            feed.pop();
        }
        docs.push(json!({"items": feed}));
    }
    docs
}

/// The statuses of the twitter corpus. Panics when the corpus is missing: measurements on
/// another document would not be comparable.
pub fn twitter_statuses() -> Vec<Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/corpus/twitter.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("corpus missing at {}: {e}", path.display()));
    let corpus: Map<String, Value> = serde_json::from_str(&text).expect("twitter.json parses");
    match corpus.get("statuses") {
        Some(Value::Array(statuses)) => statuses.clone(),
        _ => panic!("twitter.json has no statuses array"),
    }
}

fn tweets(ticks: usize) -> Vec<Value> {
    const WINDOW: usize = 40;
    let statuses = twitter_statuses();
    let mut rng = Rng(0x5eed_0003);
    let mut start = statuses.len() - WINDOW;
    let window = |start: usize| json!({"statuses": statuses[start..start + WINDOW].to_vec()});
    let mut docs = vec![window(start)];
    while docs.len() <= ticks && start > 0 {
        start = start.saturating_sub(1 + rng.below(2) as usize);
        docs.push(window(start));
    }
    docs
}
