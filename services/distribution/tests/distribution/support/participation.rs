//! The participation service as distribution sees it: `ListMarketingRecipients` over mesh mTLS,
//! allowed for the distribution workload by the contract's policy, paged like participation pages
//! (page_size 0 → 500, at most 1000; an opaque token; recipients ordered by phone). Counts calls.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use kem_proto::kem::participation::v1 as pb;
use kem_proto::kem::participation::v1::participation_service_server::ParticipationService;
use tonic::{Request, Response, Status};

use super::OWNER;

/// The recipient [`OWNER`] has from the start (the store's own test phone).
pub const FIRST_RECIPIENT: &str = "01012345678";

/// The fake participation service.
#[derive(Clone, Default)]
pub struct FakeParticipation {
    recipients: Arc<Mutex<HashMap<String, Vec<String>>>>,
    calls: Arc<AtomicU64>,
    /// Largest page answered whatever was asked (0: none), so paging is exercised.
    page_cap: Arc<AtomicU64>,
    /// Answer UNAVAILABLE to everything.
    down: Arc<std::sync::atomic::AtomicBool>,
}

impl FakeParticipation {
    /// With [`OWNER`] having one recipient, [`FIRST_RECIPIENT`].
    pub fn new() -> FakeParticipation {
        let fake = FakeParticipation::default();
        fake.set(OWNER, &[FIRST_RECIPIENT.to_owned()]);
        fake
    }

    /// Sets `owner`'s recipients (sorted as participation orders them).
    pub fn set(&self, owner: &str, phones: &[String]) {
        let mut phones = phones.to_vec();
        phones.sort();
        phones.dedup();
        self.recipients.lock().expect("recipients").insert(owner.to_owned(), phones);
    }

    /// Answers UNAVAILABLE (participation's database down) while `down`.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// Answers at most `n` recipients per page.
    pub fn cap_pages(&self, n: u64) {
        self.page_cap.store(n, Ordering::SeqCst);
    }

    /// ListMarketingRecipients calls received.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }
}

/// `n` distinct mobile numbers (`0105000xxxx`), sorted.
pub fn phones(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("0105000{i:04}")).collect()
}

#[tonic::async_trait]
impl ParticipationService for FakeParticipation {
    async fn list_marketing_recipients(
        &self,
        request: Request<pb::ListMarketingRecipientsRequest>,
    ) -> Result<Response<pb::ListMarketingRecipientsResponse>, Status> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) {
            return Err(Status::unavailable("participation storage unavailable"));
        }
        let r = request.into_inner();
        if r.owner_id.is_empty() {
            return Err(Status::invalid_argument("owner_id is required"));
        }
        let size = match r.page_size {
            0 => 500,
            n @ 1..=1000 => n as usize,
            _ => return Err(Status::invalid_argument("page_size must be 0 to 1000")),
        };
        let cap = self.page_cap.load(Ordering::SeqCst) as usize;
        let size = if cap > 0 { size.min(cap) } else { size };
        let offset = if r.page_token.is_empty() {
            0
        } else {
            r.page_token
                .strip_prefix("p:")
                .and_then(|n| n.parse::<usize>().ok())
                .ok_or_else(|| Status::invalid_argument("malformed page_token"))?
        };
        let all = self.recipients.lock().expect("recipients").get(&r.owner_id).cloned().unwrap_or_default();
        let page: Vec<pb::MarketingRecipient> = all
            .iter()
            .skip(offset)
            .take(size)
            .map(|phone| pb::MarketingRecipient { phone: phone.clone(), consent_time: None })
            .collect();
        let next = offset + page.len();
        let next_page_token = if next < all.len() { format!("p:{next}") } else { String::new() };
        Ok(Response::new(pb::ListMarketingRecipientsResponse { recipients: page, next_page_token }))
    }
}
