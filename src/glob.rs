//! Glob patterns as the config writes them: `*` matches any run of characters. Both the
//! target policy (URLs) and capabilities (resource names) match with them.

/// Whether `text` matches `pattern`: `*` matches any run of characters (including none),
/// everything else literally.
pub fn matches(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn globs() {
        assert!(matches(
            "https://api.example.com/*",
            "https://api.example.com/v1/q?x=1"
        ));
        assert!(!matches(
            "https://api.example.com/*",
            "https://api.example.com.evil.io/"
        ));
        assert!(matches(
            "http://127.0.0.1:*/*",
            "http://127.0.0.1:8080/quotes"
        ));
        assert!(!matches(
            "http://127.0.0.1:*/*",
            "http://127.0.0.2:8080/quotes"
        ));
        assert!(matches("*", "anything"));
        assert!(matches("a*b*c", "a--b--b--c"));
    }
}
