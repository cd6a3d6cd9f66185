//! Access tokens: short-lived HS256 JWTs with the algorithm pinned and `typ`, `aud` and `iss`
//! checked, so nothing but an access token minted by this deployment passes.
//! Refresh tokens are opaque random strings (see `sessions`), never JWTs.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use netcheck_proto::api::auth::Role;

pub const ISSUER: &str = "netcheck";
pub const AUDIENCE: &str = "netcheck-api";
/// Value of the `typ` claim of access tokens.
pub const ACCESS_TYP: &str = "access";

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: Uuid,
    pub role: Role,
    pub typ: String,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: Uuid,
}

#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl_secs: u64,
}

impl JwtKeys {
    pub fn new(secret: &[u8], ttl_secs: u64) -> Result<Self, jsonwebtoken::errors::Error> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.set_audience(&[AUDIENCE]);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iat", "sub", "aud", "iss"]);
        validation.leeway = 5;
        Ok(Self {
            encoding: EncodingKey::from_secret(secret)?,
            decoding: DecodingKey::from_secret(secret)?,
            validation,
            ttl_secs,
        })
    }

    pub fn ttl_secs(&self) -> u64 {
        self.ttl_secs
    }

    /// Mints an access token for `user_id`.
    pub fn issue(&self, user_id: Uuid, role: Role) -> String {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: user_id,
            role,
            typ: ACCESS_TYP.into(),
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            iat: now,
            exp: now + self.ttl_secs as i64,
            jti: Uuid::new_v4(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 encoding cannot fail")
    }

    /// Verifies signature, algorithm, expiry, audience, issuer and `typ`.
    pub fn verify(&self, token: &str) -> Option<Claims> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).ok()?;
        (data.claims.typ == ACCESS_TYP).then_some(data.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn keys() -> JwtKeys {
        JwtKeys::new(b"0123456789abcdef0123456789abcdef", 60).unwrap()
    }

    #[test]
    fn round_trip() {
        let k = keys();
        let id = Uuid::new_v4();
        let claims = k.verify(&k.issue(id, Role::Admin)).unwrap();
        assert_eq!(claims.sub, id);
        assert_eq!(claims.role, Role::Admin);
    }

    #[test]
    fn other_key_and_alg_none_are_refused() {
        let token = keys().issue(Uuid::new_v4(), Role::User);
        assert!(JwtKeys::new(b"another key entirely, 32 bytes!!", 60)
            .unwrap()
            .verify(&token)
            .is_none());
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let payload = token.split('.').nth(1).unwrap();
        let none = format!(
            "{}.{}.",
            b64.encode(r#"{"alg":"none","typ":"JWT"}"#),
            payload
        );
        assert!(keys().verify(&none).is_none());
    }

    #[test]
    fn wrong_typ_is_refused() {
        let k = keys();
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: Uuid::new_v4(),
            role: Role::User,
            typ: "refresh".into(),
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            iat: now,
            exp: now + 60,
            jti: Uuid::new_v4(),
        };
        let token = jsonwebtoken::encode(&Header::default(), &claims, &k.encoding).unwrap();
        assert!(k.verify(&token).is_none());
    }
}
