//! [`EventWriter`]: one new event file in a run's folder, named as TensorFlow names them so that
//! TensorBoard finds it (`tfevents` in the name) and several writers never share a file.

use super::histogram::histogram;
use super::proto::{event, summary, Event, HistogramProto, Summary};
use super::record::write_record;
use crate::{Error, Result};
use prost::Message;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// The first event's `file_version`: TensorBoard's current event-file version.
pub const FILE_VERSION: &str = "brain.Event:2";

/// How many names [`EventWriter::create`] tries before giving up (others' files taking them all
/// would take a thousand writers in one second on one host and pid).
const MAX_TRIES: usize = 1000;

/// Appends scalars and histograms to a new TensorBoard event file.
///
/// Writes are buffered: TensorBoard sees them after [`flush`](EventWriter::flush) (or when the
/// writer is dropped, which flushes but cannot report an error). Every error names the file.
pub struct EventWriter {
    path: PathBuf,
    out: BufWriter<File>,
}

impl EventWriter {
    /// Create `dir` (and its parents) if needed and a new event file in it,
    /// `events.out.tfevents.<unix seconds, 10 digits>.<hostname>.<pid>.bnlab`, and write the
    /// first event (`file_version` [`FILE_VERSION`], flushed at once so that TensorBoard can
    /// tell the file from a foreign one).
    ///
    /// An existing file is never opened: if the name is taken (a second writer in the same
    /// second, in the same process), `.001`, `.002`, ... is appended: those names sort in the
    /// order they were made, after the first, as TensorBoard reads a folder's files in name
    /// order.
    ///
    /// The hostname is `/etc/hostname`'s, else `$HOSTNAME`, else `localhost`, with any
    /// character but letters, digits, `-` and `_` made `_` (a `.` would read as a field
    /// separator, a `/` as a folder).
    pub fn create(dir: &Path) -> Result<EventWriter> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let base = format!(
            "events.out.tfevents.{secs:010}.{}.{}.bnlab",
            hostname(),
            std::process::id()
        );
        let mut tries = 0..MAX_TRIES;
        let (path, file) = loop {
            let Some(n) = tries.next() else {
                return Err(Error::bad_file(
                    dir.join(&base),
                    format!(
                        "this name and {} numbered ones are all taken",
                        MAX_TRIES - 1
                    ),
                ));
            };
            let name = if n == 0 {
                base.clone()
            } else {
                format!("{base}.{n:03}")
            };
            let path = dir.join(name);
            // create_new: never truncate or append to a file that exists (another writer's).
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(file) => break (path, file),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(Error::io(path, e)),
            }
        };
        let mut writer = EventWriter {
            path,
            out: BufWriter::new(file),
        };
        writer.write_event(0, event::What::FileVersion(FILE_VERSION.to_string()))?;
        writer.flush()?;
        Ok(writer)
    }

    /// Append the scalar `value` of series `tag` at `step`. It is stored as f32 (TensorFlow's
    /// `simple_value` is a float), so it is rounded to f32's 24 bits.
    pub fn add_scalar(&mut self, tag: &str, step: i64, value: f64) -> Result<()> {
        self.add_value(tag, step, summary::value::Value::SimpleValue(value as f32))
    }

    /// Append the histogram of `values` (see [`histogram`](super::histogram()) for the buckets)
    /// as series `tag` at `step`.
    ///
    /// NaN and ±inf are left out of the histogram: its `num` is the count of finite values, so
    /// `values.len() - num` were left out. An empty slice, or one with no finite value, is still
    /// written, with `num` 0 (a step whose tensor had nothing finite stays visible as such).
    pub fn add_histogram(&mut self, tag: &str, step: i64, values: &[f32]) -> Result<()> {
        self.add_histogram_proto(tag, step, histogram(values))
    }

    /// Append a histogram made elsewhere (e.g. merged over several tensors) as `tag` at `step`.
    pub fn add_histogram_proto(&mut self, tag: &str, step: i64, h: HistogramProto) -> Result<()> {
        self.add_value(tag, step, summary::value::Value::Histo(h))
    }

    /// Write what is buffered to the file, so that TensorBoard sees it.
    pub fn flush(&mut self) -> Result<()> {
        self.out.flush().map_err(|e| Error::io(&self.path, e))
    }

    /// The event file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// One summary event holding one tagged value.
    fn add_value(&mut self, tag: &str, step: i64, value: summary::value::Value) -> Result<()> {
        let summary = Summary {
            value: vec![summary::Value {
                tag: tag.to_string(),
                value: Some(value),
            }],
        };
        self.write_event(step, event::What::Summary(summary))
    }

    /// Encode an event stamped with the current time and append it as one record.
    fn write_event(&mut self, step: i64, what: event::What) -> Result<()> {
        let event = Event {
            wall_time: wall_time(),
            step,
            what: Some(what),
        };
        write_record(&mut self.out, &event.encode_to_vec()).map_err(|e| Error::io(&self.path, e))
    }
}

/// Seconds since the Unix epoch, with a fraction (0 if the clock is before 1970).
fn wall_time() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// This machine's name as it goes into a file name: see [`EventWriter::create`].
fn hostname() -> String {
    let from_file = std::fs::read_to_string("/etc/hostname").ok();
    let name = [from_file, std::env::var("HOSTNAME").ok()]
        .into_iter()
        .flatten()
        .map(|s| s.trim().to_string())
        .find(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string());
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}
