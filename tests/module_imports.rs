//! The crate's modules import one another in one direction only, so each layer can be read,
//! tested and changed without the ones above it: the hub knows nothing of sources, sources
//! nothing of the surfaces that serve them.
//!
//! This reads every file under `src/` (comments and literals blanked out) and checks each
//! path through `crate::` (or `super::` up to the crate root) against `LAYERS`. There are no
//! exceptions: an import against the direction means a piece of code lives in the wrong
//! module, and the fix is to move it down to where every user may reach it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Modules on one level of the crate.
struct Layer {
    name: &'static str,
    modules: &'static [&'static str],
}

/// The crate's top-level modules from the top down: a module may import any module in a layer
/// below its own, and none in its own layer or above. The crate root (`lib.rs`, `main.rs`)
/// stands above them all.
const LAYERS: &[Layer] = &[
    // Builds the hub, the sources and the surfaces, and runs them.
    Layer {
        name: "wiring",
        modules: &["server"],
    },
    // What clients and the command line reach.
    Layer {
        name: "surfaces",
        modules: &["http", "demo", "tail", "bench"],
    },
    // What the surfaces stand on: a client connection's reading side (it restarts a polled
    // stream's source), and the admin API's catalog (held to the sources' target policy).
    Layer {
        name: "outlets and catalog",
        modules: &["outlet", "catalog"],
    },
    // What writes into channels.
    Layer {
        name: "sources",
        modules: &["sources"],
    },
    // The channels.
    Layer {
        name: "hub",
        modules: &["hub"],
    },
    // What outlives the process (the store of channels' history); later what spans nodes.
    Layer {
        name: "bus",
        modules: &["bus"],
    },
    // Leaves, usable by every layer above; ordered among themselves too. Auth reads the
    // config's key types and gives their capabilities meaning.
    Layer {
        name: "auth",
        modules: &["auth"],
    },
    Layer {
        name: "config and patch",
        modules: &["config", "patch"],
    },
    // What clients name (channels, the gateway's own query parameters), checked alike on
    // every surface and in the relay config.
    Layer {
        name: "names",
        modules: &["names"],
    },
    Layer {
        name: "base",
        modules: &["wire", "metrics", "clock", "glob"],
    },
    // The process's own figures, read by the metrics and the load tool.
    Layer {
        name: "procfs",
        modules: &["procfs"],
    },
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.modules.contains(&module))
}

