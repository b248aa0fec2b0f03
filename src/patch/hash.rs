//! A fast structural hash of JSON values, used to align array elements and to find values
//! that moved.
//!
//! Equal values (by `serde_json`'s `==`) always hash alike: object members are combined
//! order-independently because two objects with the same members in another order are equal,
//! and numbers hash by their exact text, as they compare. Different values may collide; every
//! match found through a hash is confirmed with `==` before it is trusted, so a collision costs
//! a larger patch, never a wrong one. The hash is not keyed: it is not meant to resist inputs
//! crafted to collide, which again could only make patches larger.

use serde_json::Value;

/// Below this depth a value hashes by its kind and length only. This bounds the recursion
/// (equal values still hash alike) at the price of more collisions in very deep documents.
const MAX_DEPTH: usize = 128;

const K: u64 = 0x9e37_79b9_7f4a_7c15;

/// The structural hash of `value`.
pub(super) fn hash(value: &Value) -> u64 {
    finish(hash_at(value, 0))
}

/// The hash of one object member, as used by [`hash`] and to find objects sharing members.
pub(super) fn member(key: &str, value: &Value) -> u64 {
    member_at(key, value, 0)
}

/// Members are mixed thoroughly, as objects add them up.
fn member_at(key: &str, value: &Value, depth: usize) -> u64 {
    finish(bytes(7, key.as_bytes()) ^ hash_at(value, depth).rotate_left(32))
}

/// The unfinished hash: scalars and arrays are only folded with multiplications, which is
/// enough to tell values apart once [`finish`] mixes the result.
fn hash_at(value: &Value, depth: usize) -> u64 {
    match value {
        Value::Null => 1,
        Value::Bool(b) => 2 + u64::from(*b),
        Value::Number(n) => bytes(4, n.as_str().as_bytes()),
        Value::String(s) => bytes(5, s.as_bytes()),
        Value::Array(items) if depth < MAX_DEPTH => {
            let mut h = 6u64.wrapping_mul(K);
            for item in items {
                h = (h.rotate_left(5) ^ hash_at(item, depth + 1)).wrapping_mul(K);
            }
            h ^ items.len() as u64
        }
        Value::Object(members) if depth < MAX_DEPTH => {
            let sum = members.iter().fold(0u64, |sum, (key, value)| {
                sum.wrapping_add(member_at(key, value, depth + 1))
            });
            (sum ^ members.len() as u64 ^ 8).wrapping_mul(K)
        }
        Value::Array(items) => (9 ^ items.len() as u64).wrapping_mul(K),
        Value::Object(members) => (10 ^ members.len() as u64).wrapping_mul(K),
    }
}

/// Folds `data` eight bytes at a time into a state seeded by `tag` and the length.
fn bytes(tag: u64, data: &[u8]) -> u64 {
    let mut h = (tag ^ (data.len() as u64).rotate_left(16)).wrapping_mul(K);
    let mut chunks = data.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(K);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut word = [0u8; 8];
        word[..rest.len()].copy_from_slice(rest);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(K);
    }
    h
}

/// Spreads every input bit over the whole word (the MurmurHash3 finaliser).
fn finish(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn equal_values_hash_alike() {
        let a: Value = serde_json::from_str(r#"{"a":1,"b":[1,2,{"c":null}]}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"b":[1,2,{"c":null}],"a":1}"#).unwrap();
        assert_eq!(a, b);
        assert_eq!(hash(&a), hash(&b));
    }

    #[test]
    fn near_values_differ() {
        let values = [
            json!(null),
            json!(false),
            json!(true),
            json!(0),
            json!("0"),
            json!([]),
            json!({}),
            json!([0]),
            json!(["0"]),
            json!({"a": 0}),
            json!({"a": "0"}),
            json!({"0": "a"}),
            json!([1, 2]),
            json!([2, 1]),
            json!([[1], 2]),
            json!([1, [2]]),
            json!("abcdefgh"),
            json!("abcdefgh\0"),
        ];
        for (i, a) in values.iter().enumerate() {
            for b in &values[i + 1..] {
                assert_ne!(hash(a), hash(b), "{a} and {b}");
            }
        }
        let one: Value = serde_json::from_str("1").unwrap();
        let one_point_zero: Value = serde_json::from_str("1.0").unwrap();
        assert_ne!(hash(&one), hash(&one_point_zero));
    }
}
