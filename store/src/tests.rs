//! The store's behaviour, as scenarios that run against SQLite (each its own test) and
//! against a real PostgreSQL started from the installed server binaries (one test that
//! runs every scenario, each in a fresh database).

use crate::{
    DomainState, HistoryEntry, NamespaceStatus, Role, ServiceState, ServiceStatus, Store,
    StoreError,
};
use std::future::Future;
use std::pin::Pin;

type Scenario = fn(Store) -> Pin<Box<dyn Future<Output = ()> + Send>>;

macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {
        const SCENARIOS: &[(&str, Scenario)] = &[$((stringify!($name), |s| Box::pin($name(s)))),*];
        mod on_sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let dir = tempfile::tempdir().unwrap();
                    let store = crate::Store::open_sqlite(&dir.path().join("s.db")).await.unwrap();
                    super::$name(store).await;
                }
            )*
        }
    };
}

scenarios!(
    tokens_authenticate_their_account_only,
    passwords_expiry_and_revocation,
    namespaces_and_accounts_are_unique,
    service_status_upserts_resets_and_deletes,
    namespace_status_keeps_last_applied_on_error,
    history_is_newest_first_and_per_namespace,
    config_versions_count_up_per_key_and_namespace,
    concurrent_config_writers_each_get_a_version,
    kv_reads_lists_expires_and_is_per_namespace,
    kv_quota_counts_what_each_namespace_holds,
    kv_quota_holds_under_concurrent_writes_and_deletes,
    service_identities_are_per_service_and_revocable,
    no_person_becomes_a_service_identity,
    quota_overrides_are_per_namespace,
    config_values_are_sealed_at_rest,
    links_are_per_namespace_sealed_and_watched,
    signup_codes_are_one_use_bounded_and_tell_nothing,
    suspension_billing_and_pending_signups,
    what_ends_access_ends_it_for_the_very_next_lookup,
    a_deleted_namespace_leaves_nothing_behind,
    namespace_uids_are_never_shared_or_reused,
    api_keys_are_per_namespace_shown_once_and_revoked_at_once,
    a_domain_belongs_to_one_namespace,
    invitations_are_by_address_once_each_and_revocable,
);

#[tokio::test]
async fn every_scenario_on_postgres() {
    let pg = micro_testkit::TempPostgres::start();
    for (name, scenario) in SCENARIOS {
        let url = pg.fresh_database(name).await;
        let store = Store::connect(&url)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(store.backend(), "postgres");
        scenario(store).await;
    }
}

#[tokio::test]
async fn memory_and_unknown_backends() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open("memory", dir.path()).await.unwrap();
    store.create_namespace("a").await.unwrap();
    // One connection, kept: what was written is there on the next query.
    assert!(store.namespace_exists("a").await.unwrap());
    assert_eq!(store.backend(), "memory");
    let err = Store::open("mysql://x", dir.path())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown store"), "{err}");
    let sqlite = Store::open("sqlite", dir.path()).await.unwrap();
    assert_eq!(sqlite.backend(), "sqlite");
    assert!(dir.path().join("store.db").exists());
    // Write-ahead logging is recorded in the file's header (bytes 18 and 19 are 2)...
    let header = std::fs::read(dir.path().join("store.db")).unwrap();
    assert_eq!(&header[18..20], &[2, 2], "the store file is in WAL mode");
    // ...and every pooled connection commits without waiting for the disk.
    for _ in 0..3 {
        let mut conn = sqlite.pool.acquire().await.unwrap();
        let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(sync, 1, "synchronous = NORMAL");
        conn.detach();
    }
}

async fn tokens_authenticate_their_account_only(store: Store) {
    store.create_namespace("a").await.unwrap();
    let alice = store
        .create_account("alice@example.com", Role::Developer, Some("a"))
        .await
        .unwrap();
    let token = store.mint_token(&alice, "cli").await.unwrap();
    let who = store.authenticate(&token).await.unwrap().unwrap();
    assert_eq!(who.email, "alice@example.com");
    assert!(who.may_access("a"));
    assert!(!who.may_access("b"));
    assert!(store.authenticate("mt_forged").await.unwrap().is_none());
    assert!(store.authenticate("not-a-token").await.unwrap().is_none());
    // The plaintext token is never stored.
    let leaked = sqlx::query("SELECT hash FROM tokens WHERE hash = $1")
        .bind(&token)
        .fetch_optional(&store.pool)
        .await
        .unwrap();
    assert!(leaked.is_none());
}

async fn passwords_expiry_and_revocation(store: Store) {
    let bob = store
        .create_account("bob@example.com", Role::Developer, Some("b"))
        .await
        .unwrap();
    assert!(
        store
            .check_password("bob@example.com", "")
            .await
            .unwrap()
            .is_none()
    );
    store.set_password(&bob, "correct horse").await.unwrap();
    assert!(
        store
            .check_password("bob@example.com", "correct horse")
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .check_password("bob@example.com", "wrong")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .check_password("nobody@example.com", "correct horse")
            .await
            .unwrap()
            .is_none()
    );
    let row = sqlx::query("SELECT password_hash FROM accounts WHERE id = $1")
        .bind(&bob.id)
        .fetch_one(&store.pool)
        .await
        .unwrap();
    let stored: String = sqlx::Row::try_get(&row, "password_hash").unwrap();
    assert!(stored.starts_with("$argon2id$"), "{stored}");

    let expired = store
        .mint_token_for(&bob, "t", Some(std::time::Duration::ZERO))
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    assert!(store.authenticate(&expired).await.unwrap().is_none());
    let live = store.mint_token(&bob, "t").await.unwrap();
    assert!(store.authenticate(&live).await.unwrap().is_some());
    assert!(store.revoke_token(&live).await.unwrap());
    assert!(store.authenticate(&live).await.unwrap().is_none());
    assert!(!store.revoke_token(&live).await.unwrap());
}

async fn namespaces_and_accounts_are_unique(store: Store) {
    store.create_namespace("a").await.unwrap();
    assert!(store.create_namespace("a").await.is_err());
    assert_eq!(store.list_namespaces().await.unwrap(), vec!["a".to_owned()]);
    store
        .create_account("x@example.com", Role::Admin, None)
        .await
        .unwrap();
    assert!(
        store
            .create_account("x@example.com", Role::Admin, None)
            .await
            .is_err()
    );
    assert_eq!(store.list_accounts().await.unwrap().len(), 1);
}

async fn service_status_upserts_resets_and_deletes(store: Store) {
    let mut s = ServiceStatus {
        namespace: "a".into(),
        name: "hello".into(),
        revision: "abc".into(),
        source: "repo".into(),
        status: ServiceState::Starting,
        ready: 0,
        desired: 1,
        message: String::new(),
        updated_at: 1,
    };
    store.put_service_status(&s).await.unwrap();
    s.status = ServiceState::Running;
    s.ready = 1;
    store.put_service_status(&s).await.unwrap();
    assert_eq!(store.service_statuses("a").await.unwrap(), vec![s.clone()]);
    assert!(store.service_statuses("b").await.unwrap().is_empty());
    store.reset_service_statuses("restarting").await.unwrap();
    let reset = &store.service_statuses("a").await.unwrap()[0];
    assert_eq!(
        (reset.status, reset.ready, reset.message.as_str()),
        (ServiceState::Starting, 0, "restarting")
    );
    store.delete_service_status("a", "hello").await.unwrap();
    assert!(store.service_statuses("a").await.unwrap().is_empty());
}

