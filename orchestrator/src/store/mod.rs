//! The SQLite store under `WEIR_HOME`: service instances (and, with the workflow engine, runs).
//! Several `weir` processes may use it at once; SQLite's locking and a busy timeout serialize
//! them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;
use weir_contracts::service_kind::ServiceKind;

mod migrations;

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the Weir database {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("cannot bring the Weir database {path} to this version's schema: {source}")]
    Migrate {
        path: PathBuf,
        source: rusqlite_migration::Error,
    },
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("an instance named `{0}` already exists; choose another name with --name or stop it with `weir down {0}`")]
    NameTaken(String),
}

/// A state the store holds that this version of Weir does not know (a newer `weir` wrote
/// it, or the database was edited by hand).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} state `{text}`")]
pub struct UnknownState {
    what: &'static str,
    text: String,
}

impl UnknownState {
    /// The state whose name is `text`.
    pub fn parse<T>(what: &'static str, text: &str) -> Result<T, Self>
    where
        T: strum::IntoEnumIterator + Into<&'static str> + Copy,
    {
        T::iter()
            .find(|state| (*state).into() == text)
            .ok_or_else(|| Self {
                what,
                text: text.into(),
            })
    }
}

/// A text column read into a type that parses it, failing on text it does not accept.
pub(crate) fn parsed_column<T>(row: &Row<'_>, column: &str) -> rusqlite::Result<T>
where
    T: std::str::FromStr,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    let text: String = row.get(column)?;
    text.parse().map_err(|error| {
        let index = row.as_ref().column_index(column).unwrap_or(0);
        rusqlite::Error::FromSqlConversionFailure(
            index,
            rusqlite::types::Type::Text,
            Box::new(error),
        )
    })
}

/// The life of an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, strum::IntoStaticStr, strum::EnumIter)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum InstanceState {
    /// Started, not yet ready.
    Starting,
    Running,
    /// Being stopped.
    Stopping,
}

impl InstanceState {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

impl std::str::FromStr for InstanceState {
    type Err = UnknownState;

    fn from_str(text: &str) -> Result<Self, UnknownState> {
        UnknownState::parse("instance", text)
    }
}

/// One service instance as recorded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InstanceRecord {
    pub name: String,
    pub service: ServiceKind,
    pub state: InstanceState,
    /// `host:port` for TCP services, `http://host:port` for HTTP ones, empty when none.
    pub endpoint: String,
    pub pid: Option<i32>,
    /// The process's start time (clock ticks since boot), to tell it from a reused pid.
    #[serde(skip)]
    pub pid_start_time: Option<u64>,
    pub log_path: String,
    pub dir: String,
    /// Validated parameters, as JSON.
    pub params: serde_json::Value,
    /// Instances this one uses (e.g. a Kafka instance's ZooKeeper).
    pub uses: Vec<String>,
    /// The instance that started this one as its dependency, if any.
    pub auto_started_by: Option<String>,
    /// The process responsible for this instance while it starts, or for the whole run it
    /// belongs to. `None` once a `weir up` instance is ready: it lives until `weir down`.
    pub owner_pid: Option<i32>,
    #[serde(skip)]
    pub owner_start_time: Option<u64>,
    pub run_id: Option<String>,
    pub backend: String,
    pub created_at: i64,
}

/// The database.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
}

/// How long opening waits for another process holding the database.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

