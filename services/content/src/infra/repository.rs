//! The image repository on the kit's [`Store`]: one SQL text for PostgreSQL and SQLite (`$n`
//! placeholders, millisecond `BIGINT` times, JSON text for failures), and the idempotent inbox
//! for finished work messages.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use kem_kit::outbox::{Inbox, InboxError, Processed};
use kem_kit::store::{self, AssertSqlSafe, Row, Store, StoreError};

use crate::app::ports::{Claim, RepoError};
use crate::domain::failure::Failure;
use crate::domain::image::{GenerationState, Image, Render, StyleState};
use crate::domain::values::{Channel, ImageSize, ImageStyle, Millis, Provenance, ProviderKind};

const IMAGE_COLUMNS: &str = "i.id, i.event_id, i.owner_id, i.job_id, i.style, i.channel, i.width, i.height, \
     i.content_type, i.blob_key, i.size_bytes, i.sha256, i.prompt, i.render_key, i.seed, i.provider_kind, \
     i.provider_name, i.provider_model, i.provider_request_id, i.cached, i.created_at";

const INSERT_IMAGE: &str = "INSERT INTO images (id, event_id, owner_id, job_id, style, channel, width, height, \
     content_type, blob_key, size_bytes, sha256, prompt, render_key, seed, provider_kind, provider_name, \
     provider_model, provider_request_id, cached, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)";

const UPSERT_STATE: &str = "INSERT INTO style_states (event_id, style, state, job_id, error, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6) \
     ON CONFLICT (event_id, style) DO UPDATE SET state = excluded.state, job_id = excluded.job_id, \
     error = excluded.error, updated_at = excluded.updated_at";

const UPSERT_RENDER: &str = "INSERT INTO renders (render_key, blob_key, content_type, width, height, size_bytes, \
     sha256, seed, provider_kind, provider_name, provider_model, provider_request_id, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
     ON CONFLICT (render_key) DO UPDATE SET blob_key = excluded.blob_key, content_type = excluded.content_type, \
     width = excluded.width, height = excluded.height, size_bytes = excluded.size_bytes, sha256 = excluded.sha256, \
     seed = excluded.seed, provider_kind = excluded.provider_kind, provider_name = excluded.provider_name, \
     provider_model = excluded.provider_model, provider_request_id = excluded.provider_request_id, \
     created_at = excluded.created_at";

/// Images, states and renders over a [`Store`].
pub struct SqlImageRepository {
    store: Store,
    /// Set while the database is failing, so an outage logs one warning.
    degraded: AtomicBool,
}

impl std::fmt::Debug for SqlImageRepository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlImageRepository").field("store", &self.store.target()).finish_non_exhaustive()
    }
}

fn failed(what: &str, reason: impl std::fmt::Display) -> RepoError {
    RepoError::Corrupt(format!("{what}: {reason}"))
}

fn get<T: store::Decodable>(row: &Row, column: &str) -> Result<T, RepoError> {
    row.get(column).map_err(|e| failed("cannot read a row", e))
}

fn dimension(row: &Row, column: &str) -> Result<u32, RepoError> {
    let value: i64 = get(row, column)?;
    u32::try_from(value).map_err(|_| failed(&format!("stored {column} is out of range"), value))
}

/// The `provider_*` columns shared by images and renders.
fn provenance(row: &Row) -> Result<Provenance, RepoError> {
    let kind: String = get(row, "provider_kind")?;
    Ok(Provenance {
        kind: ProviderKind::parse(&kind).ok_or_else(|| failed("unknown stored provider kind", &kind))?,
        name: get(row, "provider_name")?,
        model: get(row, "provider_model")?,
        request_id: get(row, "provider_request_id")?,
    })
}

fn image_from_row(row: &Row) -> Result<Image, RepoError> {
    let style: String = get(row, "style")?;
    let channel: String = get(row, "channel")?;
    Ok(Image {
        id: get(row, "id")?,
        event_id: get(row, "event_id")?,
        owner_id: get(row, "owner_id")?,
        job_id: get(row, "job_id")?,
        style: ImageStyle::parse(&style).ok_or_else(|| failed("unknown stored style", &style))?,
        size: ImageSize {
            channel: Channel::parse(&channel).ok_or_else(|| failed("unknown stored channel", &channel))?,
            width: dimension(row, "width")?,
            height: dimension(row, "height")?,
        },
        content_type: get(row, "content_type")?,
        blob_key: get(row, "blob_key")?,
        size_bytes: get(row, "size_bytes")?,
        sha256: get(row, "sha256")?,
        prompt: get(row, "prompt")?,
        render_key: get(row, "render_key")?,
        seed: get(row, "seed")?,
        provenance: provenance(row)?,
        cached: get(row, "cached")?,
        created_at: get(row, "created_at")?,
    })
}

