//! The schema's history, applied in order by `rusqlite_migration` (which counts applied
//! migrations in SQLite's `user_version`). Add a file and a line here for each change; never
//! edit one that was released.

use std::sync::LazyLock;

use rusqlite::{Connection, TransactionBehavior};
use rusqlite_migration::{Migrations, M};

static MIGRATIONS: LazyLock<Migrations<'static>> = LazyLock::new(|| {
    Migrations::new(vec![
        M::up(include_str!("v1.sql")),
        M::up(include_str!("v2.sql")),
        M::up(include_str!("v3.sql")),
        M::up(include_str!("v4.sql")),
        M::up(include_str!("v5.sql")),
    ])
});

/// The schema version a database has once migrated.
pub const LATEST: i64 = 5;

/// Migrates in write transactions taken up front: another process migrating at the same
/// moment waits (busy timeout). One that read the old version before waiting finds the work
/// done when its own attempt fails, and that is success.
pub fn to_latest(conn: &mut Connection) -> Result<(), rusqlite_migration::Error> {
    conn.set_transaction_behavior(TransactionBehavior::Immediate);
    let migrated = MIGRATIONS.to_latest(conn);
    conn.set_transaction_behavior(TransactionBehavior::Deferred);
    match migrated {
        Ok(()) => Ok(()),
        Err(_) if version(conn)? >= LATEST => Ok(()),
        Err(error) => Err(error),
    }
}

/// The schema version of the database.
pub fn version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.pragma_query_value(None, "user_version", |r| r.get(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_migrations_are_valid_and_latest_counts_them() {
        MIGRATIONS.validate().unwrap();
        let mut conn = Connection::open_in_memory().unwrap();
        to_latest(&mut conn).unwrap();
        assert_eq!(version(&conn).unwrap(), LATEST);
    }

    #[test]
    fn a_version_1_database_keeps_its_runs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("weir.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(include_str!("v1.sql")).unwrap();
            conn.execute_batch(
                "INSERT INTO runs (id, workflow, file, state, variables, created_at, artifacts,
                   approval_message)
                 VALUES ('r1', 'w', 'w.yaml', 'succeeded', '{}', 1, '/a', NULL);
                 PRAGMA user_version = 1;",
            )
            .unwrap();
        }
        let store = crate::store::Store::open(&path).unwrap();
        assert_eq!(version(store.conn()).unwrap(), LATEST);
        let run = store.run("r1").unwrap().unwrap();
        assert_eq!(run.backend, "local");
        assert_eq!(run.namespace, None);
        assert!(run.approvals.is_empty());
    }

    #[test]
    fn an_unknown_state_is_an_error_not_a_default() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(&dir.path().join("weir.db")).unwrap();
        store
            .conn()
            .execute_batch(
                "INSERT INTO runs (id, workflow, file, state, variables, created_at, artifacts)
                 VALUES ('r1', 'w', 'w.yaml', 'exploded', '{}', 1, '/a');",
            )
            .unwrap();
        let error = store.run("r1").unwrap_err().to_string();
        assert!(error.contains("unknown run state `exploded`"), "{error}");
    }
}
