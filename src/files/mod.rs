//! File plumbing shared by every command: atomic writes (temporary file in the
//! destination folder, then rename, so no reader ever sees half a file), .npz
//! archives for numpy users, and reading user-supplied numeric tables.
//!
//! A leaf module: it knows nothing of networks or solvers.

pub mod non_finite;
pub mod outdir;

use anyhow::{Context, Result};
use ndarray::{Array, Dimension};
use ndarray_npy::{WritableElement, WriteNpyExt};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::{BufRead, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Write `path` atomically: `write` fills a temporary file beside it, which is
/// synced and renamed into place only if everything succeeded.
pub fn write_atomic(path: &Path, write: impl FnOnce(&mut std::fs::File) -> Result<()>) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create folder {}", dir.display()))?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("out");
    let tmp: PathBuf = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        write(&mut f)?;
        f.flush()?;
        f.sync_all()?;
        std::fs::rename(&tmp, path).with_context(|| format!("cannot move {} into place", path.display()))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

pub use crate::memory::{MemoryBudget, array_budget, available_memory};

/// Write text (e.g. JSON or SVG) atomically.
pub fn write_text(path: &Path, text: &str) -> Result<()> {
    write_atomic(path, |f| Ok(f.write_all(text.as_bytes())?))
}

/// Serde for a number that is NaN by design where nothing was measured
/// (e.g. a running average over no ticks): written as `null` (JSON) or an
/// absent option (postcard, in checkpoints), read back as NaN — so [`write_json`] does not
/// flag it as a non-finite number.
pub mod nan_is_null {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        match v.is_nan() {
            true => s.serialize_none(),
            false => s.serialize_some(v),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
    }
}

/// Write a value as pretty JSON, atomically. JSON has no NaN or ∞ (they
/// are written as `null`): every non-finite number in `value` is listed,
/// with its path, in the object's `warnings` list (made if missing) and
/// logged, so it cannot pass for an absent value. Use [`write_sealed_json`]
/// for metadata that an archive's seal covers.
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let bad = non_finite::paths(value);
    if bad.is_empty() {
        return write_text(path, &(serde_json::to_string_pretty(value)? + "\n"));
    }
    let notes: Vec<String> = bad
        .iter()
        .map(|p| format!("non-finite number (NaN or ±∞, written as null) at {p}"))
        .collect();
    for n in &notes {
        tracing::warn!("{}: {n}", path.display());
    }
    let mut v = serde_json::to_value(value)?;
    if let Some(object) = v.as_object_mut() {
        let list = object
            .entry("warnings")
            .or_insert_with(|| serde_json::Value::Array(Vec::new()));
        if let Some(list) = list.as_array_mut() {
            list.extend(notes.into_iter().map(serde_json::Value::String));
        }
    }
    write_text(path, &(serde_json::to_string_pretty(&v)? + "\n"))
}

/// Write metadata as pretty JSON, atomically and exactly as given (a seal
/// covers its compact form, [`canonical_json`]); non-finite numbers are
/// logged.
pub fn write_sealed_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    for p in non_finite::paths(value) {
        tracing::warn!(
            "{}: non-finite number (NaN or ±∞, written as null) at {p}",
            path.display()
        );
    }
    write_text(path, &(serde_json::to_string_pretty(value)? + "\n"))
}

/// Adds one array to an open archive member.
type AddArray = Box<dyn FnOnce(&mut dyn Write) -> Result<()>>;

/// Builder for an .npz archive that is written atomically and sealed (see
/// [`Seal`]) on [`Npz::write`].
pub struct Npz {
    seal: Seal,
    entries: Vec<(String, AddArray)>,
}

impl Npz {
    /// An archive of `format` (e.g. `"marlin-policy"`), format version 1.
    pub fn new(format: &str) -> Self {
        Self::sealed(format, 1, None)
    }