fn render_from_row(row: &Row) -> Result<Render, RepoError> {
    Ok(Render {
        render_key: get(row, "render_key")?,
        blob_key: get(row, "blob_key")?,
        content_type: get(row, "content_type")?,
        width: dimension(row, "width")?,
        height: dimension(row, "height")?,
        size_bytes: get(row, "size_bytes")?,
        sha256: get(row, "sha256")?,
        seed: get(row, "seed")?,
        provenance: provenance(row)?,
        created_at: get(row, "created_at")?,
    })
}

fn state_from_row(row: &Row) -> Result<StyleState, RepoError> {
    let style: String = get(row, "style")?;
    let state: String = get(row, "state")?;
    let error = get::<Option<String>>(row, "error")?
        .map(|text| serde_json::from_str::<Failure>(&text).map_err(|e| failed("stored style error is not valid", e)))
        .transpose()?;
    Ok(StyleState {
        style: ImageStyle::parse(&style).ok_or_else(|| failed("unknown stored style", &style))?,
        state: GenerationState::parse(&state).ok_or_else(|| failed("unknown stored state", &state))?,
        job_id: get(row, "job_id")?,
        error,
        updated_at: get(row, "updated_at")?,
    })
}

fn style_order(style: ImageStyle) -> usize {
    ImageStyle::ALL.iter().position(|s| *s == style).unwrap_or(usize::MAX)
}

impl SqlImageRepository {
    /// A repository on `store` (its migrations applied).
    pub fn new(store: Store) -> SqlImageRepository {
        SqlImageRepository { store, degraded: AtomicBool::new(false) }
    }

    fn store_error(&self, error: StoreError) -> RepoError {
        if error.is_transient() {
            if !self.degraded.swap(true, Ordering::Relaxed) {
                tracing::warn!(%error, database = self.store.target(), "content database unavailable");
            }
            RepoError::Unavailable(Arc::new(error))
        } else {
            tracing::error!(%error, database = self.store.target(), "content database failure");
            RepoError::Failed(Arc::new(error))
        }
    }

    fn ok<T>(&self, result: Result<T, StoreError>) -> Result<T, RepoError> {
        match result {
            Ok(value) => {
                if self.degraded.load(Ordering::Relaxed) && self.degraded.swap(false, Ordering::Relaxed) {
                    tracing::info!(database = self.store.target(), "content database available again");
                }
                Ok(value)
            }
            Err(error) => Err(self.store_error(error)),
        }
    }

    fn state_query(event_id: &str, state: &StyleState) -> Result<store::Query, RepoError> {
        let error = state
            .error
            .as_ref()
            .map(|e| serde_json::to_string(e).map_err(|e| failed("cannot encode a style error", e)))
            .transpose()?;
        Ok(store::query(UPSERT_STATE)
            .bind(event_id.to_owned())
            .bind(state.style.as_str())
            .bind(state.state.as_str())
            .bind(state.job_id.clone())
            .bind(error)
            .bind(state.updated_at))
    }
}

fn insert_image(image: &Image) -> store::Query {
    store::query(INSERT_IMAGE)
        .bind(image.id.clone())
        .bind(image.event_id.clone())
        .bind(image.owner_id.clone())
        .bind(image.job_id.clone())
        .bind(image.style.as_str())
        .bind(image.size.channel.as_str())
        .bind(i64::from(image.size.width))
        .bind(i64::from(image.size.height))
        .bind(image.content_type.clone())
        .bind(image.blob_key.clone())
        .bind(image.size_bytes)
        .bind(image.sha256.clone())
        .bind(image.prompt.clone())
        .bind(image.render_key.clone())
        .bind(image.seed)
        .bind(image.provenance.kind.as_str())
        .bind(image.provenance.name.clone())
        .bind(image.provenance.model.clone())
        .bind(image.provenance.request_id.clone())
        .bind(image.cached)
        .bind(image.created_at)
}

/// Why recording an image's slot did not commit.
enum RecordError {
    Store(StoreError),
    /// Another delivery recorded the slot first.
    Taken,
}

impl From<StoreError> for RecordError {
    fn from(error: StoreError) -> Self {
        RecordError::Store(error)
    }
}

impl SqlImageRepository {
    /// Records that `event_id` belongs to `owner_id` (first request), or tells who owns it.
    pub async fn claim_event(&self, event_id: &str, owner_id: &str, now: Millis) -> Result<Claim, RepoError> {
        let inserted = store::query(
            "INSERT INTO content_events (event_id, owner_id, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (event_id) DO NOTHING",
        )
        .bind(event_id.to_owned())
        .bind(owner_id.to_owned())
        .bind(now)
        .execute(&self.store)
        .await;
        self.ok(inserted)?;
        match self.event_owner(event_id).await? {
            Some(owner) if owner == owner_id => Ok(Claim::Owned),
            Some(owner) => Ok(Claim::OwnedByOther(owner)),
            None => Err(failed("the event's owner vanished right after it was recorded", event_id)),
        }
    }

