use crate::extract::Admin;
use crate::types::{
    AccountInfo, CreateAccount, CreateNamespace, NamespaceDeleted, NamespaceList, SuspensionView,
};
use crate::{ApiError, ApiState};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use micro_store::{Deletion, Role, Suspension};

pub async fn list_namespaces(
    State(state): State<ApiState>,
    Admin(_): Admin,
) -> Result<Json<NamespaceList>, ApiError> {
    let namespaces = state.store.list_namespaces().await?;
    let mut quotas = Vec::with_capacity(namespaces.len());
    for ns in &namespaces {
        let quota = match micro_tenant::preview::parent_of(ns) {
            // A preview's is its class's, as written beside its repo.
            Some(_) => {
                let path = state.repos.path(ns);
                crate::blocking::blocking(move || micro_tenant::marks::quota(&path)).await?
            }
            None => super::quota::effective(&state, ns).await?,
        };
        quotas.push(super::quota::view(ns.clone(), quota));
    }
    Ok(Json(NamespaceList { namespaces, quotas }))
}

pub async fn create_namespace(
    State(state): State<ApiState>,
    Admin(_): Admin,
    Json(body): Json<CreateNamespace>,
) -> Result<(StatusCode, Json<CreateNamespace>), ApiError> {
    crate::namespaces::create(&state, &body.name).await?;
    Ok((StatusCode::CREATED, Json(body)))
}

/// `micro admin namespace delete NAME`: access to it ends with this request (its
/// accounts, tokens and service identities go in one transaction), then its repo, and
/// the reconciler stops what it ran.
pub async fn delete_namespace(
    State(state): State<ApiState>,
    Admin(caller): Admin,
    axum::extract::Path(ns): axum::extract::Path<String>,
) -> Result<Json<NamespaceDeleted>, ApiError> {
    if caller.namespace.as_deref() == Some(ns.as_str()) {
        return Err(ApiError::Conflict(format!(
            "namespace {ns} is your own account's: ask another admin"
        )));
    }
    // Its previews go first: each is a namespace of its own.
    if let Some(previews) = &state.previews
        && state.store.namespace_exists(&ns).await?
        && let Err(e) = previews.close_all(&ns).await
    {
        tracing::error!(namespace = %ns, error = %e, "previews not removed");
        return Err(ApiError::Internal(
            "its previews could not be removed; try again".into(),
        ));
    }
    let services = match state.controller.runtime().observe(&ns).await {
        Ok(running) => running.len(),
        // Counted for the answer only: the deletion does not wait on the runtime.
        Err(_) => 0,
    };
    let accounts = match state.store.delete_namespace(&ns).await? {
        Deletion::Deleted { accounts } => accounts,
        Deletion::Missing => return Err(ApiError::NotFound(format!("namespace {ns}"))),
        Deletion::Billed(billing) => {
            return Err(ApiError::Conflict(format!(
                "namespace {ns} has a live subscription ({}): cancel it first, or it goes on being billed",
                billing.as_str()
            )));
        }
    };
    let (repos, owned) = (state.repos.clone(), ns.clone());
    crate::blocking::blocking(move || repos.remove(&owned))
        .await?
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    state
        .controller
        .queue()
        .trigger(&ns, micro_store::Trigger::Deleted);
    tracing::info!(namespace = %ns, by = %caller.email, accounts, services, "namespace deleted");
    Ok(Json(NamespaceDeleted {
        namespace: ns,
        accounts,
        services,
    }))
}

