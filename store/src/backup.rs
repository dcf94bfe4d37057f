//! A logical copy of the store, the same on every backend: each of the platform's tables
//! as its columns and rows, read in one transaction (one consistent snapshot), and
//! written back into an empty store of the same schema. Values stay as stored: config
//! values sealed, tokens hashed.

use crate::{Store, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::Row;

/// Every table of the platform's, parents before the tables that refer to them (a test
/// holds this list to the migrations).
pub const TABLES: [&str; 23] = [
    "namespaces",
    "accounts",
    "tokens",
    "service_status",
    "namespace_status",
    "reconcile_history",
    "config_values",
    "kv_records",
    "quotas",
    "links",
    "previews",
    "signups",
    "outbox",
    "billing",
    "pending_signups",
    "billing_events",
    "namespace_deletions",
    "namespace_uids",
    "api_keys",
    "domains",
    "invites",
    "preview_envs",
    "service_calls",
];

/// The store's content at one instant.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Dump {
    /// The schema it was read at: the newest migration applied.
    pub schema: i64,
    pub tables: Vec<TableDump>,
}

/// One table: its columns (name and whether it holds integers) and rows.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TableDump {
    pub name: String,
    pub columns: Vec<String>,
    pub integers: Vec<bool>,
    pub rows: Vec<Vec<Value>>,
}

impl Dump {
    /// The rows of `table`, if it was read.
    pub fn rows(&self, table: &str) -> usize {
        self.tables
            .iter()
            .find(|t| t.name == table)
            .map_or(0, |t| t.rows.len())
    }
}

impl Store {
    /// The newest migration applied to this store.
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        let v: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations")
            .fetch_one(&self.pool)
            .await?;
        Ok(v.unwrap_or(0))
    }

    /// Every table's columns and rows, in one read transaction.
    pub async fn dump(&self) -> Result<Dump, StoreError> {
        let mut tx = self.pool.begin().await?;
        if self.backend == "postgres" {
            // One snapshot for every table read below.
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .execute(&mut *tx)
                .await?;
        }
        let schema: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations")
            .fetch_one(&mut *tx)
            .await?;
        let mut tables = Vec::new();
        for table in TABLES {
            let columns = self.columns(&mut tx, table).await?;
            let list = columns
                .iter()
                .map(|(c, _)| c.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            // The table and column names come from the constant above and the schema.
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {list} FROM {table}")))
                .fetch_all(&mut *tx)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                let mut values = Vec::with_capacity(columns.len());
                for (i, (_, integer)) in columns.iter().enumerate() {
                    values.push(if *integer {
                        row.try_get::<Option<i64>, _>(i)?
                            .map_or(Value::Null, Value::from)
                    } else {
                        row.try_get::<Option<String>, _>(i)?
                            .map_or(Value::Null, Value::from)
                    });
                }
                out.push(values);
            }
            tables.push(TableDump {
                name: table.to_owned(),
                integers: columns.iter().map(|(_, i)| *i).collect(),
                columns: columns.into_iter().map(|(c, _)| c).collect(),
                rows: out,
            });
        }
        tx.commit().await?;
        Ok(Dump {
            schema: schema.unwrap_or(0),
            tables,
        })
    }

    /// A table's columns, with whether each holds integers, from the schema itself.
    async fn columns(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        table: &str,
    ) -> Result<Vec<(String, bool)>, StoreError> {
        let rows = if self.backend == "postgres" {
            sqlx::query(
                "SELECT column_name::text AS name, data_type::text AS type FROM information_schema.columns \
                 WHERE table_name = $1 AND table_schema = current_schema() ORDER BY ordinal_position",
            )
            .bind(table)
            .fetch_all(&mut **tx)
            .await?
        } else {
            sqlx::query("SELECT name, type FROM pragma_table_info($1) ORDER BY cid")
                .bind(table)
                .fetch_all(&mut **tx)
                .await?
        };
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let name: String = r.try_get("name")?;
            let kind: String = r.try_get("type")?;
            let kind = kind.to_ascii_lowercase();
            out.push((name, kind.contains("int")));
        }
        if out.is_empty() {
            return Err(StoreError::Corrupt(format!("table {table} is missing")));
        }
        Ok(out)
    }

    /// Whether nothing was ever written here: no account, namespace or sign-up.
    pub async fn is_empty(&self) -> Result<bool, StoreError> {
        for table in ["accounts", "namespaces", "signups", "pending_signups"] {
            let n: i64 =
                sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
                    .fetch_one(&self.pool)
                    .await?;
            if n > 0 {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Writes `dump` into this store, which must be empty and at the dump's schema; all
    /// of it or (on any error) nothing.
    pub async fn load(&self, dump: &Dump) -> Result<(), StoreError> {
        let schema = self.schema_version().await?;
        if dump.schema != schema {
            return Err(StoreError::Unusable(format!(
                "the backup is of store schema {}, this micro's is {schema}: restore it with the micro that made it, then upgrade",
                dump.schema
            )));
        }
        if !self.is_empty().await? {
            return Err(StoreError::Unusable(
                "the store is not empty: restore into a new database".into(),
            ));
        }
        let mut tx = self.pool.begin().await?;
        for table in &dump.tables {
            if !TABLES.contains(&table.name.as_str()) {
                return Err(StoreError::Corrupt(format!(
                    "the backup has a table {:?} no micro of this schema has",
                    table.name
                )));
            }
            if table.rows.is_empty() {
                continue;
            }
            let known = self.columns(&mut tx, &table.name).await?;
            if let Some(c) = table
                .columns
                .iter()
                .find(|c| !known.iter().any(|(k, _)| k == *c))
            {
                return Err(StoreError::Corrupt(format!(
                    "the backup's {} has a column {c:?} this schema has not",
                    table.name
                )));
            }
            let marks = (1..=table.columns.len())
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", ");
            // Names checked against the schema just above.
            let sql = format!(
                "INSERT INTO {} ({}) VALUES ({marks})",
                table.name,
                table.columns.join(", ")
            );
            for row in &table.rows {
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.clone()));
                for (value, integer) in row.iter().zip(&table.integers) {
                    q = match (value, integer) {
                        (Value::Number(n), _) => q.bind(n.as_i64()),
                        (Value::String(s), _) => q.bind(s.clone()),
                        (_, true) => q.bind(None::<i64>),
                        (_, false) => q.bind(None::<String>),
                    };
                }
                q.execute(&mut *tx).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }
}
