//! Output folders: one run at a time, complete or absent.
//!
//! A run **claims** its output folder `D` before it computes anything
//! ([`claim`]):
//!
//! - an exclusive advisory lock on `.D.lock` beside it (holding the pid and
//!   the command), so a second run into `D` (or into a folder inside or
//!   around it) is refused naming the holder; a lock left by a process that
//!   no longer runs is taken over with a note;
//! - what `D` holds is checked: the results of another run (another command,
//!   scenario or settings, recorded in `D/marlin-run.json`), files marlin
//!   did not write, or an interrupted run's checkpoint are refused unless the
//!   user says `--overwrite` (or `--resume` for the interrupted run);
//! - the run writes into a staging folder `.D.partial` beside `D`, and
//!   [`Claim::commit`] swaps it into place in one rename, so no stale file of
//!   an earlier run survives and a reader never sees a mixture.
//!
//! An interrupted run (Ctrl-C, a kill) leaves `.D.partial` with its
//! checkpoint; `--resume D` continues there. A run that fails without a
//! checkpoint leaves nothing.
//!
//! Architecture Invariant: this module knows folders and files, not runs:
//! what a run is ([`RunIdentity`]) is given by the caller.

use serde::{Deserialize, Serialize};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// The manifest every output folder carries: which run wrote it.
pub const MANIFEST: &str = "marlin-run.json";

/// What a run is, for deciding whether a folder holds "the same run": the
/// command, the scenario (path and SHA-256 of its text) and the settings
/// that change results (the caller's canonical list).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunIdentity {
    pub command: String,
    #[serde(default)]
    pub scenario: Option<String>,
    #[serde(default)]
    pub scenario_sha256: Option<String>,
    #[serde(default)]
    pub settings: Vec<String>,
}

impl RunIdentity {
    /// How the run is shown to a user: `marlin solve scenarios/toy8.toml
    /// --lambda 1` (the settings hold the scenario as it was given).
    pub fn describe(&self) -> String {
        let mut s = format!("marlin {}", self.command);
        for a in &self.settings {
            s += &format!(" {a}");
        }
        s
    }

    fn same_run(&self, other: &RunIdentity) -> bool {
        self == other
    }
}

/// What the manifest holds: the run's identity and whether it finished
/// (a staging folder's manifest says `false`).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Manifest {
    run: RunIdentity,
    #[serde(default)]
    finished: bool,
}

/// How a run may treat what its output folder already holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Refuse another run's results, foreign files and interrupted runs.
    Fresh,
    /// Replace whatever the folder holds (`--overwrite`).
    Overwrite,
    /// Continue the interrupted run whose staging folder is beside it.
    Resume,
}

/// An output folder this process holds: write into [`Claim::work`], then
/// [`Claim::commit`].
#[derive(Debug)]
pub struct Claim {
    dir: PathBuf,
    work: PathBuf,
    lock_path: PathBuf,
    lock: Option<std::fs::File>,
    identity: RunIdentity,
    committed: bool,
}

/// `.name.suffix` beside `dir`.
fn beside(dir: &Path, suffix: &str) -> PathBuf {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dir.with_file_name(format!(".{name}.{suffix}"))
}

/// The path a file written at `p` has once its run commits: every staging
/// folder `.NAME.partial` in it becomes `NAME` (what results record about
/// where they are).
pub fn final_path(p: &Path) -> PathBuf {
    p.components()
        .map(|c| {
            let s = c.as_os_str().to_string_lossy();
            match s.strip_prefix('.').and_then(|r| r.strip_suffix(".partial")) {
                Some(name) if !name.is_empty() => std::ffi::OsString::from(name),
                _ => c.as_os_str().to_os_string(),
            }
        })
        .collect()
}

/// How results record the path of a file they name: [`final_path`], as
/// text.
pub fn recorded(p: &Path) -> String {
    final_path(p).display().to_string()
}

/// The staging folder of `dir`, where its run writes until it commits.
pub fn staging(dir: &Path) -> PathBuf {
    beside(dir, "partial")
}

fn lock_path(dir: &Path) -> PathBuf {
    beside(dir, "lock")
}

