//! The channel connection RPCs: proto ↔ [`Connections`](crate::app::Connections). A
//! connection's tokens never reach a message: [`connection`] has no way to carry one.

use kem_kit::runtime::owner_id;
use kem_kit::validate::{IdShape, Violations};
use kem_proto::kem::distribution::v1 as pb;
use tonic::{Request, Response, Status};

use super::{checked, to_status};
use crate::app::DistributionCore;
use crate::app::connections::{ChannelStatus, Started};
use crate::domain::{ConnectionState, NaverCafe};
use crate::infra::messages::{label_info, timestamp};

/// Owner ids as the mesh carries them.
const OWNER_ID: IdShape = IdShape::Key { max: 64 };

/// The contract's connection state.
pub fn state(state: ConnectionState) -> pb::ConnectionState {
    match state {
        ConnectionState::NotNeeded => pb::ConnectionState::NotNeeded,
        ConnectionState::NotConnected => pb::ConnectionState::NotConnected,
        ConnectionState::Active => pb::ConnectionState::Active,
        ConnectionState::NeedsReconnect => pb::ConnectionState::NeedsReconnect,
    }
}

/// One channel's connection as the owner sees it.
pub fn connection(status: &ChannelStatus) -> pb::ChannelConnection {
    let view = status.connection.as_ref();
    pb::ChannelConnection {
        channel: status.channel.number(),
        state: state(status.state) as i32,
        account_id: view.map(|v| v.account_id.clone()).unwrap_or_default(),
        account_name: view.map(|v| v.account_name.clone()).unwrap_or_default(),
        scopes: view.map(|v| v.scopes.clone()).unwrap_or_default(),
        connect_time: view.map(|v| timestamp(v.connected_at)),
        expire_time: view.and_then(|v| v.expires_at).map(timestamp),
        refresh_time: view.and_then(|v| v.refreshed_at).map(timestamp),
        note: status.note.clone(),
        provider: Some(label_info(&status.provider)),
        naver_cafe: view
            .and_then(|v| v.naver_cafe.as_ref())
            .map(|c| pb::NaverCafe { club_id: c.club_id.clone(), menu_id: c.menu_id.clone() }),
    }
}

/// ListChannelConnections.
pub async fn list(
    core: &DistributionCore,
    request: Request<pb::ListChannelConnectionsRequest>,
) -> Result<Response<pb::ListChannelConnectionsResponse>, Status> {
    let owner = owner_id(&request)?;
    let list = core.connections().list(&owner).await.map_err(to_status)?;
    Ok(Response::new(pb::ListChannelConnectionsResponse { connections: list.iter().map(connection).collect() }))
}

/// StartChannelConnection.
pub async fn start(
    core: &DistributionCore,
    request: Request<pb::StartChannelConnectionRequest>,
) -> Result<Response<pb::StartChannelConnectionResponse>, Status> {
    let owner = owner_id(&request)?;
    let r = request.into_inner();
    let cafe = r.naver_cafe.map(|c| NaverCafe { club_id: c.club_id, menu_id: c.menu_id });
    let started = core.connections().start(&owner, r.channel, cafe, &r.kakao_channel_id).await.map_err(to_status)?;
    Ok(Response::new(match started {
        Started::Redirect { url, expires_at } => pb::StartChannelConnectionResponse {
            authorization_url: url,
            expire_time: Some(timestamp(expires_at)),
            connection: None,
        },
        // Kakao: connected at once, no browser.
        Started::Connected(status) => pb::StartChannelConnectionResponse {
            authorization_url: String::new(),
            expire_time: None,
            connection: Some(connection(&status)),
        },
    }))
}

/// CompleteChannelConnection: public (the browser arrives from the provider), so the owner is
/// the one who started the attempt; a signed-in caller may only complete their own.
pub async fn complete(
    core: &DistributionCore,
    request: Request<pb::CompleteChannelConnectionRequest>,
) -> Result<Response<pb::CompleteChannelConnectionResponse>, Status> {
    let caller = owner_id(&request).ok();
    let r = request.into_inner();
    let status = core
        .connections()
        .complete(caller.as_deref(), &r.state, &r.code, &r.error, &r.error_description)
        .await
        .map_err(to_status)?;
    Ok(Response::new(pb::CompleteChannelConnectionResponse { connection: Some(connection(&status)) }))
}

/// DeleteChannelConnection.
pub async fn delete(
    core: &DistributionCore,
    request: Request<pb::DeleteChannelConnectionRequest>,
) -> Result<Response<pb::DeleteChannelConnectionResponse>, Status> {
    let owner = owner_id(&request)?;
    let status = core.connections().delete(&owner, request.get_ref().channel).await.map_err(to_status)?;
    Ok(Response::new(pb::DeleteChannelConnectionResponse { connection: Some(connection(&status)) }))
}

/// CheckChannelConnections (mesh: the event service, before it accepts a publication).
pub async fn check(
    core: &DistributionCore,
    request: Request<pb::CheckChannelConnectionsRequest>,
) -> Result<Response<pb::CheckChannelConnectionsResponse>, Status> {
    let r = request.into_inner();
    checked(Violations::new().id("ownerId", &r.owner_id, OWNER_ID))?;
    let unusable = core.connections().unusable(&r.owner_id, &r.channels).await.map_err(to_status)?;
    Ok(Response::new(pb::CheckChannelConnectionsResponse { unusable: unusable.iter().map(connection).collect() }))
}
