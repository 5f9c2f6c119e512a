//! A captured job on disk: sealed with HMAC-SHA256 under the device key, optionally encrypted
//! with ChaCha20-Poly1305, versioned, written atomically, readable by the owner only.
//!
//! Layout of a v2 bundle (`NNNNNNNNNNNNNNNN.kab`), all integers little-endian:
//!
//! ```text
//! 0   magic "KAJB"           8   seq (u64): binds the file to its queue slot
//! 4   schema (u16) = 2       16  nonce (12 bytes; zero when not encrypted)
//! 6   flags (bit 0: encrypted) 28 payload length (u32)
//! 7   reserved               32  payload: JSON {job, created_at}, or its AEAD ciphertext
//!                                (header bytes 0..32 as associated data)
//! end-32  HMAC-SHA256(device key, every byte before it)
//! ```
//!
//! v1 bundles (`.job`, plain JSON `{schema: 1, job}`) are read for migration only.

use std::path::Path;

use hmac::{Hmac, Mac};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::smileid::job::Job;
use crate::store::write_private;

pub const SCHEMA: u16 = 2;
const MAGIC: &[u8; 4] = b"KAJB";
const HEADER: usize = 32;
const TAG: usize = 32;
const FLAG_ENCRYPTED: u8 = 1;

/// Keys for sealing and (optionally) encrypting bundles, and for encrypting the index's
/// records (a key derived from the bundle key). `Debug` shows no key material; the seal key is
/// zeroed when dropped (ring wipes its own AEAD keys).
pub struct Sealer {
    seal_key: zeroize::Zeroizing<[u8; 32]>,
    aead: Option<LessSafeKey>,
    index: Option<LessSafeKey>,
}

/// The start of an encrypted index record: magic, then a 12-byte nonce, then the sealed JSON.
const RECORD_MAGIC: &[u8; 4] = b"KIR1";

/// Whether a stored index record is encrypted (it then needs the bundle key to be read).
pub fn is_sealed_record(stored: &[u8]) -> bool {
    stored.starts_with(RECORD_MAGIC)
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sealer(encrypting: {})", self.aead.is_some())
    }
}

impl Sealer {
    pub fn new(seal_key: [u8; 32], encryption_key: Option<[u8; 32]>) -> Self {
        let aead_of = |k: &[u8]| LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, k).expect("32-byte key"));
        let aead = encryption_key.map(|k| aead_of(&k));
        let index = encryption_key.map(|k| {
            let mut m = Hmac::<Sha256>::new_from_slice(&k).expect("any key length");
            m.update(b"kiosk-agent index records v1");
            aead_of(&*zeroize::Zeroizing::new(<[u8; 32]>::from(m.finalize().into_bytes())))
        });
        Sealer { seal_key: zeroize::Zeroizing::new(seal_key), aead, index }
    }

    /// An index record's stored form: encrypted (bound to its seq) when there is a bundle key,
    /// else the JSON as it is.
    pub fn seal_record(&self, seq: u64, json: Vec<u8>) -> Vec<u8> {
        let Some(key) = &self.index else { return json };
        let mut nonce = [0u8; 12];
        if getrandom::fill(&mut nonce).is_err() {
            // No randomness at all: the OS is broken; a nonce from the clock and seq is unique enough.
            let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            nonce[..8].copy_from_slice(&(t.as_nanos() as u64).to_le_bytes());
            nonce[8..].copy_from_slice(&(seq as u32).to_le_bytes());
        }
        let mut body = json;
        let sealed =
            key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(seq.to_be_bytes()), &mut body);
        debug_assert!(sealed.is_ok());
        let mut out = Vec::with_capacity(16 + body.len());
        out.extend_from_slice(RECORD_MAGIC);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&body);
        zeroize::Zeroize::zeroize(&mut body);
        out
    }

    /// The JSON of a stored index record (see [`Sealer::seal_record`]).
    pub fn open_record(&self, seq: u64, stored: &[u8]) -> Result<zeroize::Zeroizing<Vec<u8>>, String> {
        let Some(rest) = stored.strip_prefix(RECORD_MAGIC) else {
            return Ok(zeroize::Zeroizing::new(stored.to_vec()));
        };
        let key = self.index.as_ref().ok_or("the index record is encrypted, and the bundle key is not available")?;
        if rest.len() < 12 + CHACHA20_POLY1305.tag_len() {
            return Err("the encrypted index record is truncated".into());
        }
        let nonce = Nonce::try_assume_unique_for_key(&rest[..12]).map_err(|_| "bad nonce")?;
        let mut body = zeroize::Zeroizing::new(rest[12..].to_vec());
        let n = key
            .open_in_place(nonce, Aad::from(seq.to_be_bytes()), &mut body)
            .map_err(|_| "the index record does not decrypt with this bundle key (or belongs to another seq)")?
            .len();
        body.truncate(n);
        Ok(body)
    }

    /// Whether a stored record is in the form this sealer writes (else it is rewritten on open).
    pub fn record_is_current(&self, stored: &[u8]) -> bool {
        is_sealed_record(stored) == self.index.is_some()
    }

    pub fn encrypts(&self) -> bool {
        self.aead.is_some()
    }

    /// The seal over a bundle's header and payload (its last 32 bytes); public so that fuzzing
    /// can reach the parsing behind the seal.
    pub fn mac(&self, bytes: &[u8]) -> [u8; 32] {
        let mut m = Hmac::<Sha256>::new_from_slice(&*self.seal_key).expect("any key length");
        m.update(bytes);
        m.finalize().into_bytes().into()
    }
}

