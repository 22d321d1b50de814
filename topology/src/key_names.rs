//! Message keys as the operators see them: text shared by every record that carries the key.
//!
//! A topic's records mostly repeat a modest set of keys (a currency pair, a sensor, a table's
//! primary keys in turn). Decoding each record's key into a fresh `Arc<str>` cost an
//! allocation and a free per record; a small cache, indexed by a hash of the key's bytes,
//! hands out the text decoded the last time instead. A key that misses (many distinct keys,
//! or one that is not UTF-8) costs what it did before, and the cache never grows.

use std::sync::Arc;

/// Cached keys; a power of two.
const SLOTS: usize = 256;

#[derive(Debug)]
pub(crate) struct KeyNames {
    slots: Vec<Option<Arc<str>>>,
}

impl Default for KeyNames {
    fn default() -> Self {
        Self {
            slots: vec![None; SLOTS],
        }
    }
}

impl KeyNames {
    /// The key's text (invalid UTF-8 replaced, as `String::from_utf8_lossy` does).
    pub fn name(&mut self, key: &[u8]) -> Arc<str> {
        let slot = &mut self.slots[slot_of(key)];
        match slot {
            // A key that is not UTF-8 never equals its lossy text, so it is decoded each time.
            Some(name) if name.as_bytes() == key => name.clone(),
            _ => slot.insert(String::from_utf8_lossy(key).into()).clone(),
        }
    }
}

/// FNV-1a over the key's bytes: spreads short keys well, and costs a few nanoseconds.
fn slot_of(key: &[u8]) -> usize {
    let hash = key.iter().fold(0xcbf2_9ce4_8422_2325_u64, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    (hash as usize) & (SLOTS - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_seen_again_is_the_same_shared_text() {
        let mut names = KeyNames::default();
        let first = names.name(b"BTC-CNY");
        let again = names.name(b"BTC-CNY");
        assert!(Arc::ptr_eq(&first, &again));
        assert_eq!(&*names.name(b"ETH-CNY"), "ETH-CNY");
    }

    #[test]
    fn keys_sharing_a_slot_each_get_their_own_text() {
        let mut names = KeyNames::default();
        let keys: Vec<String> = (0..4 * SLOTS).map(|i| format!("key-{i}")).collect();
        for _ in 0..2 {
            for key in &keys {
                assert_eq!(&*names.name(key.as_bytes()), key.as_str());
            }
        }
        assert_eq!(names.slots.len(), SLOTS, "the cache never grows");
    }

    #[test]
    fn a_key_that_is_not_utf8_is_decoded_lossily_every_time() {
        let mut names = KeyNames::default();
        assert_eq!(&*names.name(b"a\xffb"), "a\u{fffd}b");
        assert_eq!(&*names.name(b"a\xffb"), "a\u{fffd}b");
        assert_eq!(&*names.name("a\u{fffd}b".as_bytes()), "a\u{fffd}b");
    }
}
