//! Reading the file for the upload: one sequential pass for the whole-file
//! digests, and each part's bytes read on their own (positioned reads into
//! pooled buffers), so a slow part never holds up the others and a second
//! copy of a part (a retry, or the end game's duplicate) is just another
//! read. Memory is bounded by the read-ahead window, whatever the file size.

use bytes::Bytes;
use std::path::Path;
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

/// Bytes per read of a part.
pub const CHUNK: usize = 256 << 10;
/// Bytes of file data read ahead of the network, across all parts: a part's
/// reader takes one permit per chunk, the chunk's body stream gives it back.
pub const WINDOW: usize = 24 << 20;
/// Chunks read ahead for one part (its channel's capacity).
pub const PART_AHEAD: usize = 4;

/// A chunk of the file and its share of the read-ahead window.
pub type Chunk = (Bytes, OwnedSemaphorePermit);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digests {
    pub sha256: Option<String>,
    pub md5: Option<String>,
}

/// Which whole-file digests to compute while reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Hashing {
    pub sha256: bool,
    pub md5: bool,
}

/// Hash the whole file in one sequential pass, reusing one buffer.
pub fn hash_file(file: &Path, hashing: Hashing) -> std::io::Result<Digests> {
    use std::io::Read;
    let mut digests = Hasher::new(hashing);
    if hashing == Hashing::default() {
        return Ok(digests.finish());
    }
    let mut f = std::fs::File::open(file)?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        digests.update(&buf[..n]);
    }
    Ok(digests.finish())
}

/// Feed `[offset, offset+length)` of the file into `tx`, a window permit per
/// chunk. Stops early, without error, when the receiver is gone (the attempt
/// ended). Runs on a blocking thread.
pub fn feed_range(
    file: &Path,
    offset: u64,
    length: u64,
    tx: mpsc::Sender<Chunk>,
    window: &Arc<Semaphore>,
    pool: &Pool,
    rt: &tokio::runtime::Handle,
) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::open(file)?;
    let mut at = offset;
    let end = offset + length;
    while at < end {
        let Ok(permit) = rt.block_on(window.clone().acquire_owned()) else {
            return Ok(());
        };
        if tx.is_closed() {
            return Ok(());
        }
        let n = CHUNK.min((end - at) as usize);
        let mut chunk = pool.take();
        f.read_exact_at(&mut chunk.buf[..n], at)?;
        chunk.len = n;
        at += n as u64;
        if tx
            .blocking_send((Bytes::from_owner(chunk), permit))
            .is_err()
        {
            return Ok(());
        }
    }
    Ok(())
}

/// `[offset, offset+length)` of the file as a stream of chunks (retries).
pub async fn disk_range(
    file: &Path,
    offset: u64,
    length: u64,
) -> std::io::Result<impl futures_util::Stream<Item = std::io::Result<Bytes>> + use<>> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let mut f = tokio::fs::File::open(file).await?;
    f.seek(std::io::SeekFrom::Start(offset)).await?;
    Ok(tokio_util::io::ReaderStream::with_capacity(
        f.take(length),
        CHUNK,
    ))
}

/// Chunk buffers handed back when the network is done with them, so the
/// readers neither allocate nor clear memory per chunk. The window bounds
/// how many exist at once.
#[derive(Default, Clone)]
pub struct Pool(Arc<std::sync::Mutex<Vec<Vec<u8>>>>);

impl Pool {
    fn take(&self) -> Pooled {
        let buf = self
            .0
            .lock()
            .ok()
            .and_then(|mut free| free.pop())
            .unwrap_or_else(|| vec![0; CHUNK]);
        Pooled {
            buf,
            len: 0,
            pool: self.clone(),
        }
    }
}

/// A chunk of file data in a pooled buffer; `len` bytes of it are valid.
struct Pooled {
    buf: Vec<u8>,
    len: usize,
    pool: Pool,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        if let Ok(mut free) = self.pool.0.lock() {
            free.push(std::mem::take(&mut self.buf));
        }
    }
}

/// The whole-file digests being computed.
struct Hasher {
    sha: Option<sha2::Sha256>,
    md5: Option<md5::Md5>,
}

impl Hasher {
    fn new(h: Hashing) -> Self {
        use md5::Digest as _;
        Self {
            sha: h.sha256.then(sha2::Sha256::new),
            md5: h.md5.then(md5::Md5::new),
        }
    }

    fn update(&mut self, b: &[u8]) {
        use md5::Digest as _;
        if let Some(h) = self.sha.as_mut() {
            h.update(b);
        }
        if let Some(m) = self.md5.as_mut() {
            m.update(b);
        }
    }

    fn finish(self) -> Digests {
        use md5::Digest as _;
        Digests {
            sha256: self.sha.map(|h| hex::encode(h.finalize())),
            md5: self.md5.map(|m| hex::encode(m.finalize())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_pass_and_a_part_read_see_the_file_bytes() {
        use sha2::Digest;
        let rt = tokio::runtime::Runtime::new().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("file");
        let data: Vec<u8> = (0..3 * CHUNK + 12_345)
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        std::fs::write(&path, &data).unwrap();
        let sha = Hashing {
            sha256: true,
            md5: false,
        };
        let d = hash_file(&path, sha).unwrap();
        assert_eq!(d.sha256, Some(hex::encode(sha2::Sha256::digest(&data))));
        assert_eq!(d.md5, None);
        // A part spanning chunks, with a short last chunk, read on a blocking thread.
        let (offset, length) = (7u64, 2 * CHUNK as u64 + 100);
        let window = Arc::new(Semaphore::new(WINDOW / CHUNK));
        let (tx, mut rx) = mpsc::channel(PART_AHEAD);
        let (w, h) = (window.clone(), rt.handle().clone());
        let p = path.clone();
        let reader = std::thread::spawn(move || {
            feed_range(&p, offset, length, tx, &w, &Pool::default(), &h)
        });
        let mut fed = Vec::new();
        while let Some((chunk, _permit)) = rx.blocking_recv() {
            fed.extend_from_slice(&chunk);
        }
        reader.join().unwrap().unwrap();
        assert_eq!(fed, &data[offset as usize..(offset + length) as usize]);
        assert_eq!(
            window.available_permits(),
            WINDOW / CHUNK,
            "every permit came back"
        );
    }

    #[test]
    fn a_reader_stops_when_its_attempt_is_gone() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("file");
        std::fs::write(&path, vec![1u8; 10 * CHUNK]).unwrap();
        let window = Arc::new(Semaphore::new(WINDOW / CHUNK));
        let (tx, rx) = mpsc::channel(1);
        drop(rx);
        let r = feed_range(
            &path,
            0,
            10 * CHUNK as u64,
            tx,
            &window,
            &Pool::default(),
            rt.handle(),
        );
        assert!(r.is_ok());
        assert_eq!(window.available_permits(), WINDOW / CHUNK);
    }
}
