-- Ending an event closes its entries at once, durably and for every replica (CloseEntries, called
-- by the event service's EndEvent before it answers), and an event's entries have one order.

-- When EndEvent closed the event's entries (the event service's end time). `closed_at` stays the
-- close by a draw (events ended before CloseEntries existed). Enter refuses an entry when either is
-- set, and the check runs inside the entry's transaction under a shared per-event advisory lock
-- that CloseEntries and draws take exclusively (see src/repository): an entry commits before a
-- close or sees it. `entries` now counts only the entries of events with a capacity (first-come):
-- a draw event's entries no longer update this row, so they do not queue behind each other on it.
ALTER TABLE event_gates ADD COLUMN ended_at BIGINT;

-- Arrival order is (created_at, id): the entry's receive time as Enter returned it (create_time),
-- ties broken by id. Listing, page cursors and first-come selection all use it, so they agree
-- with create_time. The old receive sequence ordered by insert time, which disagreed with
-- create_time under concurrency; it is gone.
CREATE INDEX entries_event_arrival ON entries (event_id, created_at, id);
DROP INDEX entries_event_seq;
ALTER TABLE entries DROP COLUMN seq;