/// Invite-only onboarding: an admin creates a developer of one namespace.
pub async fn create_account(
    State(state): State<ApiState>,
    Admin(_): Admin,
    Json(body): Json<CreateAccount>,
) -> Result<(StatusCode, Json<AccountInfo>), ApiError> {
    let email = body.email.trim().to_lowercase();
    check_new_account(&email, &body.password)?;
    if !state.store.namespace_exists(&body.namespace).await? {
        return Err(ApiError::NotFound(format!("namespace {}", body.namespace)));
    }
    let account = state
        .store
        .create_account(&email, Role::Developer, Some(&body.namespace))
        .await
        .map_err(|e| match e {
            micro_store::StoreError::Exists(what) => {
                ApiError::Conflict(format!("{what} already exists"))
            }
            other => other.into(),
        })?;
    state.store.set_password(&account, &body.password).await?;
    Ok((
        StatusCode::CREATED,
        Json(AccountInfo {
            email: account.email,
            role: account.role,
            namespace: account.namespace,
            plan: Some("free".into()),
            billing: None,
            suspended: None,
        }),
    ))
}

/// `micro admin account delete EMAIL`: the account and its tokens, at once.
pub async fn delete_account(
    State(state): State<ApiState>,
    Admin(caller): Admin,
    axum::extract::Path(email): axum::extract::Path<String>,
) -> Result<StatusCode, ApiError> {
    let email = email.trim().to_lowercase();
    if email == caller.email {
        return Err(ApiError::Conflict(
            "you cannot delete your own account: ask another admin".into(),
        ));
    }
    if state.store.delete_account(&email).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("account {email}")))
    }
}

pub async fn list_accounts(
    State(state): State<ApiState>,
    Admin(_): Admin,
) -> Result<Json<Vec<AccountInfo>>, ApiError> {
    let accounts = state.store.list_accounts().await?;
    let billing: std::collections::HashMap<_, _> = state
        .store
        .all_billing()
        .await?
        .into_iter()
        .map(|b| (b.namespace.clone(), b))
        .collect();
    let suspended: std::collections::HashMap<_, _> = state
        .store
        .suspended_namespaces()
        .await?
        .into_iter()
        .collect();
    Ok(Json(
        accounts
            .into_iter()
            .filter(|a| a.role != Role::Service)
            .map(|a| {
                let ns = a.namespace.as_deref().unwrap_or_default();
                let paid = billing.get(ns);
                AccountInfo {
                    plan: (a.role == Role::Developer)
                        .then(|| if paid.is_some() { "developer" } else { "free" }.to_owned()),
                    billing: paid.map(|b| b.state.as_str().to_owned()),
                    suspended: suspended.get(ns).map(|w| w.as_str().to_owned()),
                    email: a.email,
                    role: a.role,
                    namespace: a.namespace,
                }
            })
            .collect(),
    ))
}

/// `micro admin suspend NAMESPACE`: services stopped, writes refused, reads allowed.
pub async fn suspend(
    State(state): State<ApiState>,
    Admin(_): Admin,
    axum::extract::Path(ns): axum::extract::Path<String>,
) -> Result<Json<SuspensionView>, ApiError> {
    by_hand(&state, ns, true).await
}

/// `micro admin resume NAMESPACE`: lifts any suspension, billing's included.
pub async fn resume(
    State(state): State<ApiState>,
    Admin(_): Admin,
    axum::extract::Path(ns): axum::extract::Path<String>,
) -> Result<Json<SuspensionView>, ApiError> {
    by_hand(&state, ns, false).await
}

/// An admin's suspension (`suspend`) or lifting of any.
async fn by_hand(
    state: &ApiState,
    namespace: String,
    suspend: bool,
) -> Result<Json<SuspensionView>, ApiError> {
    if !state.store.namespace_exists(&namespace).await? {
        return Err(ApiError::NotFound(format!("namespace {namespace}")));
    }
    let changed = if suspend {
        state
            .suspensions
            .suspend(&namespace, Suspension::Admin)
            .await?
    } else {
        state.suspensions.resume(&namespace, None).await?
    };
    let suspended = state
        .store
        .suspension(&namespace)
        .await?
        .map(|w| w.as_str().to_owned());
    Ok(Json(SuspensionView {
        namespace,
        suspended,
        changed,
    }))
}