async fn namespace_status_keeps_last_applied_on_error(store: Store) {
    store
        .put_namespace_status("a", "r1", Some("r1"), None)
        .await
        .unwrap();
    store
        .put_namespace_status("a", "r2", None, Some("bad spec"))
        .await
        .unwrap();
    let st: NamespaceStatus = store.namespace_status("a").await.unwrap().unwrap();
    assert_eq!(st.head, "r2");
    assert_eq!(st.applied.as_deref(), Some("r1"));
    assert_eq!(st.error.as_deref(), Some("bad spec"));
}

async fn history_is_newest_first_and_per_namespace(store: Store) {
    let entry = |ns: &str, t: i64, rev: &str| HistoryEntry {
        namespace: ns.into(),
        started_us: t,
        revision: rev.into(),
        triggers: vec![crate::Trigger::Push, crate::Trigger::Drift],
        result: crate::ReconcileResult::Applied,
        summary: "1 to create".into(),
        error: None,
        duration_ms: 3,
        plan_ms: 1,
        apply_ms: 2,
        note: None,
    };
    store.record_reconcile(&entry("a", 1, "r1")).await.unwrap();
    store.record_reconcile(&entry("a", 2, "r2")).await.unwrap();
    store.record_reconcile(&entry("b", 3, "x")).await.unwrap();
    let revs: Vec<String> = store
        .history("a", 10)
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.revision)
        .collect();
    assert_eq!(revs, vec!["r2", "r1"]);
    assert_eq!(store.history("a", 1).await.unwrap().len(), 1);
}

async fn config_versions_count_up_per_key_and_namespace(store: Store) {
    assert_eq!(
        store
            .put_config("a", "db.password", "\"one\"", true)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .put_config("a", "db.password", "\"two\"", true)
            .await
            .unwrap(),
        2
    );
    assert_eq!(store.put_config("a", "other", "1", false).await.unwrap(), 1);
    assert_eq!(
        store
            .put_config("b", "db.password", "\"b\"", false)
            .await
            .unwrap(),
        1
    );
    let v1 = store
        .config_value("a", "db.password", 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((v1.value.as_str(), v1.secret), ("\"one\"", true));
    assert!(
        store
            .config_value("a", "db.password", 3)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .config_value("c", "db.password", 1)
            .await
            .unwrap()
            .is_none()
    );
}

async fn concurrent_config_writers_each_get_a_version(store: Store) {
    let writers: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .put_config("a", "k", &i.to_string(), false)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut versions = Vec::new();
    for w in writers {
        versions.push(w.await.unwrap());
    }
    versions.sort_unstable();
    assert_eq!(versions, (1..=8).collect::<Vec<_>>());
}

/// `ns`'s count, checked against its records added up.
async fn counted(store: &Store, ns: &str) -> i64 {
    let kept = store.held_bytes(ns).await.unwrap();
    assert_eq!(
        store.held_in_database(ns).await.unwrap(),
        kept,
        "{ns}: the count drifted"
    );
    kept
}

fn full(e: StoreError) -> (i64, i64) {
    match e {
        StoreError::StoreFull { wanted, limit, .. } => (wanted, limit),
        other => panic!("not a full store: {other}"),
    }
}

async fn kv_quota_counts_what_each_namespace_holds(store: Store) {
    let x = |n: usize| "x".repeat(n);
    store.set_store_limit("a", 100);
    // A record counts its table, key and value: 1 + 2 + 40.
    store.kv_write("a", "t", "k1", &x(40), None).await.unwrap();
    store.kv_write("a", "t", "k2", &x(40), None).await.unwrap();
    assert_eq!(counted(&store, "a").await, 86);
    let refused = store.kv_write("a", "t", "k3", &x(20), None).await;
    assert_eq!(full(refused.unwrap_err()), (109, 100));
    let read = |key: &'static str| {
        let store = store.clone();
        async move {
            let q = crate::KvQuery {
                key,
                prefix: false,
                limit: 1,
                offset: 0,
            };
            store.kv_read("a", "t", &q).await.unwrap()
        }
    };
    assert!(
        read("k3").await.is_empty(),
        "a refused write writes nothing"
    );
    assert_eq!(counted(&store, "a").await, 86);
    // Overwriting with less frees room; deleting frees all of it.
    store.kv_write("a", "t", "k1", &x(10), None).await.unwrap();
    assert_eq!(counted(&store, "a").await, 56);
    store.kv_write("a", "t", "k3", &x(20), None).await.unwrap();
    assert!(store.kv_delete("a", "t", "k2").await.unwrap());
    assert_eq!(counted(&store, "a").await, 36);
    assert_eq!(read("k3").await[0].value, x(20));

    // Another namespace has its own count and limit.
    store
        .kv_write("b", "t", "big", &x(200), None)
        .await
        .unwrap();
    store.set_store_limit("b", 10);
    assert_eq!(counted(&store, "b").await, 204);
    assert_eq!(counted(&store, "a").await, 36);
    // Over its limit (lowered after the fact), b may still shrink but not grow.
    full(
        store
            .kv_write("b", "t", "more", "1", None)
            .await
            .unwrap_err(),
    );
    store
        .kv_write("b", "t", "big", &x(100), None)
        .await
        .unwrap();
    assert_eq!(counted(&store, "b").await, 104);

    // An expired record counts until it is swept, then not at all.
    store
        .kv_write("a", "t", "e", &x(50), Some(1))
        .await
        .unwrap();
    assert_eq!(store.held_bytes("a").await.unwrap(), 36 + 52);
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    assert!(store.sweep_kv().await.unwrap() >= 1);
    assert_eq!(store.held_bytes("a").await.unwrap(), 36);
    // Deleting an expired record is "not there", as reading it is.
    store.kv_write("a", "t", "e", &x(5), Some(1)).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    assert!(!store.kv_delete("a", "t", "e").await.unwrap());

    // Config values count too, every version of them.
    let before = counted(&store, "a").await;
    store
        .put_config("a", "db.url", "\"pg://x\"", false)
        .await
        .unwrap();
    let after = counted(&store, "a").await;
    assert!(after > before, "{before} {after}");
    store.set_store_limit("a", after + 10);
    full(
        store
            .put_config("a", "db.url", &x(20), false)
            .await
            .unwrap_err(),
    );
    assert_eq!(counted(&store, "a").await, after);
    assert!(
        store
            .config_value("a", "db.url", 2)
            .await
            .unwrap()
            .is_none()
    );
}

/// A hostile tenant racing its own writes and deletes: the count never falls behind
/// what the store holds, and concurrent writers cannot together pass the limit.
async fn kv_quota_holds_under_concurrent_writes_and_deletes(store: Store) {
    store.set_store_limit("c", 10 * 14);
    // Twenty new records of 14 bytes at once, room for ten.
    let mut writes = tokio::task::JoinSet::new();
    for i in 0..20 {
        let store = store.clone();
        writes.spawn(async move {
            let key = format!("k{i:02}");
            let done = store.kv_write("c", "t", &key, &"v".repeat(10), None).await;
            (key, done)
        });
    }
    let results = writes.join_all().await;
    let written: Vec<&String> = results
        .iter()
        .filter_map(|(key, done)| done.is_ok().then_some(key))
        .collect();
    assert_eq!(written.len(), 10, "{results:?}");
    assert_eq!(counted(&store, "c").await, 140);
    // One record overwritten smaller and deleted, over and over, all at once (a write
    // after the delete makes it anew: 5 bytes where 14 were freed). A write may be
    // refused while the others' reservations fill the room; nothing else fails.
    let mut churn = tokio::task::JoinSet::new();
    for i in 0..40 {
        let (store, key) = (store.clone(), written[0].clone());
        churn.spawn(async move {
            if i % 2 == 0 {
                match store.kv_write("c", "t", &key, "v", None).await {
                    Err(StoreError::StoreFull { .. }) => Ok(false),
                    done => done.map(|_| true),
                }
            } else {
                store.kv_delete("c", "t", &key).await
            }
        });
    }
    for done in churn.join_all().await {
        done.unwrap();
    }
    let kept = counted(&store, "c").await;
    assert!(kept <= 140, "{kept}");
}

