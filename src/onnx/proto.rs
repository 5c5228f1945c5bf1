//! The messages of ONNX's `onnx.proto3` that an exported model uses, with their field numbers,
//! encoded by prost's derive (no protobuf compiler needed at build time, and no wire encoding by
//! hand). Fields bnlab never writes are left out; a reader skips what it does not know.

/// `ModelProto`: the file.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ModelProto {
    /// The IR version (`IR_VERSION` of the opset's era).
    #[prost(int64, tag = "1")]
    pub ir_version: i64,
    /// The operator sets the graph's nodes bind against.
    #[prost(message, repeated, tag = "8")]
    pub opset_import: Vec<OperatorSetIdProto>,
    /// "bnlab".
    #[prost(string, tag = "2")]
    pub producer_name: String,
    /// bnlab's version.
    #[prost(string, tag = "3")]
    pub producer_version: String,
    /// What the model is.
    #[prost(string, tag = "6")]
    pub doc_string: String,
    /// The computation.
    #[prost(message, optional, tag = "7")]
    pub graph: Option<GraphProto>,
}

/// `OperatorSetIdProto`: a domain ("" is ONNX's) and its version.
#[derive(Clone, PartialEq, prost::Message)]
pub struct OperatorSetIdProto {
    /// The operator set's domain; "" for ai.onnx.
    #[prost(string, tag = "1")]
    pub domain: String,
    /// The operator set's version.
    #[prost(int64, tag = "2")]
    pub version: i64,
}

/// `GraphProto`: nodes in topological order, the weights, inputs and outputs.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GraphProto {
    /// The nodes, in an order where every input is computed first.
    #[prost(message, repeated, tag = "1")]
    pub node: Vec<NodeProto>,
    /// The graph's name.
    #[prost(string, tag = "2")]
    pub name: String,
    /// The weights, by name.
    #[prost(message, repeated, tag = "5")]
    pub initializer: Vec<TensorProto>,
    /// The graph's inputs.
    #[prost(message, repeated, tag = "11")]
    pub input: Vec<ValueInfoProto>,
    /// The graph's outputs.
    #[prost(message, repeated, tag = "12")]
    pub output: Vec<ValueInfoProto>,
}

/// `NodeProto`: one operator applied to named values.
#[derive(Clone, PartialEq, prost::Message)]
pub struct NodeProto {
    /// The names of its inputs.
    #[prost(string, repeated, tag = "1")]
    pub input: Vec<String>,
    /// The names of its outputs.
    #[prost(string, repeated, tag = "2")]
    pub output: Vec<String>,
    /// The node's name (the layer's state-dict path).
    #[prost(string, tag = "3")]
    pub name: String,
    /// The operator (`Gemm`, `Conv`, ...).
    #[prost(string, tag = "4")]
    pub op_type: String,
    /// Its attributes.
    #[prost(message, repeated, tag = "5")]
    pub attribute: Vec<AttributeProto>,
}

/// `AttributeProto`: a named value of one of a few types (`type` says which field is set).
#[derive(Clone, PartialEq, prost::Message)]
pub struct AttributeProto {
    /// The attribute's name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// FLOAT = 1, INT = 2, STRING = 3, INTS = 7.
    #[prost(int32, tag = "20")]
    pub r#type: i32,
    /// A float value.
    #[prost(float, tag = "2")]
    pub f: f32,
    /// An int value.
    #[prost(int64, tag = "3")]
    pub i: i64,
    /// A string value, UTF-8.
    #[prost(bytes = "vec", tag = "4")]
    pub s: Vec<u8>,
    /// A list of ints.
    #[prost(int64, repeated, tag = "8")]
    pub ints: Vec<i64>,
}

/// `AttributeProto.AttributeType`'s values used here.
pub mod attribute_type {
    /// A float.
    pub const FLOAT: i32 = 1;
    /// An int.
    pub const INT: i32 = 2;
    /// A string.
    pub const STRING: i32 = 3;
    /// A list of ints.
    pub const INTS: i32 = 7;
}

/// `TensorProto.DataType.FLOAT`.
pub const FLOAT: i32 = 1;

/// `TensorProto`: a weight, its values little-endian in `raw_data`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorProto {
    /// Its shape.
    #[prost(int64, repeated, tag = "1")]
    pub dims: Vec<i64>,
    /// FLOAT (1).
    #[prost(int32, tag = "2")]
    pub data_type: i32,
    /// Its name, as nodes refer to it.
    #[prost(string, tag = "8")]
    pub name: String,
    /// The values as bytes, little-endian float32.
    #[prost(bytes = "vec", tag = "9")]
    pub raw_data: Vec<u8>,
}

/// `ValueInfoProto`: a graph input's or output's name and type.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ValueInfoProto {
    /// Its name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Its type and shape.
    #[prost(message, optional, tag = "2")]
    pub r#type: Option<TypeProto>,
}

/// `TypeProto` with its `tensor_type` (field 1 of the `value` oneof).
#[derive(Clone, PartialEq, prost::Message)]
pub struct TypeProto {
    /// A tensor's element type and shape.
    #[prost(message, optional, tag = "1")]
    pub tensor_type: Option<TensorTypeProto>,
}

/// `TypeProto.Tensor`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorTypeProto {
    /// FLOAT (1).
    #[prost(int32, tag = "1")]
    pub elem_type: i32,
    /// The dimensions.
    #[prost(message, optional, tag = "2")]
    pub shape: Option<TensorShapeProto>,
}

/// `TensorShapeProto`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorShapeProto {
    /// Each dimension, a size or a name (a dynamic one).
    #[prost(message, repeated, tag = "1")]
    pub dim: Vec<Dimension>,
}

/// `TensorShapeProto.Dimension`: `dim_value` (field 1) or `dim_param` (field 2).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Dimension {
    /// A fixed size (0: not set).
    #[prost(int64, optional, tag = "1")]
    pub dim_value: Option<i64>,
    /// A named, dynamic size ("N" for the batch).
    #[prost(string, optional, tag = "2")]
    pub dim_param: Option<String>,
}
