//! Push devices over REST (PROTOCOL v1.1): parse, call
//! [`Logic`](crate::logic::Logic), shape the JSON; the rules are in
//! `logic/devices.rs`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::{ApiJson, AuthUser};
use super::{ApiResult, ApiState, ErrorBody};

/// A device to push to.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceBody {
    /// The client's name for the device, 1 to 64 characters.
    device_id: String,
    /// `apns`, `fcm` or `webhook`.
    platform: String,
    /// As the platform gave it; a webhook's is passed to the webhook as is.
    push_token: String,
}

/// A registered device.
#[derive(Serialize, ToSchema)]
pub struct DeviceView {
    device_id: String,
    platform: String,
}

#[utoipa::path(
    post,
    path = "/devices",
    tag = "accounts",
    operation_id = "register_device",
    security(("bearer" = [])),
    request_body = DeviceBody,
    responses(
        (status = 201, description = "Registered (or its platform and token replaced): offline pushes go to it", body = DeviceView),
        (status = 400, description = "A device_id, platform or push_token out of the rules", body = ErrorBody),
    )
)]
pub async fn register(
    State(s): State<ApiState>,
    user: AuthUser,
    ApiJson(body): ApiJson<DeviceBody>,
) -> ApiResult<(StatusCode, Json<DeviceView>)> {
    let device = s
        .logic
        .register_device(user.id, &body.device_id, &body.platform, &body.push_token)
        .await?;
    let view = DeviceView {
        device_id: device.device_id,
        platform: device.platform,
    };
    Ok((StatusCode::CREATED, Json(view)))
}

#[utoipa::path(
    delete,
    path = "/devices/{device_id}",
    tag = "accounts",
    operation_id = "remove_device",
    security(("bearer" = [])),
    params(("device_id" = String, Path, description = "A device the caller registered")),
    responses(
        (status = 204, description = "No more pushes to it"),
        (status = 404, description = "The caller registered no such device", body = ErrorBody),
    )
)]
pub async fn remove(
    State(s): State<ApiState>,
    user: AuthUser,
    Path(device_id): Path<String>,
) -> ApiResult<StatusCode> {
    s.logic.remove_device(user.id, &device_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