/// `dir` made absolute and free of `.`/`..` parts (without following
/// links), so `out/x/../y` and `out/y` name one folder.
fn normal(dir: &Path) -> PathBuf {
    let abs = if dir.is_absolute() {
        dir.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(dir)
    };
    let mut out = PathBuf::new();
    for c in abs.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

/// Who holds a lock file, as its holder wrote it ("pid 12 · marlin solve …").
fn holder(file: &mut std::fs::File) -> String {
    let mut text = String::new();
    let _ = file.seek(std::io::SeekFrom::Start(0));
    let _ = file.take(4096).read_to_string(&mut text);
    text.trim().to_string()
}

/// Whether the lock file at `path` is held by a running process (and by
/// whom).
fn held_by_other(path: &Path) -> Option<String> {
    let mut f = std::fs::OpenOptions::new().read(true).open(path).ok()?;
    match f.try_lock_shared() {
        Ok(()) => {
            let _ = f.unlock();
            None
        }
        Err(_) => Some(holder(&mut f)),
    }
}

/// Lock files under `dir` (up to three levels down) held by running
/// processes: runs writing into folders inside it.
fn held_inside(dir: &Path, depth: usize, found: &mut Vec<(PathBuf, String)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') && name.ends_with(".lock") {
            if let Some(h) = held_by_other(&p) {
                found.push((p, h));
            }
        } else if depth > 0 && e.file_type().is_ok_and(|t| t.is_dir()) {
            held_inside(&p, depth - 1, found);
        }
    }
}

/// Why a folder cannot be claimed (the user's to fix: exit 2).
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimError(pub String);

impl std::fmt::Display for ClaimError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ClaimError {}

/// The manifest of the run whose results `dir` holds, if it has one.
fn manifest_of(dir: &Path) -> Option<Manifest> {
    let text = std::fs::read_to_string(dir.join(MANIFEST)).ok()?;
    serde_json::from_str(&text).ok()
}

/// Whether `dir` holds a checkpoint (an interrupted run that can resume):
/// a `.ckpt` file in `dir/checkpoint`, or in a stage folder's (a study's).
fn has_checkpoint(dir: &Path) -> bool {
    has_checkpoint_file(dir)
        || std::fs::read_dir(dir).is_ok_and(|d| {
            d.flatten()
                .any(|e| e.file_type().is_ok_and(|t| t.is_dir()) && has_checkpoint_file(&e.path()))
        })
}

/// Where a run keeps its checkpoint `name` in its output folder `out`:
/// `out/checkpoint/<name>.ckpt` (one place knows the layout, so a claim
/// recognises every interrupted run).
pub fn checkpoint_path(out: &Path, name: &str) -> PathBuf {
    out.join(CHECKPOINT_DIR).join(format!("{name}.{CHECKPOINT_EXT}"))
}

const CHECKPOINT_DIR: &str = "checkpoint";
const CHECKPOINT_EXT: &str = "ckpt";

fn has_checkpoint_file(dir: &Path) -> bool {
    std::fs::read_dir(dir.join(CHECKPOINT_DIR)).is_ok_and(|d| {
        d.flatten()
            .any(|e| e.path().extension().is_some_and(|x| x == CHECKPOINT_EXT))
    })
}

/// A few names of what `dir` holds, for messages.
fn some_names(dir: &Path) -> String {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let more = names.len().saturating_sub(4);
    names.truncate(4);
    let mut s = names.join(", ");
    if more > 0 {
        s += &format!(" and {more} more");
    }
    s
}

