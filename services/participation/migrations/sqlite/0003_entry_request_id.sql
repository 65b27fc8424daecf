-- See migrations/postgres/0003: the id of the request that stored each entry, so that a retry of
-- that request (same request id, event and phone) gets its entry back instead of DUPLICATE_ENTRY.
ALTER TABLE entries ADD COLUMN request_id TEXT;
