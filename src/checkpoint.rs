//! Checkpoint files and stopping cleanly: what lets a long `train` or
//! `simulate` survive being killed.
//!
//! A checkpoint is one file, `checkpoint/<name>.ckpt` in the run's output
//! folder: an 8-byte magic, the format version, the payload's length and
//! SHA-256, then the payload (postcard of whatever the command saves —
//! agents, learner state, RNG states, tick, partial results). It is written
//! through [`files::write_atomic`](crate::files::write_atomic), so a kill at
//! any moment leaves either the previous checkpoint or the new one, never a
//! mixture; a damaged or truncated file is reported, never decoded.
//!
//! [`stop_requested`] is the Ctrl-C flag: the CLI installs the handler, long
//! loops poll it between blocks of ticks, save a checkpoint and return
//! [`Interrupted`].
//!
//! Payloads are postcard ([`encode`], [`decode`]), which is not
//! self-describing: a saved type must not skip fields
//! (`skip_serializing_if`: the reader would take the next field's bytes for
//! it); save such values as JSON text. Floats are their 8 bits as they are
//! (NaN payloads, -0.0 and subnormals included); an `Option` is a tag byte.
//! Version 1 payloads were bincode (marlin before postcard): they are
//! refused with a message, not decoded.
//!
//! Fault injection for the tests: with `MARLIN_FAULT_ABORT_IN_CHECKPOINT=k`
//! in the environment, the process aborts (as a SIGKILL would stop it: no
//! unwinding, no cleanup) in the middle of writing its k-th checkpoint
//! (part of the payload on disk, the header not yet written).

use crate::files::write_atomic;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

const MAGIC: &[u8; 8] = b"MARLINCK";
/// The checkpoint format version this marlin writes and reads (2: postcard
/// payloads; 1 was bincode).
pub const VERSION: u32 = 2;
const HEADER: usize = 8 + 4 + 8 + 32;

/// Where `name`'s checkpoint lives in the output folder `out`
/// (the layout is the output folder's: [`outdir::checkpoint_path`](crate::files::outdir::checkpoint_path)).
pub fn path(out: &Path, name: &str) -> PathBuf {
    crate::files::outdir::checkpoint_path(out, name)
}

static WRITES: AtomicUsize = AtomicUsize::new(0);

/// Save `value` as the checkpoint at `path`, atomically. The payload is
/// encoded straight into the file (hashed on the way) and the header filled
/// in last, so a save holds no copy of the state in memory.
pub fn save<T: Serialize>(path: &Path, value: &T) -> anyhow::Result<()> {
    let nth = WRITES.fetch_add(1, Ordering::SeqCst) + 1;
    let abort = std::env::var("MARLIN_FAULT_ABORT_IN_CHECKPOINT")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        == Some(nth);
    write_atomic(path, |f| {
        f.write_all(&[0; HEADER])?;
        let (len, digest) = {
            let mut w = Digesting {
                inner: std::io::BufWriter::with_capacity(1 << 20, &mut *f),
                hasher: Sha256::new(),
                len: 0,
                abort,
                failed: None,
            };
            w.encode(value)?;
            (w.len, w.hasher.finalize_reset())
        };
        let mut header = Vec::with_capacity(HEADER);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&VERSION.to_le_bytes());
        header.extend_from_slice(&len.to_le_bytes());
        header.extend_from_slice(&digest);
        f.seek(SeekFrom::Start(0))?;
        f.write_all(&header)?;
        Ok(())
    })
}

/// Passes the payload on to the file, counting and hashing it; with the
/// fault hook armed, the process aborts once part of it is on disk.
struct Digesting<W: Write> {
    inner: W,
    hasher: Sha256,
    len: u64,
    abort: bool,
    /// The first write error (postcard keeps only that a write failed).
    failed: Option<std::io::Error>,
}

impl<W: Write> Digesting<W> {
    /// Encode `value` through `self` and flush. postcard reports any failed
    /// write as a full buffer: the error says what the write met instead.
    fn encode<T: Serialize + ?Sized>(&mut self, value: &T) -> anyhow::Result<()> {
        if let Err(e) = postcard::to_io(value, &mut *self) {
            return Err(match self.failed.take() {
                Some(io) => anyhow::Error::new(io).context("writing the checkpoint"),
                None => anyhow::Error::new(e).context("encoding the checkpoint"),
            });
        }
        Ok(self.flush()?)
    }
}

