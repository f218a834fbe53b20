//! Streaming recording for long runs: the observer on the tick thread fills
//! chunk buffers and hands each full chunk to a [`RecorderActor`] (actix, on
//! its own arbiter), which appends it to per-column files while the run goes
//! on. At the end the columns are streamed into `trajectory.npz` entry by
//! entry, so memory stays bounded by a few chunks whatever the run length.
//! Backpressure: at most [`MAX_IN_FLIGHT`] chunks wait for the disk.
//!
//! Three forms: dense (`spikes` uint8[T, m]), packed bits (`spikes_bits`
//! uint8[T, ⌈m/8⌉], numpy's `packbits` with `bitorder="little"`: 8× smaller,
//! and when every neuron is recorded a copy of the frame's words) and
//! sparse events (NEST spin-detector style: `event_ticks`, `event_ids`,
//! `event_states` for every change of a recorded neuron's state, plus
//! `initial_spikes`).

use super::{FORMAT, FORMAT_VERSION, TrajectoryMeta};
use crate::files::{Seal, canonical_json, seal_file};
use crate::runtime::{Observer, TickRecord};
use actix::prelude::*;
use anyhow::{Context as _, Result};
use npyz::WriterBuilder;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Chunks handed to the writer but not yet on disk, at most.
pub const MAX_IN_FLIGHT: usize = 4;

/// How spikes are recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SpikeForm {
    /// `spikes` uint8[T, m].
    Dense,
    /// State changes only: `event_ticks`, `event_ids`, `event_states`.
    Events,
    /// `spikes_bits` uint8[T, ⌈m/8⌉]: recorded neuron j is bit j % 8 of
    /// byte j / 8 (little bit order), the padding bits 0.
    Bits,
}

/// One chunk of a trajectory, in column form.
#[derive(Default, Message)]
#[rtype(result = "()")]
pub struct Chunk {
    pub x: Vec<i64>,
    pub actor: Vec<i64>,
    pub reward: Vec<f64>,
    pub spikes: Vec<u8>,
    pub event_ticks: Vec<i64>,
    pub event_ids: Vec<i64>,
    pub event_states: Vec<u8>,
}

/// Finish the file: write trajectory.npz and trajectory.json atomically.
#[derive(Message)]
#[rtype(result = "Result<()>")]
pub struct Finish {
    pub meta: TrajectoryMeta,
    pub input_values: Vec<f64>,
    pub initial_spikes: Vec<u8>,
}

/// Where the recording stood at a checkpoint: the column files' lengths
/// (bytes) and the ticks and events they hold, all on disk.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Mark {
    pub ticks: u64,
    pub events: u64,
    pub lengths: Vec<u64>,
}

/// Put everything received so far on disk and answer with the [`Mark`]
/// (through a channel, so a synchronous caller can wait for it).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Sync(pub std::sync::mpsc::Sender<Result<Mark, String>>);

const COLUMNS: [&str; 7] = [
    "x",
    "actor",
    "reward",
    "spikes",
    "event_ticks",
    "event_ids",
    "event_states",
];

/// The writer actor: appends chunks to column files in the output folder.
pub struct RecorderActor {
    dir: PathBuf,
    columns: Vec<BufWriter<File>>,
    ticks: u64,
    events: u64,
    neurons: usize,
    form: SpikeForm,
    in_flight: Arc<AtomicUsize>,
    error: Option<String>,
}

