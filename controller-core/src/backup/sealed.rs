//! Passphrase sealing of a backup archive: a key derived with Argon2id from the passphrase
//! and a random salt, and the archive cut into 64 KiB chunks, each sealed with
//! ChaCha20-Poly1305 under a nonce made of a random prefix, the chunk's number and a
//! last-chunk flag. The header (format, Argon2 parameters, salt, prefix) is the associated
//! data of every chunk. So a changed header, a changed, dropped, repeated or reordered chunk,
//! and an archive cut short at a chunk boundary are all refused, not restored in part.
//!
//! Layout: `MAGIC`, then m_cost (KiB), t_cost and lanes as u32 big-endian, 16 bytes of salt,
//! 7 bytes of nonce prefix; then chunks, each a u32 big-endian length of its sealed bytes
//! (top bit set on the last chunk) followed by those bytes.

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use std::io::{self, Read, Write};

/// First bytes of a sealed archive (readable with `head -1`).
pub const MAGIC: &[u8] = b"mikrobill-backup-sealed-v1\n";
/// Plaintext bytes per chunk.
const CHUNK: usize = 64 * 1024;
const TAG: usize = 16;
const SALT: usize = 16;
const PREFIX: usize = 7;
const LAST: u32 = 1 << 31;
const HEADER: usize = MAGIC.len() + 12 + SALT + PREFIX;
/// The shortest passphrase accepted when sealing.
pub const MIN_PASSPHRASE: usize = 12;

/// Argon2id cost of the key derivation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfCost {
    /// Memory in KiB.
    pub m_kib: u32,
    /// Passes.
    pub t: u32,
    /// Lanes.
    pub p: u32,
}

impl KdfCost {
    /// What new archives use: 64 MiB and three passes (a fraction of a second here, and
    /// expensive to guess at scale).
    pub const DEFAULT: KdfCost = KdfCost {
        m_kib: 64 * 1024,
        t: 3,
        p: 1,
    };

    /// Whether a header's parameters are ones a reader should spend time on: a crafted
    /// header must not make a restore allocate gigabytes or loop for hours.
    fn plausible(self) -> bool {
        (8..=1024 * 1024).contains(&self.m_kib)
            && (1..=16).contains(&self.t)
            && (1..=16).contains(&self.p)
            && self.m_kib >= 8 * self.p
    }
}

