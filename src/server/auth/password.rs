//! Password hashing with argon2id at OWASP's recommended parameters (19 MiB, 2 passes, 1 lane).

use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Params, PasswordVerifier, Version};
use rand::distr::{Alphanumeric, SampleString};

/// Memory cost in KiB (OWASP: 19 MiB).
pub const MEMORY_KIB: u32 = 19 * 1024;
/// Number of passes (OWASP: 2).
pub const ITERATIONS: u32 = 2;
/// Degree of parallelism (OWASP: 1).
pub const PARALLELISM: u32 = 1;

/// Shortest password accepted for new or changed passwords.
pub const MIN_LENGTH: usize = 8;
/// Longest password accepted (hashing cost grows with length).
pub const MAX_LENGTH: usize = 256;

fn hasher() -> Argon2<'static> {
    let params =
        Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None).expect("valid argon2 params");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes `password` into a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`).
pub fn hash(password: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 hashing with valid params cannot fail")
        .to_string()
}

/// Checks `password` against a stored PHC string. A malformed hash never verifies.
pub fn verify(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => hasher()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Bounds how many argon2 runs happen at once: each holds 19 MiB for tens of milliseconds,
/// so an unbounded burst of logins would grow memory by 19 MiB per request in flight.
#[derive(Clone)]
pub struct HashGate(std::sync::Arc<tokio::sync::Semaphore>);

/// A slot of the [`HashGate`], held while one hash runs.
pub struct HashSlot(#[allow(dead_code)] tokio::sync::OwnedSemaphorePermit);

impl HashGate {
    /// `slots` at once; 0 means one per CPU.
    pub fn new(slots: usize) -> Self {
        let slots = match slots {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        };
        Self(std::sync::Arc::new(tokio::sync::Semaphore::new(slots)))
    }

    /// A slot if one is free now (logins: refuse rather than queue).
    pub fn try_enter(&self) -> Option<HashSlot> {
        self.0.clone().try_acquire_owned().ok().map(HashSlot)
    }

    /// Waits for a slot (administrators setting passwords).
    pub async fn enter(&self) -> HashSlot {
        HashSlot(
            self.0
                .clone()
                .acquire_owned()
                .await
                .expect("the hash gate is never closed"),
        )
    }
}

/// Runs [`hash`] off the async executor (it takes tens of milliseconds by design), holding a
/// slot of `gate` until it is done.
pub async fn hash_blocking(gate: &HashGate, password: String) -> String {
    let slot = gate.enter().await;
    tokio::task::spawn_blocking(move || {
        let _slot = slot;
        hash(&password)
    })
    .await
    .expect("hashing task panicked")
}

/// Runs [`verify`] off the async executor, holding `slot` until it is done (also when the
/// request is cancelled meanwhile). With `None` it verifies against a fixed dummy hash, so an
/// unknown username costs the same time as a wrong password.
pub async fn verify_blocking(slot: HashSlot, password: String, phc: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || {
        let _slot = slot;
        match phc {
            Some(phc) => verify(&password, &phc),
            None => {
                verify(&password, dummy_hash());
                false
            }
        }
    })
    .await
    .expect("verification task panicked")
}

fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash("netcheck-dummy-password"))
}

/// A random 24-character password for generated accounts.
pub fn generate() -> String {
    Alphanumeric.sample_string(&mut rand::rng(), 24)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_use_argon2id_with_owasp_parameters() {
        let phc = hash("correct horse battery staple");
        let parsed = PasswordHash::new(&phc).unwrap();
        assert_eq!(parsed.algorithm.as_str(), "argon2id");
        assert_eq!(parsed.version, Some(19));
        let params = Params::try_from(&parsed).unwrap();
        assert_eq!(params.m_cost(), 19456);
        assert_eq!(params.t_cost(), 2);
        assert_eq!(params.p_cost(), 1);
        assert!(
            parsed.salt.unwrap().len() >= 16,
            "salt of at least 16 base64 chars"
        );
    }

    #[test]
    fn verify_accepts_only_the_right_password() {
        let phc = hash("s3cret-password");
        assert!(verify("s3cret-password", &phc));
        assert!(!verify("s3cret-passworD", &phc));
        assert!(!verify("", &phc));
        assert!(!verify("s3cret-password", "not a phc string"));
    }

    #[test]
    fn same_password_gets_a_fresh_salt() {
        assert_ne!(hash("abcdefgh"), hash("abcdefgh"));
    }

    #[test]
    fn generated_passwords_are_long_and_distinct() {
        let (a, b) = (generate(), generate());
        assert_eq!(a.len(), 24);
        assert_ne!(a, b);
    }
}