impl RecorderActor {
    pub fn new(dir: &Path, neurons: usize, form: SpikeForm, in_flight: Arc<AtomicUsize>) -> Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let columns = COLUMNS
            .iter()
            .map(|c| {
                let p = dir.join(format!(".trajectory.{c}.part"));
                File::create(&p)
                    .map(BufWriter::new)
                    .with_context(|| format!("cannot create {}", p.display()))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(RecorderActor {
            dir: dir.to_path_buf(),
            columns,
            ticks: 0,
            events: 0,
            neurons,
            form,
            in_flight,
            error: None,
        })
    }

    /// A writer that continues the partial recording in `dir` from `mark`
    /// (a checkpoint's): each column file is cut back to its length there
    /// (a killed run may have written past it) and appended to.
    pub fn resume(
        dir: &Path,
        neurons: usize,
        form: SpikeForm,
        in_flight: Arc<AtomicUsize>,
        mark: &Mark,
    ) -> Result<Self> {
        let columns = COLUMNS
            .iter()
            .zip(&mark.lengths)
            .map(|(c, &len)| {
                let p = dir.join(format!(".trajectory.{c}.part"));
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(&p)
                    .with_context(|| format!("the partial recording {} is missing", p.display()))?;
                let have = f.metadata()?.len();
                anyhow::ensure!(
                    have >= len,
                    "the partial recording {} holds {have} bytes, fewer than the {len} its checkpoint saved",
                    p.display()
                );
                f.set_len(len)?;
                std::io::Seek::seek(&mut f, std::io::SeekFrom::End(0))?;
                Ok(BufWriter::new(f))
            })
            .collect::<Result<Vec<_>>>()?;
        anyhow::ensure!(
            columns.len() == COLUMNS.len(),
            "the checkpoint's recording mark is incomplete"
        );
        Ok(RecorderActor {
            dir: dir.to_path_buf(),
            columns,
            ticks: mark.ticks,
            events: mark.events,
            neurons,
            form,
            in_flight,
            error: None,
        })
    }

    fn sync(&mut self) -> Result<Mark, String> {
        if let Some(e) = &self.error {
            return Err(format!("recording failed earlier: {e}"));
        }
        let mut lengths = Vec::with_capacity(COLUMNS.len());
        for c in &mut self.columns {
            c.flush().map_err(|e| e.to_string())?;
            c.get_ref().sync_data().map_err(|e| e.to_string())?;
            lengths.push(c.get_ref().metadata().map_err(|e| e.to_string())?.len());
        }
        Ok(Mark {
            ticks: self.ticks,
            events: self.events,
            lengths,
        })
    }

    fn part(&self, c: &str) -> PathBuf {
        self.dir.join(format!(".trajectory.{c}.part"))
    }

    fn append(&mut self, chunk: &Chunk) -> std::io::Result<()> {
        let c = &mut self.columns;
        for v in &chunk.x {
            c[0].write_all(&v.to_le_bytes())?;
        }
        for v in &chunk.actor {
            c[1].write_all(&v.to_le_bytes())?;
        }
        for v in &chunk.reward {
            c[2].write_all(&v.to_le_bytes())?;
        }
        c[3].write_all(&chunk.spikes)?;
        for v in &chunk.event_ticks {
            c[4].write_all(&v.to_le_bytes())?;
        }
        for v in &chunk.event_ids {
            c[5].write_all(&v.to_le_bytes())?;
        }
        c[6].write_all(&chunk.event_states)?;
        self.ticks += chunk.x.len() as u64;
        self.events += chunk.event_ticks.len() as u64;
        Ok(())
    }

    fn finish(&mut self, f: Finish) -> Result<()> {
        if let Some(e) = self.error.take() {
            anyhow::bail!("recording failed earlier: {e}");
        }
        for c in &mut self.columns {
            c.flush()?;
        }
        let (t, m, e) = (self.ticks, self.neurons as u64, self.events);
        let mut meta = f.meta;
        meta.ticks = t;
        meta.format = FORMAT.into();
        meta.format_version = FORMAT_VERSION;
        let seal = Seal::new(FORMAT, FORMAT_VERSION, Some(&canonical_json(&meta))).placeholder();
        let path = self.dir.join("trajectory.npz");
        crate::files::write_atomic(&path, |file| {
            let mut zip = zip::ZipWriter::new(BufWriter::new(&mut *file));
            let opts = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Stored)
                .large_file(t * m.max(8) > u32::MAX as u64 / 2);
            stream_column::<i64>(&mut zip, opts, "x", &self.part("x"), &[t])?;
            stream_column::<i64>(&mut zip, opts, "actor", &self.part("actor"), &[t])?;
            stream_column::<f64>(&mut zip, opts, "reward", &self.part("reward"), &[t])?;
            match self.form {
                SpikeForm::Dense => stream_column::<u8>(&mut zip, opts, "spikes", &self.part("spikes"), &[t, m])?,
                SpikeForm::Bits => {
                    let shape = [t, m.div_ceil(8)];
                    stream_column::<u8>(&mut zip, opts, "spikes_bits", &self.part("spikes"), &shape)?
                }
                SpikeForm::Events => {
                    stream_column::<i64>(&mut zip, opts, "event_ticks", &self.part("event_ticks"), &[e])?;
                    stream_column::<i64>(&mut zip, opts, "event_ids", &self.part("event_ids"), &[e])?;
                    stream_column::<u8>(&mut zip, opts, "event_states", &self.part("event_states"), &[e])?;
                    write_small(&mut zip, opts, "initial_spikes", &f.initial_spikes, &[m])?;
                }
            }
            write_small(
                &mut zip,
                opts,
                "input_values",
                &f.input_values,
                &[f.input_values.len() as u64],
            )?;
            let ids: Vec<i64> = meta.recorded_neurons.iter().map(|&k| k as i64).collect();
            write_small(&mut zip, opts, "neurons", &ids, &[m])?;
            zip.set_comment(seal.clone());
            zip.finish()?.flush()?;
            seal_file(file, &seal)
        })?;
        for c in COLUMNS {
            let _ = std::fs::remove_file(self.part(c));
        }
        crate::files::write_sealed_json(&self.dir.join("trajectory.json"), &meta)
    }
}