/// Claim the output folder `dir` for the run `identity` (see the module
/// docs). `mode` says what may be replaced; errors say what the folder
/// holds and what to do.
pub fn claim(given: &Path, identity: RunIdentity, mode: Mode) -> Result<Claim, ClaimError> {
    let shown = given.display().to_string();
    let dir = normal(given);
    let parent = dir
        .parent()
        .ok_or_else(|| ClaimError(format!("{shown}: not a folder marlin can write results into")))?;
    if dir.exists() && !dir.is_dir() {
        return Err(ClaimError(format!(
            "{shown} is a file; allowed: a folder (new or one marlin wrote)"
        )));
    }
    // A finished run replaces its folder as a whole: never one that holds
    // where the user works, their home, or the run's own scenario.
    let cwd = std::env::current_dir().ok().map(|c| normal(&c));
    let home = std::env::var_os("HOME").map(|h| normal(Path::new(&h)));
    for (place, what) in [(cwd, "the current directory"), (home, "your home directory")] {
        if place.is_some_and(|p| p.starts_with(&dir)) {
            return Err(ClaimError(format!(
                "{shown} is {what} or holds it, and a finished run replaces its output folder as a whole; \
                 allowed: a folder of its own (e.g. out/run1)"
            )));
        }
    }
    if let Some(sc) = identity
        .scenario
        .as_deref()
        .filter(|sc| normal(Path::new(sc)).starts_with(&dir))
    {
        return Err(ClaimError(format!(
            "{shown} holds this run's scenario file {sc}, and a finished run replaces its output folder as a \
             whole; allowed: a folder of its own (e.g. out/run1)"
        )));
    }
    std::fs::create_dir_all(parent).map_err(|e| {
        ClaimError(format!(
            "cannot create the output folder {shown}: {e}; allowed: a folder this user can write"
        ))
    })?;
    // Runs into folders around this one.
    for ancestor in dir.ancestors().skip(1) {
        if ancestor.parent().is_none() {
            break;
        }
        if let Some(h) = held_by_other(&lock_path(ancestor)) {
            return Err(ClaimError(format!(
                "{shown} is inside {}, which another marlin run is writing ({h}); wait for it to finish, or \
                 choose another --out",
                ancestor.display()
            )));
        }
    }
    let lock_path = lock_path(&dir);
    let mut lock = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(|e| {
            ClaimError(format!(
                "cannot write into the output folder's parent {}: {e}; allowed: a folder this user can write",
                parent.display()
            ))
        })?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(ClaimError(format!(
                "{shown} is being written by another marlin run ({}); wait for it to finish, or choose \
                 another --out",
                holder(&mut lock)
            )));
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(ClaimError(format!("cannot lock {}: {e}", lock_path.display())));
        }
    }
    let stale = holder(&mut lock);
    if !stale.is_empty() {
        tracing::warn!("{shown}: taking over the lock of a marlin run that is no longer running ({stale})");
    }
    let me = format!(
        "pid {} · {} · started {}",
        std::process::id(),
        identity.describe(),
        now_unix()
    );
    lock.set_len(0)
        .and_then(|_| lock.seek(std::io::SeekFrom::Start(0)).map(|_| ()))
        .and_then(|_| lock.write_all(me.as_bytes()))
        .and_then(|_| lock.flush())
        .map_err(|e| ClaimError(format!("cannot write {}: {e}", lock_path.display())))?;
    let mut claim = Claim {
        dir: given.to_path_buf(),
        work: staging(given),
        lock_path,
        lock: Some(lock),
        identity,
        committed: false,
    };
    let mut inside = Vec::new();
    held_inside(&dir, 3, &mut inside);
    if let Some((p, h)) = inside.first() {
        return Err(ClaimError(format!(
            "another marlin run is writing into {shown} ({h}, lock {}); wait for it to finish, or choose \
             another --out",
            p.display()
        )));
    }
    claim.prepare(&shown, mode)?;
    Ok(claim)
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Claim {
    /// Decide, from what the folder and its staging folder hold, whether
    /// this run may go on, and set up the staging folder.
    fn prepare(&mut self, shown: &str, mode: Mode) -> Result<(), ClaimError> {
        let work = self.work.clone();
        let partial = work.exists();
        let what = self.identity.describe();
        // A folder inside another run's results (a stage of a study) cannot
        // be replaced alone: the study's summary and report describe it.
        if mode != Mode::Resume
            && let Some((outer, m)) = self
                .dir
                .ancestors()
                .skip(1)
                .find_map(|a| manifest_of(a).map(|m| (a.to_path_buf(), m)))
        {
            return Err(ClaimError(format!(
                "{shown} is part of the results of `{}` in {}; replacing it alone would leave them \
                 inconsistent: choose another --out",
                m.run.describe(),
                outer.display()
            )));
        }
        match mode {
            Mode::Resume => {
                if !partial {
                    return Err(ClaimError(format!(
                        "cannot resume {shown}: it holds no interrupted run (no {} beside it); allowed: the \
                         output folder of an interrupted run — else start the run again",
                        work.file_name().unwrap_or_default().to_string_lossy()
                    )));
                }
                // The run continues as what it was.
                if let Some(m) = manifest_of(&work) {
                    self.identity = m.run;
                }
                return Ok(());
            }
            Mode::Fresh if partial && has_checkpoint(&work) => {
                let of = manifest_of(&work).map_or(String::new(), |m| format!(" of `{}`", m.run.describe()));
                return Err(ClaimError(format!(
                    "{shown} holds an interrupted run{of} that can resume (its checkpoint is in {}); resume it \
                     with `marlin {} --resume {shown}`, or start over with --overwrite",
                    work.display(),
                    manifest_of(&work).map_or(self.identity.command.clone(), |m| m.run.command)
                )));
            }
            Mode::Fresh if self.dir.exists() => {
                let empty = std::fs::read_dir(&self.dir).is_ok_and(|mut d| d.next().is_none());
                match manifest_of(&self.dir) {
                    _ if empty => {}
                    Some(m) if m.run.same_run(&self.identity) => {}
                    Some(m) => {
                        return Err(ClaimError(format!(
                            "{shown} holds the results of another run (`{}`); this run is `{what}`: pass \
                             --overwrite to replace them, or choose another --out",
                            m.run.describe()
                        )));
                    }
                    None => {
                        return Err(ClaimError(format!(
                            "{shown} holds files marlin did not write, or an older marlin wrote ({}); pass \
                             --overwrite to replace the folder and everything in it, or choose another --out",
                            some_names(&self.dir)
                        )));
                    }
                }
            }
            Mode::Fresh | Mode::Overwrite => {}
        }
        if partial {
            std::fs::remove_dir_all(&work)
                .map_err(|e| ClaimError(format!("cannot remove the old staging folder {}: {e}", work.display())))?;
        }
        std::fs::create_dir_all(&work).map_err(|e| {
            ClaimError(format!(
                "cannot create {}: {e}; allowed: an output folder this user can write",
                work.display()
            ))
        })?;
        self.write_manifest(false)
    }

    fn write_manifest(&self, finished: bool) -> Result<(), ClaimError> {
        let m = Manifest {
            run: self.identity.clone(),
            finished,
        };
        let text = serde_json::to_string_pretty(&m).expect("a manifest serialises") + "\n";
        super::write_text(&self.work.join(MANIFEST), &text)
            .map_err(|e| ClaimError(format!("cannot write into {}: {e:#}", self.work.display())))
    }

    /// The run this folder is claimed for (for a resumed run: the
    /// interrupted run's, from its manifest).
    pub fn identity(&self) -> &RunIdentity {
        &self.identity
    }

    /// Where the run writes: the staging folder.
    pub fn work(&self) -> &Path {
        &self.work
    }

    /// The output folder the results land in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Put the finished results in place: the staging folder replaces the
    /// output folder in one rename (Linux: an atomic exchange, then the old
    /// folder is removed), and the lock is released.
    pub fn commit(mut self) -> anyhow::Result<()> {
        use anyhow::Context;
        let _ = std::fs::remove_dir_all(self.work.join("checkpoint"));
        self.write_manifest(true)?;
        if self.dir.exists() {
            if exchange(&self.work, &self.dir).is_ok() {
                std::fs::remove_dir_all(&self.work)
                    .with_context(|| format!("removing the replaced results in {}", self.work.display()))?;
            } else {
                let old = beside(&self.dir, "replaced");
                let _ = std::fs::remove_dir_all(&old);
                std::fs::rename(&self.dir, &old).with_context(|| format!("moving {} aside", self.dir.display()))?;
                std::fs::rename(&self.work, &self.dir)
                    .with_context(|| format!("moving the results into {}", self.dir.display()))?;
                let _ = std::fs::remove_dir_all(&old);
            }
        } else {
            std::fs::rename(&self.work, &self.dir)
                .with_context(|| format!("moving the results into {}", self.dir.display()))?;
        }
        self.committed = true;
        Ok(())
    }
}

