//! The distribution service's `CheckChannelConnections` over the mesh: before a publication is
//! accepted, which of its channels need an account the owner has not connected (or must
//! reconnect). Refusing those up front tells the owner now, instead of a delivery failing
//! AUTH_REQUIRED minutes later.
//!
//! The check is advisory: when distribution cannot answer (down, slow, restarting), publishing
//! goes on and distribution itself fails an unconnected channel's delivery with AUTH_REQUIRED, so
//! an outage of one service never blocks owners from publishing to the channels that work.

use std::time::Duration;

use kem_kit::channel::Channel;
use kem_kit::runtime::Peers;
use kem_proto::kem::distribution::v1::CheckChannelConnectionsRequest;
use kem_proto::kem::distribution::v1::distribution_service_client::DistributionServiceClient;

use crate::app::PeerError;

use super::peer_error;

/// The peer's name in the mesh.
const PEER: &str = "distribution";
/// Longest wait: the answer is one indexed read; past this, publishing goes on without it.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// A channel the owner cannot publish to now, and why (distribution's note, for the owner).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnusableChannel {
    /// The channel.
    pub channel: Channel,
    /// `NOT_CONNECTED` or `NEEDS_RECONNECT`.
    pub state: String,
    /// What the owner should do.
    pub note: String,
}

/// Asks distribution through the balanced mTLS client of the `distribution` peer.
#[derive(Clone)]
pub struct MeshConnectionCheck {
    peers: Peers,
}

impl std::fmt::Debug for MeshConnectionCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeshConnectionCheck").finish_non_exhaustive()
    }
}

impl MeshConnectionCheck {
    /// Reaches distribution through `peers`.
    pub fn new(peers: Peers) -> MeshConnectionCheck {
        MeshConnectionCheck { peers }
    }

    /// The channels among `channels` that `owner` cannot publish to right now.
    pub async fn unusable(&self, owner: &str, channels: &[Channel]) -> Result<Vec<UnusableChannel>, PeerError> {
        let unavailable =
            |source: Box<dyn std::error::Error + Send + Sync>| PeerError::Unavailable { peer: PEER, source };
        let channel = self.peers.channel(PEER).map_err(|e| unavailable(Box::new(e)))?;
        let mut client = DistributionServiceClient::new(channel);
        let mut request = tonic::Request::new(CheckChannelConnectionsRequest {
            owner_id: owner.to_owned(),
            channels: channels.iter().map(|c| c.number()).collect(),
        });
        request.set_timeout(CHECK_TIMEOUT);
        let answer = match tokio::time::timeout(CHECK_TIMEOUT, client.check_channel_connections(request)).await {
            Ok(Ok(answer)) => answer.into_inner(),
            Ok(Err(status)) => return Err(peer_error(PEER, status)),
            Err(elapsed) => return Err(unavailable(Box::new(elapsed))),
        };
        Ok(answer
            .unusable
            .into_iter()
            .filter_map(|c| {
                let channel = Channel::from_number(c.channel)?;
                let state = kem_proto::kem::distribution::v1::ConnectionState::try_from(c.state)
                    .map(|s| s.as_str_name().trim_start_matches("CONNECTION_STATE_").to_owned())
                    .unwrap_or_else(|_| "NOT_CONNECTED".to_owned());
                Some(UnusableChannel { channel, state, note: c.note })
            })
            .collect())
    }
}
