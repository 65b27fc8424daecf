//! The recipients of an owner's Kakao 친구톡: the people who entered one of the owner's events and
//! agreed to receive the store's marketing messages, from the participation service
//! (`kem.participation.v1.ParticipationService/ListMarketingRecipients` over the mesh; the method
//! allows the distribution workload), read page by page to the end. Never cached: a withdrawn
//! consent must stop the next send.

use std::time::Duration;

use kem_kit::runtime::Peers;
use kem_proto::kem::participation::v1::ListMarketingRecipientsRequest;
use kem_proto::kem::participation::v1::participation_service_client::ParticipationServiceClient;
use tonic::Code;

use crate::domain::text::domestic_phone;
use crate::domain::{ErrorReason, Failure};

/// Recipients asked for per page (the method's maximum).
const PAGE_SIZE: i32 = 1_000;
/// Pages read at most (a million recipients): a page token that never ends is a defect, not a
/// reason to loop forever.
const MAX_PAGES: usize = 1_000;

/// Marketing recipients looked up over the mesh.
#[derive(Clone)]
pub struct MeshRecipients {
    peers: Peers,
    timeout: Duration,
}

impl std::fmt::Debug for MeshRecipients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeshRecipients").field("timeout", &self.timeout).finish_non_exhaustive()
    }
}

impl MeshRecipients {
    /// Looks recipients up through the `participation` peer, each page waiting at most `timeout`.
    pub fn new(peers: Peers, timeout: Duration) -> MeshRecipients {
        MeshRecipients { peers, timeout }
    }

    /// The domestic mobile numbers (digits, `010…`) of `owner_id`'s marketing recipients, sorted
    /// and without repeats (the order a send's progress is recorded in); a failure says whether
    /// waiting may help.
    pub async fn list(&self, owner_id: &str) -> Result<Vec<String>, Failure> {
        let unavailable = |why: String| {
            Failure::new(
                ErrorReason::ProviderUnavailable,
                format!("the recipients cannot be read from the participation service now: {why}"),
                true,
            )
        };
        let channel = self.peers.channel("participation").map_err(|e| unavailable(e.to_string()))?;
        let mut client = ParticipationServiceClient::new(channel);
        let mut phones = Vec::new();
        let mut token = String::new();
        for _ in 0..MAX_PAGES {
            let mut request = tonic::Request::new(ListMarketingRecipientsRequest {
                owner_id: owner_id.to_owned(),
                page_size: PAGE_SIZE,
                page_token: token.clone(),
            });
            request.set_timeout(self.timeout);
            let page = match tokio::time::timeout(self.timeout, client.list_marketing_recipients(request)).await {
                Ok(Ok(page)) => page.into_inner(),
                Ok(Err(status)) if transient(status.code()) => {
                    return Err(unavailable(format!("{:?}: {}", status.code(), status.message())));
                }
                Ok(Err(status)) => {
                    return Err(Failure::new(
                        ErrorReason::Internal,
                        format!(
                            "the participation service refused the recipient list ({:?}: {})",
                            status.code(),
                            status.message()
                        ),
                        false,
                    ));
                }
                Err(_) => return Err(unavailable(format!("no answer within {:?}", self.timeout))),
            };
            // A number participation would never list (it keeps digits only) is dropped rather
            // than sent to SENS, which would refuse the whole request for it.
            phones.extend(page.recipients.into_iter().filter_map(|r| domestic_phone(&r.phone)));
            if page.next_page_token.is_empty() {
                phones.sort();
                phones.dedup();
                return Ok(phones);
            }
            if page.next_page_token == token {
                return Err(Failure::new(
                    ErrorReason::Internal,
                    "the participation service answered the same page token twice",
                    false,
                ));
            }
            token = page.next_page_token;
        }
        Err(Failure::new(
            ErrorReason::Internal,
            format!("the recipient list did not end within {MAX_PAGES} pages"),
            false,
        ))
    }
}

/// Whether a status from participation may pass by itself.
fn transient(code: Code) -> bool {
    matches!(code, Code::Unavailable | Code::DeadlineExceeded | Code::ResourceExhausted | Code::Aborted | Code::Unknown)
}