/// What a bundle holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bundle {
    pub job: Job,
    pub created_at: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("cannot write job bundle {path}: {detail}; check free space and permissions of the state directory")]
    Write { path: String, detail: String },
    #[error("cannot read job bundle {path}: {detail}")]
    Read { path: String, detail: String },
    #[error("job bundle {path} is damaged ({detail}); it is quarantined, not uploaded")]
    Corrupt { path: String, detail: String },
    #[error("job bundle {path} has schema {found}, newer than this agent ({SCHEMA}); upgrade the agent")]
    TooNew { path: String, found: u32 },
    #[error("job bundle {path} is encrypted but no encryption key is configured; set [queue] encryption_key_file")]
    NoKey { path: String },
}

/// Serializes, seals (and encrypts) a bundle.
pub fn encode(seq: u64, b: &Bundle, sealer: &Sealer) -> Result<Vec<u8>, String> {
    let mut payload = serde_json::to_vec(b).map_err(|e| e.to_string())?;
    let mut header = [0u8; HEADER];
    header[..4].copy_from_slice(MAGIC);
    header[4..6].copy_from_slice(&SCHEMA.to_le_bytes());
    header[8..16].copy_from_slice(&seq.to_le_bytes());
    if let Some(key) = &sealer.aead {
        header[6] = FLAG_ENCRYPTED;
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).map_err(|e| e.to_string())?;
        header[16..28].copy_from_slice(&nonce);
        let len = (payload.len() + CHACHA20_POLY1305.tag_len()) as u32;
        header[28..32].copy_from_slice(&len.to_le_bytes());
        key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(header), &mut payload)
            .map_err(|_| "encryption failed".to_string())?;
    } else {
        header[28..32].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    }
    let mut out = Vec::with_capacity(HEADER + payload.len() + TAG);
    out.extend_from_slice(&header);
    out.extend_from_slice(&payload);
    let tag = sealer.mac(&out);
    out.extend_from_slice(&tag);
    Ok(out)
}

/// Checks the seal and opens a v2 bundle; `expect_seq` guards against a file moved between slots.
pub fn decode(
    bytes: &[u8],
    expect_seq: Option<u64>,
    sealer: &Sealer,
    path: &str,
) -> Result<(u64, Bundle), BundleError> {
    let corrupt = |d: &str| BundleError::Corrupt { path: path.into(), detail: d.into() };
    if bytes.len() < HEADER + TAG || &bytes[..4] != MAGIC {
        return Err(corrupt("not a kiosk-agent bundle, or truncated"));
    }
    let schema = u16::from_le_bytes([bytes[4], bytes[5]]);
    if schema > SCHEMA {
        return Err(BundleError::TooNew { path: path.into(), found: schema as u32 });
    }
    let (body, tag) = bytes.split_at(bytes.len() - TAG);
    let want = sealer.mac(body);
    if !ring_ct_eq(&want, tag) {
        return Err(corrupt("seal does not match: the file was altered, truncated, or sealed with another device key"));
    }
    let mut header = [0u8; HEADER];
    header.copy_from_slice(&body[..HEADER]);
    let seq = u64::from_le_bytes(header[8..16].try_into().expect("8 bytes"));
    if expect_seq.is_some_and(|s| s != seq) {
        return Err(corrupt("bundle belongs to another queue slot"));
    }
    let len = u32::from_le_bytes(header[28..32].try_into().expect("4 bytes")) as usize;
    if len != body.len() - HEADER {
        return Err(corrupt("payload length does not match"));
    }
    let mut payload = body[HEADER..].to_vec();
    let plain: &[u8] = if header[6] & FLAG_ENCRYPTED != 0 {
        let key = sealer.aead.as_ref().ok_or(BundleError::NoKey { path: path.into() })?;
        let nonce = Nonce::assume_unique_for_key(header[16..28].try_into().expect("12 bytes"));
        key.open_in_place(nonce, Aad::from(header), &mut payload)
            .map_err(|_| corrupt("decryption failed: wrong encryption key"))?
    } else {
        &payload
    };
    let b: Bundle = serde_json::from_slice(plain).map_err(|e| corrupt(&e.to_string()))?;
    Ok((seq, b))
}