impl<W: Write> Write for Digesting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let k = self.inner.write(buf).inspect_err(|e| {
            if e.kind() != std::io::ErrorKind::Interrupted && self.failed.is_none() {
                self.failed = Some(std::io::Error::new(e.kind(), e.to_string()));
            }
        })?;
        self.hasher.update(&buf[..k]);
        self.len += k as u64;
        if self.abort && self.len >= 16 {
            self.inner.flush()?;
            std::process::abort();
        }
        Ok(k)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Read the checkpoint at `path`: errors say whether it is missing, not a
/// checkpoint, of another version, truncated or damaged.
pub fn load<T: DeserializeOwned>(path: &Path) -> Result<T, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: cannot read the checkpoint ({e})", path.display()))?;
    let bad = |what: String| format!("{}: {what}", path.display());
    if bytes.len() < HEADER || &bytes[..8] != MAGIC {
        return Err(bad(if bytes.starts_with(MAGIC) || bytes.len() < 8 {
            "truncated: shorter than a checkpoint's header".into()
        } else {
            "not a marlin checkpoint".into()
        }));
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if version == 1 {
        return Err(bad(format!(
            "checkpoint format version 1 (written by an older marlin, bincode); this marlin reads version \
             {VERSION}: start the run again without --resume"
        )));
    }
    if version != VERSION {
        return Err(bad(format!(
            "checkpoint format version {version}; this marlin reads version {VERSION}"
        )));
    }
    let len = u64::from_le_bytes(bytes[12..20].try_into().expect("8 bytes"));
    let payload = &bytes[HEADER..];
    if payload.len() as u64 != len {
        return Err(bad(format!(
            "truncated or damaged: {} bytes of payload, the header says {len}",
            payload.len()
        )));
    }
    if Sha256::digest(payload).as_slice() != &bytes[20..52] {
        return Err(bad("damaged: the payload does not match its SHA-256".into()));
    }
    decode(payload).map_err(|e| bad(format!("not a checkpoint of this command or marlin version ({e})")))
}

/// `value` in the checkpoints' payload encoding (postcard), for a part of a
/// checkpoint kept as bytes or sent between MPI ranks.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<Vec<u8>> {
    Ok(postcard::to_stdvec(value)?)
}

/// The value [`encode`] turned into `bytes`; every byte must belong to it.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    match postcard::take_from_bytes(bytes) {
        Ok((value, [])) => Ok(value),
        Ok((_, rest)) => Err(format!("{} trailing bytes", rest.len())),
        Err(e) => Err(e.to_string()),
    }
}

/// Load the checkpoint of `command` at `path` in the output folder `dir`
/// for `--resume`, with the messages a user needs: no checkpoint there
/// (and why that happens), or why it cannot be read.
pub fn load_for_resume<T: DeserializeOwned>(path: &Path, dir: &Path, command: &str) -> Result<T, String> {
    if !path.exists() {
        return Err(format!(
            "cannot resume from {}: it holds no checkpoint ({} is missing): the run stopped before saving its \
             first, finished (a finished run removes it), or this is not the output folder of `marlin {command}`; \
             allowed: the folder of an interrupted run — else start the run again",
            dir.display(),
            path.display()
        ));
    }
    load(path).map_err(|e| {
        format!(
            "cannot resume from {}: {e}; allowed: the output folder of an interrupted `marlin {command}` run",
            dir.display()
        )
    })
}

/// Check a `--checkpoint-every` interval (seconds).
pub fn check_interval(seconds: Option<f64>) -> Result<(), String> {
    match seconds {
        Some(e) if !(e.is_finite() && e >= 0.0) => Err(format!("--checkpoint-every {e}; allowed: seconds ≥ 0")),
        _ => Ok(()),
    }
}

/// SHA-256 (hex) of a file: checkpoints keep their inputs' digests so a
/// resume refuses changed inputs.
pub fn sha256_file(path: &Path) -> Result<String, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: cannot read ({e})", path.display()))?;
    Ok(crate::files::sha256_hex(&bytes))
}

/// Remove the checkpoint folder of a run that finished (its results are
/// written; a partial state would only mislead a later `--resume`).
pub fn remove(out: &Path) {
    let _ = std::fs::remove_dir_all(out.join("checkpoint"));
}