/// Swap two folders atomically (Linux `renameat2(RENAME_EXCHANGE)`).
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let ca = std::ffi::CString::new(a.as_os_str().as_bytes())?;
    let cb = std::ffi::CString::new(b.as_os_str().as_bytes())?;
    // SAFETY: two NUL-terminated paths that live across the call.
    let r = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            ca.as_ptr(),
            libc::AT_FDCWD,
            cb.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn exchange(_: &Path, _: &Path) -> std::io::Result<()> {
    Err(std::io::Error::other("no atomic exchange here"))
}

impl Drop for Claim {
    /// A run that did not commit leaves its staging folder only if it can
    /// resume from it (a checkpoint); the lock file is removed and released.
    fn drop(&mut self) {
        if !self.committed && !has_checkpoint(&self.work) {
            let _ = std::fs::remove_dir_all(&self.work);
        }
        if let Some(lock) = self.lock.take() {
            let _ = std::fs::remove_file(&self.lock_path);
            let _ = lock.unlock();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(command: &str, settings: &[&str]) -> RunIdentity {
        RunIdentity {
            command: command.into(),
            scenario: Some("s.toml".into()),
            scenario_sha256: Some("abc".into()),
            settings: std::iter::once("s.toml")
                .chain(settings.iter().copied())
                .map(String::from)
                .collect(),
        }
    }

    #[test]
    fn a_committed_run_replaces_the_folder_whole() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("out");
        let c = claim(&d, id("solve", &[]), Mode::Fresh).unwrap();
        std::fs::write(c.work().join("a.txt"), "1").unwrap();
        std::fs::write(c.work().join("stale.txt"), "1").unwrap();
        assert!(!d.exists(), "nothing is in place before the commit");
        c.commit().unwrap();
        assert_eq!(std::fs::read_to_string(d.join("a.txt")).unwrap(), "1");
        // The same run again: allowed, and no stale file survives.
        let c = claim(&d, id("solve", &[]), Mode::Fresh).unwrap();
        std::fs::write(c.work().join("a.txt"), "2").unwrap();
        c.commit().unwrap();
        assert_eq!(std::fs::read_to_string(d.join("a.txt")).unwrap(), "2");
        assert!(!d.join("stale.txt").exists());
        assert!(!staging(&d).exists() && !lock_path(&d).exists());
    }

    #[test]
    fn another_runs_results_and_foreign_files_are_refused_unless_overwritten() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("out");
        claim(&d, id("solve", &[]), Mode::Fresh).unwrap().commit().unwrap();
        let e = claim(&d, id("solve", &["--lambda", "1"]), Mode::Fresh).unwrap_err();
        assert!(
            e.0.contains("another run (`marlin solve s.toml`)") && e.0.contains("--overwrite"),
            "{e}"
        );
        let e = claim(&d, id("simulate", &[]), Mode::Fresh).unwrap_err();
        assert!(e.0.contains("marlin simulate"), "{e}");
        claim(&d, id("solve", &["--lambda", "1"]), Mode::Overwrite)
            .unwrap()
            .commit()
            .unwrap();
        let u = t.path().join("user");
        std::fs::create_dir_all(&u).unwrap();
        std::fs::write(u.join("spikes.csv"), "0,0.1").unwrap();
        let e = claim(&u, id("import", &[]), Mode::Fresh).unwrap_err();
        assert!(
            e.0.contains("files marlin did not write") && e.0.contains("spikes.csv"),
            "{e}"
        );
        // A failed run leaves the folder as it was.
        drop(claim(&u, id("import", &[]), Mode::Overwrite).unwrap());
        assert!(u.join("spikes.csv").exists() && !staging(&u).exists());
    }

