-- The guestbook's entries. `seq` orders a guestbook (and is the page cursor): ids are random
-- UUIDs, and two entries may share a millisecond.
--
-- `request_id` is the `x-request-id` of the call that stored the entry (NULL when it carried
-- none): the unique constraint is what makes Sign idempotent, even for two retries racing each
-- other. NULLs are distinct, so calls without a request id never collide.
CREATE TABLE entries (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id         TEXT   NOT NULL UNIQUE,
    event_id   TEXT   NOT NULL,
    name       TEXT   NOT NULL,
    message    TEXT   NOT NULL,
    request_id TEXT,
    created_at BIGINT NOT NULL,
    CONSTRAINT entries_event_request_unique UNIQUE (event_id, request_id)
);

CREATE INDEX entries_event_seq ON entries (event_id, seq);
