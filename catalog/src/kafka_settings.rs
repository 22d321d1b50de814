//! Broker settings that depend on the size of a Kafka cluster, shared by both realizations: the
//! local runtime writes them to `server.properties`, Kubernetes passes them as the `KAFKA_*`
//! variables the broker image turns back into properties.

use std::hash::{DefaultHasher, Hash, Hasher};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// A broker that dies loses its registration in ZooKeeper when its session expires; until
/// then a broker started again in its place cannot register. 6 s (ZooKeeper allows 4 to 40 s
/// at its 2 s tick) keeps a restart short.
pub const ZOOKEEPER_SESSION_TIMEOUT_MS: u32 = 6000;

/// Copies of each partition a cluster of `brokers` keeps by default.
pub fn replication_factor(brokers: u32) -> u32 {
    brokers.clamp(1, 3)
}

/// The replication settings of a cluster of `brokers`: topics (and Kafka's internal ones) keep
/// [`replication_factor`] copies, a write needs all but one of them (at least one), and a
/// replica that fell behind never becomes leader.
pub fn replication_settings(brokers: u32) -> Vec<(&'static str, String)> {
    let replication = replication_factor(brokers);
    let min_in_sync = replication.saturating_sub(1).max(1);
    vec![
        ("default.replication.factor", replication.to_string()),
        ("min.insync.replicas", min_in_sync.to_string()),
        ("unclean.leader.election.enable", "false".into()),
        ("offsets.topic.replication.factor", replication.to_string()),
        ("offsets.topic.num.partitions", "1".into()),
        (
            "transaction.state.log.replication.factor",
            replication.to_string(),
        ),
        ("transaction.state.log.min.isr", min_in_sync.to_string()),
        ("transaction.state.log.num.partitions", "1".into()),
    ]
}

/// The variable the Kafka image reads a property from: `log.dirs` → `KAFKA_LOG_DIRS` (`_` in
/// the property doubles, `-` triples, as the official image decodes them).
pub fn env_name(property: &str) -> String {
    let mut name = String::from("KAFKA_");
    for c in property.chars() {
        match c {
            '.' => name.push('_'),
            '_' => name.push_str("__"),
            '-' => name.push_str("___"),
            other => name.push(other.to_ascii_uppercase()),
        }
    }
    name
}

/// A KRaft cluster id made from `seed`: 16 bytes, base64url without padding (22 characters),
/// as Kafka's storage tool wants it. Its first character is a letter: one starting with `-`
/// would be read as an option.
pub fn cluster_id(seed: &impl Hash) -> String {
    let mut bytes = [0u8; 16];
    for (round, chunk) in bytes.chunks_mut(8).enumerate() {
        let mut hasher = DefaultHasher::new();
        (seed, round).hash(&mut hasher);
        chunk.copy_from_slice(&hasher.finish().to_le_bytes());
    }
    // The first character encodes the first 6 bits: below 32 it is an upper- or lower-case
    // letter.
    bytes[0] &= 0x7f;
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_keeps_up_to_three_copies_and_writes_need_all_but_one() {
        assert_eq!(
            (1..=5).map(replication_factor).collect::<Vec<_>>(),
            [1, 2, 3, 3, 3]
        );
        let value = |brokers, key| {
            replication_settings(brokers)
                .into_iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v)
                .unwrap()
        };
        assert_eq!(value(1, "min.insync.replicas"), "1");
        assert_eq!(value(2, "min.insync.replicas"), "1");
        assert_eq!(value(3, "min.insync.replicas"), "2");
        assert_eq!(value(3, "offsets.topic.replication.factor"), "3");
    }

    #[test]
    fn property_names_become_the_variables_the_image_decodes() {
        assert_eq!(env_name("log.dirs"), "KAFKA_LOG_DIRS");
        assert_eq!(
            env_name("transaction.state.log.min.isr"),
            "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"
        );
        assert_eq!(env_name("a_b-c.d"), "KAFKA_A__B___C_D");
    }

    #[test]
    fn cluster_ids_are_22_url_safe_characters_starting_with_a_letter() {
        let id = cluster_id(&"kafka-1");
        assert_eq!(id.len(), 22);
        assert!(id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_eq!(cluster_id(&"a"), cluster_id(&"a"));
        assert_ne!(cluster_id(&"a"), cluster_id(&"b"));
        for i in 0..200 {
            assert!(cluster_id(&format!("k{i}")).starts_with(|c: char| c.is_ascii_alphabetic()));
        }
    }
}