    /// An archive of `format` and `version` whose metadata (a JSON file
    /// beside it) is sealed with it: `metadata` is that JSON in compact form
    /// ([`canonical_json`]).
    pub fn sealed(format: &str, version: u32, metadata: Option<&str>) -> Self {
        Npz {
            seal: Seal::new(format, version, metadata),
            entries: Vec::new(),
        }
    }

    /// Add an array under `name` (numpy sees `name` as the key).
    pub fn add<A, D>(&mut self, name: &str, array: Array<A, D>) -> &mut Self
    where
        A: WritableElement + 'static,
        D: Dimension + 'static,
    {
        let key = name.to_string();
        self.entries.push((
            key.clone(),
            Box::new(move |w| {
                array
                    .write_npy(w)
                    .map_err(|e| anyhow::anyhow!("writing array {key}: {e}"))
            }),
        ));
        self
    }

    pub fn write(self, path: &Path) -> Result<()> {
        write_atomic(path, |f| {
            let comment = self.seal.placeholder();
            {
                let mut zip = zip::ZipWriter::new(std::io::BufWriter::new(&mut *f));
                let opts = zip::write::SimpleFileOptions::default()
                    .compression_method(zip::CompressionMethod::Stored)
                    .large_file(true);
                for (name, add) in self.entries {
                    zip.start_file(format!("{name}.npy"), opts)?;
                    add(&mut zip)?;
                }
                zip.set_comment(comment.clone());
                zip.finish()?.flush()?;
            }
            seal_file(f, &comment).with_context(|| format!("sealing {}", path.display()))
        })
    }
}

/// Read a reward table of shape `[X, 2ⁿ]` from `.npy` (float64) or `.csv`
/// (X rows of 2ⁿ numbers; `#` starts a comment). Errors say what is wrong and
/// what is allowed.
pub fn read_reward_table(path: &Path, inputs: usize, n: usize) -> std::result::Result<Vec<f64>, String> {
    let c = 1usize << n;
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let table: Vec<f64> = match ext.as_str() {
        "npy" => {
            let a = read_npy_file::<f64, ndarray::Ix2>(path)
                .map_err(|e| format!("{e}; allowed: a 2-d float64 .npy array of shape [{inputs}, {c}]"))?;
            if a.shape() != [inputs, c] {
                return Err(format!(
                    "{} has shape {:?}; allowed: [{inputs}, {c}] (input values × 2^{n} network states)",
                    path.display(),
                    a.shape()
                ));
            }
            a.iter().copied().collect()
        }
        "csv" => {
            let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let mut rows = Vec::new();
            for (i, line) in text.lines().enumerate() {
                let line = line.split('#').next().unwrap_or("").trim();
                if line.is_empty() {
                    continue;
                }
                let row: std::result::Result<Vec<f64>, _> = line.split(',').map(|v| v.trim().parse::<f64>()).collect();
                let row =
                    row.map_err(|e| format!("{}:{}: {e}; allowed: comma-separated numbers", path.display(), i + 1))?;
                if row.len() != c {
                    return Err(format!(
                        "{}:{}: {} columns; allowed: {c} (one per network state, bit k of the column index is neuron k)",
                        path.display(),
                        i + 1,
                        row.len()
                    ));
                }
                rows.push(row);
            }
            if rows.len() != inputs {
                return Err(format!(
                    "{}: {} rows; allowed: {inputs} (one per input value)",
                    path.display(),
                    rows.len()
                ));
            }
            rows.into_iter().flatten().collect()
        }
        _ => {
            return Err(format!(
                "{}: unknown table format; allowed: .npy or .csv",
                path.display()
            ));
        }
    };
    if let Some(v) = table.iter().find(|v| !v.is_finite()) {
        return Err(format!("{} contains {v}; allowed: finite numbers", path.display()));
    }
    Ok(table)
}

