-- KT partner store accounts (issue #21): an owner connects their store account at the KT partner
-- of 우리동네TV, 링고비즈 and 지니TV through the per-store authorization of our contract
-- `partner/v1` (authorization code with PKCE S256, rotating refresh tokens). One connection per
-- owner and channel (account_id = the partner's store id).
ALTER TABLE channel_connections DROP CONSTRAINT channel_connections_channel_check;
ALTER TABLE channel_connections
    ADD CONSTRAINT channel_connections_channel_check CHECK (channel IN ('INSTAGRAM', 'NAVER_BLOG', 'KAKAO_CHANNEL',
        'URIDONGNE_TV', 'RINGO_BIZ', 'GENIE_TV'));

-- The PKCE code_verifier of an attempt, sealed like the tokens (AES-256-GCM, bound to the owner,
-- the channel and the field); NULL for providers without PKCE (Instagram, Naver).
ALTER TABLE connection_attempts ADD COLUMN code_verifier BYTEA;
