//! TensorBoard event files: a training run's scalars and histograms in the format TensorBoard
//! (and `tensorboard.backend.event_processing`) reads, so a bnlab run can be watched and compared
//! with PyTorch runs (`torch.utils.tensorboard`) in the same tool, with no Python in the loop.
//!
//! An event file is a sequence of TFRecords ([`record`]), each holding one protobuf `Event`
//! ([`proto`]); [`EventWriter`] (in [`writer`](mod@writer)) names the file as TensorFlow does,
//! writes the `brain.Event:2` header and then one event per scalar or histogram, with buckets
//! made by [`histogram`](mod@histogram).

pub mod histogram;
pub mod proto;
pub mod record;
pub mod writer;

pub use histogram::histogram;
pub use record::{masked_crc32c, read_records, write_record};
pub use writer::EventWriter;
