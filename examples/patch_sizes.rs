//! Patch sizes on the benchmark series: total bytes of our patches and of the `json-patch`
//! crate's (positional) patches, as a share of the bytes of resending every document.
//!
//! `cargo run --release --example patch_sizes [-- --write DIR]`; with `--write`, each series
//! is also written to `DIR/NAME.json` (an array of its documents) for other implementations
//! to be measured on the same input (see `benches/jsonpatch_sizes.py`).

#[path = "../benches/series/mod.rs"]
mod series;

use std::path::PathBuf;

use serde_json::Value;
use streamgate::patch::{Delta, Patch, apply, delta, diff};
use streamgate::wire::document::Document;

const TICKS: usize = 100;

fn doc_len(doc: &Value) -> usize {
    serde_json::to_string(doc).map_or(0, |text| text.len())
}

fn patch_len(patch: &Patch) -> usize {
    serde_json::to_string(patch).map_or(0, |text| text.len())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let write_to = args
        .iter()
        .position(|arg| arg == "--write")
        .and_then(|at| args.get(at + 1))
        .map(PathBuf::from);

    println!(
        "| series | pairs | snapshot bytes | ours | ours, ops | json-patch crate | ours with snapshot fallback |"
    );
    println!("|---|---|---|---|---|---|---|");
    for series in series::all(TICKS) {
        let (mut snapshots, mut ours, mut ops, mut theirs, mut sent) = (0, 0, 0, 0, 0);
        for pair in series.docs.windows(2) {
            let (old, new) = (&pair[0], &pair[1]);
            let snapshot = doc_len(new);
            let patch = diff(old, new);
            let mut applied = old.clone();
            apply(&mut applied, &patch).expect("our patch applies");
            assert_eq!(
                &applied, new,
                "{}: our patch gives the new document",
                series.name
            );
            snapshots += snapshot;
            ours += patch_len(&patch);
            ops += patch.len();
            theirs += patch_len(&json_patch::diff(old, new));
            sent += match delta(&Document::from_value(old), &Document::from_value(new)) {
                Delta::Patch(text) => text.len(),
                Delta::Snapshot => snapshot,
            };
        }
        let share = |bytes: usize| format!("{:.2}%", 100.0 * bytes as f64 / snapshots as f64);
        println!(
            "| {} | {} | {snapshots} | {} | {ops} | {} | {} |",
            series.name,
            series.docs.len() - 1,
            share(ours),
            share(theirs),
            share(sent),
        );
        if let Some(dir) = &write_to {
            std::fs::create_dir_all(dir).expect("output directory");
            let path = dir.join(format!("{}.json", series.name));
            let docs = Value::Array(series.docs);
            std::fs::write(&path, serde_json::to_string(&docs).expect("serializes"))
                .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        }
    }
}
