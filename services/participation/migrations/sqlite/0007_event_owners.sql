-- See migrations/postgres/0007: each known event's owner (one row per event, so existing entries
-- are covered once participation learns their event again), for ListMarketingRecipients.
CREATE TABLE event_owners (
    event_id   TEXT    PRIMARY KEY,
    owner_id   TEXT    NOT NULL,
    learned_at INTEGER NOT NULL
);

CREATE INDEX event_owners_owner ON event_owners (owner_id, event_id);
