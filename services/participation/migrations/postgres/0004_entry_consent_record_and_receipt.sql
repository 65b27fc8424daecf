-- Participants (#20): every entry keeps the record of its consent and the participant's receipt.
--
-- The consent record: the terms version (privacy_consent_version, which Enter requires to be the
-- event's terms version when the event has terms), the SHA-256 of those terms as the event service
-- fixed them at publication (terms_sha256: the exact text consented to can be proven later), when
-- the consent was recorded (consented_at), and that the privacy consent was granted
-- (privacy_consent_granted; an entry is only ever stored with it granted, so every existing row
-- gets TRUE). The marketing consent keeps its columns (granted, text version) and shares the time.
--
-- Entries stored before this migration, and entries of events published before terms existed,
-- have no terms hash (NULL). Their consent time is their receive time: consented_at stays NULL
-- and is read as created_at, so no existing row is rewritten.
ALTER TABLE entries ADD COLUMN privacy_consent_granted BOOLEAN NOT NULL DEFAULT TRUE;
ALTER TABLE entries ADD COLUMN terms_sha256 TEXT;
ALTER TABLE entries ADD COLUMN consented_at BIGINT;

-- The participant's receipt code: ten characters from "23456789ABCDEFGHJKLMNPQRSTUVWXYZ" (stored
-- without the separator the participant sees), drawn from a CSPRNG, unique per event: this index
-- decides, and Enter draws a new code on a collision. NULL for entries stored before receipts
-- existed (NULLs never collide). Shown only to the participant (Enter and its replays), never in
-- owner listings.
ALTER TABLE entries ADD COLUMN receipt_code TEXT;
CREATE UNIQUE INDEX entries_event_receipt ON entries (event_id, receipt_code);
