//! A seeded generator of Debezium change events for large runs (`weir cdc generate`): members
//! and the claims that reference them — inserts, updates and deletes — with a chosen share of
//! poison records and of claims that arrive before the member they reference. The same seed
//! writes the same events, so a run can be repeated and its final state known in advance.
//! What it writes is generated data and says so in every event (`source.connector`).

use serde_json::{json, Value};

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratorConfig {
    pub seed: u64,
    /// Members inserted (table `members`, primary key `member_id`).
    pub members: u64,
    /// Change events of claims (table `claims`, primary key `claim_id`): inserts, then
    /// updates and deletes of claims inserted before.
    pub claim_events: u64,
    /// Share of the events that are poison: a claim whose `after` is not a row.
    pub poison: f64,
    /// Claims inserted before the member they reference (whose insert then comes right
    /// after): a join on members misses them at first.
    pub early_references: u64,
    /// Event time of the first event, ms since the epoch; each next one is 10 ms later.
    pub start_ms: i64,
}

/// The connector name every generated event carries, so that no one mistakes it for data
/// captured from a database.
pub const GENERATED: &str = "weir-generated";

/// The events, one JSON document each, in order.
pub fn generate(config: &GeneratorConfig) -> Vec<String> {
    let mut rng = fastrand::Rng::with_seed(config.seed);
    let mut events: Vec<Value> = Vec::new();
    let mut at = config.start_ms;
    let mut next_time = || {
        at += 10;
        at
    };
    let plans = ["basic", "silver", "gold"];
    let member = |id: u64, plan: &str| json!({ "member_id": id, "name": format!("member {id}"), "plan": plan });
    // Members whose insert waits for the early claim that references them.
    let late_members: Vec<u64> = (0..config.early_references.min(config.members))
        .map(|n| config.members - n)
        .collect();
    for id in 1..=config.members {
        if !late_members.contains(&id) {
            let row = member(id, plans[rng.usize(..plans.len())]);
            events.push(envelope("c", "members", Value::Null, row, next_time()));
        }
    }
    let mut claims: Vec<Value> = Vec::new();
    let mut next_claim = 1u64;
    for &id in &late_members {
        let claim =
            json!({ "claim_id": next_claim, "member_id": id, "amount": 10.0, "status": "open" });
        next_claim += 1;
        events.push(envelope(
            "c",
            "claims",
            Value::Null,
            claim.clone(),
            next_time(),
        ));
        events.push(envelope(
            "c",
            "members",
            Value::Null,
            member(id, "basic"),
            next_time(),
        ));
        claims.push(claim);
    }
    let statuses = ["open", "approved", "paid", "rejected"];
    for _ in 0..config.claim_events {
        if rng.f64() < config.poison {
            let poison = json!({ "op": "c", "before": null, "after": "<<row not decoded>>",
                "source": { "connector": GENERATED, "table": "claims", "ts_ms": next_time() } });
            events.push(poison);
            continue;
        }
        let roll = rng.f64();
        if claims.is_empty() || roll < 0.5 {
            let row = json!({
                "claim_id": next_claim,
                "member_id": rng.u64(1..=config.members.max(1)),
                "amount": (rng.u64(100..100_000) as f64) / 100.0,
                "status": "open",
            });
            next_claim += 1;
            events.push(envelope(
                "c",
                "claims",
                Value::Null,
                row.clone(),
                next_time(),
            ));
            claims.push(row);
        } else if roll < 0.9 {
            let at = rng.usize(..claims.len());
            let before = claims[at].clone();
            let mut after = before.clone();
            after["status"] = json!(statuses[rng.usize(..statuses.len())]);
            after["amount"] = json!((rng.u64(100..100_000) as f64) / 100.0);
            events.push(envelope("u", "claims", before, after.clone(), next_time()));
            claims[at] = after;
        } else {
            let before = claims.swap_remove(rng.usize(..claims.len()));
            events.push(envelope("d", "claims", before, Value::Null, next_time()));
        }
    }
    events.iter().map(Value::to_string).collect()
}

fn envelope(op: &str, table: &str, before: Value, after: Value, ts_ms: i64) -> Value {
    json!({
        "op": op,
        "before": before,
        "after": after,
        "source": { "connector": GENERATED, "table": table, "ts_ms": ts_ms },
        "ts_ms": ts_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::change_event::{FinalState, PrimaryKeys};

    #[test]
    fn the_same_seed_writes_the_same_events_with_poison_and_early_references() {
        let config = GeneratorConfig {
            seed: 7,
            members: 50,
            claim_events: 2_000,
            poison: 0.01,
            early_references: 3,
            start_ms: 1_700_000_000_000,
        };
        let events = generate(&config);
        assert_eq!(events, generate(&config));
        assert_ne!(
            events,
            generate(&GeneratorConfig {
                seed: 8,
                ..config.clone()
            })
        );
        let keys: PrimaryKeys = "members=member_id,claims=claim_id".parse().unwrap();
        let claims = FinalState::of(events.iter().map(String::as_str), "claims", &keys);
        let members = FinalState::of(events.iter().map(String::as_str), "members", &keys);
        assert_eq!(members.rows.len(), 50);
        assert!(
            (5..=40).contains(&claims.unkeyed.len()),
            "{}",
            claims.unkeyed.len()
        );
        assert!(claims.rows.len() > 500, "{}", claims.rows.len());
        let deletes = events.iter().filter(|e| e.contains("\"op\":\"d\"")).count();
        assert!(deletes > 50, "{deletes}");
        // An early claim comes before its member.
        let first_claim = events
            .iter()
            .position(|e| e.contains("\"claims\""))
            .unwrap();
        let its_member = events
            .iter()
            .position(|e| e.contains("\"member_id\":50,\"name\""))
            .unwrap();
        assert!(first_claim < its_member);
    }
}
