//! Parsing only the parts of a document that the chain reads.
//!
//! A topology's `extract`s name the values they read by JSON pointers; everything else in a
//! document is checked (a payload that is not JSON is still refused as such) but never built.
//! A ticker API answer with dozens of currencies becomes a tree holding one or two of them,
//! which saves the allocations of every key and value that no operator looks at. Any pointer
//! looks up the same value in the pruned tree as in the whole document.

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::pointer::JsonPointer;

/// Which parts of a document are kept.
#[derive(Debug, Clone, PartialEq)]
pub enum Wanted {
    /// The whole value.
    All,
    /// Of an object, only these members (each with what is wanted of it); a value that is
    /// not an object is kept whole, so that a pointer into it fails or succeeds as before.
    /// A topology reads a handful of fields: a list searched in turn beats hashing each
    /// member name of every document.
    Members(Vec<(String, Wanted)>),
}

impl Wanted {
    /// Nothing but the document's shape: enough to check it is JSON.
    pub fn nothing() -> Self {
        Wanted::Members(Vec::new())
    }

    /// Also keeps what `pointer` reaches.
    pub fn add_pointer(&mut self, pointer: &JsonPointer) {
        let mut node = self;
        for token in pointer.tokens() {
            node = match node {
                Wanted::All => return,
                Wanted::Members(members) => {
                    let at = match members.iter().position(|(name, _)| name == token) {
                        Some(at) => at,
                        None => {
                            members.push((token.clone(), Wanted::nothing()));
                            members.len() - 1
                        }
                    };
                    &mut members[at].1
                }
            };
        }
        *node = Wanted::All;
    }

    /// Parses `payload`, keeping what is wanted; fails exactly where `serde_json` fails on
    /// the whole document.
    pub fn parse(&self, payload: &[u8]) -> Result<Value, serde_json::Error> {
        let mut deserializer = serde_json::Deserializer::from_slice(payload);
        let value = Pruned(self).deserialize(&mut deserializer)?;
        deserializer.end()?;
        Ok(value)
    }
}

struct Pruned<'w>(&'w Wanted);

impl<'de> DeserializeSeed<'de> for Pruned<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        match self.0 {
            Wanted::All => Value::deserialize(deserializer),
            Wanted::Members(members) => deserializer.deserialize_any(Keeping(members)),
        }
    }
}

/// Builds an object of the wanted members only; any other value whole.
struct Keeping<'w>(&'w [(String, Wanted)]);

impl<'de> Visitor<'de> for Keeping<'_> {
    type Value = Value;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut kept = Map::new();
        while let Some(Key(name)) = map.next_key()? {
            match self.0.iter().find(|(wanted, _)| *wanted == name.as_ref()) {
                Some((_, wanted)) => {
                    let value = map.next_value_seed(Pruned(wanted))?;
                    kept.insert(name.into_owned(), value);
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Value::Object(kept))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element::<Value>()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_bool<E>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Value, E> {
        Ok(Value::from(value))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Value, E> {
        Ok(Value::from(value))
    }

    fn visit_f64<E>(self, value: f64) -> Result<Value, E> {
        Ok(Value::from(value))
    }

    fn visit_str<E>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_owned()))
    }

    fn visit_string<E>(self, value: String) -> Result<Value, E> {
        Ok(Value::String(value))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
}

/// An object's member name, borrowed from the payload unless it holds escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;

            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("a member name")
            }

            fn visit_borrowed_str<E>(self, name: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(name)))
            }

            fn visit_str<E>(self, name: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(name.to_owned())))
            }

            fn visit_string<E>(self, name: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(name)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn wanting(pointers: &[&str]) -> Wanted {
        let mut wanted = Wanted::nothing();
        for pointer in pointers {
            wanted.add_pointer(&JsonPointer::parse(pointer).unwrap());
        }
        wanted
    }

    #[test]
    fn keeps_only_what_the_pointers_reach() {
        let doc = br#"{"data":{"amount":"478012.35","base":"BTC","currency":"CNY"},"at":[1,2]}"#;
        let pruned = wanting(&["/data/amount"]).parse(doc).unwrap();
        assert_eq!(pruned, json!({"data": {"amount": "478012.35"}}));
    }

    #[test]
    fn every_pointer_finds_what_it_finds_in_the_whole_document() {
        let text = r#"{"CNY":{"last":478001.25,"symbol":"¥","15m":1},"list":[{"a":1},{"a":2}],
            "a/b":{"m~n":3},"esc\"aped":{"x":true},"n":null,"s":"text","num":-7,"big":18446744073709551615}"#;
        let whole: Value = serde_json::from_str(text).unwrap();
        let pointers = [
            "/CNY/last",
            "/CNY/symbol",
            "/CNY/missing",
            "/list/1/a",
            "/list/7",
            "/a~1b/m~0n",
            "/esc\"aped/x",
            "/n",
            "/n/deeper",
            "/s/0",
            "/num",
            "/big",
            "/CNY",
        ];
        for pointer in pointers {
            let pruned = wanting(&[pointer]).parse(text.as_bytes()).unwrap();
            assert_eq!(pruned.pointer(pointer), whole.pointer(pointer), "{pointer}");
        }
        let all = wanting(&pointers).parse(text.as_bytes()).unwrap();
        for pointer in pointers {
            assert_eq!(all.pointer(pointer), whole.pointer(pointer), "{pointer}");
        }
        assert_eq!(wanting(&[""]).parse(text.as_bytes()).unwrap(), whole);
    }

    #[test]
    fn a_document_that_is_not_json_is_refused_even_where_nothing_is_wanted() {
        let wanted = wanting(&["/data/amount"]);
        for bad in [
            &br#"{"data":{"amount":"1"},"other":[1,2"#[..],
            br#"{"data":{"amount":"1"}} trailing"#,
            br#"{"other": tru}"#,
            b"not json",
            b"",
        ] {
            let ours = wanted.parse(bad).unwrap_err();
            let theirs = serde_json::from_slice::<Value>(bad).unwrap_err();
            assert_eq!(ours.classify(), theirs.classify(), "{bad:?}");
        }
    }

    #[test]
    fn shapes_other_than_objects_are_kept_whole() {
        let wanted = wanting(&["/0/rate"]);
        let pruned = wanted.parse(br#"[{"rate":1,"x":2}]"#).unwrap();
        assert_eq!(pruned, json!([{"rate": 1, "x": 2}]));
        assert_eq!(wanted.parse(b"12.5").unwrap(), json!(12.5));
    }
}
