//! The store's format: reading it at open, refusing a newer one, migrating an older
//! one in one write transaction, and making the tables of a new file (see the crate
//! docs for the formats). Test support makes stores of older formats.

use super::*;

/// Refuses a store of a format newer than this release's.
pub(crate) fn newer(path: &Path, format: u64, by: &str) -> Result<(), StoreError> {
    if format <= FORMAT {
        return Ok(());
    }
    Err(StoreError::Newer {
        path: path.to_path_buf(),
        format,
        by: by.to_string(),
        ours: env!("CARGO_PKG_VERSION"),
    })
}

/// What is in the file before anything is written to it.
pub(crate) enum Stored {
    Fresh,
    /// Its format and the release that wrote it.
    Format(u64, String),
}

pub(crate) fn read_format(db: &impl ReadableDatabase) -> Result<Stored, StoreError> {
    let txn = db.begin_read().map_err(StoreError::db)?;
    match txn.open_table(META) {
        Ok(meta) => {
            let format = match meta.get("format").map_err(StoreError::db)? {
                None => None,
                Some(v) => Some(
                    <[u8; 8]>::try_from(v.value())
                        .map(u64::from_le_bytes)
                        .map_err(|_| StoreError::Db("corrupt meta record: format is not 8 bytes".into()))?,
                ),
            };
            let by = meta
                .get("written_by")
                .map_err(StoreError::db)?
                .map(|v| String::from_utf8_lossy(v.value()).into_owned())
                .unwrap_or_else(|| "?".into());
            Ok(Stored::Format(format.unwrap_or(0), by))
        }
        Err(redb::TableError::TableDoesNotExist(_)) => {
            // No meta: new, or written before formats were recorded (format 0).
            let old = txn.list_tables().map_err(StoreError::db)?.next().is_some();
            Ok(if old {
                Stored::Format(0, "0.1.0 or earlier".into())
            } else {
                Stored::Fresh
            })
        }
        Err(e) => Err(StoreError::db(e)),
    }
}

pub(crate) fn stamp(meta: &mut redb::Table<&str, &[u8]>) -> Result<(), redb::StorageError> {
    meta.insert("format", FORMAT.to_le_bytes().as_slice())?;
    meta.insert("written_by", env!("CARGO_PKG_VERSION").as_bytes())?;
    Ok(())
}

/// Brings a store of an older format to [`FORMAT`], in one transaction.
pub(crate) fn migrate(db: &Database, from: u64) -> Result<(), StoreError> {
    let t0 = std::time::Instant::now();
    tracing::info!("migrating the store from format {from} to {FORMAT}");
    let mut txn = db.begin_write().map_err(StoreError::db)?;
    txn.set_durability(Durability::Immediate).map_err(StoreError::db)?;
    let mut rows = 0u64;
    if from == 0 {
        // Format 0 rows are today's version-1 layouts without their version byte.
        rows += prefix_rows(&txn, APPS)?;
        rows += prefix_rows(&txn, SESSIONS)?;
        rows += prefix_rows(&txn, TASKS)?;
        rows += prefix_rows(&txn, HISTORY)?;
        rows += prefix_rows(&txn, TASK_HISTORY)?;
    }
    // Format 2 keeps a count of the bytes stored: counted once here.
    let bytes = count_bytes(&txn)?;
    {
        let mut meta = txn.open_table(META).map_err(StoreError::db)?;
        stamp(&mut meta).map_err(StoreError::db)?;
        meta.insert("stored_bytes", bytes.to_le_bytes().as_slice())
            .map_err(StoreError::db)?;
    }
    txn.commit().map_err(StoreError::db)?;
    init_tables(db)?;
    tracing::info!("store migrated to format {FORMAT}: {rows} rows in {} ms", t0.elapsed().as_millis());
    Ok(())
}

/// Puts the version-1 byte in front of every row of a table.
pub(crate) fn prefix_rows<K: redb::Key + 'static>(txn: &redb::WriteTransaction, def: TableDefinition<K, &[u8]>) -> Result<u64, StoreError> {
    rewrite_rows(txn, def, |v, out| {
        out.push(1);
        out.extend_from_slice(v);
    })
}

/// Rewrites every row's value of a table through `f`: copied into a new table, which
/// then takes the old one's name (redb has no in-place update while iterating).
pub(crate) fn rewrite_rows<K: redb::Key + 'static>(
    txn: &redb::WriteTransaction,
    def: TableDefinition<K, &[u8]>,
    f: impl Fn(&[u8], &mut Vec<u8>),
) -> Result<u64, StoreError> {
    let tmp_name = format!("{}.rewriting", def.name());
    let tmp: TableDefinition<K, &[u8]> = TableDefinition::new(&tmp_name);
    let mut n = 0;
    {
        let old = txn.open_table(def).map_err(StoreError::db)?;
        let mut new = txn.open_table(tmp).map_err(StoreError::db)?;
        let mut buf = Vec::new();
        for row in old.iter().map_err(StoreError::db)? {
            let (k, v) = row.map_err(StoreError::db)?;
            buf.clear();
            f(v.value(), &mut buf);
            new.insert(k.value(), buf.as_slice()).map_err(StoreError::db)?;
            n += 1;
        }
    }
    txn.delete_table(def).map_err(StoreError::db)?;
    txn.rename_table(tmp, def).map_err(StoreError::db)?;
    Ok(n)
}