    /// The owner of `event_id`, if content has heard of the event.
    pub async fn event_owner(&self, event_id: &str) -> Result<Option<String>, RepoError> {
        let row = store::query("SELECT owner_id FROM content_events WHERE event_id = $1")
            .bind(event_id.to_owned())
            .fetch_optional(self.store.primary())
            .await;
        self.ok(row)?.map(|row| get(&row, "owner_id")).transpose()
    }

    /// Upserts the generation state of some styles of an event.
    pub async fn save_style_states(&self, event_id: &str, states: &[StyleState]) -> Result<(), RepoError> {
        if states.is_empty() {
            return Ok(());
        }
        let queries = states.iter().map(|s| Self::state_query(event_id, s)).collect::<Result<Vec<_>, _>>()?;
        let result: Result<(), StoreError> = async {
            let mut tx = self.store.begin().await?;
            for query in queries {
                query.execute(&mut tx).await?;
            }
            tx.commit().await
        }
        .await;
        self.ok(result)
    }

    /// The generation state of each style of an event that has one, in style order.
    pub async fn style_states(&self, event_id: &str) -> Result<Vec<StyleState>, RepoError> {
        let rows = store::query("SELECT style, state, job_id, error, updated_at FROM style_states WHERE event_id = $1")
            .bind(event_id.to_owned())
            .fetch_all(self.store.primary())
            .await;
        let mut states = self.ok(rows)?.iter().map(state_from_row).collect::<Result<Vec<_>, _>>()?;
        states.sort_by_key(|s| style_order(s.style));
        Ok(states)
    }

    /// The images already recorded for `job_id`, by slot key (progress of an earlier delivery).
    pub async fn job_images(&self, job_id: &str) -> Result<Vec<(String, Image)>, RepoError> {
        let sql = format!(
            "SELECT j.slot, {IMAGE_COLUMNS} FROM job_images j JOIN images i ON i.id = j.image_id WHERE j.job_id = $1"
        );
        let rows = store::query(AssertSqlSafe(sql)).bind(job_id.to_owned()).fetch_all(self.store.primary()).await;
        self.ok(rows)?.iter().map(|row| Ok((get::<String>(row, "slot")?, image_from_row(row)?))).collect()
    }

    /// An image of `event_id` made for the same style, size and render (a re-request reuses it).
    pub async fn reusable_image(
        &self,
        event_id: &str,
        style: ImageStyle,
        size: &ImageSize,
        render_key: &str,
    ) -> Result<Option<Image>, RepoError> {
        let sql = format!(
            "SELECT {IMAGE_COLUMNS} FROM images i WHERE i.event_id = $1 AND i.style = $2 AND i.channel = $3 \
             AND i.width = $4 AND i.height = $5 AND i.render_key = $6 ORDER BY i.created_at DESC, i.id DESC LIMIT 1"
        );
        let row = store::query(AssertSqlSafe(sql))
            .bind(event_id.to_owned())
            .bind(style.as_str())
            .bind(size.channel.as_str())
            .bind(i64::from(size.width))
            .bind(i64::from(size.height))
            .bind(render_key.to_owned())
            .fetch_optional(self.store.primary())
            .await;
        self.ok(row)?.as_ref().map(image_from_row).transpose()
    }

    /// Records `image` as the result of `slot` of `job_id`, inserting it when `new`. Exactly one
    /// image per job and slot: when another delivery recorded the slot first, nothing is inserted
    /// and that image is returned.
    pub async fn record_image(&self, job_id: &str, slot: &str, image: &Image, new: bool) -> Result<Image, RepoError> {
        let result: Result<(), RecordError> = async {
            let mut tx = self.store.begin().await?;
            if new {
                insert_image(image).execute(&mut tx).await?;
            }
            // A concurrent delivery that recorded the slot first makes this a no-op: the
            // transaction then rolls back, the image row with it.
            let recorded = store::query(
                "INSERT INTO job_images (job_id, slot, image_id, created_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (job_id, slot) DO NOTHING",
            )
            .bind(job_id.to_owned())
            .bind(slot.to_owned())
            .bind(image.id.clone())
            .bind(image.created_at)
            .execute(&mut tx)
            .await?;
            if recorded == 0 {
                tx.rollback().await?;
                return Err(RecordError::Taken);
            }
            tx.commit().await?;
            Ok(())
        }
        .await;
        match result {
            Ok(()) => Ok(image.clone()),
            Err(RecordError::Taken) => {
                let winner = self.job_images(job_id).await?.into_iter().find(|(s, _)| s == slot).map(|(_, i)| i);
                winner.ok_or_else(|| failed("a job slot was taken but holds no image", slot))
            }
            Err(RecordError::Store(error)) => Err(self.store_error(error)),
        }
    }

