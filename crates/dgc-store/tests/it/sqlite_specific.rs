//! SQLite-only behaviour: schema versioning, durability across reopen, WAL mode.

use dgc_store::{SqliteOptions, SqliteStore, Store, StoreError};

#[tokio::test]
async fn refuses_a_newer_schema_and_leaves_it_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dgc.db");
    let s = SqliteStore::open(&SqliteOptions::new(&path)).unwrap();
    s.meta_get_or_insert("x", b"keep".to_vec()).await.unwrap();
    s.close().await;
    {
        let c = rusqlite_free_bump(&path, 999);
        assert_eq!(c, 999);
    }
    let err = SqliteStore::open(&SqliteOptions::new(&path)).unwrap_err();
    assert!(
        matches!(err, StoreError::SchemaTooNew { found: 999, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("newer than this build"));
    // Bring it back and check the data survived the refusal.
    rusqlite_free_bump(&path, dgc_store::sqlite::latest_schema_version());
    let s = SqliteStore::open(&SqliteOptions::new(&path)).unwrap();
    assert_eq!(s.meta_get("x").await.unwrap(), Some(b"keep".to_vec()));
    s.close().await;
}

/// Sets `user_version` through the sqlite3 CLI-free path: a plain SQLite connection via the store's
/// own open (migrations skipped by setting the version directly on the file header).
fn rusqlite_free_bump(path: &std::path::Path, v: i64) -> i64 {
    // The user_version lives at byte offset 60 of the database header (big-endian i32).
    use std::io::{Read, Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    f.seek(SeekFrom::Start(60)).unwrap();
    f.write_all(&(v as i32).to_be_bytes()).unwrap();
    f.sync_all().unwrap();
    let mut b = [0u8; 4];
    f.seek(SeekFrom::Start(60)).unwrap();
    f.read_exact(&mut b).unwrap();
    i64::from(i32::from_be_bytes(b))
}

#[tokio::test]
async fn data_survives_close_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dgc.db");
    let s = SqliteStore::open(&SqliteOptions::new(&path)).unwrap();
    s.meta_get_or_insert("k", b"v".to_vec()).await.unwrap();
    s.close().await;
    assert!(
        !dir.path().join("dgc.db-wal").exists()
            || std::fs::metadata(dir.path().join("dgc.db-wal"))
                .unwrap()
                .len()
                == 0,
        "clean close checkpoints the WAL"
    );
    let s = SqliteStore::open(&SqliteOptions::new(&path)).unwrap();
    assert_eq!(s.meta_get("k").await.unwrap(), Some(b"v".to_vec()));
    s.close().await;
}
