//! The use cases: Sign and ListEntries, and the [`GuestbookError`] they fail with. They speak
//! domain types only; the [`api`](crate::api) turns them into contract messages and statuses.

use std::sync::Arc;

use kem_kit::clock::Clock;
use kem_kit::store::StoreError;
use kem_kit::validate::Violation;

use crate::config::GuestbookConfig;
use crate::domain::{Entry, PageRequest, RequestId, Signature};
use crate::infra::{Inserted, Repository};

/// Why a use case failed, in the terms the contract documents.
#[derive(Debug, thiserror::Error)]
pub enum GuestbookError {
    /// The request breaks the rules: every violation, by field.
    #[error("invalid request ({} violations)", .0.len())]
    InvalidArgument(Vec<Violation>),
    /// The request id already signed this guestbook with another name or message.
    #[error("the request id already signed this guestbook with other content")]
    RequestIdReused,
    /// Storage cannot be reached now; nothing was stored, so the caller may retry.
    #[error("storage unavailable: {0}")]
    Unavailable(StoreError),
    /// Anything else: a bug or a schema mismatch, logged and never detailed to the caller.
    #[error("internal: {0}")]
    Internal(StoreError),
}

impl From<StoreError> for GuestbookError {
    fn from(error: StoreError) -> Self {
        if error.is_transient() { GuestbookError::Unavailable(error) } else { GuestbookError::Internal(error) }
    }
}

/// A page of a guestbook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// Entries in signing order.
    pub entries: Vec<Entry>,
    /// Token of the next page; empty on the last one.
    pub next_page_token: String,
}

/// The guestbook's use cases over its repository and clock.
#[derive(Debug)]
pub struct GuestbookApp {
    repo: Repository,
    clock: Arc<dyn Clock>,
    config: GuestbookConfig,
}

impl GuestbookApp {
    /// The use cases over `repo`, reading "now" from `clock` (a `ManualClock` in tests).
    pub fn new(repo: Repository, clock: Arc<dyn Clock>, config: GuestbookConfig) -> GuestbookApp {
        GuestbookApp { repo, clock, config }
    }

    /// Signs a guestbook once per `request_id`: a retry of a stored request answers with its
    /// entry; the same request id with other content is refused rather than silently ignored.
    pub async fn sign(&self, signature: Signature, request_id: Option<RequestId>) -> Result<Entry, GuestbookError> {
        signature.validate(self.config.max_message_chars).map_err(GuestbookError::InvalidArgument)?;
        let id = kem_kit::ids::random_uuid();
        match self.repo.insert(&id, &signature, request_id.as_ref(), self.clock.now_ms()).await? {
            Inserted::New(entry) => {
                tracing::debug!(entry_id = %entry.id, event_id = %entry.signature.event_id, "guestbook signed");
                Ok(entry)
            }
            Inserted::Existing(entry) if entry.signature == signature => Ok(entry),
            Inserted::Existing(_) => Err(GuestbookError::RequestIdReused),
        }
    }

    /// One page of `event_id`'s guestbook.
    pub async fn list(&self, event_id: &str, page_size: i32, page_token: &str) -> Result<Page, GuestbookError> {
        let page = PageRequest::parse(event_id, page_size, page_token).map_err(GuestbookError::InvalidArgument)?;
        let (entries, more) = self.repo.page(event_id, page).await?;
        let next_page_token = match entries.last() {
            Some(last) if more => PageRequest::token_after(last),
            _ => String::new(),
        };
        Ok(Page { entries, next_page_token })
    }
}
