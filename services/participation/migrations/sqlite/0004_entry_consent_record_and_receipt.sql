-- See migrations/postgres/0004: the consent record of each entry (terms hash, consent time,
-- privacy consent granted) and the participant's receipt code, unique per event.
ALTER TABLE entries ADD COLUMN privacy_consent_granted BOOLEAN NOT NULL DEFAULT TRUE;
ALTER TABLE entries ADD COLUMN terms_sha256 TEXT;
ALTER TABLE entries ADD COLUMN consented_at INTEGER;

ALTER TABLE entries ADD COLUMN receipt_code TEXT;
CREATE UNIQUE INDEX entries_event_receipt ON entries (event_id, receipt_code);
