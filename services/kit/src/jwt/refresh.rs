//! Opaque refresh tokens: random, stored only as a hash, rotated on every use.

use rand::RngCore as _;

use super::b64;

/// A new refresh token and the SHA-256 hex of it: give the token to the client, store only the hash.
///
/// 32 random bytes (ThreadRng, a CSPRNG seeded from the OS), base64url without padding (43 chars).
/// The hash is over the token *string*, so a presented token is looked up with
/// [`refresh_token_hash`] directly.
pub fn refresh_token() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = b64::encode(bytes);
    let hash = refresh_token_hash(&token);
    (token, hash)
}

/// The lowercase SHA-256 hex of a refresh token as presented by a client, for the lookup.
///
/// A plain (unsalted) hash is enough here: the token has 256 bits of entropy, so it cannot be
/// guessed from the hash, and a deterministic hash is what makes the lookup an index hit.
pub fn refresh_token_hash(token: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    crate::hex::encode(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_tokens_are_random_and_the_hash_is_their_sha256_hex() {
        let (a, a_hash) = refresh_token();
        let (b, _) = refresh_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(b64::decode(&a).expect("base64url").len(), 32);
        assert_eq!(a_hash, refresh_token_hash(&a));
        assert_eq!(a_hash.len(), 64);
        assert_eq!(refresh_token_hash("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