fn ring_ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Writes a sealed bundle durably (0600, temp + fsync + rename); returns its size in bytes.
pub fn write(path: &Path, seq: u64, b: &Bundle, sealer: &Sealer) -> Result<u64, BundleError> {
    let err = |d: String| BundleError::Write { path: path.display().to_string(), detail: d };
    let bytes = encode(seq, b, sealer).map_err(err)?;
    write_private(path, &bytes).map_err(|e| err(e.to_string()))?;
    Ok(bytes.len() as u64)
}

pub fn read(path: &Path, expect_seq: Option<u64>, sealer: &Sealer) -> Result<(u64, Bundle), BundleError> {
    let p = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| BundleError::Read { path: p.clone(), detail: e.to_string() })?;
    decode(&bytes, expect_seq, sealer, &p)
}

/// Reads a v1 bundle (plain JSON) for migration.
pub fn read_v1(path: &Path) -> Result<Job, BundleError> {
    #[derive(Deserialize)]
    struct V1 {
        schema: u32,
        job: Job,
    }
    let p = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| BundleError::Read { path: p.clone(), detail: e.to_string() })?;
    let v: V1 =
        serde_json::from_slice(&bytes).map_err(|e| BundleError::Corrupt { path: p.clone(), detail: e.to_string() })?;
    if v.schema != 1 {
        return Err(BundleError::Corrupt { path: p, detail: format!("expected schema 1, found {}", v.schema) });
    }
    Ok(v.job)
}

/// Overwrites a file with zeros, syncs, unlinks it and syncs the directory: the bytes do not
/// linger in the file system's free space any longer than the medium allows.
pub fn erase(path: &Path) -> std::io::Result<()> {
    use std::io::Write;
    match std::fs::OpenOptions::new().write(true).open(path) {
        Ok(mut f) => {
            let len = f.metadata()?.len() as usize;
            f.write_all(&vec![0u8; len])?;
            f.sync_all()?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    }
    // Gone meanwhile: someone else erased it (two purges at once).
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smileid::job::*;

    fn bundle() -> Bundle {
        Bundle {
            job: Job {
                partner_params: PartnerParams {
                    user_id: "u".into(),
                    job_id: "j".into(),
                    job_type: JobType::SmartSelfieEnrollment,
                    extra: Default::default(),
                },
                id_info: IdInfo { id_number: Some("SECRET-ID-123".into()), ..Default::default() },
                options: JobOptions::default(),
                images: vec![JobImage {
                    image_type: ImageType::SelfieFile,
                    file_name: "s.jpg".into(),
                    jpeg: vec![0xFF, 0xD8, 1, 2, 3, 0xFF, 0xD9],
                }],
                consent: None,
                metadata: vec![],
            },
            created_at: 42,
        }
    }

    #[test]
    fn round_trip_plain_and_encrypted() {
        for enc in [None, Some([7u8; 32])] {
            let s = Sealer::new([1; 32], enc);
            let bytes = encode(9, &bundle(), &s).unwrap();
            assert_eq!(decode(&bytes, Some(9), &s, "t").unwrap(), (9, bundle()));
            let text = String::from_utf8_lossy(&bytes);
            assert_eq!(text.contains("SECRET-ID-123"), enc.is_none(), "encryption hides the ID number");
        }
    }

    #[test]
    fn every_single_bit_flip_and_truncation_is_caught() {
        let s = Sealer::new([1; 32], Some([7; 32]));
        let bytes = encode(9, &bundle(), &s).unwrap();
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 1 << (i % 8);
            assert!(decode(&b, Some(9), &s, "t").is_err(), "flip at {i}");
        }
        for len in [0, 3, 31, 32, 64, bytes.len() - 1] {
            assert!(decode(&bytes[..len], Some(9), &s, "t").is_err(), "truncated to {len}");
        }
        assert!(decode(&bytes, Some(10), &s, "t").is_err(), "moved to another slot");
        assert!(decode(&bytes, Some(9), &Sealer::new([2; 32], Some([7; 32])), "t").is_err(), "other device key");
        assert!(matches!(decode(&bytes, Some(9), &Sealer::new([1; 32], None), "t"), Err(BundleError::NoKey { .. })));
    }

    #[test]
    fn erase_removes_the_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.kab");
        write(&p, 1, &bundle(), &Sealer::new([1; 32], None)).unwrap();
        erase(&p).unwrap();
        assert!(!p.exists());
        erase(&p).unwrap();
    }
}