/// The seal marlin puts on every .npz it writes, as the archive's comment
/// (compact JSON at the very end of the file, which numpy ignores): the
/// format, its version, the SHA-256 of every byte of the file before the
/// comment and, for archives with a JSON metadata file beside them, the
/// SHA-256 of that metadata in compact form. Readers check it with
/// [`open_npz`], so a truncated, damaged or mismatched file is reported as
/// such; archives without a seal (made by a user's own numpy code) are
/// accepted and validated like any input.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seal {
    pub format: String,
    pub format_version: u32,
    /// SHA-256 (hex) of the file's bytes before the comment.
    pub sha256: String,
    /// SHA-256 (hex) of the metadata file's content in compact JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_sha256: Option<String>,
}

/// The formats of the archives marlin writes (trajectories and maze
/// demonstrations carry their own, `record::FORMAT` and `demos::FORMAT`).
pub mod formats {
    /// Per-neuron policies over the network's states (`solve`, `train`).
    pub const POLICY: &str = "marlin-policy";
    pub const MAZE_POLICY: &str = "marlin-maze-policy";
    pub const TEAM_POLICY: &str = "marlin-team-policy";
    pub const TEAM_LEARNED_POLICY: &str = "marlin-team-learned-policy";
    /// `infer`'s team_reward.npz on a team record.
    pub const TEAM_REWARD: &str = "marlin-team-reward";
    /// `infer`'s reward.npz on a network.
    pub const REWARD: &str = "marlin-reward";
    pub const MAZE_REWARD: &str = "marlin-maze-reward";
    /// The measurements of a solved sensory code.
    pub const CODING: &str = "marlin-coding";
}

/// What an unwritten digest reads as, until [`seal_file`] fills it in.
const UNSEALED: &str = "0000000000000000000000000000000000000000000000000000000000000000";

impl Seal {
    pub fn new(format: &str, version: u32, metadata: Option<&str>) -> Self {
        Seal {
            format: format.into(),
            format_version: version,
            sha256: UNSEALED.into(),
            metadata_sha256: metadata.map(|m| sha256_hex(m.as_bytes())),
        }
    }

    /// The comment to write before the file's digest is known (same length
    /// as the final one).
    pub fn placeholder(&self) -> String {
        serde_json::to_string(&Seal {
            sha256: UNSEALED.into(),
            ..self.clone()
        })
        .expect("a seal serialises")
    }
}

/// A value's compact JSON: what a metadata seal covers. Parsing the pretty
/// file and writing it compactly gives the same text (serde_json's floats
/// round-trip), so readers recompute it from what they parsed.
pub fn canonical_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("metadata serialises")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of `bytes`, in hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// SHA-256 of the first `len` bytes of `file`.
fn digest_prefix(file: &mut std::fs::File, len: u64) -> std::io::Result<String> {
    file.seek(SeekFrom::Start(0))?;
    let mut hasher = Sha256::new();
    let mut reader = std::io::BufReader::with_capacity(1 << 20, file.take(len));
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            break;
        }
        hasher.update(buf);
        let k = buf.len();
        reader.consume(k);
    }
    let read = reader.into_inner().limit();
    if read != 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the file ended early",
        ));
    }
    Ok(hex(&hasher.finalize()))
}

/// Fill in the digest of a finished archive whose comment is `placeholder`
/// (the last bytes of the file), in place.
pub fn seal_file(file: &mut std::fs::File, placeholder: &str) -> Result<()> {
    let len = file.seek(SeekFrom::End(0))?;
    let body = len
        .checked_sub(placeholder.len() as u64)
        .context("archive shorter than its comment")?;
    let digest = digest_prefix(file, body)?;
    let at = placeholder
        .find(&format!("\"sha256\":\"{UNSEALED}\""))
        .context("the placeholder has no digest field")?
        + "\"sha256\":\"".len();
    file.seek(SeekFrom::Start(body + at as u64))?;
    file.write_all(digest.as_bytes())?;
    file.flush()?;
    Ok(())
}

