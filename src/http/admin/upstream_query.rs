//! The query of a relay's `upstream` URL, redacted like the other secrets: relays have no
//! `query` member, so credentials an upstream wants in its query live in the URL itself.

use url::Url;

use super::REDACTED;

/// `upstream` with every query value replaced by the placeholder; None when it has no
/// query (or is not a URL: validation speaks of that).
pub fn redact(upstream: &str) -> Option<String> {
    let mut url = Url::parse(upstream).ok()?;
    url.query()?;
    let names: Vec<String> = url
        .query_pairs()
        .map(|(name, _)| name.into_owned())
        .collect();
    url.query_pairs_mut()
        .clear()
        .extend_pairs(names.iter().map(|name| (name, REDACTED)));
    Some(url.into())
}

/// `given` with its redacted query values taken from `stored`, when both name the same
/// place (scheme, host, port and path): the stored URL itself when nothing else changed.
/// Ok(None) when `given` has nothing redacted; an error when a value cannot be restored.
pub fn unredact(given: &str, stored: Option<&str>) -> Result<Option<String>, String> {
    let Ok(mut url) = Url::parse(given) else {
        return Ok(None);
    };
    let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    if !pairs.iter().any(|(_, value)| value == REDACTED) {
        return Ok(None);
    }
    let missing = || {
        format!(
            "upstream: a query value \"{REDACTED}\" stands for a stored value, and there is \
             none for this entry, path and parameter; give the value"
        )
    };
    let stored_url = stored
        .and_then(|s| Url::parse(s).ok())
        .filter(|s| without_query(s) == without_query(&url))
        .ok_or_else(missing)?;
    let old: Vec<(String, String)> = stored_url.query_pairs().into_owned().collect();
    let mut restored = Vec::with_capacity(pairs.len());
    for (i, (name, value)) in pairs.iter().enumerate() {
        if value != REDACTED {
            restored.push((name.clone(), value.clone()));
            continue;
        }
        // The same occurrence of the same name (a parameter may repeat).
        let nth = pairs[..i].iter().filter(|(n, _)| n == name).count();
        let value = old
            .iter()
            .filter(|(n, _)| n == name)
            .nth(nth)
            .map(|(_, v)| v.clone())
            .ok_or_else(missing)?;
        restored.push((name.clone(), value));
    }
    if restored == old {
        return Ok(stored.map(str::to_owned));
    }
    url.query_pairs_mut().clear().extend_pairs(&restored);
    Ok(Some(url.into()))
}

fn without_query(url: &Url) -> Url {
    let mut url = url.clone();
    url.set_query(None);
    url.set_fragment(None);
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    const STORED: &str = "http://up.example/feed?token=s3cret&region=eu&token=two";

    #[test]
    fn values_are_redacted_and_restored_from_the_same_place() {
        let shown = redact(STORED).unwrap();
        assert!(
            !shown.contains("s3cret") && !shown.contains("two"),
            "{shown}"
        );
        assert!(shown.contains("region="), "{shown}");
        // Sent back unchanged: the stored URL, byte for byte.
        assert_eq!(
            unredact(&shown, Some(STORED)).unwrap().as_deref(),
            Some(STORED)
        );
        // One visible value changed: the secrets stay, the change is kept.
        let edited = shown.replace("region=%3Credacted%3E", "region=us");
        let restored = unredact(&edited, Some(STORED)).unwrap().unwrap();
        assert_eq!(
            restored,
            "http://up.example/feed?token=s3cret&region=us&token=two"
        );
        assert_eq!(redact("http://up.example/feed"), None);
        assert_eq!(
            unredact("http://up.example/x?a=1", Some(STORED)).unwrap(),
            None
        );
    }

    #[test]
    fn a_redacted_value_does_not_follow_the_entry_elsewhere() {
        let shown = redact(STORED).unwrap();
        let moved = shown.replace("up.example", "attacker.example");
        assert!(unredact(&moved, Some(STORED)).is_err());
        assert!(unredact(&shown, None).is_err());
        let extra = format!("{shown}&new=%3Credacted%3E");
        assert!(unredact(&extra, Some(STORED)).is_err());
    }
}