/// Write one .npy entry of `shape` into the archive from `items`.
fn write_entry<T: npyz::Serialize + npyz::AutoSerialize>(
    zip: &mut zip::ZipWriter<BufWriter<&mut File>>,
    opts: zip::write::SimpleFileOptions,
    name: &str,
    shape: &[u64],
    items: impl Iterator<Item = Result<T>>,
) -> Result<()> {
    zip.start_file(format!("{name}.npy"), opts)?;
    let mut w = npyz::WriteOptions::new()
        .default_dtype()
        .shape(shape)
        .writer(&mut *zip)
        .begin_nd()?;
    for item in items {
        w.push(&item?)?;
    }
    w.finish()?;
    Ok(())
}

/// Copy a little-endian column file into an .npy entry of the archive.
fn stream_column<T: npyz::Serialize + npyz::AutoSerialize + FromLe>(
    zip: &mut zip::ZipWriter<BufWriter<&mut File>>,
    opts: zip::write::SimpleFileOptions,
    name: &str,
    part: &Path,
    shape: &[u64],
) -> Result<()> {
    let mut r = BufReader::new(File::open(part).with_context(|| format!("reopening {}", part.display()))?);
    let mut buf = vec![0u8; T::SIZE];
    let total: u64 = shape.iter().product();
    let items = (0..total).map(|_| {
        r.read_exact(&mut buf)
            .with_context(|| format!("{} is shorter than recorded", part.display()))?;
        Ok(T::from_le(&buf))
    });
    write_entry(zip, opts, name, shape, items)
}

/// Write a small in-memory array as an .npy entry of the archive.
fn write_small<T: npyz::Serialize + npyz::AutoSerialize + Copy>(
    zip: &mut zip::ZipWriter<BufWriter<&mut File>>,
    opts: zip::write::SimpleFileOptions,
    name: &str,
    data: &[T],
    shape: &[u64],
) -> Result<()> {
    write_entry(zip, opts, name, shape, data.iter().map(|&v| Ok(v)))
}

/// Decoding of the column files' little-endian elements.
trait FromLe: Sized {
    const SIZE: usize;
    fn from_le(b: &[u8]) -> Self;
}

impl FromLe for i64 {
    const SIZE: usize = 8;
    fn from_le(b: &[u8]) -> Self {
        i64::from_le_bytes(b.try_into().expect("8 bytes"))
    }
}

impl FromLe for f64 {
    const SIZE: usize = 8;
    fn from_le(b: &[u8]) -> Self {
        f64::from_le_bytes(b.try_into().expect("8 bytes"))
    }
}

impl FromLe for u8 {
    const SIZE: usize = 1;
    fn from_le(b: &[u8]) -> Self {
        b[0]
    }
}

impl Actor for RecorderActor {
    type Context = Context<Self>;
}