async fn kv_reads_lists_expires_and_is_per_namespace(store: Store) {
    use crate::KvQuery;
    for (k, v) in [
        ("user/1", "ann"),
        ("user/2", "bob"),
        ("user/3", "cy"),
        ("user_x", "underscore"),
        ("admin", "root"),
    ] {
        store.kv_write("a", "default", k, v, None).await.unwrap();
    }
    store
        .kv_write("a", "default", "user/9", "gone", Some(0))
        .await
        .unwrap();
    store
        .kv_write("b", "default", "user/1", "other tenant", None)
        .await
        .unwrap();
    let q = |key, prefix, limit, offset| KvQuery {
        key,
        prefix,
        limit,
        offset,
    };
    let keys = |rs: Vec<crate::Record>| rs.into_iter().map(|r| r.key).collect::<Vec<_>>();
    assert_eq!(
        keys(
            store
                .kv_read("a", "default", &q("user/", true, 10, 0))
                .await
                .unwrap()
        ),
        vec!["user/1", "user/2", "user/3"]
    );
    assert_eq!(
        keys(
            store
                .kv_read("a", "default", &q("user/", true, 1, 1))
                .await
                .unwrap()
        ),
        vec!["user/2"]
    );
    // `_` in a prefix is a character, not a wildcard.
    assert_eq!(
        keys(
            store
                .kv_read("a", "default", &q("user_", true, 10, 0))
                .await
                .unwrap()
        ),
        vec!["user_x"]
    );
    let one = store
        .kv_read("a", "default", &q("user/1", false, 10, 0))
        .await
        .unwrap();
    assert_eq!(one[0].value, "ann");
    assert!(
        store
            .kv_read("a", "default", &q("user/9", false, 10, 0))
            .await
            .unwrap()
            .is_empty(),
        "expired"
    );
    assert!(
        store
            .kv_read("a", "other", &q("user/1", false, 10, 0))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.kv_table_exists("a", "default").await.unwrap());
    assert!(!store.kv_table_exists("a", "other").await.unwrap());
    assert!(store.kv_delete("a", "default", "admin").await.unwrap());
    assert!(!store.kv_delete("a", "default", "admin").await.unwrap());
    assert!(
        !store.kv_delete("a", "default", "user/9").await.unwrap(),
        "expired records are gone"
    );
    let theirs = store
        .kv_read("b", "default", &q("user/1", false, 10, 0))
        .await
        .unwrap();
    assert_eq!(theirs[0].value, "other tenant");
}

async fn service_identities_are_per_service_and_revocable(store: Store) {
    let web = store.service_account("a", "web").await.unwrap();
    assert_eq!(
        store.service_account("a", "web").await.unwrap(),
        web,
        "one identity per service"
    );
    assert_eq!(
        (web.role, web.namespace.as_deref(), web.service.as_deref()),
        (Role::Service, Some("a"), Some("web"))
    );
    assert!(web.is_service() && web.may_access("a") && !web.may_access("b"));
    assert_ne!(store.service_account("b", "web").await.unwrap().id, web.id);
    let token = store.mint_token(&web, "runtime").await.unwrap();
    assert_eq!(
        store
            .authenticate(&token)
            .await
            .unwrap()
            .unwrap()
            .service
            .as_deref(),
        Some("web")
    );
    store.revoke_account_tokens(&web).await.unwrap();
    assert!(store.authenticate(&token).await.unwrap().is_none());
    // Each deployment gets its own token; the older ones work until the new deployment
    // serves alone and only its token is retained.
    let first = store.issue_service_token("a", "web", "d1").await.unwrap();
    let second = store.issue_service_token("a", "web", "d2").await.unwrap();
    assert!(
        store.authenticate(&first).await.unwrap().is_some(),
        "still serving"
    );
    let live = |d: &'static str| {
        let store = store.clone();
        async move { store.service_by_deployment("a", "web", d).await.unwrap() }
    };
    assert_eq!(live("d1").await.map(|a| a.id), Some(web.id.clone()));
    assert_eq!(
        store.service_by_deployment("b", "web", "d1").await.unwrap(),
        None
    );
    store.retain_service_token("a", "web", "d2").await.unwrap();
    assert!(store.authenticate(&first).await.unwrap().is_none());
    assert_eq!(
        live("d1").await,
        None,
        "a replaced deployment's identity ends"
    );
    assert!(live("d2").await.is_some());
    let listed: Vec<(String, String)> = store
        .live_deployments()
        .await
        .unwrap()
        .into_iter()
        .map(|d| (d.namespace, d.deployment))
        .collect();
    assert_eq!(
        listed,
        [("a".to_owned(), "d2".to_owned())],
        "only live deployments are renewed"
    );
    assert_eq!(
        store.authenticate(&second).await.unwrap().unwrap().id,
        web.id
    );
    let fresh = store.issue_service_token("c", "api", "d1").await.unwrap();
    let api = store.authenticate(&fresh).await.unwrap().unwrap();
    assert_eq!(
        (api.role, api.namespace.as_deref(), api.service.as_deref()),
        (Role::Service, Some("c"), Some("api")),
        "created on first use"
    );
    // Nobody logs in as a service.
    assert!(
        store
            .check_password(&web.email, "")
            .await
            .unwrap()
            .is_none()
    );
}

async fn no_person_becomes_a_service_identity(store: Store) {
    for email in ["probe@evil.service.micro", "Probe@Evil.Service.Micro"] {
        assert!(
            store
                .create_account(email, Role::Developer, Some("evil"))
                .await
                .is_err(),
            "{email} is reserved"
        );
    }
    let token = store
        .issue_service_token("evil", "probe", "d1")
        .await
        .unwrap();
    let identity = store.authenticate(&token).await.unwrap().unwrap();
    assert_eq!(identity.role, Role::Service);
    assert_eq!(identity.service.as_deref(), Some("probe"));
}

async fn quota_overrides_are_per_namespace(store: Store) {
    assert_eq!(store.quota_overrides("a").await.unwrap(), None);
    store.set_quota_overrides("a", "services=3").await.unwrap();
    store
        .set_quota_overrides("a", "services=4,memory=1Gi")
        .await
        .unwrap();
    store.set_quota_overrides("b", "replicas=1").await.unwrap();
    assert_eq!(
        store.quota_overrides("a").await.unwrap().as_deref(),
        Some("services=4,memory=1Gi")
    );
    assert_eq!(
        store.quota_overrides("b").await.unwrap().as_deref(),
        Some("replicas=1")
    );
}

