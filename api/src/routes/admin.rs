use crate::extract::Caller;
use crate::types::{CreateNamespace, NamespaceList};
use crate::{ApiError, ApiState};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use micro_reconciler::spec::check_namespace_name;
use micro_store::{Account, Role};

fn admin_only(account: &Account) -> Result<(), ApiError> {
    // Non-admins learn nothing about admin routes beyond "not here".
    if account.role == Role::Admin {
        Ok(())
    } else {
        Err(ApiError::NotFound("route".into()))
    }
}

pub async fn list_namespaces(
    State(state): State<ApiState>,
    Caller(caller): Caller,
) -> Result<Json<NamespaceList>, ApiError> {
    admin_only(&caller)?;
    Ok(Json(NamespaceList {
        namespaces: state.store.list_namespaces().await?,
    }))
}

pub async fn create_namespace(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Json(body): Json<CreateNamespace>,
) -> Result<(StatusCode, Json<CreateNamespace>), ApiError> {
    admin_only(&caller)?;
    check_namespace_name(&body.name).map_err(ApiError::BadRequest)?;
    if body.name == "micro" {
        return Err(ApiError::Conflict(
            "namespace micro is reserved for the platform".into(),
        ));
    }
    if state.store.namespace_exists(&body.name).await? {
        return Err(ApiError::Conflict(format!(
            "namespace {} already exists",
            body.name
        )));
    }
    // The repo first: a namespace row without its repo would be unusable.
    let (repos, name, exe) = (
        state.repos.clone(),
        body.name.clone(),
        state.hook_exe.clone(),
    );
    tokio::task::spawn_blocking(move || repos.create(&name, &exe))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| ApiError::Conflict(e.to_string()))?;
    state.store.create_namespace(&body.name).await?;
    state
        .controller
        .queue()
        .trigger(&body.name, micro_reconciler::Trigger::Created);
    Ok((StatusCode::CREATED, Json(body)))
}