/// Remove what a killed run may have left in the checkpoint folder of
/// `out`: temporary files of writes that never finished.
pub fn clean_leftovers(out: &Path) {
    let Ok(dir) = std::fs::read_dir(out.join("checkpoint")) else {
        return;
    };
    for entry in dir.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') && name.contains(".tmp") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

static STOP: AtomicBool = AtomicBool::new(false);

/// Ask long runs to stop at their next block boundary (after a checkpoint).
pub fn request_stop() {
    STOP.store(true, Ordering::SeqCst);
}

/// Whether a stop was requested (Ctrl-C).
pub fn stop_requested() -> bool {
    STOP.load(Ordering::Relaxed)
}

static SAVING: AtomicUsize = AtomicUsize::new(0);

/// Marks a run that saves checkpoints and stops on request while it lives;
/// without one, a stop request has nobody to honour it and the process
/// should simply exit ([`saving`]).
pub struct Saving(());

impl Saving {
    pub fn new() -> Self {
        SAVING.fetch_add(1, Ordering::SeqCst);
        Saving(())
    }
}

impl Default for Saving {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Saving {
    fn drop(&mut self) {
        SAVING.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Whether a run that honours stop requests (a live [`Saving`]) is going.
pub fn saving() -> bool {
    SAVING.load(Ordering::SeqCst) > 0
}

/// A run that stopped on request after saving its checkpoint.
#[derive(Debug, thiserror::Error)]
#[error("interrupted at tick {tick}; the checkpoint is saved — continue with: marlin {command} --resume {}", out.display())]
pub struct Interrupted {
    pub command: &'static str,
    pub tick: u64,
    pub out: PathBuf,
}

/// The run a stopped command continues as, when it is a stage of a larger
/// one: `marlin run` sets (`"run"`, its folder) so a stage's stop advises
/// `marlin run --resume`, not the stage's own command.
static RESUME_AS: std::sync::OnceLock<(&'static str, PathBuf)> = std::sync::OnceLock::new();

/// Stops of the commands this process runs continue as `marlin {command}
/// --resume {dir}` (set once, by the outermost run).
pub fn resume_as(command: &'static str, dir: &Path) {
    let _ = RESUME_AS.set((command, dir.to_path_buf()));
}

/// What continues a run of `command` whose checkpoint is at `checkpoint`:
/// the command and the folder to give `--resume`.
pub fn resume_hint(command: &'static str, checkpoint: &Path) -> (&'static str, PathBuf) {
    match RESUME_AS.get() {
        Some((c, d)) => (c, crate::files::outdir::final_path(d)),
        None => (command, folder_of(checkpoint)),
    }
}

/// The stop of a run of `command` at `tick`, its checkpoint saved at
/// `checkpoint`.
pub fn interrupted(command: &'static str, tick: u64, checkpoint: &Path) -> Interrupted {
    let (command, out) = resume_hint(command, checkpoint);
    Interrupted { command, tick, out }
}

/// The output folder a checkpoint at `checkpoint` (from [`path`]) belongs to
/// (the folder the run's results land in, not its staging folder: what
/// `--resume` takes).
pub fn folder_of(checkpoint: &Path) -> PathBuf {
    crate::files::outdir::final_path(checkpoint.parent().and_then(Path::parent).unwrap_or(Path::new(".")))
}

/// `err`, the failure of a run that saves checkpoints at `checkpoint`: when
/// one is there (the run got past its first save), the error says so and
/// how to continue from it.
pub fn left_resumable(err: anyhow::Error, command: &'static str, checkpoint: &Path) -> anyhow::Error {
    if !checkpoint.exists() || err.chain().any(|e| e.is::<Interrupted>()) {
        return err;
    }
    let (again, out) = resume_hint(command, checkpoint);
    err.context(format!(
        "{command} stopped; its last checkpoint is usable — continue with: marlin {again} --resume {}",
        out.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    /// Floats as checkpoints hold them: NaN-as-null fields between others,
    /// and values whose bits a lossy encoding would change.
    #[derive(Serialize, Deserialize)]
    struct Floats {
        #[serde(with = "crate::files::nan_is_null")]
        unmeasured: f64,
        #[serde(with = "crate::files::nan_is_null")]
        measured: f64,
        negative_zero: f64,
        subnormals: Vec<f64>,
        after: (u64, String),
    }

    fn header(version: u32, payload: &[u8]) -> Vec<u8> {
        let mut b = MAGIC.to_vec();
        b.extend_from_slice(&version.to_le_bytes());
        b.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        b.extend_from_slice(&Sha256::digest(payload));
        b.extend_from_slice(payload);
        b
    }

    #[test]
    fn floats_and_nan_as_null_come_back_with_their_bits() {
        let dir = tempfile::tempdir().unwrap();
        let p = path(dir.path(), "floats");
        let smallest = f64::from_bits(1); // 4.9e-324
        let value = Floats {
            unmeasured: f64::NAN,
            measured: f64::MIN_POSITIVE / 3.0,
            negative_zero: -0.0,
            subnormals: vec![smallest, -smallest, f64::from_bits(0x000F_FFFF_FFFF_FFFF), -0.0, 0.0],
            after: (u64::MAX, "après".into()),
        };
        assert!(value.measured != 0.0 && !value.measured.is_normal());
        save(&p, &value).unwrap();
        let back: Floats = load(&p).unwrap();
        assert!(back.unmeasured.is_nan());
        assert_eq!(back.measured.to_bits(), value.measured.to_bits());
        assert_eq!(back.negative_zero.to_bits(), (-0.0f64).to_bits());
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&back.subnormals), bits(&value.subnormals));
        assert_eq!(back.after, value.after);
    }

    #[test]
    fn a_version_1_checkpoint_is_refused_with_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let p = path(dir.path(), "old");
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        let payload = encode(&(7u64, vec![1.5f64])).unwrap();
        // The same payload under this version's header loads: only the
        // version number stops the others.
        std::fs::write(&p, header(2, &payload)).unwrap();
        assert_eq!(load::<(u64, Vec<f64>)>(&p).unwrap(), (7, vec![1.5]));

        std::fs::write(&p, header(1, &payload)).unwrap();
        let e = load::<(u64, Vec<f64>)>(&p).unwrap_err();
        assert!(
            e.ends_with(
                "checkpoint format version 1 (written by an older marlin, bincode); this marlin reads version 2: \
                 start the run again without --resume"
            ),
            "{e}"
        );
        let e = load_for_resume::<(u64, Vec<f64>)>(&p, dir.path(), "train").unwrap_err();
        assert!(e.contains("version 1 (written by an older marlin, bincode)") && e.contains("without --resume"));

        std::fs::write(&p, header(3, &payload)).unwrap();
        let e = load::<(u64, Vec<f64>)>(&p).unwrap_err();
        assert!(
            e.ends_with("checkpoint format version 3; this marlin reads version 2"),
            "{e}"
        );
    }

    #[test]
    fn a_payload_with_trailing_bytes_is_refused() {
        let mut bytes = encode(&(7u64, vec![1.5f64])).unwrap();
        assert_eq!(decode::<(u64, Vec<f64>)>(&bytes).unwrap(), (7, vec![1.5]));
        bytes.push(0);
        assert_eq!(decode::<(u64, Vec<f64>)>(&bytes).unwrap_err(), "1 trailing bytes");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.ckpt");
        std::fs::write(&p, header(VERSION, &bytes)).unwrap();
        let e = load::<(u64, Vec<f64>)>(&p).unwrap_err();
        assert!(
            e.contains("not a checkpoint of this command") && e.contains("trailing"),
            "{e}"
        );
    }

    /// A disk that fills up: the error names it, not postcard's "buffer full".
    #[test]
    fn a_failed_write_says_why() {
        struct Full(usize);
        impl Write for Full {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                if self.0 < buf.len() {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::StorageFull,
                        "no space left (test)",
                    ));
                }
                self.0 -= buf.len();
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut w = Digesting {
            inner: Full(100),
            hasher: Sha256::new(),
            len: 0,
            abort: false,
            failed: None,
        };
        let e = w.encode(&vec![1.0f64; 1000]).unwrap_err();
        assert!(format!("{e:#}").contains("no space left (test)"), "{e:#}");
        let mut w = Digesting {
            inner: Full(100_000),
            hasher: Sha256::new(),
            len: 0,
            abort: false,
            failed: None,
        };
        w.encode(&vec![1.0f64; 1000]).unwrap();
        assert_eq!(w.len, 2 + 8 * 1000);
    }
}