async fn config_values_are_sealed_at_rest(store: Store) {
    let key = crate::Sealer::generate_hex();
    let sealed = store
        .clone()
        .with_sealer(crate::Sealer::from_hex(&key).unwrap());
    let v = sealed
        .put_config("a", "db.password", "\"hunter2\"", true)
        .await
        .unwrap();
    assert_eq!(
        sealed
            .config_value("a", "db.password", v)
            .await
            .unwrap()
            .unwrap()
            .value,
        "\"hunter2\""
    );
    // What the database itself holds shows nothing of the value.
    let raw: String = sqlx::query_scalar("SELECT value FROM config_values WHERE namespace = 'a'")
        .fetch_one(&store.pool)
        .await
        .unwrap();
    assert!(!raw.contains("hunter2"), "{raw}");
    // Without the key, or with another, nothing opens.
    assert!(store.config_value("a", "db.password", v).await.is_err());
    let other = store
        .clone()
        .with_sealer(crate::Sealer::from_hex(&crate::Sealer::generate_hex()).unwrap());
    assert!(other.config_value("a", "db.password", v).await.is_err());
}

async fn links_are_per_namespace_sealed_and_watched(store: Store) {
    let store = store.with_sealer(crate::Sealer::from_hex(&crate::Sealer::generate_hex()).unwrap());
    let mut changes = store.watch_links();
    let mut link = crate::Link::new(
        "a",
        "id-a",
        "https://forge.example/a/repo",
        "main",
        "github",
    );
    link.secret = "whsec-planted".into();
    link.token = Some("ghp_planted".into());
    store.put_link(&link).await.unwrap();
    assert!(changes.has_changed().unwrap(), "a cache sees the new link");
    changes.borrow_and_update();
    assert_eq!(store.link("a").await.unwrap().as_ref(), Some(&link));
    assert_eq!(
        store.link_by_id("id-a").await.unwrap().as_ref(),
        Some(&link)
    );
    assert_eq!(store.link("b").await.unwrap(), None);
    assert_eq!(store.link_by_id("id-b").await.unwrap(), None);
    // Neither the secret nor the token is readable in the database itself.
    let raw: String = sqlx::query_scalar("SELECT secret || coalesce(token, '') FROM links")
        .fetch_one(&store.pool)
        .await
        .unwrap();
    assert!(!raw.contains("planted"), "{raw}");

    store.record_link_fetch("a", Ok("abc123")).await.unwrap();
    store
        .record_link_fetch("a", Err("cannot fetch"))
        .await
        .unwrap();
    let delivery = crate::Delivery {
        at: 5,
        event: "push".into(),
        result: "fetched".into(),
    };
    store.record_link_delivery("a", &delivery).await.unwrap();
    let got = store.link("a").await.unwrap().unwrap();
    assert_eq!(
        got.fetched_revision.as_deref(),
        Some("abc123"),
        "a failed fetch keeps the last revision"
    );
    assert_eq!(got.fetch_error.as_deref(), Some("cannot fetch"));
    assert_eq!(got.delivery, Some(delivery));

    // Linking again replaces the link and forgets what the old one fetched.
    let mut again = crate::Link::new(
        "a",
        "id-a2",
        "https://forge.example/a/other",
        "dev",
        "gitlab",
    );
    again.secret = "s2".into();
    store.put_link(&again).await.unwrap();
    assert_eq!(store.links().await.unwrap(), vec![again]);
    assert_eq!(store.link_by_id("id-a").await.unwrap(), None);
    assert!(store.delete_link("a").await.unwrap());
    assert!(!store.delete_link("a").await.unwrap());
    assert!(store.links().await.unwrap().is_empty());
    assert!(changes.has_changed().unwrap());
}

async fn signup_rows(store: &Store) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM signups")
        .fetch_one(&store.pool)
        .await
        .unwrap()
}

async fn signup_codes_are_one_use_bounded_and_tell_nothing(store: Store) {
    use crate::{CodeCheck, CodeRequest};
    let CodeRequest::Send(code) = store
        .request_code("a@x.io", "pw-123456", false)
        .await
        .unwrap()
    else {
        panic!("a first code is sent");
    };
    assert_eq!(code.len(), 6);
    assert!(code.bytes().all(|b| b.is_ascii_digit()));
    // Wrong codes count; the right one works once.
    assert_eq!(
        store.check_code("a@x.io", "000000x").await.unwrap(),
        CodeCheck::Refused
    );
    assert_eq!(
        store.check_code("b@x.io", &code).await.unwrap(),
        CodeCheck::Refused
    );
    let CodeCheck::Verified { password_hash } = store.check_code("a@x.io", &code).await.unwrap()
    else {
        panic!("the right code verifies");
    };
    assert!(password_hash.starts_with("$argon2id$"));
    assert_eq!(
        store.check_code("a@x.io", &code).await.unwrap(),
        CodeCheck::Refused
    );

    // Five wrong attempts use a code up, right or not after that.
    let CodeRequest::Send(code) = store
        .request_code("c@x.io", "pw-123456", false)
        .await
        .unwrap()
    else {
        panic!()
    };
    for _ in 0..crate::signups::MAX_ATTEMPTS {
        assert_eq!(
            store.check_code("c@x.io", "999999").await.unwrap(),
            CodeCheck::Refused
        );
    }
    assert_eq!(
        store.check_code("c@x.io", &code).await.unwrap(),
        CodeCheck::Refused
    );

    // An address with an account gets codes the same way, and none of them works.
    let CodeRequest::Send(code) = store
        .request_code("d@x.io", "pw-123456", true)
        .await
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(
        store.check_code("d@x.io", &code).await.unwrap(),
        CodeCheck::Refused
    );
    // Sends are limited per address, whoever it belongs to.
    for _ in 1..crate::signups::MAX_SENDS {
        assert!(matches!(
            store.request_code("d@x.io", "pw", true).await.unwrap(),
            CodeRequest::Send(_)
        ));
    }
    assert_eq!(
        store.request_code("d@x.io", "pw", true).await.unwrap(),
        CodeRequest::Limited
    );

    // Requests whose code and send window are over are forgotten by the next request of
    // anyone; limits are as they were (an address's window is over by then).
    assert_eq!(signup_rows(&store).await, 2, "c@ and d@");
    sqlx::query(
        "UPDATE signups SET expires_at = expires_at - $1, window_start = window_start - $1",
    )
    .bind(2 * 3600 * 1000_i64)
    .execute(&store.pool)
    .await
    .unwrap();
    assert!(matches!(
        store.request_code("e@x.io", "pw", false).await.unwrap(),
        CodeRequest::Send(_)
    ));
    assert_eq!(signup_rows(&store).await, 1, "e@ alone");
    assert!(matches!(
        store.request_code("d@x.io", "pw", true).await.unwrap(),
        CodeRequest::Send(_)
    ));

    store
        .put_mail("a@x.io", "Your code", "123456")
        .await
        .unwrap();
    let mail = store.outbox(10).await.unwrap();
    assert_eq!(mail.len(), 1);
    assert_eq!(mail[0].recipient, "a@x.io");
}