    /// The images of an event, newest first, optionally of one style.
    pub async fn list_images(&self, event_id: &str, style: Option<ImageStyle>) -> Result<Vec<Image>, RepoError> {
        let rows = match style {
            Some(style) => {
                let sql = format!(
                    "SELECT {IMAGE_COLUMNS} FROM images i WHERE i.event_id = $1 AND i.style = $2 \
                     ORDER BY i.created_at DESC, i.id DESC"
                );
                store::query(AssertSqlSafe(sql))
                    .bind(event_id.to_owned())
                    .bind(style.as_str())
                    .fetch_all(self.store.reader())
                    .await
            }
            None => {
                let sql = format!(
                    "SELECT {IMAGE_COLUMNS} FROM images i WHERE i.event_id = $1 ORDER BY i.created_at DESC, i.id DESC"
                );
                store::query(AssertSqlSafe(sql)).bind(event_id.to_owned()).fetch_all(self.store.reader()).await
            }
        };
        self.ok(rows)?.iter().map(image_from_row).collect()
    }

    /// One image.
    pub async fn find_image(&self, image_id: &str) -> Result<Option<Image>, RepoError> {
        let sql = format!("SELECT {IMAGE_COLUMNS} FROM images i WHERE i.id = $1");
        let row = store::query(AssertSqlSafe(sql)).bind(image_id.to_owned()).fetch_optional(self.store.reader()).await;
        self.ok(row)?.as_ref().map(image_from_row).transpose()
    }

    /// The render stored under `render_key`, fresh or not.
    pub async fn find_render(&self, render_key: &str) -> Result<Option<Render>, RepoError> {
        let row = store::query(
            "SELECT render_key, blob_key, content_type, width, height, size_bytes, sha256, seed, provider_kind, \
             provider_name, provider_model, provider_request_id, created_at FROM renders WHERE render_key = $1",
        )
        .bind(render_key.to_owned())
        .fetch_optional(self.store.primary())
        .await;
        self.ok(row)?.as_ref().map(render_from_row).transpose()
    }

    /// Stores (or replaces) a render.
    pub async fn save_render(&self, render: &Render) -> Result<(), RepoError> {
        let result = store::query(UPSERT_RENDER)
            .bind(render.render_key.clone())
            .bind(render.blob_key.clone())
            .bind(render.content_type.clone())
            .bind(i64::from(render.width))
            .bind(i64::from(render.height))
            .bind(render.size_bytes)
            .bind(render.sha256.clone())
            .bind(render.seed)
            .bind(render.provenance.kind.as_str())
            .bind(render.provenance.name.clone())
            .bind(render.provenance.model.clone())
            .bind(render.provenance.request_id.clone())
            .bind(render.created_at)
            .execute(&self.store)
            .await;
        self.ok(result).map(drop)
    }

    /// Forgets renders made before `before`. Returns how many.
    pub async fn purge_renders(&self, before: Millis) -> Result<u64, RepoError> {
        let result = store::query("DELETE FROM renders WHERE created_at < $1").bind(before).execute(&self.store).await;
        self.ok(result)
    }

    /// Whether the work message `message_id` was finished by `consumer`.
    pub async fn job_finished(&self, consumer: &str, message_id: &str) -> Result<bool, RepoError> {
        let seen = Inbox::seen(&self.store, consumer, message_id).await;
        self.ok(seen)
    }

    /// Marks the work message finished (inbox) and stores the final style states, atomically.
    /// `false` when it was already finished (nothing stored).
    pub async fn finish_job(
        &self,
        consumer: &str,
        message_id: &str,
        event_id: &str,
        states: &[StyleState],
    ) -> Result<bool, RepoError> {
        let queries = states.iter().map(|s| Self::state_query(event_id, s)).collect::<Result<Vec<_>, _>>()?;
        let processed = Inbox::process(&self.store, consumer, message_id, |tx| {
            Box::pin(async move {
                for query in queries {
                    query.execute(&mut *tx).await?;
                }
                Ok::<(), StoreError>(())
            })
        })
        .await;
        match processed {
            Ok(Processed::Applied(())) => Ok(true),
            Ok(Processed::Duplicate) => Ok(false),
            Err(InboxError::Store(error)) | Err(InboxError::Effect(error)) => Err(self.store_error(error)),
        }
    }
}