    #[test]
    fn folders_holding_the_working_directory_home_or_the_scenario_are_never_claimed() {
        let t = tempfile::tempdir().unwrap();
        for mode in [Mode::Fresh, Mode::Overwrite] {
            for d in [Path::new("."), Path::new("..")] {
                let e = claim(d, id("solve", &[]), mode).unwrap_err();
                assert!(e.0.contains("the current directory or holds it"), "{e}");
            }
            let sc = t.path().join("in/s.toml");
            std::fs::create_dir_all(sc.parent().unwrap()).unwrap();
            std::fs::write(&sc, "").unwrap();
            let mut run = id("solve", &[]);
            run.scenario = Some(sc.display().to_string());
            let e = claim(&t.path().join("in"), run, mode).unwrap_err();
            assert!(e.0.contains("holds this run's scenario file"), "{e}");
            assert!(sc.exists());
        }
        if let Some(home) = std::env::var_os("HOME").filter(|h| !std::env::current_dir().unwrap().starts_with(h)) {
            let e = claim(Path::new(&home), id("solve", &[]), Mode::Overwrite).unwrap_err();
            assert!(e.0.contains("your home directory"), "{e}");
        }
    }

    #[test]
    fn a_second_run_is_refused_while_the_first_holds_the_folder() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("study");
        let first = claim(&d, id("run", &[]), Mode::Fresh).unwrap();
        let e = claim(&d, id("run", &[]), Mode::Fresh).unwrap_err();
        assert!(
            e.0.contains("being written by another marlin run") && e.0.contains("marlin run s.toml"),
            "{e}"
        );
        let e = claim(&d.join("solve"), id("solve", &[]), Mode::Fresh).unwrap_err();
        assert!(e.0.contains("is inside"), "{e}");
        drop(first);
        let inner = claim(&t.path().join("other/solve"), id("solve", &[]), Mode::Fresh).unwrap();
        let e = claim(&t.path().join("other"), id("run", &[]), Mode::Overwrite).unwrap_err();
        assert!(e.0.contains("writing into"), "{e}");
        drop(inner);
        claim(&d, id("run", &[]), Mode::Fresh).unwrap().commit().unwrap();
        // A stage of a finished study is not replaced alone, even with --overwrite.
        std::fs::create_dir_all(d.join("solve")).unwrap();
        let e = claim(&d.join("solve"), id("solve", &[]), Mode::Overwrite).unwrap_err();
        assert!(e.0.contains("part of the results of `marlin run s.toml`"), "{e}");
    }

    #[test]
    fn final_paths_drop_the_staging_names() {
        let d = Path::new("out/toy8/study");
        assert_eq!(
            final_path(&staging(d).join("solve/policy.npz")),
            d.join("solve/policy.npz")
        );
        assert_eq!(final_path(Path::new("/a/.b.partial")), Path::new("/a/b"));
        assert_eq!(final_path(Path::new("a/.partial/.x")), Path::new("a/.partial/.x"));
    }

    #[test]
    fn a_stale_lock_is_taken_over() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("out");
        std::fs::write(lock_path(&d), "pid 999999 · marlin solve s.toml").unwrap();
        claim(&d, id("solve", &[]), Mode::Fresh).unwrap().commit().unwrap();
        assert!(d.join(MANIFEST).exists());
    }

    #[test]
    fn an_interrupted_run_is_kept_for_resume_and_refused_otherwise() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("out");
        let c = claim(&d, id("train", &[]), Mode::Fresh).unwrap();
        std::fs::create_dir_all(c.work().join("checkpoint")).unwrap();
        std::fs::write(c.work().join("checkpoint/train.ckpt"), "x").unwrap();
        drop(c); // interrupted
        assert!(staging(&d).join("checkpoint/train.ckpt").exists());
        let e = claim(&d, id("train", &[]), Mode::Fresh).unwrap_err();
        assert!(
            e.0.contains("interrupted run") && e.0.contains("marlin train --resume"),
            "{e}"
        );
        let c = claim(&d, id("train", &[]), Mode::Resume).unwrap();
        assert!(c.work().join("checkpoint/train.ckpt").exists());
        c.commit().unwrap();
        assert!(!d.join("checkpoint").exists(), "a finished run keeps no checkpoint");
        let e = claim(&d, id("train", &[]), Mode::Resume).unwrap_err();
        assert!(e.0.contains("holds no interrupted run"), "{e}");
    }

    #[test]
    fn an_unwritable_folder_is_refused_before_anything_runs() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("file");
        std::fs::write(&f, "x").unwrap();
        let e = claim(&f.join("out"), id("solve", &[]), Mode::Fresh).unwrap_err();
        assert!(e.0.contains("cannot create the output folder"), "{e}");
        let e = claim(&f, id("solve", &[]), Mode::Fresh).unwrap_err();
        assert!(e.0.contains("is a file"), "{e}");
    }
}
