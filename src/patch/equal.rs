//! RFC 6902's equality, for the `test` op: numbers are equal when their values are, whatever
//! their spelling (`1`, `1.0` and `10e-1` are all one). It serves only `test` ops received
//! from elsewhere; the diff never emits them. The diff's own equality is exact
//! ([`crate::wire::document::Node::equals`]: a number is its text, so `1.0` and `1` differ and
//! a change of spelling is sent rather than lost).

use serde_json::Value;

/// Whether `a` and `b` are equal in the sense of RFC 6902 §4.6.
pub(super) fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            x == y
                || matches!(
                    (decimal(x.as_str()), decimal(y.as_str())),
                    (Some(x), Some(y)) if x == y
                )
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(key, x)| y.get(key).is_some_and(|y| same(x, y)))
        }
        _ => a == b,
    }
}

/// A number in a canonical form: sign, significant digits without leading or trailing zeros,
/// and the exponent `e` such that the value is `0.digits × 10^e`. Zero is `(false, "", 0)`.
/// `None` when the exponent does not fit in an `i64`.
fn decimal(text: &str) -> Option<(bool, String, i64)> {
    let (negative, rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(at) => (&rest[..at], rest[at + 1..].parse::<i64>().ok()?),
        None => (rest, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits: String = int.chars().chain(frac.chars()).collect();
    let leading = digits.len() - digits.trim_start_matches('0').len();
    let significant = digits.trim_matches('0');
    if significant.is_empty() {
        return Some((false, String::new(), 0));
    }
    let int_len = i64::try_from(int.len()).ok()?;
    let leading = i64::try_from(leading).ok()?;
    let point = exponent.checked_add(int_len)?.checked_sub(leading)?;
    Some((negative, significant.to_owned(), point))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn numbers_compare_by_value() {
        for (a, b) in [
            ("1", "1.0"),
            ("1", "10e-1"),
            ("100", "1e2"),
            ("0.05", "5E-2"),
            ("0", "-0.0"),
            ("-12.50", "-1.25e1"),
            (
                "123456789012345678901234567890",
                "1.2345678901234567890123456789e29",
            ),
        ] {
            assert!(same(&parse(a), &parse(b)), "{a} == {b}");
        }
        for (a, b) in [("1", "-1"), ("1", "10"), ("0.1", "0.01"), ("1e2", "1e3")] {
            assert!(!same(&parse(a), &parse(b)), "{a} != {b}");
        }
    }

    #[test]
    fn containers_compare_deeply() {
        assert!(same(
            &parse(r#"{"a":[1,{"b":2.0}],"c":null}"#),
            &parse(r#"{"c":null,"a":[1.0,{"b":2}]}"#)
        ));
        assert!(!same(&parse("[1,2]"), &parse("[2,1]")));
        assert!(!same(&parse(r#"{"a":1}"#), &parse(r#"{"a":1,"b":1}"#)));
        assert!(!same(&parse("1"), &parse(r#""1""#)));
    }
}
