//! Bearer secrets of the form `<prefix>_<16 hex id>_<256-bit secret>` (agent tokens `nca_…`,
//! API keys `nck_…`): found by their public id, checked against a stored SHA-256 of the secret
//! in constant time. The secret itself is never stored.

use base64::Engine;
use rand::Rng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A freshly minted secret: what its holder is given, and what the server keeps.
pub struct Minted {
    pub token: String,
    pub id: String,
    pub hash: Vec<u8>,
}

pub fn mint(prefix: &str) -> Minted {
    let mut id = [0u8; 8];
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut id);
    rand::rng().fill_bytes(&mut secret);
    let id: String = id.iter().map(|b| format!("{b:02x}")).collect();
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
    Minted {
        token: format!("{prefix}_{id}_{secret}"),
        hash: Sha256::digest(secret.as_bytes()).to_vec(),
        id,
    }
}

/// Splits a token of this prefix into its public id and its secret; `None` for anything else.
pub fn parse<'a>(prefix: &str, token: &'a str) -> Option<(&'a str, &'a str)> {
    let mut parts = token.splitn(3, '_');
    let (p, id, secret) = (parts.next()?, parts.next()?, parts.next()?);
    (p == prefix
        && id.len() == 16
        && id.bytes().all(|b| b.is_ascii_hexdigit())
        && !secret.is_empty())
    .then_some((id, secret))
}

/// Whether `secret` hashes to `stored`, compared in constant time.
pub fn matches(secret: &str, stored: &[u8]) -> bool {
    Sha256::digest(secret.as_bytes())
        .as_slice()
        .ct_eq(stored)
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_tokens_parse_and_only_the_hash_is_kept() {
        let m = mint("nca");
        let (id, secret) = parse("nca", &m.token).unwrap();
        assert_eq!(id, m.id);
        assert!(matches(secret, &m.hash));
        assert!(!matches("other", &m.hash));
        assert!(parse("nck", &m.token).is_none(), "prefixes do not mix");
        for bad in [
            "",
            "nca",
            "nca_1234_x",
            "xyz_0123456789abcdef_secret",
            "nca_0123456789abcdeg_s",
            "nca_0123456789abcdef_",
        ] {
            assert!(parse("nca", bad).is_none(), "{bad}");
        }
    }
}