/// Check the seal of the .npz at `path`, if it has one: it must be one of
/// `formats`, of a version this marlin reads (1 to `max_version`), its bytes
/// must match their digest and, when `metadata` (the compact JSON of what was
/// read from the metadata file) is given and the seal covers metadata, that
/// too. Returns the seal, or None for an archive marlin did not write.
pub fn check_seal(
    path: &Path,
    formats: &[&str],
    max_version: u32,
    metadata: Option<&str>,
) -> std::result::Result<Option<Seal>, String> {
    let damaged = |e: &dyn std::fmt::Display| {
        format!(
            "not a readable .npz archive: truncated or damaged ({e}); allowed: an .npz file as numpy or marlin write it"
        )
    };
    let mut file = std::fs::File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let comment = {
        let archive = zip::ZipArchive::new(&mut file).map_err(|e| damaged(&e))?;
        archive.comment().to_vec()
    };
    // Unsealed: no comment, or one another tool wrote. Anything that looks
    // like a seal (a JSON object, or naming marlin) must be a whole one, so a
    // damaged seal never passes for no seal.
    if !(comment.starts_with(b"{") || comment.windows(6).any(|w| w == b"marlin")) {
        return Ok(None);
    }
    let seal: Seal = std::str::from_utf8(&comment)
        .ok()
        .and_then(|c| serde_json::from_str(c).ok())
        .ok_or_else(|| damaged(&"its marlin seal is unreadable"))?;
    if !formats.contains(&seal.format.as_str()) {
        return Err(format!(
            "a {} file; allowed here: {}",
            seal.format,
            formats.join(" or ")
        ));
    }
    if seal.format_version == 0 || seal.format_version > max_version {
        return Err(format!(
            "{} format version {}; this marlin reads versions 1 to {max_version} (a newer marlin wrote it?)",
            seal.format, seal.format_version
        ));
    }
    let len = file.seek(SeekFrom::End(0)).map_err(|e| damaged(&e))?;
    let body = len - comment.len() as u64;
    let mut tail = vec![0; comment.len()];
    file.seek(SeekFrom::Start(body))
        .and_then(|_| file.read_exact(&mut tail))
        .map_err(|e| damaged(&e))?;
    if tail != comment {
        return Err(damaged(&"bytes after its end"));
    }
    let digest = digest_prefix(&mut file, body).map_err(|e| damaged(&e))?;
    if digest != seal.sha256 {
        return Err(format!(
            "corrupted: its content does not match the SHA-256 marlin sealed it with \
             (sealed {}…, now {}…); the file was damaged or changed after marlin wrote it",
            &seal.sha256[..seal.sha256.len().min(12)],
            &digest[..12]
        ));
    }
    if let (Some(sealed), Some(meta)) = (&seal.metadata_sha256, metadata)
        && sha256_hex(meta.as_bytes()) != *sealed
    {
        return Err(
            "its metadata file (the .json beside it) does not match the one marlin wrote with it: \
             damaged, edited, or from another run"
                .into(),
        );
    }
    Ok(Some(seal))
}

/// Check that the .npz at `path` is one marlin sealed and that it is intact
/// (its bytes match the seal's digest), whatever its format: for results a
/// run finds already written (a resumed study's finished stages).
pub fn check_intact(path: &Path) -> std::result::Result<(), String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let comment = zip::ZipArchive::new(file)
        .map_err(|e| format!("not a readable .npz archive: truncated or damaged ({e})"))?
        .comment()
        .to_vec();
    let seal: Seal = std::str::from_utf8(&comment)
        .ok()
        .and_then(|c| serde_json::from_str(c).ok())
        .ok_or("it carries no marlin seal")?;
    check_seal(path, &[seal.format.as_str()], seal.format_version.max(1), None).map(|_| ())
}

