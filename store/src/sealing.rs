//! Config values sealed at rest: XChaCha20-Poly1305 with a key that is not in the
//! database (a key file or the environment, chosen by the server). A stolen database,
//! or a backup of it, shows no value. Rows written without a key (older stores) read as
//! they are.

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};

/// Marks a sealed value in the `value` column.
const PREFIX: &str = "sealed1:";

/// The key config values are sealed with.
#[derive(Clone)]
pub struct Sealer {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(<key>)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("a config key must be 32 bytes, written as 64 hex digits")]
    BadKey,
    #[error("a sealed config value does not open with this key (was the key changed?)")]
    WrongKey,
}

impl Sealer {
    pub fn new(key: [u8; 32]) -> Self {
        Sealer {
            cipher: XChaCha20Poly1305::new(&Key::from(key)),
        }
    }

    /// A key from its hex form (a key file's content or an environment variable).
    pub fn from_hex(text: &str) -> Result<Self, SealError> {
        let bytes = hex::decode(text.trim()).map_err(|_| SealError::BadKey)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| SealError::BadKey)?;
        Ok(Self::new(key))
    }

    /// A fresh random key in hex, for a new key file.
    pub fn generate_hex() -> String {
        hex::encode(rand::random::<[u8; 32]>())
    }

    /// `value` sealed, bound to where it is stored (namespace, key, version), so a row
    /// copied elsewhere does not open.
    pub(crate) fn seal(&self, place: &str, value: &str) -> String {
        let nonce: [u8; 24] = rand::random();
        let payload = chacha20poly1305::aead::Payload {
            msg: value.as_bytes(),
            aad: place.as_bytes(),
        };
        // Encryption with a valid key and nonce cannot fail.
        let sealed = self
            .cipher
            .encrypt(&XNonce::from(nonce), payload)
            .unwrap_or_default();
        let mut bytes = nonce.to_vec();
        bytes.extend(sealed);
        format!("{PREFIX}{}", STANDARD_NO_PAD.encode(bytes))
    }

    pub(crate) fn open(&self, place: &str, stored: &str) -> Result<String, SealError> {
        let Some(encoded) = stored.strip_prefix(PREFIX) else {
            return Ok(stored.to_owned());
        };
        let bytes = STANDARD_NO_PAD
            .decode(encoded)
            .map_err(|_| SealError::WrongKey)?;
        if bytes.len() < 24 {
            return Err(SealError::WrongKey);
        }
        let (nonce, sealed) = bytes.split_at(24);
        let nonce: [u8; 24] = nonce.try_into().map_err(|_| SealError::WrongKey)?;
        let payload = chacha20poly1305::aead::Payload {
            msg: sealed,
            aad: place.as_bytes(),
        };
        let plain = self
            .cipher
            .decrypt(&XNonce::from(nonce), payload)
            .map_err(|_| SealError::WrongKey)?;
        String::from_utf8(plain).map_err(|_| SealError::WrongKey)
    }
}

/// Marks a value sealed with a passphrase (a backup's secrets).
const PASSPHRASE_PREFIX: &str = "passphrase1:";

/// `value` sealed with a key argon2id stretches from `passphrase` (its salt kept with
/// it), for what a backup must carry but nobody may read without the passphrase.
pub fn seal_with_passphrase(passphrase: &str, value: &str) -> Result<String, SealError> {
    let salt: [u8; 16] = rand::random();
    let sealer = stretched(passphrase, &salt)?;
    Ok(format!(
        "{PASSPHRASE_PREFIX}{}:{}",
        hex::encode(salt),
        sealer.seal("backup", value)
    ))
}

/// What [`seal_with_passphrase`] sealed; `WrongKey` for another passphrase.
pub fn open_with_passphrase(passphrase: &str, sealed: &str) -> Result<String, SealError> {
    let rest = sealed
        .strip_prefix(PASSPHRASE_PREFIX)
        .ok_or(SealError::WrongKey)?;
    let (salt, sealed) = rest.split_once(':').ok_or(SealError::WrongKey)?;
    let salt = hex::decode(salt).map_err(|_| SealError::WrongKey)?;
    if !sealed.starts_with(PREFIX) {
        return Err(SealError::WrongKey);
    }
    stretched(passphrase, &salt)?.open("backup", sealed)
}

fn stretched(passphrase: &str, salt: &[u8]) -> Result<Sealer, SealError> {
    let mut key = [0u8; 32];
    argon2::Argon2::default()
        .hash_password_into(passphrase.as_bytes(), salt, &mut key)
        .map_err(|_| SealError::BadKey)?;
    Ok(Sealer::new(key))
}

/// Opening without a key: a sealed value cannot be read.
pub(crate) fn is_sealed(stored: &str) -> bool {
    stored.starts_with(PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_passphrase_seals_and_only_it_opens() {
        let sealed = seal_with_passphrase("correct horse", "key material").unwrap();
        assert!(!sealed.contains("key material"));
        assert_eq!(
            open_with_passphrase("correct horse", &sealed).unwrap(),
            "key material"
        );
        assert!(open_with_passphrase("wrong horse", &sealed).is_err());
        assert!(open_with_passphrase("correct horse", "key material").is_err());
    }

    #[test]
    fn values_seal_and_open_only_with_their_key_and_place() {
        let s = Sealer::from_hex(&Sealer::generate_hex()).unwrap();
        let sealed = s.seal("a/db.password/1", "\"hunter2\"");
        assert!(!sealed.contains("hunter2"));
        assert_eq!(s.open("a/db.password/1", &sealed).unwrap(), "\"hunter2\"");
        assert!(
            s.open("b/db.password/1", &sealed).is_err(),
            "bound to its place"
        );
        let other = Sealer::from_hex(&Sealer::generate_hex()).unwrap();
        assert!(other.open("a/db.password/1", &sealed).is_err());
        assert_eq!(s.open("x", "\"plain\"").unwrap(), "\"plain\"", "old rows");
        assert!(Sealer::from_hex("abc").is_err());
    }
}
