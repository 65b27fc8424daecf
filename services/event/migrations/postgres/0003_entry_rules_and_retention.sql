-- Participants (#20), second part: the owner's entry rules and claim days, and the scheduler's
-- retention job (participants' personal data anonymized retention_days after the draw, or after
-- the end when nothing was drawn; done once per event). Written twice (postgres/, sqlite/) with
-- the same columns, constraints and indexes.

-- Entry rules: phone verification, and the most entries per client address (0: no limit).
ALTER TABLE events ADD COLUMN entry_verify_phone BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE events ADD COLUMN entry_max_per_address INTEGER NOT NULL DEFAULT 0
    CHECK (entry_max_per_address BETWEEN 0 AND 100000);
-- Days winners have to claim their prize after the draw (at most retention_days: the use cases
-- check it, a claim needs the winner's phone).
ALTER TABLE events ADD COLUMN claim_days INTEGER NOT NULL DEFAULT 7
    CHECK (claim_days BETWEEN 1 AND 90);
-- Events stored before claim days existed keep their promise: never a claim past the retention.
UPDATE events SET claim_days = retention_days WHERE retention_days < claim_days;
-- When participation anonymized the event's entries (set once, by the scheduler).
ALTER TABLE events ADD COLUMN anonymize_time BIGINT;
-- The earliest the retention job looks at the event again, learned from participation's draw
-- time (a draw after the end moves the deadline); NULL: ended_at + retention_days.
ALTER TABLE events ADD COLUMN anonymize_not_before BIGINT;

-- The scheduler: ended events not anonymized yet.
CREATE INDEX events_anonymize_due ON events (ended_at) WHERE status = 'ENDED' AND anonymize_time IS NULL;