fn invalid(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

fn derive(passphrase: &str, salt: &[u8], cost: KdfCost) -> io::Result<LessSafeKey> {
    let params = argon2::Params::new(cost.m_kib, cost.t, cost.p, Some(32))
        .map_err(|e| invalid(format!("key derivation parameters: {e}")))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut key = [0u8; 32];
    argon
        .hash_password_into(passphrase.as_bytes(), salt, &mut key)
        .map_err(|e| invalid(format!("key derivation: {e}")))?;
    let unbound = UnboundKey::new(&CHACHA20_POLY1305, &key).expect("32-byte key");
    Ok(LessSafeKey::new(unbound))
}

fn nonce(prefix: &[u8; PREFIX], counter: u32, last: bool) -> Nonce {
    let mut n = [0u8; 12];
    n[..PREFIX].copy_from_slice(prefix);
    n[PREFIX..PREFIX + 4].copy_from_slice(&counter.to_be_bytes());
    n[11] = u8::from(last);
    Nonce::assume_unique_for_key(n)
}

/// Whether `start` (the first bytes of a file) is a sealed archive's.
pub fn is_sealed(start: &[u8]) -> bool {
    start.starts_with(MAGIC)
}

/// Seals everything written to it into `out`; [`SealWriter::finish`] writes the last chunk.
pub struct SealWriter<W: Write> {
    out: W,
    key: LessSafeKey,
    header: Vec<u8>,
    prefix: [u8; PREFIX],
    counter: u32,
    buf: Vec<u8>,
}

impl<W: Write> SealWriter<W> {
    /// Derives the key from `passphrase` and writes the header.
    pub fn new(mut out: W, passphrase: &str, cost: KdfCost) -> io::Result<SealWriter<W>> {
        let salt: [u8; SALT] = rand::random();
        let prefix: [u8; PREFIX] = rand::random();
        let mut header = Vec::with_capacity(HEADER);
        header.extend_from_slice(MAGIC);
        for v in [cost.m_kib, cost.t, cost.p] {
            header.extend_from_slice(&v.to_be_bytes());
        }
        header.extend_from_slice(&salt);
        header.extend_from_slice(&prefix);
        let key = derive(passphrase, &salt, cost)?;
        out.write_all(&header)?;
        Ok(SealWriter {
            out,
            key,
            header,
            prefix,
            counter: 0,
            buf: Vec::with_capacity(CHUNK + TAG),
        })
    }

    fn seal_chunk(&mut self, last: bool) -> io::Result<()> {
        let n = nonce(&self.prefix, self.counter, last);
        self.counter = self
            .counter
            .checked_add(1)
            .ok_or_else(|| invalid("archive too large to seal (over 2^32 chunks)"))?;
        let mut chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK + TAG));
        self.key
            .seal_in_place_append_tag(n, Aad::from(&self.header[..]), &mut chunk)
            .map_err(|_| invalid("sealing failed"))?;
        let len = chunk.len() as u32 | if last { LAST } else { 0 };
        self.out.write_all(&len.to_be_bytes())?;
        self.out.write_all(&chunk)
    }

    /// Seals what is buffered as the last chunk and returns the inner writer, flushed.
    pub fn finish(mut self) -> io::Result<W> {
        self.seal_chunk(true)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> Write for SealWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        // A full chunk is sealed only when more data follows, so the last chunk is never
        // empty unless the whole stream is.
        if self.buf.len() == CHUNK && !data.is_empty() {
            self.seal_chunk(false)?;
        }
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Opens a sealed archive as it is read; any chunk that does not authenticate, and an end
/// before the last chunk, is an `InvalidData` error.
pub struct OpenReader<R: Read> {
    inner: R,
    key: LessSafeKey,
    header: Vec<u8>,
    prefix: [u8; PREFIX],
    counter: u32,
    plain: Vec<u8>,
    pos: usize,
    done: bool,
}

/// Why one chunk could not be read: a chunk that does not authenticate is told apart, so
/// only that, on the first chunk, reads as a wrong passphrase.
enum ChunkError {
    Unauthentic(u32),
    Io(io::Error),
}

impl From<io::Error> for ChunkError {
    fn from(e: io::Error) -> ChunkError {
        ChunkError::Io(e)
    }
}

/// Why a sealed archive cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The first chunk does not authenticate under the derived key.
    #[error("wrong passphrase, or the archive is damaged")]
    WrongPassphrase,
    /// Not a sealed archive, or a header no reader should accept.
    #[error("{0}")]
    Header(String),
    /// Reading failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl<R: Read> OpenReader<R> {
    /// Reads the header, derives the key and authenticates the first chunk, so a wrong
    /// passphrase is reported before anything is unpacked.
    pub fn new(mut inner: R, passphrase: &str) -> Result<OpenReader<R>, OpenError> {
        let mut header = vec![0u8; HEADER];
        inner.read_exact(&mut header).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => OpenError::Header("sealed header cut short".into()),
            _ => OpenError::Io(e),
        })?;
        if !is_sealed(&header) {
            return Err(OpenError::Header("not a sealed MikroBill backup".into()));
        }
        let word = |i: usize| {
            let at = MAGIC.len() + 4 * i;
            u32::from_be_bytes(header[at..at + 4].try_into().expect("4 bytes"))
        };
        let cost = KdfCost {
            m_kib: word(0),
            t: word(1),
            p: word(2),
        };
        if !cost.plausible() {
            return Err(OpenError::Header(format!(
                "implausible key derivation parameters {cost:?}"
            )));
        }
        let salt_at = MAGIC.len() + 12;
        let key = derive(passphrase, &header[salt_at..salt_at + SALT], cost)?;
        let mut prefix = [0u8; PREFIX];
        prefix.copy_from_slice(&header[salt_at + SALT..]);
        let mut reader = OpenReader {
            inner,
            key,
            header,
            prefix,
            counter: 0,
            plain: Vec::new(),
            pos: 0,
            done: false,
        };
        match reader.next_chunk() {
            Ok(()) => Ok(reader),
            Err(ChunkError::Unauthentic(_)) => Err(OpenError::WrongPassphrase),
            Err(ChunkError::Io(e)) => Err(OpenError::Io(e)),
        }
    }

    fn next_chunk(&mut self) -> Result<(), ChunkError> {
        let mut len = [0u8; 4];
        if let Err(e) = self.inner.read_exact(&mut len) {
            return Err(if e.kind() == io::ErrorKind::UnexpectedEof {
                invalid("the sealed archive ends before its last chunk (cut short)")
            } else {
                e
            }
            .into());
        }
        let len = u32::from_be_bytes(len);
        let last = len & LAST != 0;
        let size = (len & !LAST) as usize;
        if !(TAG..=CHUNK + TAG).contains(&size) {
            return Err(invalid(format!(
                "chunk {} has an impossible length {size}",
                self.counter
            ))
            .into());
        }
        let mut chunk = vec![0u8; size];
        self.inner.read_exact(&mut chunk).map_err(|e| {
            ChunkError::Io(if e.kind() == io::ErrorKind::UnexpectedEof {
                invalid("the sealed archive is cut short inside a chunk")
            } else {
                e
            })
        })?;
        let n = nonce(&self.prefix, self.counter, last);
        let plain_len = self
            .key
            .open_in_place(n, Aad::from(&self.header[..]), &mut chunk)
            .map_err(|_| ChunkError::Unauthentic(self.counter))?
            .len();
        chunk.truncate(plain_len);
        self.counter += 1;
        self.plain = chunk;
        self.pos = 0;
        if last {
            self.done = true;
            let mut extra = [0u8; 1];
            if self.inner.read(&mut extra)? != 0 {
                return Err(invalid("bytes follow the last sealed chunk").into());
            }
        }
        Ok(())
    }
}