async fn suspension_billing_and_pending_signups(store: Store) {
    use crate::{BillingState, Suspension};
    store.create_namespace("paid").await.unwrap();
    store.create_namespace("other").await.unwrap();
    // Suspension: an admin's outranks billing's, and a payment lifts only billing's.
    assert_eq!(store.suspension("paid").await.unwrap(), None);
    assert!(
        store
            .suspend_namespace("paid", Suspension::Billing)
            .await
            .unwrap()
    );
    assert!(
        !store
            .suspend_namespace("paid", Suspension::Billing)
            .await
            .unwrap()
    );
    assert!(
        store
            .suspend_namespace("paid", Suspension::Admin)
            .await
            .unwrap()
    );
    assert!(
        !store
            .resume_namespace("paid", Some(Suspension::Billing))
            .await
            .unwrap()
    );
    assert_eq!(
        store.suspension("paid").await.unwrap(),
        Some(Suspension::Admin)
    );
    assert_eq!(store.suspension("other").await.unwrap(), None);
    assert_eq!(
        store.suspended_namespaces().await.unwrap(),
        vec![("paid".to_owned(), Suspension::Admin)]
    );
    assert!(store.resume_namespace("paid", None).await.unwrap());
    assert_eq!(store.suspension("paid").await.unwrap(), None);

    // Billing: past due keeps its first time; paying clears it.
    let b = store
        .set_billing("paid", "cus_1", "sub_1", BillingState::PastDue)
        .await
        .unwrap();
    let since = b.past_due_since.expect("past due since now");
    let again = store
        .set_billing("paid", "cus_1", "sub_1", BillingState::PastDue)
        .await
        .unwrap();
    assert_eq!(again.past_due_since, Some(since));
    assert_eq!(store.overdue(since).await.unwrap(), vec!["paid".to_owned()]);
    assert!(store.overdue(since - 1).await.unwrap().is_empty());
    let paid = store
        .set_billing("paid", "cus_1", "sub_1", BillingState::Active)
        .await
        .unwrap();
    assert_eq!(paid.past_due_since, None);
    assert_eq!(
        store
            .billing_by_subscription("sub_1")
            .await
            .unwrap()
            .map(|b| b.namespace),
        Some("paid".to_owned())
    );
    assert_eq!(store.billing_by_subscription("sub_2").await.unwrap(), None);
    assert_eq!(store.all_billing().await.unwrap().len(), 1);

    // Pending sign-ups: one per address; the newest claim is the one that works, once,
    // and only after payment.
    let (first, old_claim) = store.put_pending_signup("p@x.io", "hash-1").await.unwrap();
    let (second, claim) = store.put_pending_signup("p@x.io", "hash-2").await.unwrap();
    assert_eq!(first.id, second.id);
    assert_eq!(second.password_hash, "hash-2");
    assert_eq!(store.pending_by_claim(&old_claim).await.unwrap(), None);
    assert_eq!(
        store.pending_by_claim(&claim).await.unwrap().map(|p| p.id),
        Some(first.id.clone())
    );
    store
        .set_pending_checkout(&first.id, "cs_1", "https://pay/cs_1")
        .await
        .unwrap();
    assert_eq!(
        store
            .pending_by_checkout("cs_1")
            .await
            .unwrap()
            .and_then(|p| p.checkout_url),
        Some("https://pay/cs_1".to_owned())
    );
    assert!(!store.spend_claim(&claim).await.unwrap(), "not paid yet");
    assert_eq!(
        store.unpaid_signup("p@x.io", "pw-123456").await.unwrap(),
        None
    );
    let real = crate::passwords::hash("pw-123456".into()).await.unwrap();
    let (unpaid, _) = store.put_pending_signup("u@x.io", &real).await.unwrap();
    store
        .set_pending_checkout(&unpaid.id, "cs_2", "https://pay/cs_2")
        .await
        .unwrap();
    let before = crate::now_millis();
    let seen = store
        .unpaid_signup("u@x.io", "pw-123456")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen.checkout_url.as_deref(), Some("https://pay/cs_2"));
    assert!(seen.since <= before);
    assert_eq!(
        store.unpaid_signup("u@x.io", "wrong-pass").await.unwrap(),
        None
    );

    store
        .finish_pending_signup(&first.id, "paid")
        .await
        .unwrap();
    let done = store.pending_signup(&first.id).await.unwrap().unwrap();
    assert_eq!(done.namespace.as_deref(), Some("paid"));
    assert_eq!(done.password_hash, "", "the hash lives on the account now");
    assert!(store.spend_claim(&claim).await.unwrap());
    assert!(
        !store.spend_claim(&claim).await.unwrap(),
        "a claim works once"
    );

    // Unpaid sign-ups are forgotten once their checkout is old enough; paid ones stay.
    let now = crate::now_millis();
    assert_eq!(store.forget_unpaid_signups(now - 60_000).await.unwrap(), 0);
    assert_eq!(store.forget_unpaid_signups(now + 1).await.unwrap(), 1);
    assert_eq!(
        store.unpaid_signup("u@x.io", "pw-123456").await.unwrap(),
        None
    );
    assert_eq!(store.pending_by_checkout("cs_2").await.unwrap(), None);
    assert!(store.pending_signup(&first.id).await.unwrap().is_some());

    // Events: applied once.
    assert!(!store.billing_event_seen("evt_1").await.unwrap());
    store
        .record_billing_event("evt_1", "invoice.paid")
        .await
        .unwrap();
    store
        .record_billing_event("evt_1", "invoice.paid")
        .await
        .unwrap();
    assert!(store.billing_event_seen("evt_1").await.unwrap());
}

/// Every lookup is made twice before access ends, so it is answered from memory by then:
/// whatever ends access must reach that memory too.
async fn what_ends_access_ends_it_for_the_very_next_lookup(store: Store) {
    use crate::Suspension;
    store.create_namespace("team").await.unwrap();
    let dev = store
        .create_account("dev@example.com", Role::Developer, Some("team"))
        .await
        .unwrap();
    let seen = |token: String| {
        let store = store.clone();
        async move {
            let first = store.authenticate(&token).await.unwrap();
            assert_eq!(store.authenticate(&token).await.unwrap(), first);
            first
        }
    };
    // One token revoked (`micro logout`).
    let token = store.mint_token(&dev, "cli").await.unwrap();
    assert!(seen(token.clone()).await.is_some());
    assert!(store.revoke_token(&token).await.unwrap());
    assert!(store.authenticate(&token).await.unwrap().is_none());
    // Every token of an account.
    let token = store.mint_token(&dev, "cli").await.unwrap();
    assert!(seen(token.clone()).await.is_some());
    store.revoke_account_tokens(&dev).await.unwrap();
    assert!(store.authenticate(&token).await.unwrap().is_none());
    // An expired one, whatever memory says.
    let short = store
        .mint_token_for(&dev, "short", Some(std::time::Duration::from_millis(300)))
        .await
        .unwrap();
    assert!(seen(short.clone()).await.is_some());
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert!(store.authenticate(&short).await.unwrap().is_none());
    // A deleted account: every token it had.
    let token = store.mint_token(&dev, "cli").await.unwrap();
    assert!(seen(token.clone()).await.is_some());
    assert!(store.delete_account("dev@example.com").await.unwrap());
    assert!(store.authenticate(&token).await.unwrap().is_none());
    assert!(!store.delete_account("dev@example.com").await.unwrap());
    assert!(
        store
            .account_by_email("dev@example.com")
            .await
            .unwrap()
            .is_none()
    );

    // A service's token and certificate identity, retired by a rotation.
    let old = store
        .issue_service_token("team", "web", "d1")
        .await
        .unwrap();
    assert!(seen(old.clone()).await.is_some());
    for _ in 0..2 {
        assert!(
            store
                .service_by_deployment("team", "web", "d1")
                .await
                .unwrap()
                .is_some()
        );
    }
    let new = store
        .issue_service_token("team", "web", "d2")
        .await
        .unwrap();
    store
        .retain_service_token("team", "web", "d2")
        .await
        .unwrap();
    assert!(store.authenticate(&old).await.unwrap().is_none());
    assert!(
        store
            .service_by_deployment("team", "web", "d1")
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.authenticate(&new).await.unwrap().is_some());
    // ... and revoked with the service's removal.
    assert!(
        store
            .service_by_deployment("team", "web", "d2")
            .await
            .unwrap()
            .is_some()
    );
    let web = store.service_account("team", "web").await.unwrap();
    store.revoke_account_tokens(&web).await.unwrap();
    assert!(store.authenticate(&new).await.unwrap().is_none());
    assert!(
        store
            .service_by_deployment("team", "web", "d2")
            .await
            .unwrap()
            .is_none()
    );
    // No person's deletion takes a service's identity.
    assert!(!store.delete_account(&web.email).await.unwrap());

    // A suspension, and its end.
    for _ in 0..2 {
        assert_eq!(store.suspension("team").await.unwrap(), None);
    }
    assert!(
        store
            .suspend_namespace("team", Suspension::Admin)
            .await
            .unwrap()
    );
    assert_eq!(
        store.suspension("team").await.unwrap(),
        Some(Suspension::Admin)
    );
    assert!(store.resume_namespace("team", None).await.unwrap());
    assert_eq!(store.suspension("team").await.unwrap(), None);
}