impl Handler<Chunk> for RecorderActor {
    type Result = ();
    fn handle(&mut self, chunk: Chunk, _: &mut Context<Self>) {
        if self.error.is_none()
            && let Err(e) = self.append(&chunk)
        {
            self.error = Some(e.to_string());
        }
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Handler<Sync> for RecorderActor {
    type Result = ();
    fn handle(&mut self, s: Sync, _: &mut Context<Self>) {
        let _ = s.0.send(self.sync());
    }
}

impl Handler<Finish> for RecorderActor {
    type Result = Result<()>;
    fn handle(&mut self, f: Finish, _: &mut Context<Self>) -> Result<()> {
        self.finish(f)
    }
}

/// The observer side: buffers ticks on the tick thread and ships chunks.
pub struct StreamingObserver {
    neurons: Vec<usize>,
    /// The recorded neurons are 0..m in order (every neuron, or a prefix):
    /// the frame's words are the record.
    prefix: bool,
    form: SpikeForm,
    chunk_ticks: usize,
    chunk: Chunk,
    previous: Vec<u8>,
    addr: Addr<RecorderActor>,
    in_flight: Arc<AtomicUsize>,
}

impl StreamingObserver {
    pub fn new(
        neurons: Vec<usize>,
        form: SpikeForm,
        chunk_ticks: usize,
        addr: Addr<RecorderActor>,
        in_flight: Arc<AtomicUsize>,
    ) -> Self {
        let previous = vec![0; neurons.len()];
        StreamingObserver {
            prefix: neurons.iter().enumerate().all(|(j, &k)| j == k),
            neurons,
            form,
            chunk_ticks: chunk_ticks.max(1),
            chunk: Chunk::default(),
            previous,
            addr,
            in_flight,
        }
    }

    /// Continue after a checkpoint whose last recorded spikes were
    /// `previous` (the events form records changes against them).
    pub fn resume_from(&mut self, previous: Vec<u8>) {
        assert_eq!(previous.len(), self.neurons.len(), "one state per recorded neuron");
        self.previous = previous;
    }

    /// The last recorded spikes (what a checkpoint saves for [`Self::resume_from`]).
    pub fn previous(&self) -> &[u8] {
        &self.previous
    }

    /// Ship the buffered ticks and wait until the writer has everything on
    /// disk: the [`Mark`] a checkpoint saves.
    pub fn sync(&mut self) -> Result<Mark> {
        self.flush();
        let (tx, rx) = std::sync::mpsc::channel();
        self.addr.do_send(Sync(tx));
        rx.recv()
            .map_err(|_| anyhow::anyhow!("the recorder stopped"))?
            .map_err(|e| anyhow::anyhow!("recording: {e}"))
    }

    /// Ship the buffered ticks (waits while the writer is behind).
    pub fn flush(&mut self) {
        if self.chunk.x.is_empty() {
            return;
        }
        while self.in_flight.load(Ordering::Acquire) >= MAX_IN_FLIGHT {
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.addr.do_send(std::mem::take(&mut self.chunk));
    }
}

impl Observer for StreamingObserver {
    fn record(&mut self, rec: &TickRecord) {
        let c = &mut self.chunk;
        c.x.push(rec.x as i64);
        c.actor.push(rec.actor);
        c.reward.push(rec.reward);
        let m = self.neurons.len();
        let bit = |k: usize| (rec.frame[k / 64] >> (k % 64) & 1) as u8;
        match self.form {
            // (This runs on the tick team's leading thread while the others
            // wait: with 10⁶ neurons recorded, a prefix is copied by words.)
            SpikeForm::Dense if self.prefix => {
                for (w, &word) in rec.frame.iter().enumerate().take(m.div_ceil(64)) {
                    let take = (m - 64 * w).min(64);
                    c.spikes.extend((0..take).map(|b| (word >> b & 1) as u8));
                }
            }
            SpikeForm::Dense => c.spikes.extend(self.neurons.iter().map(|&k| bit(k))),
            SpikeForm::Bits if self.prefix => {
                let bytes = m.div_ceil(8);
                let words = rec.frame.iter().take(m.div_ceil(64));
                let packed = words.flat_map(|w| w.to_le_bytes());
                let at = c.spikes.len();
                c.spikes.extend(packed.take(bytes));
                // A prefix may end mid-byte: the bits past m are 0.
                if !m.is_multiple_of(8) {
                    c.spikes[at + bytes - 1] &= (1u8 << (m % 8)) - 1;
                }
            }
            SpikeForm::Bits => {
                for block in self.neurons.chunks(8) {
                    let byte = block.iter().enumerate().fold(0u8, |acc, (b, &k)| acc | bit(k) << b);
                    c.spikes.push(byte);
                }
            }
            SpikeForm::Events => {
                for (j, &k) in self.neurons.iter().enumerate() {
                    let s = bit(k);
                    if s != self.previous[j] {
                        c.event_ticks.push(rec.t as i64);
                        c.event_ids.push(k as i64);
                        c.event_states.push(s);
                        self.previous[j] = s;
                    }
                }
            }
        }
        if c.x.len() >= self.chunk_ticks {
            self.flush();
        }
    }
}