impl<R: Read> Read for OpenReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.plain.len() {
            if self.done {
                return Ok(0);
            }
            self.next_chunk().map_err(|e| match e {
                ChunkError::Unauthentic(n) => invalid(format!(
                    "chunk {n} does not authenticate: the archive was changed or damaged"
                )),
                ChunkError::Io(e) => e,
            })?;
        }
        let n = out.len().min(self.plain.len() - self.pos);
        out[..n].copy_from_slice(&self.plain[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Cheap parameters so properties run many cases.
    const FAST: KdfCost = KdfCost {
        m_kib: 8,
        t: 1,
        p: 1,
    };

    fn seal(data: &[u8], pass: &str) -> Vec<u8> {
        let mut w = SealWriter::new(Vec::new(), pass, FAST).unwrap();
        // Uneven writes, so chunk boundaries fall anywhere.
        for part in data.chunks(7001) {
            w.write_all(part).unwrap();
        }
        w.finish().unwrap()
    }

    fn open(sealed: &[u8], pass: &str) -> Result<Vec<u8>, String> {
        let mut r = OpenReader::new(sealed, pass).map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        r.read_to_end(&mut out).map_err(|e| e.to_string())?;
        Ok(out)
    }

    #[test]
    fn the_wrong_passphrase_is_named() {
        let sealed = seal(b"ledger", "correct horse battery");
        assert_eq!(
            open(&sealed, "correct horse battery").unwrap(),
            b"ledger".to_vec()
        );
        assert_eq!(
            open(&sealed, "wrong horse battery").unwrap_err(),
            "wrong passphrase, or the archive is damaged"
        );
    }

    #[test]
    fn a_cut_archive_says_so() {
        let sealed = seal(b"a small archive, one chunk", "correct horse battery");
        let err = open(&sealed[..sealed.len() - 5], "correct horse battery").unwrap_err();
        assert!(err.contains("cut short"), "{err}");
    }

    #[test]
    fn a_changed_cost_is_refused() {
        let mut sealed = seal(b"x", "correct horse battery");
        sealed[MAGIC.len()..MAGIC.len() + 4].copy_from_slice(&16u32.to_be_bytes());
        assert!(open(&sealed, "correct horse battery").is_err());
    }

    #[test]
    fn a_crafted_header_cannot_demand_huge_memory() {
        let mut sealed = seal(b"x", "correct horse battery");
        sealed[MAGIC.len()..MAGIC.len() + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        let err = open(&sealed, "correct horse battery").unwrap_err();
        assert!(err.contains("implausible"), "{err}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn sealed_data_opens_to_itself(data in proptest::collection::vec(any::<u8>(), 0..200_000)) {
            prop_assert_eq!(open(&seal(&data, "a long passphrase"), "a long passphrase").unwrap(), data);
        }

        #[test]
        fn any_flipped_byte_is_refused(
            data in proptest::collection::vec(any::<u8>(), 1..150_000),
            at in any::<prop::sample::Index>(),
            bit in 0u8..8,
        ) {
            let mut sealed = seal(&data, "a long passphrase");
            // Not the memory cost: a flip there may ask for hundreds of MiB (a plausible cost,
            // refused all the same, but slowly); the test above covers a changed cost.
            let mut i = at.index(sealed.len() - 4);
            if i >= MAGIC.len() {
                i += 4;
            }
            sealed[i] ^= 1 << bit;
            prop_assert!(open(&sealed, "a long passphrase").is_err());
        }

        #[test]
        fn a_cut_archive_is_refused(
            data in proptest::collection::vec(any::<u8>(), 0..200_000),
            at in any::<prop::sample::Index>(),
        ) {
            let sealed = seal(&data, "a long passphrase");
            let cut = at.index(sealed.len());
            prop_assert!(open(&sealed[..cut], "a long passphrase").is_err());
        }

        #[test]
        fn dropped_or_swapped_chunks_are_refused(data in proptest::collection::vec(any::<u8>(), 3 * CHUNK..4 * CHUNK)) {
            let sealed = seal(&data, "a long passphrase");
            let c = 4 + CHUNK + TAG;
            let (head, body) = sealed.split_at(HEADER);
            // Drop the second chunk.
            let dropped: Vec<u8> = [head, &body[..c], &body[2 * c..]].concat();
            prop_assert!(open(&dropped, "a long passphrase").is_err());
            // Swap the first two.
            let swapped: Vec<u8> = [head, &body[c..2 * c], &body[..c], &body[2 * c..]].concat();
            prop_assert!(open(&swapped, "a long passphrase").is_err());
            // Drop the last chunk: what is left ends without one.
            let n = body.len() - (4 + (data.len() - 3 * CHUNK) + TAG);
            prop_assert!(open(&sealed[..HEADER + n], "a long passphrase").is_err());
        }
    }
}
