//! Reading only the values a topology's `extract`s name, straight out of the payload.
//!
//! A topology's `extract`s name the values they read by JSON pointers. The parse follows
//! those pointers while it reads the document and keeps the value each one reaches; every
//! other part of the document is checked (a payload that is not JSON is still refused as
//! such) but never built. No tree of the document is made at all: a ticker answer with dozens
//! of currencies costs the one value the chain reads. Each pointer finds exactly what it
//! would find in the whole document.

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

use crate::pointer::JsonPointer;

/// What each wanted pointer reaches in one document, by the slot [`Wanted::add`] gave it:
/// `None` where it reaches nothing.
pub type Found = Vec<Option<Value>>;

/// The pointers a chain reads, compiled into the paths the parse follows.
#[derive(Debug, Clone, Default)]
pub struct Wanted {
    pointers: Vec<JsonPointer>,
    root: Node,
}

/// A place in the document that some pointers reach or pass through.
#[derive(Debug, Clone, Default)]
struct Node {
    /// How many tokens of a pointer lead here.
    depth: usize,
    /// The slots of the pointers that end here: they take the value here, whole.
    ends: Vec<usize>,
    /// The slots of the pointers that go on below. When the value here is an object they
    /// follow `members`; any other value is built whole and they are looked up in it.
    below: Vec<usize>,
    /// Where those pointers go next. A topology reads a handful of fields: a list searched
    /// in turn beats hashing each member name of every document.
    members: Vec<(String, Node)>,
}

impl Wanted {
    /// No pointer: the parse only checks that a payload is JSON.
    pub fn nothing() -> Self {
        Self::default()
    }

    /// Also reads what `pointer` reaches, and returns the slot of [`Found`] that holds it
    /// (the same slot for the same pointer).
    pub fn add(&mut self, pointer: &JsonPointer) -> usize {
        if let Some(slot) = self.pointers.iter().position(|p| p == pointer) {
            return slot;
        }
        let slot = self.pointers.len();
        let mut node = &mut self.root;
        for (depth, token) in pointer.tokens().iter().enumerate() {
            node.below.push(slot);
            let at = match node.members.iter().position(|(name, _)| name == token) {
                Some(at) => at,
                None => {
                    let child = Node {
                        depth: depth + 1,
                        ..Node::default()
                    };
                    node.members.push((token.clone(), child));
                    node.members.len() - 1
                }
            };
            node = &mut node.members[at].1;
        }
        node.ends.push(slot);
        self.pointers.push(pointer.clone());
        slot
    }

    /// Parses `payload` into `found`, one entry per pointer; fails exactly where
    /// `serde_json` fails on the whole document. `found` is reused from record to record.
    pub fn parse_into(&self, payload: &[u8], found: &mut Found) -> Result<(), serde_json::Error> {
        found.clear();
        found.resize(self.pointers.len(), None);
        let mut deserializer = serde_json::Deserializer::from_slice(payload);
        Reading {
            pointers: &self.pointers,
            node: &self.root,
            found,
        }
        .deserialize(&mut deserializer)?;
        deserializer.end()
    }

    /// What each pointer reaches in `payload` (a fresh [`Found`]).
    pub fn parse(&self, payload: &[u8]) -> Result<Found, serde_json::Error> {
        let mut found = Found::new();
        self.parse_into(payload, &mut found)?;
        Ok(found)
    }
}

/// Reads the value at one node of the wanted paths into the slots of the pointers there.
struct Reading<'w, 'f> {
    pointers: &'w [JsonPointer],
    node: &'w Node,
    found: &'f mut Found,
}

impl Reading<'_, '_> {
    /// The value here, built whole: the pointers ending here take it, those going on below
    /// look inside it.
    fn keep(self, value: Value) {
        for &slot in &self.node.below {
            self.found[slot] = self.pointers[slot]
                .lookup_below(&value, self.node.depth)
                .cloned();
        }
        if let Some((&last, others)) = self.node.ends.split_last() {
            for &slot in others {
                self.found[slot] = Some(value.clone());
            }
            self.found[last] = Some(value);
        }
    }
}

impl<'de> DeserializeSeed<'de> for Reading<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        // A member given twice counts as its last occurrence, as in a whole `Value`: what an
        // earlier one filled is forgotten.
        for &slot in self.node.ends.iter().chain(&self.node.below) {
            self.found[slot] = None;
        }
        if !self.node.ends.is_empty() {
            let value = Value::deserialize(deserializer)?;
            self.keep(value);
        } else if self.node.below.is_empty() {
            IgnoredAny::deserialize(deserializer)?;
        } else {
            deserializer.deserialize_any(self)?;
        }
        Ok(())
    }
}

