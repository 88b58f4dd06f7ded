//! berth-vault: encryption at rest for secret values (Secrets Manager secrets, SSM SecureStrings).
//!
//! It owns the one data key (256 bits, generated on first start in the data directory, file mode 0600) and
//! the AEAD that seals values with it: AES-256-GCM from ring, a fresh random 96-bit nonce per value, and
//! associated data the caller uses to bind a value to its resource (ARN and version), so a sealed value
//! copied to another row does not open. It must never log, print or `Debug` the key or a plaintext, never
//! write the key with permissions wider than 0600, and never accept a key file others can read.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

/// Length of the data key in bytes.
pub const KEY_LEN: usize = 32;
/// First byte of every sealed value: the format (AES-256-GCM, nonce ‖ ciphertext ‖ tag).
const FORMAT_V1: u8 = 1;
const TAG_LEN: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("key file {path}: {message}")]
    KeyFile { path: String, message: String },
    #[error("the system random source failed")]
    Random,
    /// The value was tampered with, sealed under another key, or opened with other associated data.
    #[error("the sealed value does not open: it was changed, or belongs to another resource or key")]
    Open,
    #[error("sealing failed")]
    Seal,
}

/// The data key and its AEAD. Cheap to share behind an `Arc`; its `Debug` shows no key material.
pub struct Vault {
    key: LessSafeKey,
    rng: SystemRandom,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Vault(<key redacted>)")
    }
}

impl Vault {
    /// Reads the key at `path`, or generates and writes one (mode 0600, atomically) if there is none.
    ///
    /// Refuses a key file of the wrong length or readable by group or others.
    pub fn load_or_create(path: &Path) -> Result<Vault, VaultError> {
        match std::fs::metadata(path) {
            Ok(_) => Vault::load(path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; KEY_LEN];
                SystemRandom::new().fill(&mut key).map_err(|_| VaultError::Random)?;
                write_new_key(path, &key).map_err(|e| key_error(path, e.to_string()))?;
                // Another process may have won the race to create it: use what is on disk.
                Vault::load(path)
            }
            Err(e) => Err(key_error(path, e.to_string())),
        }
    }

    /// Reads the key at `path`, refusing a file of the wrong length or readable by group or others.
    pub fn load(path: &Path) -> Result<Vault, VaultError> {
        let meta = std::fs::metadata(path).map_err(|e| key_error(path, e.to_string()))?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(key_error(
                path,
                format!("has mode {mode:04o}; it must be readable by its owner only (chmod 600)"),
            ));
        }
        let bytes = std::fs::read(path).map_err(|e| key_error(path, e.to_string()))?;
        let key: [u8; KEY_LEN] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| key_error(path, format!("holds {} bytes; a key is {KEY_LEN} bytes", bytes.len())))?;
        Ok(Vault::from_key(&key))
    }

    /// A vault with a fresh key that lives in memory only (tests; values do not survive the process).
    pub fn ephemeral() -> Result<Vault, VaultError> {
        let mut key = [0u8; KEY_LEN];
        SystemRandom::new().fill(&mut key).map_err(|_| VaultError::Random)?;
        Ok(Vault::from_key(&key))
    }

    fn from_key(key: &[u8; KEY_LEN]) -> Vault {
        // AES-256-GCM accepts every 32-byte key; `new` only fails on a wrong length, excluded by the type.
        let unbound = match UnboundKey::new(&AES_256_GCM, key) {
            Ok(k) => k,
            Err(_) => unreachable!("a 32-byte key is valid for AES-256-GCM"),
        };
        Vault { key: LessSafeKey::new(unbound), rng: SystemRandom::new() }
    }

    /// Seals `plaintext` bound to `aad` (for example `secretsmanager:<arn>:<version id>`).
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, VaultError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).map_err(|_| VaultError::Random)?;
        let mut buf = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut buf)
            .map_err(|_| VaultError::Seal)?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + buf.len());
        out.push(FORMAT_V1);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&buf);
        Ok(out)
    }

    /// Opens a value sealed by [`Vault::seal`] with the same key and `aad`.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, VaultError> {
        if sealed.len() < 1 + NONCE_LEN + TAG_LEN || sealed[0] != FORMAT_V1 {
            return Err(VaultError::Open);
        }
        let nonce: [u8; NONCE_LEN] = sealed[1..1 + NONCE_LEN].try_into().map_err(|_| VaultError::Open)?;
        let mut buf = sealed[1 + NONCE_LEN..].to_vec();
        let plain = self
            .key
            .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut buf)
            .map_err(|_| VaultError::Open)?;
        Ok(plain.to_vec())
    }
}

