//! HMAC signing keys for API tokens: several loaded (all verify), exactly one primary
//! (mints). Rotation adds a new primary while old keys keep verifying until removed.

use std::{collections::HashMap, fs, io::Write, path::Path};

use base64::Engine;
use jsonwebtoken::{DecodingKey, EncodingKey};
use rand::RngCore;

use crate::error::{Error, Result};

/// Shortest key we accept: HS256 wants at least 256 bits.
pub const MIN_KEY_BYTES: usize = 32;

/// One loaded key.
pub struct SigningKey {
    pub id: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl SigningKey {
    /// Builds a key from its secret bytes.
    pub fn from_secret(id: &str, secret: &[u8]) -> Result<Self> {
        if id.is_empty() {
            return Err(Error::config(
                "auth.apiToken.signingKeys",
                "a key id must not be empty",
            ));
        }
        if secret.len() < MIN_KEY_BYTES {
            return Err(Error::config(
                "auth.apiToken.signingKeys",
                format!(
                    "key '{id}' is {} bytes; at least {MIN_KEY_BYTES} are required",
                    secret.len()
                ),
            ));
        }
        Ok(Self {
            id: id.to_string(),
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        })
    }

    /// Reads a key file. The file's bytes (trailing whitespace trimmed) are the secret,
    /// so a key written by `rotate-signing-key` and one made by hand both work.
    pub fn load(id: &str, path: &Path) -> Result<Self> {
        let raw = fs::read(path).map_err(|e| {
            let hint = match e.kind() {
                std::io::ErrorKind::NotFound => format!(
                    "; create it with `openssl rand -base64 48 > {0}` (then chmod 0400 and chown to the service user) \
                     or `anchorage admin rotate-signing-key --id {id} --out {0}`",
                    path.display()
                ),
                _ => String::new(),
            };
            Error::config(
                "auth.apiToken.signingKeys",
                format!("cannot read key '{id}' at {}: {e}{hint}", path.display()),
            )
        })?;
        let end = raw
            .iter()
            .rposition(|b| !b.is_ascii_whitespace())
            .map_or(0, |i| i + 1);
        Self::from_secret(id, &raw[..end])
    }

    pub(crate) fn encoding(&self) -> &EncodingKey {
        &self.encoding
    }

    pub(crate) fn decoding(&self) -> &DecodingKey {
        &self.decoding
    }
}

/// The loaded key set.
#[derive(Default)]
pub struct KeySet {
    keys: HashMap<String, SigningKey>,
    primary: Option<String>,
}

impl KeySet {
    /// Builds a set; `primary` names the key that mints.
    pub fn new(keys: Vec<SigningKey>, primary: Option<&str>) -> Result<Self> {
        let mut map = HashMap::new();
        for key in keys {
            let id = key.id.clone();
            if map.insert(id.clone(), key).is_some() {
                return Err(Error::config(
                    "auth.apiToken.signingKeys",
                    format!("duplicate key id '{id}'"),
                ));
            }
        }
        if let Some(p) = primary {
            if !map.contains_key(p) {
                return Err(Error::config(
                    "auth.apiToken.signingKeys",
                    format!("primary key '{p}' is not loaded"),
                ));
            }
        }
        Ok(Self {
            keys: map,
            primary: primary.map(str::to_string),
        })
    }

    /// The key for `kid`, if loaded.
    pub fn get(&self, kid: &str) -> Option<&SigningKey> {
        self.keys.get(kid)
    }

    /// The key that mints new tokens.
    pub fn primary(&self) -> Result<&SigningKey> {
        self.primary
            .as_deref()
            .and_then(|id| self.keys.get(id))
            .ok_or_else(|| {
                Error::config(
                    "auth.apiToken.signingKeys",
                    "no primary signing key is configured; create one with `anchorage admin rotate-signing-key`",
                )
            })
    }

    /// Whether any key is loaded.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// Creates a new random key file at `path` with mode 0400 and returns nothing else: the
/// secret never leaves the file. Refuses to overwrite an existing file.
pub fn write_new_key_file(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    }
    let mut secret = [0u8; 64];
    rand::rng().fill_bytes(&mut secret);
    let text = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o400);
    }
    let mut file = options
        .open(path)
        .map_err(|e| Error::io(format!("creating key file {}", path.display()), e))?;
    file.write_all(text.as_bytes())
        .and_then(|_| file.write_all(b"\n"))
        .map_err(|e| Error::io(format!("writing key file {}", path.display()), e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_keys_are_refused() {
        let err = SigningKey::from_secret("k", b"short").err().unwrap();
        assert!(err.to_string().contains("at least 32"), "{err}");
    }

    #[test]
    fn new_key_files_are_private_and_loadable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/k1");
        write_new_key_file(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o400);
        }
        SigningKey::load("k1", &path).unwrap();
        assert!(write_new_key_file(&path).is_err(), "must not overwrite");
        let missing = SigningKey::load("k2", &dir.path().join("absent"))
            .err()
            .unwrap();
        assert!(
            missing.to_string().contains("openssl rand -base64 48 >"),
            "{missing}"
        );
    }

    #[test]
    fn primary_must_be_loaded() {
        let k = SigningKey::from_secret("a", &[7u8; 32]).unwrap();
        assert!(KeySet::new(vec![k], Some("b")).is_err());
        let set = KeySet::new(vec![], None).unwrap();
        assert!(set.primary().is_err());
    }
}
