//! Store integration tests: the backend-agnostic conformance suite, instantiated for every backend.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

mod conformance;

use std::sync::Arc;

use dgc_store::{SqliteOptions, SqliteStore, Store};

/// A fresh store of each backend for one test. The temp dir lives as long as the returned guard.
#[allow(missing_debug_implementations)]
pub struct Fixture {
    pub store: Arc<dyn Store>,
    _dir: Option<tempfile::TempDir>,
}

pub fn sqlite() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let store =
        SqliteStore::open(&SqliteOptions::new(dir.path().join("dgc.db"))).expect("open sqlite");
    Fixture {
        store: Arc::new(store),
        _dir: Some(dir),
    }
}

/// Instantiates every conformance test for one backend constructor.
macro_rules! conformance_suite {
    ($backend:ident, $make:path) => {
        mod $backend {
            conformance_suite!(@tests $make;
                keys_round_trip_and_lookup_by_hash,
                key_revocation_cascades_to_children,
                key_listing_by_descendant_and_paging,
                agents_crud_and_paging,
                agent_update_is_serialized_and_validated,
                agent_filter_by_ids_and_skill,
                delete_agent_deletes_its_memories,
                memory_round_trip_links_and_backlinks,
                memory_links_must_stay_within_agent,
                memory_list_newest_first_with_filters_and_cursor,
                memory_search_ranks_and_scopes_to_agent,
                memory_search_hostile_queries,
                memory_delete_removes_from_search,
                bad_cursors_are_rejected,
                concurrent_writes_all_land,
                failed_write_does_not_poison_batch,
                meta_first_writer_wins,
                health_reports_ok,
                close_then_calls_fail_cleanly,
                audit_records_commit_with_their_action_and_verify,
                audit_failure_means_the_action_did_not_happen,
                audit_revocation_records_every_revoked_key
            );
        }
    };
    (@tests $make:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let fx = $make();
                crate::conformance::$name(fx.store.clone()).await;
            }
        )*
    };
}

conformance_suite!(sqlite_backend, crate::sqlite);

mod sqlite_specific;
