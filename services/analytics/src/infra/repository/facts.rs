//! Applying one queue fact to the aggregates, inside the caller's (inbox) transaction.

use std::sync::LazyLock;

use kem_kit::store::{Tx, query};

use super::{Repository, Result, Touched, col, encode_channels};
use crate::domain::figures::hour_start;
use crate::domain::{Delivery, Draw, EventFact, Fact, Outcome, StateSnapshot};

/// Creates the event's row or updates who owns it and how recent its data is; returns the owner,
/// or `None` when the event was deleted (then nothing else may change). Owner ids from the event
/// service (`authoritative`) replace what is stored; others only fill an unknown owner.
const TOUCH: &str = "\
INSERT INTO analytics_events (event_id, owner_id, data_at, created_at) VALUES ($1, $2, $3, $4)
ON CONFLICT (event_id) DO UPDATE SET
    owner_id = CASE WHEN excluded.owner_id <> '' AND (analytics_events.owner_id = '' OR $5)
                    THEN excluded.owner_id ELSE analytics_events.owner_id END,
    data_at = CASE WHEN excluded.data_at > analytics_events.data_at
                   THEN excluded.data_at ELSE analytics_events.data_at END
WHERE analytics_events.deleted_at IS NULL
RETURNING owner_id";

/// The lifecycle only moves forward: the snapshot of the most advanced status wins (the latest
/// one among facts of the same status), whatever order the facts arrive in.
const APPLY_STATE: &str = "\
UPDATE analytics_events SET status = $2, state_at = $3, title = $4, budget_krw = $5, channels = $6,
    period_start = $7, period_end = $8, objective = $9
WHERE event_id = $1 AND deleted_at IS NULL AND (status < $2 OR (status = $2 AND state_at <= $3))";

const MARK_PUBLISHED: &str = "\
UPDATE analytics_events SET published_at = $2
WHERE event_id = $1 AND (published_at IS NULL OR published_at > $2)";

const DELETE: &str = "\
INSERT INTO analytics_events (event_id, owner_id, deleted_at, data_at, created_at) VALUES ($1, $2, $3, $3, $4)
ON CONFLICT (event_id) DO UPDATE SET
    deleted_at = COALESCE(analytics_events.deleted_at, excluded.deleted_at),
    owner_id = CASE WHEN excluded.owner_id <> '' THEN excluded.owner_id ELSE analytics_events.owner_id END
RETURNING owner_id";

const COUNT_ENTRY: &str = "\
INSERT INTO analytics_hourly (event_id, channel, hour_start, participants) VALUES ($1, $2, $3, 1)
ON CONFLICT (event_id, channel, hour_start)
DO UPDATE SET participants = analytics_hourly.participants + excluded.participants";