async fn a_deleted_namespace_leaves_nothing_behind(store: Store) {
    use crate::{BillingState, Deletion, KvQuery};
    let all = KvQuery {
        key: "",
        prefix: true,
        limit: 100,
        offset: 0,
    };
    for ns in ["team", "other"] {
        store.create_namespace(ns).await.unwrap();
        store
            .put_config(ns, "db.password", "\"s3cret\"", true)
            .await
            .unwrap();
        store
            .kv_write(ns, "users", "ada", "{}", None)
            .await
            .unwrap();
    }
    let dev = store
        .create_account("dev@example.com", Role::Developer, Some("team"))
        .await
        .unwrap();
    let admin = store
        .create_account("root@example.com", Role::Admin, Some("team"))
        .await
        .unwrap();
    let neighbour = store
        .create_account("n@example.com", Role::Developer, Some("other"))
        .await
        .unwrap();
    let (dev_token, admin_token, neighbour_token) = (
        store.mint_token(&dev, "cli").await.unwrap(),
        store.mint_token(&admin, "cli").await.unwrap(),
        store.mint_token(&neighbour, "cli").await.unwrap(),
    );
    let service = store
        .issue_service_token("team", "web", "d1")
        .await
        .unwrap();
    // Every lookup made twice, so each answer is in memory before the deletion.
    for _ in 0..2 {
        assert!(store.authenticate(&dev_token).await.unwrap().is_some());
        assert!(store.authenticate(&service).await.unwrap().is_some());
        assert!(
            store
                .service_by_deployment("team", "web", "d1")
                .await
                .unwrap()
                .is_some()
        );
        assert!(store.namespace_exists("team").await.unwrap());
        assert_eq!(store.suspension("team").await.unwrap(), None);
    }
    // A live subscription keeps it: Stripe would go on billing a namespace that is gone.
    store
        .set_billing("team", "cus_1", "sub_1", BillingState::Active)
        .await
        .unwrap();
    assert_eq!(
        store.delete_namespace("team").await.unwrap(),
        Deletion::Billed(BillingState::Active)
    );
    assert!(store.authenticate(&dev_token).await.unwrap().is_some());
    store
        .set_billing("team", "cus_1", "sub_1", BillingState::Canceled)
        .await
        .unwrap();

    assert_eq!(
        store.delete_namespace("team").await.unwrap(),
        Deletion::Deleted { accounts: 2 }
    );
    assert!(!store.namespace_exists("team").await.unwrap());
    assert!(store.authenticate(&dev_token).await.unwrap().is_none());
    assert!(store.authenticate(&service).await.unwrap().is_none());
    assert!(
        store
            .service_by_deployment("team", "web", "d1")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .account_by_email("dev@example.com")
            .await
            .unwrap()
            .is_none()
    );
    // An admin whose account named it keeps their account; the neighbour keeps everything.
    assert!(store.authenticate(&admin_token).await.unwrap().is_some());
    assert!(
        store
            .authenticate(&neighbour_token)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        store.kv_read("other", "users", &all).await.unwrap().len(),
        1
    );
    assert!(
        store
            .config_value("other", "db.password", 1)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        store.delete_namespace("team").await.unwrap(),
        Deletion::Missing
    );

    // Until its repo and services are torn down, the deletion is on record (a server
    // stopped in between finishes it on start) and the name cannot be taken again: a
    // new tenant of that name would otherwise find the old one's repo.
    assert_eq!(store.pending_deletions().await.unwrap(), vec!["team"]);
    assert!(store.deletion_pending("team").await.unwrap());
    assert!(matches!(
        store.create_namespace("team").await,
        Err(StoreError::BeingDeleted(name)) if name == "team"
    ));
    assert!(!store.namespace_exists("team").await.unwrap());
    assert!(matches!(
        store.create_namespace("other").await,
        Err(StoreError::Exists(_))
    ));
    store.purge_deleted_namespace("team").await.unwrap();
    assert!(store.pending_deletions().await.unwrap().is_empty());

    // The same name again starts empty: no config, no data, no subscription.
    store.create_namespace("team").await.unwrap();
    assert!(
        store
            .config_value("team", "db.password", 1)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .kv_read("team", "users", &all)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.billing_of("team").await.unwrap().is_none());
    assert_eq!(
        store
            .put_config("team", "db.password", "\"x\"", true)
            .await
            .unwrap(),
        1
    );
}

async fn namespace_uids_are_never_shared_or_reused(store: Store) {
    for ns in ["a", "b"] {
        store.create_namespace(ns).await.unwrap();
    }
    let a = store.namespace_uid("a").await.unwrap();
    assert!(a >= crate::FIRST_UID, "{a}");
    assert_eq!(
        store.namespace_uid("a").await.unwrap(),
        a,
        "kept once given"
    );
    // Racing first uses of many namespaces and of one: each gets exactly one, all apart.
    let names: Vec<String> = (0..20).map(|i| format!("n{i}")).collect();
    for n in &names {
        store.create_namespace(n).await.unwrap();
    }
    let mut racing = tokio::task::JoinSet::new();
    for n in names.iter().chain(names.iter()) {
        let (store, n) = (store.clone(), n.clone());
        racing.spawn(async move { (n.clone(), store.namespace_uid(&n).await.unwrap()) });
    }
    let mut given = std::collections::HashMap::new();
    while let Some(done) = racing.join_next().await {
        let (n, uid) = done.unwrap();
        assert_eq!(
            *given.entry(n).or_insert(uid),
            uid,
            "one namespace, two uids"
        );
    }
    let mut uids: Vec<u32> = given.values().copied().collect();
    uids.push(a);
    uids.sort_unstable();
    uids.dedup();
    assert_eq!(uids.len(), 21, "two namespaces share a uid");
    // Deleted and made again: a new tenant of the same name never gets the old uid.
    let b = store.namespace_uid("b").await.unwrap();
    store.delete_namespace("b").await.unwrap();
    store.purge_deleted_namespace("b").await.unwrap();
    store.create_namespace("b").await.unwrap();
    let b_again = store.namespace_uid("b").await.unwrap();
    assert_ne!(b_again, b);
    assert!(!uids.contains(&b_again), "a uid was given twice");
}

