-- Who owns each event participation has learned about, for ListMarketingRecipients (the numbers
-- that agreed to an owner's marketing, across all of that owner's events). Entries never stored
-- their event's owner: the event service is the source of it, and participation only asked when
-- it needed an event's facts.
--
-- A table keyed by event rather than an `owner_id` column on entries: one row per event covers
-- every entry of the event at once, including the entries stored before this migration, as soon
-- as participation learns the event again (an entry, or an owner opening the event's
-- participants, winners, exports or blocks). A column would be filled only for new entries and
-- would need a backfill, row by row, that participation cannot do without asking the event
-- service about every event anyway. Entries of an event participation never fetches again stay
-- unknown to the listing until it does.
--
-- Written in the entry's own transaction (INSERT … ON CONFLICT DO NOTHING: no row lock, so
-- entries of one event never queue on it), and corrected by the owner paths should the event
-- service ever report another owner.
CREATE TABLE event_owners (
    event_id   TEXT   PRIMARY KEY,
    owner_id   TEXT   NOT NULL,
    -- When participation last recorded or corrected the owner (epoch milliseconds).
    learned_at BIGINT NOT NULL
);

-- ListMarketingRecipients: the owner's events.
CREATE INDEX event_owners_owner ON event_owners (owner_id, event_id);