/// Refuse an .npz whose arrays, once read and copied `copies` times, would
/// not fit in memory (its members' uncompressed sizes, from the archive's
/// directory: a compressed file can hold far more than its own size).
pub fn check_npz_fits(path: &Path, copies: u64) -> std::result::Result<(), String> {
    let damaged = |e: zip::result::ZipError| format!("not a readable .npz archive: truncated or damaged ({e})");
    let file = std::fs::File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let mut archive = zip::ZipArchive::new(file).map_err(damaged)?;
    let mut size = 0u64;
    for i in 0..archive.len() {
        size = size.saturating_add(archive.by_index_raw(i).map_err(damaged)?.size());
    }
    let need = size.saturating_mul(copies);
    let budget = MemoryBudget::now();
    if !budget.fits(need) {
        return Err(format!(
            "its arrays take {} MiB and need about {} MiB to read; {}",
            size >> 20,
            need >> 20,
            budget.describe()
        ));
    }
    Ok(())
}

/// Open an .npz for reading after [`check_seal`].
pub fn open_npz(
    path: &Path,
    formats: &[&str],
    max_version: u32,
    metadata: Option<&str>,
) -> std::result::Result<Archive, String> {
    check_seal(path, formats, max_version, metadata)?;
    Archive::open(path)
}

/// An .npz archive opened for reading, whose arrays are checked before they
/// are allocated: an array's header (its shape and element size) must
/// describe exactly the bytes its entry holds, and those must fit the
/// memory budget ([`array_budget`]), so a file whose header lies is an
/// error naming the file and the array, never an allocation failure.
pub struct Archive {
    path: PathBuf,
    file_len: u64,
    zip: zip::ZipArchive<std::fs::File>,
}

/// Why an array could not be read from a file (its message names the file
/// and the array).
#[derive(Debug, Clone, PartialEq)]
pub struct ArrayError(pub String);

impl std::fmt::Display for ArrayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ArrayError {}

/// What an .npy header says: the element type, the shape and the header's
/// own length in bytes.
struct NpyHeader {
    descr: String,
    shape: Vec<u64>,
    len: u64,
}

/// Read an .npy header (format versions 1 to 3) from `reader` without
/// trusting it: its length is bounded, and the shape is parsed as numbers
/// that later arithmetic checks for overflow.
fn read_npy_header(mut reader: impl Read) -> std::result::Result<NpyHeader, String> {
    let mut magic = [0u8; 8];
    reader
        .read_exact(&mut magic)
        .map_err(|e| format!("shorter than an .npy header ({e})"))?;
    if &magic[..6] != b"\x93NUMPY" {
        return Err("not an .npy array (no \\x93NUMPY magic)".into());
    }
    let (width, len) = match magic[6] {
        1 => {
            let mut b = [0u8; 2];
            reader
                .read_exact(&mut b)
                .map_err(|e| format!("header cut short ({e})"))?;
            (2, u16::from_le_bytes(b) as u64)
        }
        2 | 3 => {
            let mut b = [0u8; 4];
            reader
                .read_exact(&mut b)
                .map_err(|e| format!("header cut short ({e})"))?;
            (4, u32::from_le_bytes(b) as u64)
        }
        v => return Err(format!(".npy format version {v}; allowed: 1 to 3")),
    };
    if len > 1 << 16 {
        return Err(format!("an .npy header of {len} bytes; allowed: at most 65536"));
    }
    let mut text = vec![0u8; len as usize];
    reader
        .read_exact(&mut text)
        .map_err(|e| format!("header cut short ({e})"))?;
    let text = String::from_utf8_lossy(&text);
    let value_of = |key: &str| -> Option<&str> {
        let at = text.find(&format!("'{key}'"))? + key.len() + 2;
        Some(text[at..].trim_start().strip_prefix(':')?.trim_start())
    };
    let descr = value_of("descr")
        .and_then(|v| v.strip_prefix('\''))
        .and_then(|v| v.split('\'').next())
        .ok_or("its header has no plain 'descr' (structured arrays are not read)")?
        .to_string();
    let shape = value_of("shape")
        .and_then(|v| v.strip_prefix('('))
        .and_then(|v| v.split(')').next())
        .ok_or("its header has no 'shape' tuple")?;
    let shape = shape
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| d.trim_end_matches('L').parse::<u64>())
        .collect::<std::result::Result<Vec<u64>, _>>()
        .map_err(|e| format!("its header's shape ({shape}) is not a tuple of sizes ({e})"))?;
    Ok(NpyHeader {
        descr,
        shape,
        len: 8 + width + len,
    })
}