/// Counts one delivery outcome; views and reach it reports replace older reports (by occur time).
static COUNT_OUTCOME: LazyLock<String> = LazyLock::new(|| {
    format!(
        "\
INSERT INTO analytics_channel_outcomes
    (event_id, channel, published, failed, attempts, last_failure, failure_code, reported_views, views_at,
     reported_reach, reach_at, source_kind, source_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
ON CONFLICT (event_id, channel) DO UPDATE SET
    published = analytics_channel_outcomes.published + excluded.published,
    failed = analytics_channel_outcomes.failed + excluded.failed,
    attempts = analytics_channel_outcomes.attempts + excluded.attempts,
    last_failure = CASE WHEN excluded.published + excluded.failed > 0
                        THEN excluded.last_failure ELSE analytics_channel_outcomes.last_failure END,
    failure_code = CASE WHEN excluded.published + excluded.failed > 0
                        THEN excluded.failure_code ELSE analytics_channel_outcomes.failure_code END,
    {source},
    {views},
    {reach},
    updated_at = excluded.updated_at",
        source = latest_report_wins("source_kind", "source_at"),
        views = latest_report_wins("reported_views", "views_at"),
        reach = latest_report_wins("reported_reach", "reach_at"),
    )
});

/// The `SET` of a reported `value` and the time it was observed (`at`): an incoming report
/// replaces the stored one unless the stored one is more recent; a report without the value
/// (`at` NULL) keeps it.
fn latest_report_wins(value: &str, at: &str) -> String {
    let table = "analytics_channel_outcomes";
    let newer = format!("excluded.{at} IS NOT NULL AND ({table}.{at} IS NULL OR {table}.{at} <= excluded.{at})");
    format!(
        "{value} = CASE WHEN {newer} THEN excluded.{value} ELSE {table}.{value} END,\n    \
         {at} = CASE WHEN {newer} THEN excluded.{at} ELSE {table}.{at} END"
    )
}

/// Keeps the latest draw of the event (by occur time, then draw id): a redraw replaces the draw
/// it redid, whatever order the two facts arrive in.
const RECORD_DRAW: &str = "\
INSERT INTO analytics_draws
    (event_id, draw_id, redraw_of, algorithm, entry_count, winner_count, prize_cost_krw, drawn_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (event_id) DO UPDATE SET
    draw_id = excluded.draw_id, redraw_of = excluded.redraw_of, algorithm = excluded.algorithm,
    entry_count = excluded.entry_count, winner_count = excluded.winner_count,
    prize_cost_krw = excluded.prize_cost_krw, drawn_at = excluded.drawn_at
WHERE analytics_draws.drawn_at < excluded.drawn_at
   OR (analytics_draws.drawn_at = excluded.drawn_at AND analytics_draws.draw_id < excluded.draw_id)";

impl Repository {
    /// Applies `fact` in `tx` (the inbox transaction that also records its message id).
    pub async fn apply_fact(&self, tx: &mut Tx, fact: &EventFact, now_ms: i64) -> Result<Touched> {
        if let Fact::Deleted = fact.fact {
            return self.delete_event(tx, fact, now_ms).await;
        }
        let Some(owner_id) = self
            .touch(tx, &fact.event_id, &fact.owner_id, fact.occur_ms, fact.fact.from_event_service(), now_ms)
            .await?
        else {
            return Ok(Touched::Deleted);
        };
        match &fact.fact {
            Fact::StateChanged(snapshot) => self.apply_state(tx, &fact.event_id, fact.occur_ms, snapshot).await?,
            Fact::EntryRecorded(entry) => {
                query(COUNT_ENTRY)
                    .bind(fact.event_id.as_str())
                    .bind(entry.channel)
                    .bind(hour_start(fact.occur_ms))
                    .execute(&mut *tx)
                    .await?;
            }
            Fact::ChannelOutcome(outcome) => {
                self.count_outcome(tx, &fact.event_id, fact.occur_ms, outcome, now_ms).await?
            }
            Fact::DrawCompleted(draw) => self.record_draw(tx, &fact.event_id, fact.occur_ms, draw).await?,
            Fact::Deleted => {}
        }
        Ok(Touched::Changed { owner_id })
    }

    /// Upserts the event's row (see [`TOUCH`]); `None` when the event is deleted.
    pub(super) async fn touch(
        &self,
        tx: &mut Tx,
        event_id: &str,
        owner_id: &str,
        data_ms: i64,
        authoritative: bool,
        now_ms: i64,
    ) -> Result<Option<String>> {
        let row = query(TOUCH)
            .bind(event_id)
            .bind(owner_id)
            .bind(data_ms)
            .bind(now_ms)
            .bind(authoritative)
            .fetch_optional(&mut *tx)
            .await?;
        row.map(|row| col::<String>(&row, "owner_id")).transpose()
    }

    async fn apply_state(&self, tx: &mut Tx, event_id: &str, at_ms: i64, s: &StateSnapshot) -> Result<()> {
        query(APPLY_STATE)
            .bind(event_id)
            .bind(s.status)
            .bind(at_ms)
            .bind(s.title.as_str())
            .bind(s.budget_krw)
            .bind(encode_channels(&s.channels))
            .bind(s.period.map(|p| p.start_ms))
            .bind(s.period.map(|p| p.end_ms))
            .bind(s.objective)
            .execute(&mut *tx)
            .await?;
        if s.published() {
            query(MARK_PUBLISHED).bind(event_id).bind(at_ms).execute(&mut *tx).await?;
        }
        Ok(())
    }

    async fn count_outcome(&self, tx: &mut Tx, event_id: &str, at_ms: i64, o: &Outcome, now_ms: i64) -> Result<()> {
        let (published, failed) = match o.delivery {
            Delivery::Published => (1_i64, 0_i64),
            Delivery::Failed => (0, 1),
            Delivery::ReportOnly => (0, 0),
        };
        // The latest delivery's failure (cleared by a later success).
        let (failure, code) = match o.delivery {
            Delivery::Failed => (o.failure_reason.as_str(), o.failure_code.as_str()),
            Delivery::Published | Delivery::ReportOnly => ("", ""),
        };
        query(COUNT_OUTCOME.as_str())
            .bind(event_id)
            .bind(o.channel)
            .bind(published)
            .bind(failed)
            .bind(if o.delivery == Delivery::ReportOnly { 0 } else { o.attempts })
            .bind(failure)
            .bind(code)
            .bind(o.views)
            .bind(o.views.map(|_| at_ms))
            .bind(o.reach)
            .bind(o.reach.map(|_| at_ms))
            .bind(o.source_kind)
            .bind((o.source_kind != 0).then_some(at_ms))
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        Ok(())
    }

    async fn record_draw(&self, tx: &mut Tx, event_id: &str, at_ms: i64, d: &Draw) -> Result<()> {
        query(RECORD_DRAW)
            .bind(event_id)
            .bind(d.draw_id.as_str())
            .bind(d.redraw_of.as_str())
            .bind(d.algorithm.as_str())
            .bind(d.entry_count)
            .bind(d.winner_count)
            .bind(d.prize_cost_krw)
            .bind(at_ms)
            .execute(&mut *tx)
            .await?;
        Ok(())
    }

    /// Marks the event deleted (a tombstone that makes later facts no-ops) and drops its
    /// aggregates.
    async fn delete_event(&self, tx: &mut Tx, fact: &EventFact, now_ms: i64) -> Result<Touched> {
        let row = query(DELETE)
            .bind(fact.event_id.as_str())
            .bind(fact.owner_id.as_str())
            .bind(fact.occur_ms)
            .bind(now_ms)
            .fetch_one(&mut *tx)
            .await?;
        let owner_id: String = col(&row, "owner_id")?;
        for sql in [
            "DELETE FROM analytics_hourly WHERE event_id = $1",
            "DELETE FROM analytics_channel_outcomes WHERE event_id = $1",
            "DELETE FROM analytics_channel_metrics WHERE event_id = $1",
            "DELETE FROM analytics_draws WHERE event_id = $1",
        ] {
            query(sql).bind(fact.event_id.as_str()).execute(&mut *tx).await?;
        }
        // The owner's dashboard and the event's analytics lose the event.
        Ok(Touched::Changed { owner_id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reported_value_and_its_time_move_together_to_the_latest_report() {
        let views = latest_report_wins("reported_views", "views_at");
        let newer = "excluded.views_at IS NOT NULL AND (analytics_channel_outcomes.views_at IS NULL \
                     OR analytics_channel_outcomes.views_at <= excluded.views_at)";
        assert_eq!(
            views.split_whitespace().collect::<Vec<_>>().join(" "),
            format!(
                "reported_views = CASE WHEN {newer} THEN excluded.reported_views \
                 ELSE analytics_channel_outcomes.reported_views END, \
                 views_at = CASE WHEN {newer} THEN excluded.views_at ELSE analytics_channel_outcomes.views_at END"
            )
        );
        for set in ["source_kind = CASE", "source_at = CASE", "reported_reach = CASE", "reach_at = CASE"] {
            assert!(COUNT_OUTCOME.contains(set), "{set}");
        }
    }
}