fn is_busy(error: &rusqlite_migration::Error) -> bool {
    let rusqlite_migration::Error::RusqliteError { err, .. } = error else {
        return false;
    };
    matches!(
        err.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

impl Store {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let open_error = |source| StoreError::Open {
            path: path.to_owned(),
            source,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| {
                open_error(rusqlite::Error::InvalidPath(PathBuf::from(format!(
                    "{}: {e}",
                    parent.display()
                ))))
            })?;
        }
        let mut conn = Connection::open(path).map_err(open_error)?;
        conn.busy_timeout(OPEN_TIMEOUT).map_err(open_error)?;
        // SQLite answers "locked" without waiting when two processes set up a new database
        // at once (switching to WAL bypasses the busy handler), so setup is retried.
        let deadline = std::time::Instant::now() + OPEN_TIMEOUT;
        loop {
            match Self::set_up(&mut conn) {
                Err(error) if is_busy(&error) && std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                outcome => {
                    break outcome.map_err(|source| StoreError::Migrate {
                        path: path.to_owned(),
                        source,
                    })?
                }
            }
        }
        Ok(Self { conn })
    }

    /// Puts the database in WAL mode and migrates it to the latest schema, each only when
    /// needed: opening must stay cheap and lock-free once the database is up to date, as
    /// several `weir` processes open it many times a second.
    fn set_up(conn: &mut Connection) -> Result<(), rusqlite_migration::Error> {
        let journal: String = conn.pragma_query_value(None, "journal_mode", |r| r.get(0))?;
        if !journal.eq_ignore_ascii_case("wal") {
            conn.pragma_update(None, "journal_mode", "WAL")?;
        }
        if migrations::version(conn)? < migrations::LATEST {
            migrations::to_latest(conn)?;
        }
        Ok(())
    }

    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Records a new instance; fails if the name is taken.
    pub fn insert_instance(&self, record: &InstanceRecord) -> Result<(), StoreError> {
        let inserted = self.conn.execute(
            "INSERT OR IGNORE INTO instances (name, service, state, endpoint, pid, pid_start_time,
                log_path, dir, params, uses, auto_started_by, owner_pid, owner_start_time, run_id,
                backend, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
            params![
                record.name,
                record.service.name(),
                record.state.as_str(),
                record.endpoint,
                record.pid,
                record.pid_start_time.map(|t| t as i64),
                record.log_path,
                record.dir,
                record.params.to_string(),
                serde_json::to_string(&record.uses).expect("names serialize"),
                record.auto_started_by,
                record.owner_pid,
                record.owner_start_time.map(|t| t as i64),
                record.run_id,
                record.backend,
                record.created_at,
            ],
        )?;
        if inserted == 0 {
            return Err(StoreError::NameTaken(record.name.clone()));
        }
        Ok(())
    }

    /// Replaces the mutable fields of an instance.
    pub fn update_instance(&self, record: &InstanceRecord) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE instances SET state = ?2, endpoint = ?3, pid = ?4, pid_start_time = ?5,
                log_path = ?6, owner_pid = ?7, owner_start_time = ?8, params = ?9 WHERE name = ?1",
            params![
                record.name,
                record.state.as_str(),
                record.endpoint,
                record.pid,
                record.pid_start_time.map(|t| t as i64),
                record.log_path,
                record.owner_pid,
                record.owner_start_time.map(|t| t as i64),
                record.params.to_string(),
            ],
        )?;
        Ok(())
    }

    pub fn delete_instance(&self, name: &str) -> Result<(), StoreError> {
        self.conn
            .execute("DELETE FROM instances WHERE name = ?1", params![name])?;
        Ok(())
    }

    pub fn instance(&self, name: &str) -> Result<Option<InstanceRecord>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT * FROM instances WHERE name = ?1",
                params![name],
                instance_from_row,
            )
            .optional()?)
    }

    /// All instances, oldest first.
    pub fn instances(&self) -> Result<Vec<InstanceRecord>, StoreError> {
        let mut statement = self
            .conn
            .prepare("SELECT * FROM instances ORDER BY created_at, rowid")?;
        let rows = statement.query_map([], instance_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// An instance Weir started on a Kubernetes cluster.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterInstanceRecord {
    pub namespace: String,
    pub name: String,
    pub service: ServiceKind,
    /// The address pods of its namespace use.
    pub endpoint: String,
    pub run_id: Option<String>,
    pub created_at: i64,
}

impl Store {
    /// Records an instance started on the cluster (replacing a record of the same place).
    pub fn record_cluster_instance(
        &self,
        record: &ClusterInstanceRecord,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT OR REPLACE INTO cluster_instances
                (namespace, name, service, endpoint, run_id, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                record.namespace,
                record.name,
                record.service.name(),
                record.endpoint,
                record.run_id,
                record.created_at,
            ],
        )?;
        Ok(())
    }

    /// Forgets one cluster instance, or all of a namespace when `name` is `None`.
    pub fn forget_cluster_instances(
        &self,
        namespace: &str,
        name: Option<&str>,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "DELETE FROM cluster_instances WHERE namespace = ?1 AND (?2 IS NULL OR name = ?2)",
            params![namespace, name],
        )?;
        Ok(())
    }

    /// Every recorded cluster instance, oldest first.
    pub fn cluster_instances(&self) -> Result<Vec<ClusterInstanceRecord>, StoreError> {
        let mut statement = self
            .conn
            .prepare("SELECT * FROM cluster_instances ORDER BY created_at, rowid")?;
        let rows = statement.query_map([], |row| {
            Ok(ClusterInstanceRecord {
                namespace: row.get("namespace")?,
                name: row.get("name")?,
                service: parsed_column(row, "service")?,
                endpoint: row.get("endpoint")?,
                run_id: row.get("run_id")?,
                created_at: row.get("created_at")?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

fn instance_from_row(row: &Row<'_>) -> rusqlite::Result<InstanceRecord> {
    let params: String = row.get("params")?;
    let uses: String = row.get("uses")?;
    Ok(InstanceRecord {
        name: row.get("name")?,
        service: parsed_column(row, "service")?,
        state: parsed_column(row, "state")?,
        endpoint: row.get("endpoint")?,
        pid: row.get("pid")?,
        pid_start_time: row
            .get::<_, Option<i64>>("pid_start_time")?
            .map(|t| t as u64),
        log_path: row.get("log_path")?,
        dir: row.get("dir")?,
        params: serde_json::from_str(&params).unwrap_or(serde_json::Value::Null),
        uses: serde_json::from_str(&uses).unwrap_or_default(),
        auto_started_by: row.get("auto_started_by")?,
        owner_pid: row.get("owner_pid")?,
        owner_start_time: row
            .get::<_, Option<i64>>("owner_start_time")?
            .map(|t| t as u64),
        run_id: row.get("run_id")?,
        backend: row.get("backend")?,
        created_at: row.get("created_at")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The name a state is stored under is the one the API shows, and reads back.
    fn names_agree<T>()
    where
        T: strum::IntoEnumIterator + Into<&'static str> + Copy + Serialize + std::fmt::Debug,
        T: std::str::FromStr<Err = UnknownState> + PartialEq,
    {
        for state in T::iter() {
            let name: &'static str = state.into();
            assert_eq!(serde_json::to_value(state).unwrap(), name, "{state:?}");
            assert_eq!(name.parse::<T>(), Ok(state));
        }
        assert!("no-such-state".parse::<T>().is_err());
    }

    #[test]
    fn stored_state_names_are_the_api_names_and_read_back() {
        names_agree::<InstanceState>();
        names_agree::<crate::runs::RunState>();
        names_agree::<crate::runs::TaskState>();
    }

    #[test]
    fn many_connections_set_up_a_new_database_at_once() {
        for _ in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("weir.db");
            let openers: Vec<_> = (0..8)
                .map(|_| {
                    let path = path.clone();
                    std::thread::spawn(move || Store::open(&path).map(|_| ()))
                })
                .collect();
            for opener in openers {
                opener.join().unwrap().unwrap();
            }
        }
    }

    fn record(name: &str) -> InstanceRecord {
        InstanceRecord {
            name: name.into(),
            service: ServiceKind::Kafka,
            state: InstanceState::Starting,
            endpoint: String::new(),
            pid: None,
            pid_start_time: None,
            log_path: String::new(),
            dir: "/w".into(),
            params: serde_json::json!({"partitions": 1}),
            uses: vec!["zk-1".into()],
            auto_started_by: None,
            owner_pid: Some(42),
            owner_start_time: Some(7),
            run_id: None,
            backend: "local".into(),
            created_at: 1,
        }
    }

    #[test]
    fn instances_round_trip_and_names_are_unique() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("weir.db")).unwrap();
        store.insert_instance(&record("kafka-1")).unwrap();
        let err = store.insert_instance(&record("kafka-1")).unwrap_err();
        assert!(matches!(err, StoreError::NameTaken(_)), "{err}");
        let mut running = record("kafka-1");
        running.state = InstanceState::Running;
        running.pid = Some(1234);
        running.endpoint = "127.0.0.1:9092".into();
        running.owner_pid = None;
        store.update_instance(&running).unwrap();
        assert_eq!(store.instance("kafka-1").unwrap(), Some(running));
        assert_eq!(store.instances().unwrap().len(), 1);
        store.delete_instance("kafka-1").unwrap();
        assert_eq!(store.instance("kafka-1").unwrap(), None);
    }

    #[test]
    fn cluster_instances_are_recorded_and_forgotten_by_name_or_namespace() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("weir.db")).unwrap();
        let record = |namespace: &str, name: &str| ClusterInstanceRecord {
            namespace: namespace.into(),
            name: name.into(),
            service: ServiceKind::Kafka,
            endpoint: format!("{name}:9092"),
            run_id: None,
            created_at: 1,
        };
        for (namespace, name) in [("weir-r1", "k1"), ("weir-r1", "z1"), ("weir", "k1")] {
            store
                .record_cluster_instance(&record(namespace, name))
                .unwrap();
        }
        assert_eq!(store.cluster_instances().unwrap().len(), 3);
        store.forget_cluster_instances("weir", Some("k1")).unwrap();
        assert_eq!(store.cluster_instances().unwrap().len(), 2);
        store.forget_cluster_instances("weir-r1", None).unwrap();
        assert!(store.cluster_instances().unwrap().is_empty());
    }
}