/// The size in bytes of one element of `descr` (`<f8` → 8), if fixed.
fn item_size(descr: &str) -> Option<u64> {
    let kind = descr.trim_start_matches(['<', '>', '|', '=']);
    let mut chars = kind.chars();
    let code = chars.next()?;
    let n: u64 = chars.as_str().parse().ok()?;
    match code {
        'b' | 'i' | 'u' | 'f' | 'c' | 'm' | 'M' | '?' => Some(n),
        'U' => n.checked_mul(4),
        'S' | 'a' | 'V' => Some(n),
        _ => None,
    }
}

/// Check an .npy header read from `reader` against `data_len`, the bytes
/// that hold the array (header included): the shape times the element size
/// must be exactly the bytes after the header, and fit the memory budget.
/// `what` names the array for messages.
fn check_npy_header(reader: impl Read, data_len: u64, what: &str) -> std::result::Result<(), String> {
    let header =
        read_npy_header(reader).map_err(|e| format!("{what}: {e}; allowed: an array as numpy's save writes it"))?;
    let item = item_size(&header.descr).ok_or_else(|| {
        format!(
            "{what}: its header's element type {:?} has no fixed size; allowed: numbers",
            header.descr
        )
    })?;
    let shape = header.shape;
    let elements = shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d));
    let need = elements.and_then(|e| e.checked_mul(item));
    let have = data_len.saturating_sub(header.len);
    let Some(need) = need.filter(|&b| b == have && header.len <= data_len) else {
        return Err(format!(
            "{what}: its header says shape {shape:?} of {item}-byte elements ({}), but the file holds {have} \
             bytes of data for it; the header lies or the file is damaged (allowed: an array whose data is \
             what its header says)",
            need.map_or("more bytes than a 64-bit count holds".to_string(), |b| format!(
                "{b} bytes"
            ))
        ));
    };
    let budget = array_budget();
    if need > budget {
        return Err(format!(
            "{what}: shape {shape:?} takes {} MiB; this process may allocate {} MiB (allowed: arrays that fit \
             in memory)",
            need >> 20,
            budget >> 20
        ));
    }
    Ok(())
}

impl Archive {
    /// Open the .npz at `path` (no seal check: see [`open_npz`]).
    pub fn open(path: &Path) -> std::result::Result<Archive, String> {
        let file = std::fs::File::open(path).map_err(|e| format!("cannot open: {e}"))?;
        let file_len = file.metadata().map_err(|e| format!("cannot open: {e}"))?.len();
        let zip = zip::ZipArchive::new(file).map_err(|e| format!("not a readable .npz archive ({e})"))?;
        Ok(Archive {
            path: path.to_path_buf(),
            file_len,
            zip,
        })
    }

    /// The names of the arrays (without `.npy`).
    pub fn names(&self) -> Vec<String> {
        self.zip
            .file_names()
            .map(|n| n.strip_suffix(".npy").unwrap_or(n).to_string())
            .collect()
    }

    /// Whether the archive holds an array `name`.
    pub fn has(&self, name: &str) -> bool {
        self.zip.index_for_name(name).is_some() || self.zip.index_for_name(&format!("{name}.npy")).is_some()
    }

