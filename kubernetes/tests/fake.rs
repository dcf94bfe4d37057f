//! The fake API server itself, through kube's own client: what the runtime's tests rely
//! on it doing as a real API server does.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams};
use micro_testkit::kubernetes::FakeApiServer;
use serde_json::json;

fn config_map(value: &str) -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "n", "labels": {"team": "x"}},
        "data": {"k": value}})
}

#[tokio::test]
async fn server_side_apply_conflicts_without_force_and_takes_over_with_it() {
    let fake = FakeApiServer::default();
    let api: Api<ConfigMap> = Api::namespaced(fake.client(), "n");
    let first = api
        .patch(
            "c",
            &PatchParams::apply("someone"),
            &Patch::Apply(&config_map("a")),
        )
        .await
        .unwrap();
    assert_eq!(first.metadata.generation, Some(1));
    let rv = first.metadata.resource_version.clone();
    // The same apply again changes nothing: no new resourceVersion.
    let same = api
        .patch(
            "c",
            &PatchParams::apply("someone"),
            &Patch::Apply(&config_map("a")),
        )
        .await
        .unwrap();
    assert_eq!(same.metadata.resource_version, rv);
    // Another manager setting the same field to another value: 409, nothing changed.
    let err = api
        .patch(
            "c",
            &PatchParams::apply("micro"),
            &Patch::Apply(&config_map("b")),
        )
        .await
        .unwrap_err();
    match err {
        kube::Error::Api(e) => {
            assert_eq!(e.code, 409);
            assert!(
                e.message.contains("conflict with \"someone\""),
                "{}",
                e.message
            );
        }
        other => panic!("{other}"),
    }
    assert_eq!(api.get("c").await.unwrap().data.unwrap()["k"], "a");
    // Forced, it takes the field over.
    let forced = api
        .patch(
            "c",
            &PatchParams::apply("micro").force(),
            &Patch::Apply(&config_map("b")),
        )
        .await
        .unwrap();
    assert_eq!(forced.data.unwrap()["k"], "b");
    let managers: Vec<String> = forced
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert!(managers.contains(&"micro".to_owned()), "{managers:?}");
}

#[tokio::test]
async fn lists_filter_by_label_and_unknown_objects_are_404() {
    let fake = FakeApiServer::default();
    let api: Api<ConfigMap> = Api::namespaced(fake.client(), "n");
    api.patch(
        "c",
        &PatchParams::apply("x"),
        &Patch::Apply(&config_map("a")),
    )
    .await
    .unwrap();
    let all: Api<ConfigMap> = Api::all(fake.client());
    assert_eq!(
        all.list(&ListParams::default().labels("team=x"))
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    assert_eq!(
        all.list(&ListParams::default().labels("team=y"))
            .await
            .unwrap()
            .items
            .len(),
        0
    );
    match api.get("nosuch").await.unwrap_err() {
        kube::Error::Api(e) => assert_eq!(e.code, 404),
        other => panic!("{other}"),
    }
}
