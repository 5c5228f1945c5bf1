//! A model in eval mode as an ONNX graph: one node (or two) per layer, the weights as
//! initializers under their state-dict names, input `input` and output `logits` with a dynamic
//! batch dimension `N`.

use super::proto::*;
use crate::graph::ParamStore;
use crate::nn::{BatchNorm, Layer, Net};
use crate::{Error, Result};

/// The operator set written: the lowest that has every op used (GroupNormalization's
/// per-channel scale and bias are opset 21's; Gelu is 20's, LayerNormalization 17's).
pub const OPSET: i64 = 21;
/// The IR version that goes with opset 21.
pub const IR_VERSION: i64 = 10;

/// The ONNX model of `net` (in eval mode) for inputs of `input` (the batch dimension becomes
/// `N`). A layer ONNX cannot express, or a BatchNorm without running statistics, is an error
/// naming it.
pub fn export(net: &Net, params: &ParamStore, input: &[usize]) -> Result<ModelProto> {
    let mut b = Builder {
        params,
        nodes: Vec::new(),
        initializers: Vec::new(),
        value: "input".into(),
        shape: input.to_vec(),
        count: 0,
    };
    if net.flatten_input {
        b.flatten("input_flatten");
    }
    for (name, layer) in &net.blocks {
        b.layer(layer, name)?;
    }
    // the last value is renamed `logits` by an Identity, so the graph's output has that name
    b.node(
        "Identity",
        "logits",
        vec![b.value.clone()],
        vec![],
        "logits",
    );
    let dims = |shape: &[usize]| TensorShapeProto {
        dim: std::iter::once(Dimension {
            dim_value: None,
            dim_param: Some("N".into()),
        })
        .chain(shape[1..].iter().map(|&d| Dimension {
            dim_value: Some(d as i64),
            dim_param: None,
        }))
        .collect(),
    };
    let info = |name: &str, shape: &[usize]| ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TensorTypeProto {
                elem_type: FLOAT,
                shape: Some(dims(shape)),
            }),
        }),
    };
    let graph = GraphProto {
        node: b.nodes,
        name: net.name.clone(),
        initializer: b.initializers,
        input: vec![info("input", input)],
        output: vec![info("logits", &b.shape)],
    };
    Ok(ModelProto {
        ir_version: IR_VERSION,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
        }],
        producer_name: "bnlab".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        doc_string: format!("{} exported by bnlab in eval mode", net.name),
        graph: Some(graph),
    })
}

struct Builder<'a> {
    params: &'a ParamStore,
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    /// The value the next layer reads, and its shape (batch dimension included).
    value: String,
    shape: Vec<usize>,
    count: usize,
}

fn int(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: attribute_type::INT,
        i,
        ..Default::default()
    }
}

fn float(name: &str, f: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: attribute_type::FLOAT,
        f,
        ..Default::default()
    }
}

fn ints(name: &str, v: &[usize]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: attribute_type::INTS,
        ints: v.iter().map(|&x| x as i64).collect(),
        ..Default::default()
    }
}

fn string(name: &str, s: &str) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: attribute_type::STRING,
        s: s.as_bytes().to_vec(),
        ..Default::default()
    }
}