    /// The array `name` if the archive holds one (an error if it holds one
    /// that cannot be read: a damaged optional array is not an absent one).
    pub fn optional<A, D>(&mut self, name: &str) -> std::result::Result<Option<Array<A, D>>, ArrayError>
    where
        A: ndarray_npy::ReadableElement,
        D: Dimension,
    {
        match self.has(name) {
            true => self.by_name(name).map(Some),
            false => Ok(None),
        }
    }

    /// Read the array `name` (numpy's key; `name.npy` in the archive),
    /// checking its header before allocating (see [`Archive`]).
    pub fn by_name<A, D>(&mut self, name: &str) -> std::result::Result<Array<A, D>, ArrayError>
    where
        A: ndarray_npy::ReadableElement,
        D: Dimension,
    {
        let what = format!("{}: array `{name}`", self.path.display());
        let fail = |m: String| ArrayError(m);
        let index = self
            .zip
            .index_for_name(name)
            .or_else(|| self.zip.index_for_name(&format!("{name}.npy")))
            .ok_or_else(|| fail(format!("{what} is missing")))?;
        let damaged = |e: zip::result::ZipError| fail(format!("{what}: truncated or damaged ({e})"));
        let (size, compressed, stored) = {
            let entry = self.zip.by_index_raw(index).map_err(damaged)?;
            (
                entry.size(),
                entry.compressed_size(),
                entry.compression() == zip::CompressionMethod::Stored,
            )
        };
        if compressed > self.file_len || (stored && size != compressed) {
            return Err(fail(format!(
                "{what}: the archive says it holds {size} bytes, more than the file ({} bytes); truncated or \
                 damaged",
                self.file_len
            )));
        }
        check_npy_header(self.zip.by_index(index).map_err(damaged)?, size, &what).map_err(fail)?;
        let entry = self.zip.by_index(index).map_err(damaged)?;
        <Array<A, D> as ndarray_npy::ReadNpyExt>::read_npy(entry).map_err(|e| fail(format!("{what}: {e}")))
    }
}

/// Read a whole .npy file, checking its header before allocating (as
/// [`Archive::by_name`] does).
pub fn read_npy_file<A, D>(path: &Path) -> std::result::Result<Array<A, D>, ArrayError>
where
    A: ndarray_npy::ReadableElement,
    D: Dimension,
{
    let what = path.display().to_string();
    let open = || std::fs::File::open(path).map_err(|e| ArrayError(format!("{what}: cannot open ({e})")));
    let len = open()?
        .metadata()
        .map_err(|e| ArrayError(format!("{what}: cannot open ({e})")))?
        .len();
    check_npy_header(std::io::BufReader::new(open()?), len, &what).map_err(ArrayError)?;
    <Array<A, D> as ndarray_npy::ReadNpyExt>::read_npy(std::io::BufReader::new(open()?))
        .map_err(|e| ArrayError(format!("{what}: {e}")))
}

#[cfg(test)]
mod array_tests {
    use proptest::prelude::*;
    use std::io::Write;

    /// An .npy entry whose header says `shape` of `descr`, holding `data`.
    fn npy(descr: &str, shape: &[u64], data: &[u8]) -> Vec<u8> {
        let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
        let shape = match dims.len() {
            1 => format!("({},)", dims[0]),
            _ => format!("({})", dims.join(", ")),
        };
        let mut dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
        while (10 + dict.len() + 1) % 64 != 0 {
            dict.push(' ');
        }
        dict.push('\n');
        let mut v = b"\x93NUMPY\x01\x00".to_vec();
        v.extend_from_slice(&(dict.len() as u16).to_le_bytes());
        v.extend_from_slice(dict.as_bytes());
        v.extend_from_slice(data);
        v
    }

