-- Participants (#20): the owner's auto-draw and retention choices, the terms fixed at
-- publication, and the scheduler's bookkeeping (ending events at the end of their period,
-- drawing auto-draw events once). Written twice (postgres/, sqlite/) with the same columns.

-- Draw winners automatically AUTO_DRAW_DELAY after the end.
ALTER TABLE events ADD COLUMN auto_draw BOOLEAN NOT NULL DEFAULT FALSE;
-- Days the participants' data is kept after the draw.
ALTER TABLE events ADD COLUMN retention_days INTEGER NOT NULL DEFAULT 30
    CHECK (retention_days BETWEEN 1 AND 365);
-- The terms (JSON) generated at publication; written once, never changed afterwards.
ALTER TABLE events ADD COLUMN terms TEXT;
-- When the scheduler's auto draw was settled, and how: attempted once per event.
ALTER TABLE events ADD COLUMN auto_drawn_at BIGINT;
ALTER TABLE events ADD COLUMN auto_draw_outcome TEXT
    CHECK (auto_draw_outcome IN ('DRAWN', 'ALREADY_DRAWN', 'NO_ENTRIES', 'FAILED'));
-- The scheduler replica working on the event and until when (a lease: another replica takes
-- the work over only after it expired, so two replicas never work on one event at once).
ALTER TABLE events ADD COLUMN schedule_lease_owner TEXT;
ALTER TABLE events ADD COLUMN schedule_lease_until BIGINT;

-- The scheduler: published events by the end of their period, ended auto-draw events not drawn.
CREATE INDEX events_published_end ON events (period_end) WHERE status = 'PUBLISHED';
CREATE INDEX events_auto_draw_due ON events (ended_at) WHERE status = 'ENDED' AND auto_draw AND auto_drawn_at IS NULL;
