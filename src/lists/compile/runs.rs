//! Sorted runs of list entries on disk, and their merge: lists too big to
//! sort in a small appliance's memory are sorted a slice at a time, and the
//! slices read back together in order.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// A directory beside the compiled file for the runs, removed with them
/// whatever happens to the compile.
pub(super) struct SpillDir {
    path: PathBuf,
    made: bool,
}

impl SpillDir {
    /// Named from `out_file`; not made until the first run is written.
    pub(super) fn beside(out_file: &Path) -> SpillDir {
        let name = out_file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let path = out_file.with_file_name(format!(".{name}.sorting-{}", std::process::id()));
        SpillDir { path, made: false }
    }

    /// Where run `index` goes; the directory is made by [`SpillDir::make`].
    pub(super) fn run_path(&self, index: usize) -> PathBuf {
        self.path.join(format!("run-{index}"))
    }

    pub(super) fn make(&mut self) -> io::Result<()> {
        if !self.made {
            std::fs::create_dir_all(&self.path)?;
            self.made = true;
        }
        Ok(())
    }
}

impl Drop for SpillDir {
    fn drop(&mut self) {
        if self.made {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// One entry of a run: the key, its source and the kind of entry.
pub(super) struct RunEntry<'a> {
    pub key: &'a [u8],
    pub source: u16,
    pub kind: u8,
}

/// Writes entries already sorted by (key, source) to `path`, each as its
/// key's length, the key, the source and the kind.
pub(super) fn write_run<'a>(
    path: &Path,
    entries: impl Iterator<Item = RunEntry<'a>>,
) -> io::Result<()> {
    let mut out = BufWriter::with_capacity(1 << 16, File::create(path)?);
    for entry in entries {
        let len = u8::try_from(entry.key.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a key over 255 bytes"))?;
        out.write_all(&[len])?;
        out.write_all(entry.key)?;
        out.write_all(&entry.source.to_le_bytes())?;
        out.write_all(&[entry.kind])?;
    }
    out.into_inner().map_err(io::IntoInnerError::into_error)?;
    Ok(())
}

/// Reads one run back, an entry at a time.
pub(super) struct RunReader {
    reader: BufReader<File>,
    pub key: Vec<u8>,
    pub source: u16,
    pub kind: u8,
    /// False once the run is read to its end.
    pub live: bool,
}

impl RunReader {
    pub(super) fn open(path: &Path) -> io::Result<RunReader> {
        let mut run = RunReader {
            reader: BufReader::with_capacity(1 << 16, File::open(path)?),
            key: Vec::with_capacity(256),
            source: 0,
            kind: 0,
            live: true,
        };
        run.advance()?;
        Ok(run)
    }

    /// Moves to the next entry, or marks the run finished.
    pub(super) fn advance(&mut self) -> io::Result<()> {
        let mut len = [0u8; 1];
        match self.reader.read_exact(&mut len) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                self.live = false;
                return Ok(());
            }
            Err(e) => return Err(e),
        }
        self.key.resize(usize::from(len[0]), 0);
        self.reader.read_exact(&mut self.key)?;
        let mut tail = [0u8; 3];
        self.reader.read_exact(&mut tail)?;
        self.source = u16::from_le_bytes([tail[0], tail[1]]);
        self.kind = tail[2];
        Ok(())
    }
}

/// The run holding the smallest (key, source) among those not finished.
pub(super) fn smallest(runs: &[RunReader]) -> Option<usize> {
    runs.iter()
        .enumerate()
        .filter(|(_, r)| r.live)
        .min_by(|(_, a), (_, b)| a.key.cmp(&b.key).then(a.source.cmp(&b.source)))
        .map(|(i, _)| i)
}