async fn api_keys_are_per_namespace_shown_once_and_revoked_at_once(store: Store) {
    store.create_namespace("a").await.unwrap();
    store.create_namespace("b").await.unwrap();
    let key = store.create_api_key("a", "ci").await.unwrap();
    assert!(key.starts_with("mk_") && key.len() > 60, "{key}");
    assert_eq!(
        store.api_key_namespace(&key).await.unwrap().as_deref(),
        Some("a")
    );
    // A name is taken once per namespace; another namespace may use it, for another key.
    assert!(matches!(
        store.create_api_key("a", "ci").await,
        Err(StoreError::Exists(_))
    ));
    let theirs = store.create_api_key("b", "ci").await.unwrap();
    assert_ne!(theirs, key);
    assert_eq!(
        store.api_key_namespace(&theirs).await.unwrap().as_deref(),
        Some("b")
    );
    // Listed by name, never the key; unknown keys are nobody's.
    let listed = store.api_keys("a").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name, "ci");
    assert_eq!(store.api_key_namespace("mk_nosuch").await.unwrap(), None);
    // Revoked: the very next lookup finds nothing; the other namespace's stays.
    assert!(store.revoke_api_key("a", "ci").await.unwrap());
    assert!(!store.revoke_api_key("a", "ci").await.unwrap());
    assert_eq!(store.api_key_namespace(&key).await.unwrap(), None);
    assert!(store.api_key_namespace(&theirs).await.unwrap().is_some());
}

async fn a_domain_belongs_to_one_namespace(store: Store) {
    store.create_namespace("a").await.unwrap();
    store.create_namespace("b").await.unwrap();
    let claimed = store
        .claim_domain("a", "www.example.com", "web")
        .await
        .unwrap();
    assert_eq!(claimed.token.len(), 32);
    assert_eq!(claimed.proven_by, None);
    // A second claim, from anyone, is refused and changes nothing.
    for ns in ["a", "b"] {
        assert!(matches!(
            store.claim_domain(ns, "www.example.com", "other").await,
            Err(StoreError::Exists(_))
        ));
    }
    assert!(store.domains("b").await.unwrap().is_empty());
    // Its state is recorded by its owner only; another namespace cannot remove it.
    let live = DomainState {
        proven_by: Some("http-01".into()),
        cert_expires_at: Some(1_000),
        message: String::new(),
    };
    store
        .set_domain_state("b", "www.example.com", &live)
        .await
        .unwrap();
    assert_eq!(store.domains("a").await.unwrap()[0].proven_by, None);
    store
        .set_domain_state("a", "www.example.com", &live)
        .await
        .unwrap();
    let listed = store.domains("a").await.unwrap();
    assert_eq!(listed[0].proven_by.as_deref(), Some("http-01"));
    assert_eq!(listed[0].cert_expires_at, Some(1_000));
    assert_eq!(listed[0].service, "web");
    assert!(!store.remove_domain("b", "www.example.com").await.unwrap());
    assert_eq!(store.all_domains().await.unwrap().len(), 1);
    // Removed, it may be claimed again, by anyone.
    assert!(store.remove_domain("a", "www.example.com").await.unwrap());
    store
        .claim_domain("b", "www.example.com", "site")
        .await
        .unwrap();
    // A deleted namespace's domains go with it.
    store.delete_namespace("b").await.unwrap();
    store.purge_deleted_namespace("b").await.unwrap();
    assert!(store.all_domains().await.unwrap().is_empty());
}

async fn invitations_are_by_address_once_each_and_revocable(store: Store) {
    assert!(!store.is_invited("ann@example.com").await.unwrap());
    store.invite("Ann@Example.com", "admin@x").await.unwrap();
    store.invite("ann@example.com", "other@x").await.unwrap();
    store.invite("bob@example.com", "admin@x").await.unwrap();
    assert!(store.is_invited("ann@example.com").await.unwrap());
    let all = store.invites().await.unwrap();
    assert_eq!(
        all.iter().map(|i| i.email.as_str()).collect::<Vec<_>>(),
        ["ann@example.com", "bob@example.com"]
    );
    // The first invitation stands; inviting again changes nothing.
    assert_eq!(all[0].invited_by, "admin@x");
    assert!(store.revoke_invite("ANN@example.com").await.unwrap());
    assert!(!store.revoke_invite("ann@example.com").await.unwrap());
    assert!(!store.is_invited("ann@example.com").await.unwrap());
}

/// A store migrated by a newer build is refused, saying which, before anything is
/// written to it; this build's own store opens again as it is.
#[tokio::test]
async fn a_store_from_a_newer_micro_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let store = crate::Store::open_sqlite(&path).await.unwrap();
    drop(store);
    assert!(
        crate::Store::open_sqlite(&path).await.is_ok(),
        "its own store"
    );
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (9999, 'from the future', true, x'00', 0)",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    let err = crate::Store::open_sqlite(&path).await.unwrap_err();
    let said = err.to_string();
    assert!(
        said.contains("newer micro")
            && said.contains("9999")
            && said.contains("nothing was changed"),
        "{said}"
    );
}

/// Fills `from` with a little of everything, dumps it, loads it into the empty `to`:
/// the same rows come back, sealed values open with the same key, and a second load or
/// a load into a store with rows is refused.
async fn a_dump_loads_whole_into_an_empty_store(from: Store, to: Store) {
    let key = crate::Sealer::from_hex(&crate::Sealer::generate_hex()).unwrap();
    let sealed = from.clone().with_sealer(key.clone());
    sealed.create_namespace("a").await.unwrap();
    let dev = sealed
        .create_account("dev@a.example", Role::Developer, Some("a"))
        .await
        .unwrap();
    let token = sealed.mint_token(&dev, "t").await.unwrap();
    let v = sealed
        .put_config("a", "db.password", "\"hunter2\"", true)
        .await
        .unwrap();
    sealed
        .kv_write("a", "default", "k", "v", None)
        .await
        .unwrap();
    sealed
        .record_reconcile(&HistoryEntry {
            namespace: "a".into(),
            started_us: 7,
            revision: "r".into(),
            triggers: vec![crate::Trigger::Push],
            result: crate::ReconcileResult::Applied,
            summary: "1 to create".into(),
            error: None,
            duration_ms: 1,
            plan_ms: 0,
            apply_ms: 1,
            note: None,
        })
        .await
        .unwrap();
    let dump = sealed.dump().await.unwrap();
    assert_eq!(dump.rows("namespaces"), 1);
    assert_eq!(dump.rows("kv_records"), 1);
    assert!(!serde_json::to_string(&dump).unwrap().contains("hunter2"));
    assert!(!serde_json::to_string(&dump).unwrap().contains(&token));
    let to = to.with_sealer(key);
    to.load(&dump).await.unwrap();
    assert_eq!(to.dump().await.unwrap(), dump);
    assert_eq!(
        to.config_value("a", "db.password", v)
            .await
            .unwrap()
            .unwrap()
            .value,
        "\"hunter2\""
    );
    assert_eq!(to.authenticate(&token).await.unwrap().unwrap().id, dev.id);
    assert_eq!(to.history("a", 5).await.unwrap().len(), 1);
    let again = to.load(&dump).await.unwrap_err().to_string();
    assert!(again.contains("not empty"), "{again}");
    let mut newer = dump.clone();
    newer.schema += 1;
    let err = to.load(&newer).await.unwrap_err().to_string();
    assert!(err.contains("schema"), "{err}");
}