/// Every row's bytes, as `row_bytes` counts them.
pub(crate) fn count_bytes(txn: &redb::WriteTransaction) -> Result<u64, StoreError> {
    fn sum<K: redb::Key + 'static, V: redb::Value + 'static>(
        txn: &redb::WriteTransaction,
        def: TableDefinition<K, V>,
        f: impl Fn(&K::SelfType<'_>, &V::SelfType<'_>) -> u64,
    ) -> Result<u64, StoreError> {
        let t = txn.open_table(def).map_err(StoreError::db)?;
        let mut n = 0;
        for row in t.iter().map_err(StoreError::db)? {
            let (k, v) = row.map_err(StoreError::db)?;
            n += f(&k.value(), &v.value());
        }
        Ok(n)
    }
    Ok(sum(txn, APPS, |k, v| row_bytes(k.len(), 0, v.len()))?
        + sum(txn, COUNTERS, |k, _| row_bytes(k.len(), 0, 8))?
        + sum(txn, SESSIONS, |k, v| row_bytes(k.0.len(), 1, v.len()))?
        + sum(txn, TASKS, |k, v| row_bytes(k.0.len(), 2, v.len()))?
        + sum(txn, HISTORY, |k, v| row_bytes(k.1.len(), 2, v.len()))?
        + sum(txn, TASK_HISTORY, |k, v| row_bytes(k.0.len(), 2, v.len()))?
        + sum(txn, REQUESTS, |k, v| row_bytes(k.0.len(), 3, v.len()))?)
}

pub(crate) fn read_stored(db: &Database) -> Result<u64, StoreError> {
    let txn = db.begin_read().map_err(StoreError::db)?;
    let meta = txn.open_table(META).map_err(StoreError::db)?;
    let v = meta.get("stored_bytes").map_err(StoreError::db)?;
    v.and_then(|v| <[u8; 8]>::try_from(v.value()).ok())
        .map(u64::from_le_bytes)
        .ok_or_else(|| StoreError::Db("corrupt meta record: stored_bytes missing or not 8 bytes".into()))
}

pub(crate) fn init_tables(db: &Database) -> Result<(), StoreError> {
    let txn = db.begin_write().map_err(StoreError::db)?;
    {
        let mut meta = txn.open_table(META).map_err(StoreError::db)?;
        if meta.get("format").map_err(StoreError::db)?.is_none() {
            stamp(&mut meta).map_err(StoreError::db)?;
            meta.insert("stored_bytes", 0u64.to_le_bytes().as_slice()).map_err(StoreError::db)?;
        }
        txn.open_table(APPS).map_err(StoreError::db)?;
        txn.open_table(COUNTERS).map_err(StoreError::db)?;
        txn.open_table(SESSIONS).map_err(StoreError::db)?;
        txn.open_table(TASKS).map_err(StoreError::db)?;
        txn.open_table(HISTORY).map_err(StoreError::db)?;
        txn.open_table(TASK_HISTORY).map_err(StoreError::db)?;
        txn.open_table(REQUESTS).map_err(StoreError::db)?;
    }
    txn.commit().map_err(StoreError::db)
}

/// Test support: turns a format-1 store back into format 0 (rows without their version
/// byte, no `meta`), as the release before formats wrote it. Upgrade tests use it to
/// make old stores of any size with today's agent.
#[doc(hidden)]
pub fn downgrade_to_format0(path: &Path) -> Result<(), StoreError> {
    let db = Database::create(path).map_err(StoreError::db)?;
    let txn = db.begin_write().map_err(StoreError::db)?;
    let strip = |v: &[u8], out: &mut Vec<u8>| out.extend_from_slice(&v[1..]);
    rewrite_rows(&txn, APPS, strip)?;
    rewrite_rows(&txn, SESSIONS, strip)?;
    rewrite_rows(&txn, TASKS, strip)?;
    rewrite_rows(&txn, HISTORY, strip)?;
    rewrite_rows(&txn, TASK_HISTORY, strip)?;
    txn.delete_table(META).map_err(StoreError::db)?;
    txn.commit().map_err(StoreError::db)
}

/// Test support: marks a store as written by a later release (format `format`).
#[doc(hidden)]
pub fn stamp_format(path: &Path, format: u64, by: &str) -> Result<(), StoreError> {
    let db = Database::create(path).map_err(StoreError::db)?;
    let txn = db.begin_write().map_err(StoreError::db)?;
    {
        let mut meta = txn.open_table(META).map_err(StoreError::db)?;
        meta.insert("format", format.to_le_bytes().as_slice()).map_err(StoreError::db)?;
        meta.insert("written_by", by.as_bytes()).map_err(StoreError::db)?;
    }
    txn.commit().map_err(StoreError::db)
}
