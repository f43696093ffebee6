//! The conformance suite: behaviour every `Store` backend must have. Each function takes a fresh,
//! empty store.

use std::sync::Arc;

use dgc_store::{
    AgentFilter, AgentRecord, KeyFilter, KeyRecord, MemoryFilter, NewMemory, SearchTerms, Store,
    StoreError,
};
use dgc_types::agent::{Agent, AgentConfig, AgentStatus};
use dgc_types::key::KeyInfo;
use dgc_types::memory::MemoryKind;
use dgc_types::{AgentId, CapabilitySet, FieldError, KeyId, MemoryId};
use time::OffsetDateTime;

type S = Arc<dyn Store>;

fn now() -> OffsetDateTime {
    // Millisecond precision, as stored.
    let t = OffsetDateTime::now_utc();
    t.replace_nanosecond(t.millisecond() as u32 * 1_000_000)
        .unwrap()
}

fn agent(name: &str) -> AgentRecord {
    let t = now();
    AgentRecord {
        agent: Agent {
            id: AgentId::generate(),
            name: name.into(),
            description: None,
            config: AgentConfig::default(),
            status: AgentStatus::Active,
            public_key: "cHVi".into(),
            created_at: t,
            updated_at: t,
        },
        secret_key_enc: vec![1, 2, 3],
    }
}

fn key(caps: &str, parent: Option<&KeyId>, hash_byte: u8) -> KeyRecord {
    KeyRecord {
        info: KeyInfo {
            id: KeyId::generate(),
            name: Some(format!("k{hash_byte}")),
            capabilities: CapabilitySet::parse_list(caps).unwrap(),
            agent_ids: None,
            parent_id: parent.cloned(),
            created_at: now(),
            expires_at: None,
            revoked_at: None,
        },
        secret_hash: [hash_byte; 32],
    }
}

fn mem(agent: &AgentId, content: &str) -> NewMemory {
    NewMemory {
        id: MemoryId::generate(),
        agent_id: agent.clone(),
        kind: MemoryKind::Episodic,
        content: content.into(),
        tags: vec![],
        metadata: Default::default(),
        links: vec![],
        created_at: now(),
    }
}

async fn new_agent(s: &S, name: &str) -> AgentId {
    let a = agent(name);
    let id = a.agent.id.clone();
    s.insert_agent(a, vec![]).await.unwrap();
    id
}