/// The rules every new account keeps, made by an admin or signed up: an email address
/// (lower-cased by the caller) not reserved for service identities, and a password of
/// at least 8 characters.
pub(crate) fn check_new_account(email: &str, password: &str) -> Result<(), ApiError> {
    if !is_email(email) {
        return Err(ApiError::BadRequest(format!(
            "{email:?} is not an email address"
        )));
    }
    if micro_store::is_reserved_email(email) {
        return Err(ApiError::BadRequest(format!(
            "{email}: addresses under service.micro belong to service identities"
        )));
    }
    if password.chars().count() < 8 {
        return Err(ApiError::BadRequest(
            "a password needs at least 8 characters".into(),
        ));
    }
    Ok(())
}

fn is_email(s: &str) -> bool {
    matches!(s.split_once('@'), Some((user, domain)) if !user.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.'))
        && s.len() <= 254
        && !s.chars().any(char::is_whitespace)
}

/// The reconciler's figures and the edge's per public service, in OpenMetrics text
/// (prometheus-client); a scraper uses an admin token.
pub async fn metrics(
    State(state): State<ApiState>,
    Admin(_): Admin,
) -> Result<impl axum::response::IntoResponse, ApiError> {
    let controller = &state.controller;
    controller
        .metrics()
        .set_queue_depth(controller.queue().pending());
    let mut body = String::new();
    prometheus_client::encoding::text::encode(&mut body, &state.metrics)
        .map_err(|e| ApiError::Internal(format!("metrics: {e}")))?;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    ))
}

/// Invitations (`--signup invite`): who may sign up.
pub async fn list_invites(
    State(state): State<ApiState>,
    Admin(_): Admin,
) -> Result<Json<Vec<crate::types::InviteView>>, ApiError> {
    Ok(Json(
        state
            .store
            .invites()
            .await?
            .into_iter()
            .map(|i| crate::types::InviteView {
                email: i.email,
                invited_by: i.invited_by,
                created_at: i.created_at,
            })
            .collect(),
    ))
}

/// Invites an address (again: nothing changes).
pub async fn invite(
    State(state): State<ApiState>,
    Admin(admin): Admin,
    Json(req): Json<crate::types::InviteRequest>,
) -> Result<axum::http::StatusCode, ApiError> {
    let email = req.email.trim().to_lowercase();
    check_new_account(&email, "a password long enough")?;
    state.store.invite(&email, &admin.email).await?;
    tracing::info!("address invited");
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// Revokes an invitation.
pub async fn revoke_invite(
    State(state): State<ApiState>,
    Admin(_): Admin,
    axum::extract::Path(email): axum::extract::Path<String>,
) -> Result<axum::http::StatusCode, ApiError> {
    if state.store.revoke_invite(&email).await? {
        Ok(axum::http::StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("an invitation of {email}")))
    }
}

/// `micro admin backup --platform`: the server writes a backup archive (sealed with the
/// passphrase in the body) and streams it back; nothing of it stays on the server.
pub async fn backup(
    State(state): State<ApiState>,
    Admin(caller): Admin,
    Json(body): Json<crate::types::BackupRequest>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    use tokio::io::AsyncReadExt;
    let Some(make) = &state.backup else {
        return Err(ApiError::Conflict(
            "this server makes no backups through the API: run `micro admin backup` where it runs"
                .into(),
        ));
    };
    if body.passphrase.len() < 8 {
        return Err(ApiError::BadRequest(
            "the passphrase is shorter than 8 characters: give a longer one".into(),
        ));
    }
    let path = make(body.passphrase).await.map_err(ApiError::Internal)?;
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| ApiError::Internal(format!("reading the backup: {e}")))?;
    // Open, it can go: the stream reads on from the open file.
    let _ = tokio::fs::remove_file(&path).await;
    tracing::info!(by = %caller.email, "backup taken through the API");
    let stream = futures_util::stream::unfold(file, |mut file| async move {
        let mut buf = vec![0u8; 64 << 10];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(bytes::Bytes::from(buf)), file))
            }
            Err(e) => Some((Err(e), file)),
        }
    });
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/x-tar")],
        axum::body::Body::from_stream(stream),
    )
        .into_response())
}