#[tokio::test]
async fn a_dump_loads_whole_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let from = Store::open_sqlite(&dir.path().join("a.db")).await.unwrap();
    let to = Store::open_sqlite(&dir.path().join("b.db")).await.unwrap();
    a_dump_loads_whole_into_an_empty_store(from, to).await;
}

#[tokio::test]
async fn a_dump_loads_whole_on_postgres() {
    let pg = micro_testkit::TempPostgres::start();
    let from = Store::connect(&pg.fresh_database("dump_from").await)
        .await
        .unwrap();
    let to = Store::connect(&pg.fresh_database("dump_to").await)
        .await
        .unwrap();
    a_dump_loads_whole_into_an_empty_store(from, to).await;
}

#[test]
fn the_dump_covers_every_table_the_migrations_make() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");
    let mut made = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let sql = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for part in sql.split("CREATE TABLE ").skip(1) {
            let name = part.split_whitespace().next().unwrap().to_owned();
            made.push(name);
        }
    }
    made.sort();
    let mut listed: Vec<String> = crate::TABLES.iter().map(|t| (*t).to_owned()).collect();
    listed.sort();
    assert_eq!(made, listed);
}

/// Each migration, applied to a store at the schema before it holding rows in every
/// table (three each, values shaped by the column's type), keeps every row; the newest
/// schema is then read by this build.
async fn every_migration_keeps_the_rows_before_it(url_for: impl AsyncFn(i64) -> String) {
    sqlx::any::install_default_drivers();
    let migrator = sqlx::migrate!("./migrations");
    let versions: Vec<i64> = migrator.iter().map(|m| m.version).collect();
    for pair in versions.windows(2) {
        let (before, version) = (pair[0], pair[1]);
        let url = url_for(version).await;
        let pool = sqlx::any::AnyPoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await
            .unwrap();
        migrator.run_to(before, &pool).await.unwrap();
        let postgres = url.starts_with("postgres");
        let tables: Vec<String> = if postgres {
            sqlx::query_scalar(
                "SELECT table_name::text FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_name NOT LIKE '\\_sqlx%'",
            )
            .fetch_all(&pool)
            .await
            .unwrap()
        } else {
            sqlx::query_scalar(
                "SELECT name FROM sqlite_master WHERE type = 'table' \
                 AND name NOT LIKE '\\_sqlx%' ESCAPE '\\' AND name NOT LIKE 'sqlite%'",
            )
            .fetch_all(&pool)
            .await
            .unwrap()
        };
        // Parents first: the tables in the order the migrations made them.
        let order: Vec<&str> = crate::TABLES.to_vec();
        let mut tables = tables;
        tables.sort_by_key(|t| order.iter().position(|o| o == t).unwrap_or(usize::MAX));
        for table in &tables {
            let columns: Vec<(String, String)> = if postgres {
                sqlx::query_as(
                    "SELECT column_name::text, data_type::text FROM information_schema.columns \
                     WHERE table_name = $1 AND table_schema = current_schema()",
                )
                .bind(table)
                .fetch_all(&pool)
                .await
                .unwrap()
            } else {
                sqlx::query_as("SELECT name, type FROM pragma_table_info($1)")
                    .bind(table)
                    .fetch_all(&pool)
                    .await
                    .unwrap()
            };
            let names: Vec<&str> = columns.iter().map(|(n, _)| n.as_str()).collect();
            let marks: Vec<String> = (1..=columns.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "INSERT INTO {table} ({}) VALUES ({})",
                names.join(", "),
                marks.join(", ")
            );
            for i in 1..=3i64 {
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.clone()));
                for (_, kind) in &columns {
                    q = if kind.to_ascii_lowercase().contains("int") {
                        q.bind(i)
                    } else {
                        q.bind(format!("v{i}"))
                    };
                }
                q.execute(&pool)
                    .await
                    .unwrap_or_else(|e| panic!("filling {table} at schema {before}: {e}"));
            }
        }
        migrator
            .run_to(version, &pool)
            .await
            .unwrap_or_else(|e| panic!("migration {version} over rows: {e}"));
        for table in &tables {
            let n: i64 =
                sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
                    .fetch_one(&pool)
                    .await
                    .unwrap();
            assert_eq!(n, 3, "migration {version} lost rows of {table}");
        }
        pool.close().await;
        if version == *versions.last().unwrap() {
            let store = Store::connect(&url).await.unwrap();
            assert_eq!(store.list_namespaces().await.unwrap(), ["v1", "v2", "v3"]);
            assert!(store.namespace_exists("v2").await.unwrap());
        }
    }
}

#[tokio::test]
async fn every_migration_keeps_the_rows_before_it_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    every_migration_keeps_the_rows_before_it(async |v| {
        format!(
            "sqlite://{}?mode=rwc",
            root.join(format!("m{v}.db")).display()
        )
    })
    .await;
}

#[tokio::test]
async fn every_migration_keeps_the_rows_before_it_on_postgres() {
    let pg = micro_testkit::TempPostgres::start();
    every_migration_keeps_the_rows_before_it(async |v| pg.fresh_database(&format!("m{v}")).await)
        .await;
}

/// A store the previous release wrote (`micro 0.1.0` at aa03941: two namespaces, a secret
/// and a plain config value, a key-value record, a deployed service's history, a
/// developer with a password; `tests/fixtures/README.md`), opened by this build: it
/// migrates forward and everything reads as it was.
#[tokio::test]
async fn a_store_the_previous_release_wrote_opens_migrated_with_its_data() {
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    std::fs::copy(format!("{fixtures}/release-0.1.0-aa03941.db"), &db).unwrap();
    let key =
        std::fs::read_to_string(format!("{fixtures}/release-0.1.0-aa03941.config.key")).unwrap();
    let store = Store::open_sqlite(&db)
        .await
        .unwrap()
        .with_sealer(crate::Sealer::from_hex(&key).unwrap());
    let newest = sqlx::migrate!("./migrations")
        .iter()
        .map(|m| m.version)
        .max()
        .unwrap();
    assert_eq!(store.schema_version().await.unwrap(), newest);
    assert_eq!(store.list_namespaces().await.unwrap(), ["default", "other"]);
    let secret = store
        .config_value("default", "greeting", 1)
        .await
        .unwrap()
        .unwrap();
    assert!(
        secret.secret && secret.value.contains("hello-fixture"),
        "{secret:?}"
    );
    let plain = store
        .config_value("default", "plain", 1)
        .await
        .unwrap()
        .unwrap();
    assert!(!plain.secret && plain.value.contains("just-text"));
    let q = crate::KvQuery {
        key: "visits",
        prefix: false,
        limit: 10,
        offset: 0,
    };
    let records = store.kv_read("default", "default", &q).await.unwrap();
    assert_eq!(records[0].value, "41");
    let history = store.history("default", 10).await.unwrap();
    assert!(
        history
            .iter()
            .any(|h| h.result == crate::ReconcileResult::Applied
                && h.summary.starts_with("1 to create")),
        "{history:?}"
    );
    assert!(
        store
            .check_password("dev@fixture.example", "fixture-password-1")
            .await
            .unwrap()
            .is_some()
    );
    // What the new schema added is there, empty, and usable.
    assert!(store.environments("default").await.unwrap().is_empty());
    store.record_call("default", "a", "b").await.unwrap();
}