#[test]
fn modules_import_only_downwards() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut problems = Vec::new();
    let mut found = BTreeSet::new();
    for file in &files {
        let shown = format!("src/{}", file.strip_prefix(&src).unwrap().display());
        let path = module_path(file.strip_prefix(&src).unwrap());
        let Some(module) = path.first() else {
            continue; // The crate root may import anything.
        };
        found.insert(module.clone());
        let Some(from) = layer_of(module) else {
            problems.push(format!(
                "{shown}: module `{module}` is in no layer; add it to LAYERS in \
                 tests/module_imports.rs, below everything that uses it"
            ));
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        for import in imports(&text, &path) {
            if import.module == *module {
                continue;
            }
            let line = text.lines().nth(import.line - 1).unwrap_or("").trim();
            let problem = match layer_of(&import.module) {
                Some(to) if to > from => continue,
                Some(to) => format!(
                    "`{module}` ({}) may not import `{}` ({}), which is not below it",
                    LAYERS[from].name, import.module, LAYERS[to].name
                ),
                None => format!(
                    "`{}` is in no layer of LAYERS in tests/module_imports.rs",
                    import.module
                ),
            };
            problems.push(format!(
                "{shown}:{}: `{line}` imports crate::{}: {problem}",
                import.line, import.module
            ));
        }
    }
    for layer in LAYERS {
        for module in layer.modules {
            if !found.contains(*module) {
                problems.push(format!(
                    "LAYERS lists `{module}`, which src/ does not have; remove it"
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "imports against the direction of the crate's layers (LAYERS in \
         tests/module_imports.rs); move the imported code down to a module both sides may \
         reach:\n{}",
        problems.join("\n")
    );
}

fn rust_files(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

/// The module a file under `src/` holds: `hub/channel.rs` → `[hub, channel]`, `hub/mod.rs`
/// → `[hub]`, `lib.rs` and `main.rs` → the crate root, `[]`.
fn module_path(relative: &Path) -> Vec<String> {
    let mut path: Vec<String> = relative
        .with_extension("")
        .iter()
        .map(|c| c.to_string_lossy().into_owned())
        .collect();
    if path.last().is_some_and(|last| last == "mod") || path == ["lib"] || path == ["main"] {
        path.pop();
    }
    path
}

/// A top-level module a file reaches, and on which line.
struct Import {
    line: usize,
    module: String,
}

/// Every top-level module `text` reaches through `crate::` or through `super::` up to the
/// crate root; `path` is the file's module.
fn imports(text: &str, path: &[String]) -> Vec<Import> {
    let code = blank_comments_and_literals(text);
    let bytes = code.as_bytes();
    let mut found = Vec::new();
    // Inline `mod name { .. }`: the brace depth inside each, innermost last.
    let mut inline: Vec<usize> = Vec::new();
    let mut depth = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'{' => depth += 1,
            b'}' => {
                if inline.last() == Some(&depth) {
                    inline.pop();
                }
                depth -= 1;
            }
            c if is_ident(c) && (i == 0 || !(is_ident(bytes[i - 1]) || bytes[i - 1] == b'$')) => {
                let (word, end) = ident(bytes, i);
                if word == "mod" {
                    let (_, after_name) = ident(bytes, skip_space(bytes, end));
                    if bytes.get(skip_space(bytes, after_name)) == Some(&b'{') {
                        inline.push(depth + 1);
                    }
                } else if word == "crate" || word == "super" {
                    let mut segments = path_segments(bytes, i);
                    let supers = segments.iter().take_while(|s| *s == "super").count();
                    let climbs_to_root = supers == path.len() + inline.len();
                    if word == "crate" || climbs_to_root {
                        let skip = if word == "crate" { 1 } else { supers };
                        let line = code[..i].matches('\n').count() + 1;
                        for module in segments.drain(skip..).filter(|s| s != "self") {
                            found.push(Import { line, module });
                        }
                    }
                }
                i = end;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    found
}

/// The path at `start` (a `crate` or `super`) as far as it can name a top-level module:
/// the leading `crate` or `super`s, then one segment, or the first segment of each item of a
/// group (`crate::{a::x, b}` → `[crate, a, b]`).
fn path_segments(bytes: &[u8], start: usize) -> Vec<String> {
    let mut segments = Vec::new();
    let mut i = start;
    loop {
        let (word, end) = ident(bytes, i);
        let leading = word == "crate" || word == "super";
        segments.push(word);
        let next = skip_space(bytes, end);
        if !leading || !bytes[next..].starts_with(b"::") {
            return segments;
        }
        i = skip_space(bytes, next + 2);
        match bytes.get(i) {
            Some(b'{') => {
                segments.extend(group_heads(bytes, i));
                return segments;
            }
            Some(&c) if is_ident(c) => {}
            _ => return segments, // `*`
        }
    }
}

/// The first identifier of each item of the group `{ .. }` opening at `open`.
fn group_heads(bytes: &[u8], open: usize) -> Vec<String> {
    let mut heads = Vec::new();
    let (mut depth, mut item_start) = (0, true);
    for i in open..bytes.len() {
        match bytes[i] {
            b'{' => {
                depth += 1;
                item_start = depth == 1;
            }
            b'}' if depth == 1 => break,
            b'}' => depth -= 1,
            b',' if depth == 1 => item_start = true,
            c if item_start && is_ident(c) => {
                heads.push(ident(bytes, i).0);
                item_start = false;
            }
            _ => {}
        }
    }
    heads
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

fn ident(bytes: &[u8], start: usize) -> (String, usize) {
    let end = (start..bytes.len())
        .find(|&i| !is_ident(bytes[i]))
        .unwrap_or(bytes.len());
    (
        String::from_utf8_lossy(&bytes[start..end]).into_owned(),
        end,
    )
}

fn skip_space(bytes: &[u8], start: usize) -> usize {
    (start..bytes.len())
        .find(|&i| !bytes[i].is_ascii_whitespace())
        .unwrap_or(bytes.len())
}

/// `text` with comments, strings and character literals replaced by spaces (line breaks
/// kept, so lines still count), so that only code is searched for paths.
fn blank_comments_and_literals(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = bytes.to_vec();
    let mut i = 0;
    while i < bytes.len() {
        let rest = &bytes[i..];
        let end = if rest.starts_with(b"//") {
            rest.iter()
                .position(|&c| c == b'\n')
                .map_or(bytes.len(), |n| i + n)
        } else if rest.starts_with(b"/*") {
            block_comment_end(bytes, i)
        } else if rest[0] == b'"' {
            string_end(bytes, i + 1)
        } else if let Some(hashes) = raw_string_hashes(bytes, i) {
            let close = [b"\"".as_slice(), &vec![b'#'; hashes]].concat();
            let body = i + 2 + hashes;
            bytes[body..]
                .windows(close.len())
                .position(|w| w == close.as_slice())
                .map_or(bytes.len(), |n| body + n + close.len())
        } else if rest[0] == b'\'' {
            match char_literal_end(text, i) {
                Some(end) => end,
                None => {
                    i += 1; // A lifetime or a label.
                    continue;
                }
            }
        } else {
            i += 1;
            continue;
        };
        for b in &mut out[i..end] {
            if *b != b'\n' {
                *b = b' ';
            }
        }
        i = end;
    }
    String::from_utf8(out).expect("whole characters were blanked")
}

fn block_comment_end(bytes: &[u8], start: usize) -> usize {
    let (mut depth, mut i) = (0, start);
    while i < bytes.len() {
        if bytes[i..].starts_with(b"/*") {
            depth += 1;
            i += 2;
        } else if bytes[i..].starts_with(b"*/") {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += 1;
        }
    }
    bytes.len()
}

/// The end of a string whose text starts at `start`, past its closing quote.
fn string_end(bytes: &[u8], start: usize) -> usize {
    let mut i = start;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// At `r"`, `r#"`, ... (not inside an identifier but after `b`): how many `#`.
fn raw_string_hashes(bytes: &[u8], i: usize) -> Option<usize> {
    let before = |n: usize| i.checked_sub(n).map(|at| bytes[at]);
    let starts_token = match before(1) {
        None => true,
        Some(b'b') => !before(2).is_some_and(is_ident),
        Some(c) => !is_ident(c),
    };
    if bytes[i] != b'r' || !starts_token {
        return None;
    }
    let hashes = bytes[i + 1..].iter().take_while(|&&c| c == b'#').count();
    (bytes.get(i + 1 + hashes) == Some(&b'"')).then_some(hashes)
}

/// At a `'`: the end of the character literal it opens, or `None` for a lifetime.
fn char_literal_end(text: &str, quote: usize) -> Option<usize> {
    let mut chars = text[quote + 1..].char_indices();
    match chars.next()? {
        // `\\`, then the escaped character (or `u{..}`), then the closing quote.
        (_, '\\') => text[quote + 3..].find('\'').map(|n| quote + 3 + n + 1),
        (_, _) => match chars.next()? {
            (at, '\'') => Some(quote + 1 + at + 1),
            _ => None,
        },
    }
}

#[test]
fn paths_in_groups_are_found_and_comments_and_literals_are_not() {
    let text = "use crate::{\n    hub::Hub,\n    wire::{self, sse},\n};\n\
                // crate::http in a comment\n\
                /* crate::server /* nested */ crate::server */\n\
                fn f<'a>(x: &'a str) -> char { let _ = \"crate::outlet\"; \
                let _ = r#\"crate::outlet\"#; let _ = crate::clock::now_ms(); '\"' }\n\
                pub(crate) fn g() -> char { '\\'' }\n";
    let modules: Vec<(usize, String)> = imports(text, &["sources".into()])
        .into_iter()
        .map(|i| (i.line, i.module))
        .collect();
    assert_eq!(
        modules,
        [(1, "hub".into()), (1, "wire".into()), (7, "clock".into())]
    );
}

#[test]
fn super_reaches_the_crate_root_only_from_the_top() {
    let text = "use super::hub::Hub;\nmod tests {\n    use super::http::X;\n}\n\
                use super::outlet::Y;\n";
    let at_top: Vec<String> = imports(text, &["config".into()])
        .into_iter()
        .map(|i| i.module)
        .collect();
    assert_eq!(at_top, ["hub", "outlet"]);
    assert!(imports(text, &["config".into(), "relay".into()]).is_empty());
}