    fn archive(entry: &[u8], deflate: bool) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        let mut z = zip::ZipWriter::new(f.reopen().unwrap());
        let method = match deflate {
            true => zip::CompressionMethod::Deflated,
            false => zip::CompressionMethod::Stored,
        };
        z.start_file(
            "a.npy",
            zip::write::SimpleFileOptions::default().compression_method(method),
        )
        .unwrap();
        z.write_all(entry).unwrap();
        z.finish().unwrap();
        f
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

        /// Any header over any data: the array is read only when the header
        /// describes exactly the bytes there, else an error naming the
        /// array — never a panic or an allocation failure.
        #[test]
        fn arrays_are_read_only_when_their_header_tells_the_truth(
            descr in prop::sample::select(vec!["<f8", "<i8", "|u1", "<f4", "<u2", "|O"]),
            shape in prop::collection::vec(
                prop::sample::select(vec![0u64, 1, 2, 3, 7, 1 << 20, 1 << 40, u64::MAX / 3]), 0..4),
            len in 0usize..200,
            deflate in any::<bool>(),
        ) {
            let data: Vec<u8> = (0..len).map(|i| i as u8 % 2).collect();
            let f = archive(&npy(descr, &shape, &data), deflate);
            let mut a = super::Archive::open(f.path()).unwrap();
            let item = match descr { "<f8" | "<i8" => 8, "|u1" => 1, "<f4" => 4, "<u2" => 2, _ => 0 };
            let honest = shape.iter().try_fold(1u64, |p, &d| p.checked_mul(d))
                .and_then(|e| e.checked_mul(item)) == Some(len as u64) && item > 0;
            let r = a.by_name::<f64, ndarray::IxDyn>("a");
            match (&r, descr) {
                (Ok(x), "<f8") => prop_assert!(honest && x.len() * 8 == len),
                (Ok(_), _) => prop_assert!(false, "a {descr} array read as f64"),
                (Err(e), _) => {
                    prop_assert!(e.0.contains("array `a`"), "{}", e.0);
                    prop_assert!(!(honest && descr == "<f8"), "an honest array was refused: {}", e.0);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[derive(serde::Serialize)]
    struct Summary {
        g: f64,
        runs: Vec<f64>,
        warnings: Vec<String>,
    }

    #[test]
    fn non_finite_numbers_are_listed_in_the_written_warnings() {
        let dir = tempfile::tempdir().unwrap();
        let read = |name: &str| -> serde_json::Value {
            serde_json::from_str(&std::fs::read_to_string(dir.path().join(name)).unwrap()).unwrap()
        };
        let s = Summary {
            g: 0.5,
            runs: vec![1.0, f64::NAN, f64::INFINITY],
            warnings: vec!["solver did not converge".into()],
        };
        super::write_json(&dir.path().join("a.json"), &s).unwrap();
        let a = read("a.json");
        assert_eq!(a["runs"], serde_json::json!([1.0, null, null]));
        assert_eq!(
            a["warnings"],
            serde_json::json!([
                "solver did not converge",
                "non-finite number (NaN or ±∞, written as null) at runs[1]",
                "non-finite number (NaN or ±∞, written as null) at runs[2]"
            ])
        );
        // Without non-finite numbers, the value is written as it is.
        let s = Summary { runs: vec![1.0], ..s };
        super::write_json(&dir.path().join("b.json"), &s).unwrap();
        assert_eq!(
            read("b.json")["warnings"],
            serde_json::json!(["solver did not converge"])
        );
        // An object without a warnings list gets one.
        super::write_json(&dir.path().join("c.json"), &serde_json::json!({"x": 1})).unwrap();
        assert!(read("c.json").get("warnings").is_none());
        let m: std::collections::BTreeMap<&str, f64> = [("x", f64::NEG_INFINITY)].into();
        super::write_json(&dir.path().join("d.json"), &m).unwrap();
        assert_eq!(
            read("d.json")["warnings"],
            serde_json::json!(["non-finite number (NaN or ±∞, written as null) at x"])
        );
    }
}