impl<'de> Visitor<'de> for Reading<'_, '_> {
    type Value = ();

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(Key(name)) = map.next_key()? {
            match (self.node.members.iter()).find(|(wanted, _)| *wanted == name.as_ref()) {
                Some((_, node)) => map.next_value_seed(Reading {
                    pointers: self.pointers,
                    node,
                    found: &mut *self.found,
                })?,
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element::<Value>()? {
            items.push(item);
        }
        self.keep(Value::Array(items));
        Ok(())
    }

    fn visit_bool<E>(self, value: bool) -> Result<(), E> {
        self.keep(Value::Bool(value));
        Ok(())
    }

    fn visit_i64<E>(self, value: i64) -> Result<(), E> {
        self.keep(Value::from(value));
        Ok(())
    }

    fn visit_u64<E>(self, value: u64) -> Result<(), E> {
        self.keep(Value::from(value));
        Ok(())
    }

    fn visit_f64<E>(self, value: f64) -> Result<(), E> {
        self.keep(Value::from(value));
        Ok(())
    }

    fn visit_str<E>(self, value: &str) -> Result<(), E> {
        self.keep(Value::String(value.to_owned()));
        Ok(())
    }

    fn visit_string<E>(self, value: String) -> Result<(), E> {
        self.keep(Value::String(value));
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        self.keep(Value::Null);
        Ok(())
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
    use super::*;

    /// Compiles `pointers` and returns each one's slot.
    fn wanting(pointers: &[&str]) -> (Wanted, Vec<usize>) {
        let mut wanted = Wanted::nothing();
        let slots = (pointers.iter())
            .map(|pointer| wanted.add(&JsonPointer::parse(pointer).unwrap()))
            .collect();
        (wanted, slots)
    }

    #[test]
    fn reads_only_what_the_pointers_reach() {
        let doc = br#"{"data":{"amount":"478012.35","base":"BTC","currency":"CNY"},"at":[1,2]}"#;
        let (wanted, slots) = wanting(&["/data/amount", "/data/base", "/data/amount"]);
        assert_eq!(slots, [0, 1, 0], "the same pointer shares its slot");
        let found = wanted.parse(doc).unwrap();
        assert_eq!(found, [Some("478012.35".into()), Some("BTC".into())]);
    }

    #[test]
    fn every_pointer_finds_what_it_finds_in_the_whole_document() {
        let text = r#"{"CNY":{"last":478001.25,"symbol":"¥","15m":1},"list":[{"a":1},{"a":2}],
            "a/b":{"m~n":3},"esc\"aped":{"x":true},"n":null,"s":"text","num":-7,"big":18446744073709551615,
            "twice":{"x":1},"twice":{"y":2}}"#;
        let whole: Value = serde_json::from_str(text).unwrap();
        let pointers = [
            "/CNY/last",
            "/CNY/symbol",
            "/CNY/missing",
            "/list/1/a",
            "/list/7",
            "/list",
            "/a~1b/m~0n",
            "/esc\"aped/x",
            "/n",
            "/n/deeper",
            "/s/0",
            "/num",
            "/big",
            "/CNY",
            "/twice/x",
            "/twice/y",
            "",
        ];
        for pointer in pointers {
            let (wanted, slots) = wanting(&[pointer]);
            let found = wanted.parse(text.as_bytes()).unwrap();
            assert_eq!(
                found[slots[0]].as_ref(),
                whole.pointer(pointer),
                "{pointer}"
            );
        }
        let (wanted, slots) = wanting(&pointers);
        let found = wanted.parse(text.as_bytes()).unwrap();
        for (pointer, slot) in pointers.iter().zip(slots) {
            assert_eq!(
                found[slot].as_ref(),
                whole.pointer(pointer),
                "{pointer} among all"
            );
        }
    }

    #[test]
    fn a_document_that_is_not_json_is_refused_even_where_nothing_is_wanted() {
        for (wanted, _) in [wanting(&["/data/amount"]), wanting(&[])] {
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
    }

    #[test]
    fn pointers_into_shapes_other_than_objects_look_inside_them_whole() {
        let (wanted, slots) = wanting(&["/0/rate", "/1"]);
        let found = wanted.parse(br#"[{"rate":1,"x":2},"b"]"#).unwrap();
        assert_eq!(found[slots[0]], Some(1.into()));
        assert_eq!(found[slots[1]], Some("b".into()));
        let found = wanted.parse(b"12.5").unwrap();
        assert_eq!(found, [None, None]);
    }

    #[test]
    fn a_reused_buffer_keeps_nothing_from_the_previous_document() {
        let (wanted, slots) = wanting(&["/a"]);
        let mut found = Found::new();
        wanted.parse_into(br#"{"a":1}"#, &mut found).unwrap();
        assert_eq!(found[slots[0]], Some(1.into()));
        wanted.parse_into(br#"{"b":1}"#, &mut found).unwrap();
        assert_eq!(found[slots[0]], None);
    }
}