/// The lowercase hex SHA-256 of `value`: what is stored of a random bearer token that only needs comparing
/// (a task's credentials token), so the database never holds the token itself.
pub fn sha256_hex(value: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, value))
}

fn key_error(path: &Path, message: String) -> VaultError {
    VaultError::KeyFile { path: path.display().to_string(), message }
}

/// Writes a new key next to `path` with mode 0600 and links it into place; an existing key is kept.
fn write_new_key(path: &Path, key: &[u8; KEY_LEN]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    {
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        f.write_all(key)?;
        f.sync_all()?;
    }
    // hard_link fails if the key appeared meanwhile: the first writer wins and everyone reads its key.
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_hex_matches_the_standard_vectors() {
        assert_eq!(sha256_hex(b""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let mut rnd = [0u8; 8];
        SystemRandom::new().fill(&mut rnd).expect("random");
        let dir = std::env::temp_dir().join(format!("berth-vault-{name}-{}", hex::encode(rnd)));
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    #[test]
    fn seal_and_open_round_trip_with_fresh_nonces() {
        let v = Vault::ephemeral().expect("vault");
        let a = v.seal(b"arn:1", b"hunter2").expect("seal");
        let b = v.seal(b"arn:1", b"hunter2").expect("seal");
        assert_ne!(a, b, "every seal uses a new nonce");
        assert!(!a.windows(7).any(|w| w == b"hunter2"), "the plaintext is not in the sealed bytes");
        assert_eq!(v.open(b"arn:1", &a).expect("open"), b"hunter2");
        assert_eq!(v.open(b"arn:1", &v.seal(b"arn:1", b"").expect("seal")).expect("open"), b"");
    }

    #[test]
    fn tampering_wrong_aad_and_wrong_key_are_refused() {
        let v = Vault::ephemeral().expect("vault");
        let sealed = v.seal(b"arn:aws:secretsmanager:r:1:secret:a-xxxxxx:v1", b"value").expect("seal");
        for i in 0..sealed.len() {
            let mut t = sealed.clone();
            t[i] ^= 0x01;
            assert!(matches!(v.open(b"arn:aws:secretsmanager:r:1:secret:a-xxxxxx:v1", &t), Err(VaultError::Open)));
        }
        assert!(matches!(v.open(b"arn:aws:secretsmanager:r:1:secret:a-xxxxxx:v2", &sealed), Err(VaultError::Open)));
        assert!(matches!(v.open(b"", &sealed), Err(VaultError::Open)));
        assert!(matches!(v.open(b"x", &sealed[..10]), Err(VaultError::Open)));
        assert!(matches!(v.open(b"x", &[]), Err(VaultError::Open)));
        let other = Vault::ephemeral().expect("vault");
        assert!(matches!(other.open(b"arn:aws:secretsmanager:r:1:secret:a-xxxxxx:v1", &sealed), Err(VaultError::Open)));
    }

    #[test]
    fn key_file_is_created_0600_and_reused() {
        let dir = temp_dir("create");
        let path = dir.join("secrets.key");
        let v1 = Vault::load_or_create(&path).expect("create");
        let meta = std::fs::metadata(&path).expect("key exists");
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(meta.len(), KEY_LEN as u64);
        let sealed = v1.seal(b"aad", b"persisted").expect("seal");
        let v2 = Vault::load_or_create(&path).expect("reload");
        assert_eq!(v2.open(b"aad", &sealed).expect("same key after reload"), b"persisted");
        assert_eq!(format!("{v2:?}"), "Vault(<key redacted>)");
        let leftovers: Vec<_> = std::fs::read_dir(&dir).expect("dir").filter_map(Result::ok).collect();
        assert_eq!(leftovers.len(), 1, "no temporary files are left behind");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn loose_permissions_and_wrong_length_are_refused() {
        let dir = temp_dir("refuse");
        let path = dir.join("secrets.key");
        Vault::load_or_create(&path).expect("create");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let e = Vault::load_or_create(&path).expect_err("world-readable key refused");
        assert!(e.to_string().contains("0644"), "{e}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        std::fs::write(&path, b"short").expect("write");
        let e = Vault::load_or_create(&path).expect_err("short key refused");
        assert!(e.to_string().contains("5 bytes"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