pub async fn keys_round_trip_and_lookup_by_hash(s: S) {
    let k = key("memory.*,agents.read", None, 7);
    s.insert_key(k.clone(), vec![]).await.unwrap();
    assert_eq!(s.key_by_hash([7; 32]).await.unwrap(), Some(k.clone()));
    assert_eq!(s.get_key(&k.info.id).await.unwrap(), Some(k.clone()));
    assert_eq!(s.key_by_hash([8; 32]).await.unwrap(), None);
    // The same secret hash twice is a conflict, and the first key is untouched.
    let dup = key("admin", None, 7);
    assert!(matches!(
        s.insert_key(dup, vec![]).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(s.key_by_hash([7; 32]).await.unwrap(), Some(k));
}

pub async fn key_revocation_cascades_to_children(s: S) {
    let root = key("*", None, 1);
    let child = key("memory.*", Some(&root.info.id), 2);
    let grandchild = key("memory.read", Some(&child.info.id), 3);
    let other = key("*", None, 4);
    for k in [&root, &child, &grandchild, &other] {
        s.insert_key(k.clone(), vec![]).await.unwrap();
    }
    assert!(
        s.key_descends_from(&grandchild.info.id, &root.info.id)
            .await
            .unwrap()
    );
    assert!(
        s.key_descends_from(&child.info.id, &child.info.id)
            .await
            .unwrap()
    );
    assert!(
        !s.key_descends_from(&root.info.id, &child.info.id)
            .await
            .unwrap()
    );
    assert!(
        !s.key_descends_from(&other.info.id, &root.info.id)
            .await
            .unwrap()
    );

    let revoked = s
        .revoke_key(&child.info.id, now(), Box::new(|_| vec![]))
        .await
        .unwrap();
    assert_eq!(revoked.len(), 2);
    assert!(
        s.get_key(&grandchild.info.id)
            .await
            .unwrap()
            .unwrap()
            .info
            .revoked_at
            .is_some()
    );
    assert!(
        s.get_key(&root.info.id)
            .await
            .unwrap()
            .unwrap()
            .info
            .revoked_at
            .is_none()
    );
    // Revoking again changes nothing; unknown ids are NotFound.
    assert!(
        s.revoke_key(&child.info.id, now(), Box::new(|_| vec![]))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        s.revoke_key(&KeyId::generate(), now(), Box::new(|_| vec![]))
            .await,
        Err(StoreError::NotFound)
    ));
}

pub async fn key_listing_by_descendant_and_paging(s: S) {
    let root = key("*", None, 1);
    s.insert_key(root.clone(), vec![]).await.unwrap();
    let mut children = vec![];
    for i in 0..5u8 {
        let c = key("memory.read", Some(&root.info.id), 10 + i);
        s.insert_key(c.clone(), vec![]).await.unwrap();
        children.push(c);
    }
    s.insert_key(key("*", None, 99), vec![]).await.unwrap();
    let all = s.list_keys(&KeyFilter::default(), None, 100).await.unwrap();
    assert_eq!(all.items.len(), 7);
    let mine = s
        .list_keys(
            &KeyFilter {
                descendants_of: Some(children[0].info.id.clone()),
            },
            None,
            100,
        )
        .await
        .unwrap();
    assert_eq!(mine.items.len(), 1);
    let mut seen = vec![];
    let mut after = None;
    loop {
        let p = s
            .list_keys(
                &KeyFilter {
                    descendants_of: Some(root.info.id.clone()),
                },
                after.as_deref(),
                2,
            )
            .await
            .unwrap();
        assert!(p.items.len() <= 2);
        seen.extend(p.items.into_iter().map(|k| k.id));
        match p.next_cursor {
            Some(c) => after = Some(c),
            None => break,
        }
    }
    assert_eq!(seen.len(), 6, "root and its five children, each once");
}

pub async fn agents_crud_and_paging(s: S) {
    let mut ids = vec![];
    for i in 0..7 {
        ids.push(new_agent(&s, &format!("a{i}")).await);
    }
    let got = s.get_agent(&ids[3]).await.unwrap().unwrap();
    assert_eq!(got.agent.name, "a3");
    assert_eq!(got.secret_key_enc, vec![1, 2, 3]);
    assert!(s.get_agent(&AgentId::generate()).await.unwrap().is_none());

    let mut seen = vec![];
    let mut after = None;
    loop {
        let p = s
            .list_agents(&AgentFilter::default(), after.as_deref(), 3)
            .await
            .unwrap();
        seen.extend(p.items.into_iter().map(|a| a.id));
        match p.next_cursor {
            Some(c) => after = Some(c),
            None => break,
        }
    }
    assert_eq!(seen, ids, "creation order, no gaps or repeats");

    let dup = AgentRecord {
        agent: got.agent.clone(),
        secret_key_enc: vec![],
    };
    assert!(matches!(
        s.insert_agent(dup, vec![]).await,
        Err(StoreError::Conflict(_))
    ));
}

pub async fn agent_update_is_serialized_and_validated(s: S) {
    let id = new_agent(&s, "before").await;
    // Many concurrent edits each append to the description: none may be lost.
    let mut tasks = vec![];
    for i in 0..20 {
        let s = s.clone();
        let id = id.clone();
        tasks.push(tokio::spawn(async move {
            s.update_agent(
                &id,
                now(),
                Box::new(move |mut spec| {
                    let d = spec.description.unwrap_or_default();
                    spec.description = Some(format!("{d}[{i}]"));
                    Ok(spec)
                }),
            )
            .await
            .unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let a = s.get_agent(&id).await.unwrap().unwrap().agent;
    assert_eq!(a.description.unwrap().matches('[').count(), 20);

    let err = s
        .update_agent(
            &id,
            now(),
            Box::new(|_| Err(FieldError::new("name", "bad"))),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(f) if f.field == "name"));
    assert_eq!(
        s.get_agent(&id).await.unwrap().unwrap().agent.name,
        "before"
    );
    assert!(matches!(
        s.update_agent(&AgentId::generate(), now(), Box::new(Ok))
            .await,
        Err(StoreError::NotFound)
    ));
}

pub async fn agent_filter_by_ids_and_skill(s: S) {
    let a = new_agent(&s, "a").await;
    let b = new_agent(&s, "b").await;
    let mut rec = agent("c");
    rec.agent.config.skills = vec!["research".into()];
    let c = rec.agent.id.clone();
    s.insert_agent(rec, vec![]).await.unwrap();
    let only = s
        .list_agents(
            &AgentFilter {
                ids: Some(vec![a.clone(), c.clone()]),
                skill: None,
            },
            None,
            10,
        )
        .await
        .unwrap();
    assert_eq!(
        only.items.iter().map(|x| x.id.clone()).collect::<Vec<_>>(),
        vec![a, c.clone()]
    );
    let skilled = s
        .list_agents(
            &AgentFilter {
                ids: None,
                skill: Some("research".into()),
            },
            None,
            10,
        )
        .await
        .unwrap();
    assert_eq!(skilled.items.len(), 1);
    assert_eq!(skilled.items[0].id, c);
    let none = s
        .list_agents(
            &AgentFilter {
                ids: Some(vec![AgentId::generate()]),
                skill: None,
            },
            None,
            10,
        )
        .await
        .unwrap();
    assert!(none.items.is_empty());
    let _ = b;
}

pub async fn delete_agent_deletes_its_memories(s: S) {
    let a = new_agent(&s, "a").await;
    let b = new_agent(&s, "b").await;
    for i in 0..5 {
        s.insert_memory(mem(&a, &format!("alpha note {i}")), vec![])
            .await
            .unwrap();
    }
    s.insert_memory(mem(&b, "alpha of b"), vec![])
        .await
        .unwrap();
    assert_eq!(s.count_memories().await.unwrap(), 6);
    assert_eq!(s.delete_agent(&a, vec![]).await.unwrap(), 5);
    assert_eq!(s.count_memories().await.unwrap(), 1);
    assert!(s.get_agent(&a).await.unwrap().is_none());
    assert!(matches!(
        s.delete_agent(&a, vec![]).await,
        Err(StoreError::NotFound)
    ));
    // b's memories still searchable.
    let r = s
        .search_memories(
            &b,
            &SearchTerms::parse("alpha").unwrap(),
            &MemoryFilter::default(),
            None,
            10,
        )
        .await
        .unwrap();
    assert_eq!(r.items.len(), 1);
}

pub async fn memory_round_trip_links_and_backlinks(s: S) {
    let a = new_agent(&s, "a").await;
    let mut m1 = mem(&a, "the deploy failed at 3am");
    m1.tags = vec!["ops".into(), "incident".into()];
    m1.metadata
        .insert("source".into(), serde_json::json!({"pager": true}));
    let m1 = s.insert_memory(m1, vec![]).await.unwrap();
    let m2 = s
        .insert_memory(mem(&a, "rollback fixed it"), vec![])
        .await
        .unwrap();
    let mut r = mem(&a, "deploys at night are risky");
    r.kind = MemoryKind::Reflection;
    r.links = vec![m1.id.clone(), m2.id.clone()];
    let r = s.insert_memory(r, vec![]).await.unwrap();

    let got = s.get_memory(&a, &m1.id).await.unwrap().unwrap();
    assert_eq!(got.memory, m1);
    assert_eq!(got.linked_from, vec![r.id.clone()]);
    let got_r = s.get_memory(&a, &r.id).await.unwrap().unwrap();
    assert_eq!(got_r.memory.links, vec![m1.id.clone(), m2.id.clone()]);
    assert_eq!(got_r.memory.kind, MemoryKind::Reflection);
    // Another agent cannot see it.
    let b = new_agent(&s, "b").await;
    assert!(s.get_memory(&b, &m1.id).await.unwrap().is_none());
    // Unknown agent: NotFound on insert.
    assert!(matches!(
        s.insert_memory(mem(&AgentId::generate(), "x"), vec![])
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.get_memory(&AgentId::generate(), &m1.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.delete_memory(&AgentId::generate(), &m1.id, vec![]).await,
        Err(StoreError::NotFound)
    ));
    assert!(
        s.get_memory(&a, &MemoryId::generate())
            .await
            .unwrap()
            .is_none()
    );
}

pub async fn memory_links_must_stay_within_agent(s: S) {
    let a = new_agent(&s, "a").await;
    let b = new_agent(&s, "b").await;
    let mb = s
        .insert_memory(mem(&b, "b's secret"), vec![])
        .await
        .unwrap();
    let before = s.count_memories().await.unwrap();
    let mut bad = mem(&a, "points at b");
    bad.links = vec![mb.id.clone()];
    let err = s.insert_memory(bad, vec![]).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Invalid(f) if f.field == "links[0]"),
        "{err:?}"
    );
    let mut dangling = mem(&a, "points nowhere");
    dangling.links = vec![MemoryId::generate()];
    assert!(matches!(
        s.insert_memory(dangling, vec![]).await,
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(
        s.count_memories().await.unwrap(),
        before,
        "nothing half-written"
    );
}

pub async fn memory_list_newest_first_with_filters_and_cursor(s: S) {
    let a = new_agent(&s, "a").await;
    let mut ids = vec![];
    for i in 0..9 {
        let mut m = mem(&a, &format!("note {i}"));
        m.kind = if i % 3 == 0 {
            MemoryKind::Semantic
        } else {
            MemoryKind::Episodic
        };
        if i % 2 == 0 {
            m.tags = vec!["even".into()];
        }
        ids.push(s.insert_memory(m, vec![]).await.unwrap().id);
    }
    let mut seen = vec![];
    let mut after = None;
    loop {
        let p = s
            .list_memories(&a, &MemoryFilter::default(), after.as_deref(), 4)
            .await
            .unwrap();
        seen.extend(p.items.into_iter().map(|m| m.id));
        match p.next_cursor {
            Some(c) => after = Some(c),
            None => break,
        }
    }
    let mut expected = ids.clone();
    expected.reverse();
    assert_eq!(seen, expected, "newest first, every memory once");

    let sem = s
        .list_memories(
            &a,
            &MemoryFilter {
                kind: Some(MemoryKind::Semantic),
                tag: None,
            },
            None,
            50,
        )
        .await
        .unwrap();
    assert_eq!(sem.items.len(), 3);
    let even = s
        .list_memories(
            &a,
            &MemoryFilter {
                kind: None,
                tag: Some("even".into()),
            },
            None,
            50,
        )
        .await
        .unwrap();
    assert_eq!(even.items.len(), 5);
    let both = s
        .list_memories(
            &a,
            &MemoryFilter {
                kind: Some(MemoryKind::Semantic),
                tag: Some("even".into()),
            },
            None,
            50,
        )
        .await
        .unwrap();
    assert_eq!(both.items.len(), 2, "i = 0 and 6");
    assert!(matches!(
        s.list_memories(&AgentId::generate(), &MemoryFilter::default(), None, 5)
            .await,
        Err(StoreError::NotFound)
    ));
}

pub async fn memory_search_ranks_and_scopes_to_agent(s: S) {
    let a = new_agent(&s, "a").await;
    let b = new_agent(&s, "b").await;
    s.insert_memory(
        mem(&a, "kubernetes kubernetes kubernetes cluster upgrade"),
        vec![],
    )
    .await
    .unwrap();
    s.insert_memory(
        mem(
            &a,
            "a long note that mentions kubernetes once among many other words here",
        ),
        vec![],
    )
    .await
    .unwrap();
    s.insert_memory(mem(&a, "nothing relevant"), vec![])
        .await
        .unwrap();
    s.insert_memory(mem(&b, "kubernetes belongs to b"), vec![])
        .await
        .unwrap();
    let mut tagged = mem(&a, "kubernetes tagged semantic");
    tagged.kind = MemoryKind::Semantic;
    tagged.tags = vec!["k8s".into()];
    s.insert_memory(tagged, vec![]).await.unwrap();

    let r = s
        .search_memories(
            &a,
            &SearchTerms::parse("Kubernetes").unwrap(),
            &MemoryFilter::default(),
            None,
            10,
        )
        .await
        .unwrap();
    assert_eq!(r.items.len(), 3, "only a's matching memories");
    assert!(r.items.iter().all(|m| m.agent_id == a));
    assert!(
        r.items[0].content.starts_with("kubernetes kubernetes"),
        "highest tf first"
    );
    let scores: Vec<f64> = r.items.iter().map(|m| m.score.unwrap()).collect();
    assert!(
        scores.windows(2).all(|w| w[0] >= w[1]),
        "descending scores: {scores:?}"
    );

    let filtered = s
        .search_memories(
            &a,
            &SearchTerms::parse("kubernetes").unwrap(),
            &MemoryFilter {
                kind: Some(MemoryKind::Semantic),
                tag: Some("k8s".into()),
            },
            None,
            10,
        )
        .await
        .unwrap();
    assert_eq!(filtered.items.len(), 1);

    // Two terms: OR semantics, documents with both rank first.
    s.insert_memory(mem(&a, "cluster upgrade plan"), vec![])
        .await
        .unwrap();
    let two = s
        .search_memories(
            &a,
            &SearchTerms::parse("cluster upgrade").unwrap(),
            &MemoryFilter::default(),
            None,
            10,
        )
        .await
        .unwrap();
    assert_eq!(two.items.len(), 2);

    // Paging through search results.
    let p1 = s
        .search_memories(
            &a,
            &SearchTerms::parse("kubernetes").unwrap(),
            &MemoryFilter::default(),
            None,
            2,
        )
        .await
        .unwrap();
    assert_eq!(p1.items.len(), 2);
    let p2 = s
        .search_memories(
            &a,
            &SearchTerms::parse("kubernetes").unwrap(),
            &MemoryFilter::default(),
            p1.next_cursor.as_deref(),
            2,
        )
        .await
        .unwrap();
    assert_eq!(p2.items.len(), 1);
    assert!(p2.next_cursor.is_none());
}

pub async fn memory_search_hostile_queries(s: S) {
    let a = new_agent(&s, "a").await;
    s.insert_memory(mem(&a, "foo NEAR bar OR baz \"quoted\" it's"), vec![])
        .await
        .unwrap();
    for q in [
        "\"foo OR",
        "NEAR(",
        "foo*",
        "-foo",
        "it's",
        "'; DROP TABLE memories;--",
        "agent:x",
        "{content}: foo",
        "foo AND",
        "^foo",
    ] {
        let terms = SearchTerms::parse(q).unwrap();
        let r = s
            .search_memories(&a, &terms, &MemoryFilter::default(), None, 10)
            .await;
        assert!(r.is_ok(), "{q:?}: {r:?}");
    }
    // Column-filter injection cannot reach another agent's rows.
    let b = new_agent(&s, "b").await;
    let r = s
        .search_memories(
            &b,
            &SearchTerms::parse("agent ag1 foo").unwrap(),
            &MemoryFilter::default(),
            None,
            10,
        )
        .await
        .unwrap();
    assert!(r.items.is_empty());
    assert_eq!(s.count_memories().await.unwrap(), 1);
}

pub async fn memory_delete_removes_from_search(s: S) {
    let a = new_agent(&s, "a").await;
    let m = s
        .insert_memory(mem(&a, "ephemeral zebra"), vec![])
        .await
        .unwrap();
    let keep = s
        .insert_memory(mem(&a, "lasting zebra"), vec![])
        .await
        .unwrap();
    assert!(s.delete_memory(&a, &m.id, vec![]).await.unwrap());
    assert!(!s.delete_memory(&a, &m.id, vec![]).await.unwrap());
    let r = s
        .search_memories(
            &a,
            &SearchTerms::parse("zebra").unwrap(),
            &MemoryFilter::default(),
            None,
            10,
        )
        .await
        .unwrap();
    assert_eq!(
        r.items.iter().map(|m| m.id.clone()).collect::<Vec<_>>(),
        vec![keep.id]
    );
    let b = new_agent(&s, "b").await;
    assert!(
        !s.delete_memory(&b, &r.items[0].id, vec![]).await.unwrap(),
        "other agent cannot delete it"
    );
}

pub async fn bad_cursors_are_rejected(s: S) {
    let a = new_agent(&s, "a").await;
    let agents_cursor = {
        new_agent(&s, "b").await;
        s.list_agents(&AgentFilter::default(), None, 1)
            .await
            .unwrap()
            .next_cursor
            .unwrap()
    };
    for bad in ["zzz", "", "%%%", agents_cursor.as_str()] {
        assert!(matches!(
            s.list_memories(&a, &MemoryFilter::default(), Some(bad), 5)
                .await,
            Err(StoreError::InvalidCursor)
        ));
    }
    assert!(matches!(
        s.list_agents(&AgentFilter::default(), Some("nope"), 5)
            .await,
        Err(StoreError::InvalidCursor)
    ));
    assert!(matches!(
        s.list_keys(&KeyFilter::default(), Some("nope"), 5).await,
        Err(StoreError::InvalidCursor)
    ));
}

pub async fn concurrent_writes_all_land(s: S) {
    let a = new_agent(&s, "a").await;
    let mut tasks = vec![];
    for t in 0..16 {
        let s = s.clone();
        let a = a.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..25 {
                s.insert_memory(mem(&a, &format!("writer {t} item {i}")), vec![])
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(s.count_memories().await.unwrap(), 400);
}

pub async fn failed_write_does_not_poison_batch(s: S) {
    let a = new_agent(&s, "a").await;
    let mut tasks = vec![];
    for i in 0..50 {
        let s = s.clone();
        let a = a.clone();
        tasks.push(tokio::spawn(async move {
            let mut m = mem(&a, &format!("m{i}"));
            if i % 5 == 0 {
                m.links = vec![MemoryId::generate()]; // fails
            }
            s.insert_memory(m, vec![]).await.is_ok()
        }));
    }
    let mut ok = 0;
    for t in tasks {
        ok += u64::from(t.await.unwrap());
    }
    assert_eq!(ok, 40);
    assert_eq!(s.count_memories().await.unwrap(), 40);
}

pub async fn meta_first_writer_wins(s: S) {
    assert_eq!(s.meta_get("identity").await.unwrap(), None);
    assert_eq!(
        s.meta_get_or_insert("identity", b"one".to_vec())
            .await
            .unwrap(),
        b"one"
    );
    assert_eq!(
        s.meta_get_or_insert("identity", b"two".to_vec())
            .await
            .unwrap(),
        b"one"
    );
    assert_eq!(s.meta_get("identity").await.unwrap(), Some(b"one".to_vec()));
}

pub async fn health_reports_ok(s: S) {
    let h = s.health().await;
    assert_eq!(h.writable, Ok(()));
    assert_eq!(h.migrations, Ok(()));
}

pub async fn close_then_calls_fail_cleanly(s: S) {
    let a = new_agent(&s, "a").await;
    s.close().await;
    assert!(matches!(
        s.insert_memory(mem(&a, "late"), vec![]).await,
        Err(StoreError::Closed)
    ));
    assert!(s.health().await.writable.is_err());
}

// --- audit log ---

fn auditor(origin: &str) -> dgc_store::Auditor {
    let name = dgc_audit::KeyName::new(origin).unwrap();
    dgc_store::Auditor {
        log: dgc_audit::Log::new(name.clone()),
        signer: dgc_audit::Signer::generate(name),
    }
}

fn memory_write(m: &NewMemory) -> dgc_store::AuditRecord {
    dgc_store::AuditRecord::new(dgc_audit::Entry::MemoryWrite(
        dgc_audit::entry::MemoryWrite {
            memory_id: m.id.to_string(),
            agent_id: m.agent_id.to_string(),
            op: dgc_audit::entry::MemoryOp::Create,
            kind: Some(m.kind.as_str().into()),
            content_sha256: Some(dgc_audit::hash::sha256(m.content.as_bytes())),
            request_id: None,
        },
    ))
}

pub async fn audit_records_commit_with_their_action_and_verify(s: S) {
    let a = auditor("dgc.test/inst");
    let trusted = a.signer.verifier().clone();
    s.set_auditor(a);
    assert_eq!(s.audit_init("inst").await.unwrap(), 1);
    assert_eq!(s.audit_init("inst").await.unwrap(), 1, "init is idempotent");
    let agent = new_agent(&s, "a").await;
    for i in 0..5 {
        let m = mem(&agent, &format!("audited {i}"));
        let rec = memory_write(&m);
        s.insert_memory(m, vec![rec]).await.unwrap();
    }
    assert_eq!(s.audit_size().await.unwrap(), 6);
    let cp1 = s.audit_checkpoint().await.unwrap();
    assert_eq!(cp1.size, 6);
    assert_eq!(
        s.audit_checkpoint().await.unwrap(),
        cp1,
        "same size, same stored checkpoint"
    );
    let m = mem(&agent, "one more");
    let rec = memory_write(&m);
    s.insert_memory(m, vec![rec]).await.unwrap();
    let cp2 = s.audit_checkpoint().await.unwrap();
    assert_eq!(
        s.audit_checkpoints(None, 10).await.unwrap(),
        vec![cp1.clone(), cp2.clone()]
    );
    assert_eq!(
        s.audit_checkpoints(Some(6), 10).await.unwrap(),
        vec![cp2.clone()]
    );

    // The whole log verifies offline with the instance key, checkpoints included.
    let records = s.audit_records(0, 1000).await.unwrap();
    assert_eq!(records.len(), 7);
    let leaves: Vec<_> = records
        .into_iter()
        .map(|(i, b)| Ok::<_, dgc_audit::StorageError>(dgc_audit::LogLeaf::new(i, b)))
        .collect();
    let opts = dgc_audit::VerifyOptions::new(
        dgc_audit::KeyName::new("dgc.test/inst").unwrap(),
        vec![trusted],
    );
    let report = dgc_audit::verify_log(
        leaves,
        [cp1.note.as_bytes().to_vec(), cp2.note.as_bytes().to_vec()],
        opts,
    )
    .unwrap();
    assert_eq!(report.size, 7);

    // Proofs come from stored nodes.
    let incl = s.audit_inclusion_proof(3, 7).await.unwrap();
    assert!(!incl.is_empty());
    let cons = s.audit_consistency_proof(6, 7).await.unwrap();
    assert!(!cons.is_empty());
    assert!(s.audit_inclusion_proof(9, 7).await.is_err());
    assert!(s.audit_consistency_proof(0, 7).await.is_err());
}

pub async fn audit_failure_means_the_action_did_not_happen(s: S) {
    let agent = new_agent(&s, "a").await;
    // No signer configured: audited writes are refused; unaudited ones still work.
    let m = mem(&agent, "needs audit");
    let rec = memory_write(&m);
    assert!(matches!(
        s.insert_memory(m, vec![rec]).await,
        Err(StoreError::Audit(_))
    ));
    assert_eq!(s.count_memories().await.unwrap(), 0);
    s.insert_memory(mem(&agent, "no audit needed"), vec![])
        .await
        .unwrap();
    // A signer that is not the log's instance key: the append fails, so does the write.
    let good = auditor("dgc.test/inst");
    s.set_auditor(good.clone());
    s.audit_init("inst").await.unwrap();
    let wrong = dgc_store::Auditor {
        log: good.log.clone(),
        signer: dgc_audit::Signer::generate(dgc_audit::KeyName::new("someone.else").unwrap()),
    };
    s.set_auditor(wrong);
    let m = mem(&agent, "must not be stored");
    let id = m.id.clone();
    let rec = memory_write(&m);
    let err = s.insert_memory(m, vec![rec]).await.unwrap_err();
    assert!(matches!(err, StoreError::Audit(_)), "{err}");
    assert!(s.get_memory(&agent, &id).await.unwrap().is_none());
    assert_eq!(s.count_memories().await.unwrap(), 1);
    assert_eq!(s.audit_size().await.unwrap(), 1);
    // Keys are audited the same way.
    let k = key("memory.read", None, 9);
    let rec = dgc_store::AuditRecord::new(dgc_audit::Entry::ApiKeyRevoked(
        dgc_audit::entry::ApiKeyRevoked {
            key_id: k.info.id.to_string(),
            reason: None,
            request_id: None,
        },
    ));
    assert!(s.insert_key(k.clone(), vec![rec]).await.is_err());
    assert_eq!(s.get_key(&k.info.id).await.unwrap(), None);
}

pub async fn audit_revocation_records_every_revoked_key(s: S) {
    s.set_auditor(auditor("dgc.test/inst"));
    s.audit_init("inst").await.unwrap();
    let root = key("*", None, 1);
    let child = key("memory.*", Some(&root.info.id), 2);
    s.insert_key(root.clone(), vec![]).await.unwrap();
    s.insert_key(child, vec![]).await.unwrap();
    let revoked = s
        .revoke_key(
            &root.info.id,
            now(),
            Box::new(|ids: &Vec<KeyId>| {
                ids.iter()
                    .map(|id| {
                        dgc_store::AuditRecord::new(dgc_audit::Entry::ApiKeyRevoked(
                            dgc_audit::entry::ApiKeyRevoked {
                                key_id: id.to_string(),
                                reason: None,
                                request_id: None,
                            },
                        ))
                    })
                    .collect()
            }),
        )
        .await
        .unwrap();
    assert_eq!(revoked.len(), 2);
    assert_eq!(s.audit_size().await.unwrap(), 3);
    // Deleting a missing memory appends nothing.
    let agent = new_agent(&s, "a").await;
    let m = mem(&agent, "x");
    let rec = memory_write(&m);
    assert!(!s.delete_memory(&agent, &m.id, vec![rec]).await.unwrap());
    assert_eq!(s.audit_size().await.unwrap(), 3);
}
