//! The few messages of TensorFlow's `event.proto` and `summary.proto` that scalars and
//! histograms need, with TensorFlow's field numbers, encoded by prost's derive (no protobuf
//! compiler at build time, no wire encoding by hand). Fields bnlab never writes are left out:
//! readers skip what they do not know, and so does prost when these decode a foreign file.

/// `tensorflow.Event`: one record of an event file.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Event {
    /// Seconds since the Unix epoch when the event was written.
    #[prost(double, tag = "1")]
    pub wall_time: f64,
    /// The training step the event belongs to (TensorBoard's x axis).
    #[prost(int64, tag = "2")]
    pub step: i64,
    /// What the event carries: the file's version (first event) or a summary.
    #[prost(oneof = "event::What", tags = "3, 5")]
    pub what: Option<event::What>,
}

/// The `oneof what` of [`Event`].
pub mod event {
    /// What an [`Event`](super::Event) carries (TensorFlow's other cases are left out).
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum What {
        /// The first event of a file: `"brain.Event:2"`.
        #[prost(string, tag = "3")]
        FileVersion(String),
        /// Named values (scalars, histograms) for one step.
        #[prost(message, tag = "5")]
        Summary(super::Summary),
    }
}

/// `tensorflow.Summary`: a set of named values.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Summary {
    /// The values, each with its tag.
    #[prost(message, repeated, tag = "1")]
    pub value: Vec<summary::Value>,
}

/// The nested messages of [`Summary`].
pub mod summary {
    /// `tensorflow.Summary.Value`: one tagged scalar or histogram.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Value {
        /// The series' name (`loss/train`, `layer1.weight`, ...).
        #[prost(string, tag = "1")]
        pub tag: String,
        /// The value itself.
        #[prost(oneof = "value::Value", tags = "2, 5")]
        pub value: Option<value::Value>,
    }

    /// The `oneof value` of [`Value`].
    pub mod value {
        /// A scalar or a histogram (TensorFlow's images, audio and tensors are left out).
        #[derive(Clone, PartialEq, prost::Oneof)]
        pub enum Value {
            /// A scalar: `float` (f32) in TensorFlow's proto.
            #[prost(float, tag = "2")]
            SimpleValue(f32),
            /// A histogram.
            #[prost(message, tag = "5")]
            Histo(super::super::HistogramProto),
        }
    }
}

/// `tensorflow.HistogramProto`: summary statistics and buckets of a set of numbers.
///
/// Bucket `i` counts the values in `(bucket_limit[i-1], bucket_limit[i]]`; TensorBoard takes
/// `min` as the left edge of bucket 0.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HistogramProto {
    /// The smallest value.
    #[prost(double, tag = "1")]
    pub min: f64,
    /// The largest value.
    #[prost(double, tag = "2")]
    pub max: f64,
    /// How many values (a double in TensorFlow's proto).
    #[prost(double, tag = "3")]
    pub num: f64,
    /// Their sum.
    #[prost(double, tag = "4")]
    pub sum: f64,
    /// The sum of their squares.
    #[prost(double, tag = "5")]
    pub sum_squares: f64,
    /// The right edge of each bucket, increasing.
    #[prost(double, repeated, packed = "true", tag = "6")]
    pub bucket_limit: Vec<f64>,
    /// The count in each bucket (doubles, as TensorFlow has them).
    #[prost(double, repeated, packed = "true", tag = "7")]
    pub bucket: Vec<f64>,
}