impl Builder<'_> {
    /// Add a node reading `inputs`, writing `output`; the graph's value moves on to it.
    fn node(
        &mut self,
        op: &str,
        name: &str,
        inputs: Vec<String>,
        attribute: Vec<AttributeProto>,
        output: &str,
    ) {
        self.nodes.push(NodeProto {
            input: inputs,
            output: vec![output.into()],
            name: name.into(),
            op_type: op.into(),
            attribute,
        });
        self.value = output.into();
    }

    /// A node after the current value, its output named after the layer.
    fn then(&mut self, op: &str, name: &str, extra: Vec<String>, attribute: Vec<AttributeProto>) {
        self.count += 1;
        let out = format!("{name}.out{}", self.count);
        let mut inputs = vec![self.value.clone()];
        inputs.extend(extra);
        self.node(op, name, inputs, attribute, &out);
    }

    fn flatten(&mut self, name: &str) {
        self.then("Flatten", name, vec![], vec![int("axis", 1)]);
        self.shape = vec![self.shape[0], self.shape[1..].iter().product()];
    }

    /// A weight as an initializer, in PyTorch's layout, under `name`.
    fn weight(&mut self, name: &str, shape: &[usize], values: &[f32]) -> String {
        self.initializers.push(TensorProto {
            dims: shape.iter().map(|&d| d as i64).collect(),
            data_type: FLOAT,
            name: name.into(),
            raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        });
        name.into()
    }

    /// A parameter stored as PyTorch stores it, as an initializer under `name`.
    fn param(&mut self, name: &str, id: crate::graph::ParamId) -> String {
        let (params, shape) = (self.params, self.params.shape(id).to_vec());
        self.weight(name, &shape, params.value(id))
    }

    fn layer(&mut self, layer: &Layer, name: &str) -> Result<()> {
        let next_shape = layer.output_shape(&self.shape)?;
        match layer {
            Layer::Sequential(s) => {
                for (i, l) in s.layers.iter().enumerate() {
                    self.layer(l, &format!("{name}.{i}"))?;
                }
                return Ok(());
            }
            Layer::Net(n) => {
                for (child, l) in &n.blocks {
                    self.layer(l, &format!("{name}.{child}"))?;
                }
                return Ok(());
            }
            Layer::Linear(l) => {
                if self.shape.len() > 2 {
                    if !l.flatten_input {
                        return Err(Error::Invalid(format!(
                            "export: {name}: a Linear on a {}-D input has no Gemm",
                            self.shape.len()
                        )));
                    }
                    self.flatten(&format!("{name}.flatten"));
                }
                // PyTorch's (out, in) W, however the layer stores it (Gemm with transB)
                let w = l.torch_weight(self.params);
                let w = self.weight(&format!("{name}.weight"), &w.shape, &w.data);
                let mut extra = vec![w];
                if let Some(b) = l.bias {
                    extra.push(self.param(&format!("{name}.bias"), b));
                }
                self.then("Gemm", name, extra, vec![int("transB", 1)]);
            }
            Layer::BatchNorm(bn) => self.batch_norm(bn, name)?,
            Layer::Conv2d(c) => {
                let w = self.param(&format!("{name}.weight"), c.weight);
                let mut extra = vec![w];
                if let Some(b) = c.bias {
                    extra.push(self.param(&format!("{name}.bias"), b));
                }
                let (k, s, p) = (c.kernel_size, c.stride, c.padding);
                let attrs = vec![
                    ints("kernel_shape", &[k, k]),
                    ints("strides", &[s, s]),
                    ints("pads", &[p, p, p, p]),
                ];
                self.then("Conv", name, extra, attrs);
            }
            Layer::MaxPool2d(m) => {
                let attrs = vec![
                    ints("kernel_shape", &[m.kernel_size, m.kernel_size]),
                    ints("strides", &[m.stride, m.stride]),
                ];
                self.then("MaxPool", name, vec![], attrs);
            }
            Layer::AvgPool2d(a) => {
                let attrs = vec![
                    ints("kernel_shape", &[a.kernel_size.0, a.kernel_size.1]),
                    ints("strides", &[a.stride.0, a.stride.1]),
                ];
                self.then("AveragePool", name, vec![], attrs);
            }
            Layer::ReLU(_) => self.then("Relu", name, vec![], vec![]),
            Layer::Sigmoid(_) => self.then("Sigmoid", name, vec![], vec![]),
            Layer::Tanh(_) => self.then("Tanh", name, vec![], vec![]),
            Layer::LeakyReLU(l) => self.then(
                "LeakyRelu",
                name,
                vec![],
                vec![float("alpha", l.negative_slope)],
            ),
            Layer::Gelu(g) => {
                let attrs = vec![string("approximate", g.approximate_name())];
                self.then("Gelu", name, vec![], attrs)
            }
            // nothing to compute at inference
            Layer::Identity(_) | Layer::Dropout(_) => {}
            Layer::Flatten(_) => self.flatten(name),
            Layer::LayerNorm(l) => {
                let shape = l.normalized_shape.clone();
                let n: usize = shape.iter().product();
                let scale = match l.weight {
                    Some(w) => self.param(&format!("{name}.weight"), w),
                    None => self.weight(&format!("{name}.ones"), &shape, &vec![1.0; n]),
                };
                let bias = match l.bias {
                    Some(b) => self.param(&format!("{name}.bias"), b),
                    None => self.weight(&format!("{name}.zeros"), &shape, &vec![0.0; n]),
                };
                let attrs = vec![
                    int("axis", -(shape.len() as i64)),
                    float("epsilon", l.config.eps),
                ];
                self.then("LayerNormalization", name, vec![scale, bias], attrs);
            }
            Layer::GroupNorm(g) => {
                let c = g.num_channels;
                let scale = match g.weight {
                    Some(w) => self.param(&format!("{name}.weight"), w),
                    None => self.weight(&format!("{name}.ones"), &[c], &vec![1.0; c]),
                };
                let bias = match g.bias {
                    Some(b) => self.param(&format!("{name}.bias"), b),
                    None => self.weight(&format!("{name}.zeros"), &[c], &vec![0.0; c]),
                };
                let attrs = vec![
                    int("num_groups", g.num_groups as i64),
                    float("epsilon", g.config.eps),
                ];
                self.then("GroupNormalization", name, vec![scale, bias], attrs);
            }
            Layer::Custom(m) => {
                return Err(Error::Invalid(format!(
                    "export: {name}: a layer of your own ({}) has no ONNX form",
                    m.type_name()
                )))
            }
        }
        self.shape = next_shape;
        Ok(())
    }

    fn batch_norm(&mut self, bn: &BatchNorm, name: &str) -> Result<()> {
        if !bn.config.track_running_stats {
            return Err(Error::Invalid(format!(
                "export: {name}: a BatchNorm without running statistics normalises with each \
                 batch's own, which ONNX's inference BatchNormalization cannot"
            )));
        }
        let c = bn.num_features;
        let scale = match bn.weight {
            Some(w) => self.param(&format!("{name}.weight"), w),
            None => self.weight(&format!("{name}.ones"), &[c], &vec![1.0; c]),
        };
        let bias = match bn.bias {
            Some(b) => self.param(&format!("{name}.bias"), b),
            None => self.weight(&format!("{name}.zeros"), &[c], &vec![0.0; c]),
        };
        let mean = self.weight(&format!("{name}.running_mean"), &[c], &bn.running_mean.data);
        let var = self.weight(&format!("{name}.running_var"), &[c], &bn.running_var.data);
        let attrs = vec![float("epsilon", bn.config.eps)];
        self.then(
            "BatchNormalization",
            name,
            vec![scale, bias, mean, var],
            attrs,
        );
        Ok(())
    }
}
