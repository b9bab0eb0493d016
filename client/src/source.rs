//! What an upload reads from: a file on disk or bytes in memory, read at offsets so segments
//! can be read concurrently.

use bytes::Bytes;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Bytes to upload, readable at any offset from several tasks at once.
pub trait Source: Sync {
    fn size(&self) -> u64;
    /// Fills `buffer` with the bytes at `offset`; the range is always within `size`.
    fn read_at(&self, buffer: &mut [u8], offset: u64) -> std::io::Result<()>;
    /// All the bytes, when they are in memory: segments are then encoded from them in place
    /// instead of copied out first.
    fn in_memory(&self) -> Option<&[u8]> {
        None
    }
}

impl Source for [u8] {
    fn size(&self) -> u64 {
        self.len() as u64
    }
    fn read_at(&self, buffer: &mut [u8], offset: u64) -> std::io::Result<()> {
        let start = usize::try_from(offset).map_err(std::io::Error::other)?;
        let bytes = start
            .checked_add(buffer.len())
            .and_then(|end| self.get(start..end))
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::UnexpectedEof))?;
        buffer.copy_from_slice(bytes);
        Ok(())
    }
    fn in_memory(&self) -> Option<&[u8]> {
        Some(self)
    }
}

impl Source for Bytes {
    fn size(&self) -> u64 {
        self.len() as u64
    }
    fn read_at(&self, buffer: &mut [u8], offset: u64) -> std::io::Result<()> {
        self.as_ref().read_at(buffer, offset)
    }
    fn in_memory(&self) -> Option<&[u8]> {
        Some(self)
    }
}

/// A file on disk, opened once.
pub struct FileSource {
    file: std::fs::File,
    size: u64,
    pub path: PathBuf,
}

impl FileSource {
    pub fn open(path: &Path) -> Result<FileSource, crate::Error> {
        let io = |operation| {
            move |source| crate::Error::Io {
                operation,
                path: path.to_path_buf(),
                source,
            }
        };
        let file = std::fs::File::open(path).map_err(io("opening"))?;
        let size = file.metadata().map_err(io("reading the size of"))?.len();
        Ok(FileSource {
            file,
            size,
            path: path.to_path_buf(),
        })
    }
}

impl Source for FileSource {
    fn size(&self) -> u64 {
        self.size
    }
    fn read_at(&self, buffer: &mut [u8], offset: u64) -> std::io::Result<()> {
        self.file.read_exact_at(buffer, offset)
    }
}
