//! Just enough of ONNX to load one fixed network: a protobuf reader for the graph's nodes and
//! its float and int64 initializers. No protobuf crate: the wire format is five cases, and the
//! model is compiled into the binary, so any surprise is found by the unit tests, not a kiosk.

use std::collections::HashMap;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum OnnxError {
    #[error("the face model is not valid ONNX protobuf ({0}); rebuild with the bundled model")]
    Wire(&'static str),
    #[error("the face model's tensor {0:?} has data type {1}, only float and int64 are read")]
    DataType(String, i32),
}

/// A tensor from the model file: dims and values (int64 values are kept as f32-free `i64`s).
#[derive(Debug, Clone, PartialEq)]
pub enum Tensor {
    F32 { dims: Vec<i64>, data: Vec<f32> },
    I64 { dims: Vec<i64>, data: Vec<i64> },
}

/// A node attribute: the kinds this network uses.
#[derive(Debug, Clone, PartialEq)]
pub enum Attr {
    Int(i64),
    Ints(Vec<i64>),
    Float(f32),
    Bytes(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub op: String,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub attrs: HashMap<String, Attr>,
}

impl Node {
    pub fn ints(&self, name: &str) -> Option<&[i64]> {
        match self.attrs.get(name) {
            Some(Attr::Ints(v)) => Some(v),
            _ => None,
        }
    }
    pub fn int(&self, name: &str) -> Option<i64> {
        match self.attrs.get(name) {
            Some(Attr::Int(v)) => Some(*v),
            _ => None,
        }
    }
}

/// The graph: nodes in file order (ONNX requires topological order) and the weights by name.
#[derive(Debug, Clone, PartialEq)]
pub struct Graph {
    pub nodes: Vec<Node>,
    pub weights: HashMap<String, Tensor>,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
}

struct Wire<'a> {
    b: &'a [u8],
}

enum Field<'a> {
    Varint(u64),
    Fixed32(u32),
    Fixed64,
    Bytes(&'a [u8]),
}

impl<'a> Wire<'a> {
    fn varint(&mut self) -> Result<u64, OnnxError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = self.b.split_first().ok_or(OnnxError::Wire("varint past the end"))?;
            self.b = rest;
            v |= ((byte & 0x7f) as u64) << shift;
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(OnnxError::Wire("varint longer than 10 bytes"))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], OnnxError> {
        if n > self.b.len() {
            return Err(OnnxError::Wire("field past the end"));
        }
        let (head, rest) = self.b.split_at(n);
        self.b = rest;
        Ok(head)
    }

    fn next(&mut self) -> Result<Option<(u64, Field<'a>)>, OnnxError> {
        if self.b.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let field = match key & 7 {
            0 => Field::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Field::Fixed64
            }
            2 => {
                let n = self.varint()? as usize;
                Field::Bytes(self.take(n)?)
            }
            5 => Field::Fixed32(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes"))),
            _ => return Err(OnnxError::Wire("unknown wire type")),
        };
        Ok(Some((key >> 3, field)))
    }
}

fn fields(b: &[u8]) -> impl Iterator<Item = Result<(u64, Field<'_>), OnnxError>> {
    let mut w = Wire { b };
    std::iter::from_fn(move || w.next().transpose())
}

fn text(b: &[u8]) -> Result<String, OnnxError> {
    String::from_utf8(b.to_vec()).map_err(|_| OnnxError::Wire("a name is not UTF-8"))
}

/// Repeated int64: packed (one length-delimited run) or one varint per field.
fn push_ints(out: &mut Vec<i64>, f: Field<'_>) -> Result<(), OnnxError> {
    match f {
        Field::Varint(v) => out.push(v as i64),
        Field::Bytes(b) => {
            let mut w = Wire { b };
            while !w.b.is_empty() {
                out.push(w.varint()? as i64);
            }
        }
        _ => return Err(OnnxError::Wire("int64 list of the wrong wire type")),
    }
    Ok(())
}

fn tensor(b: &[u8]) -> Result<(String, Tensor), OnnxError> {
    let (mut dims, mut dtype, mut name, mut raw, mut floats, mut ints) =
        (Vec::new(), 0i32, String::new(), None, Vec::new(), Vec::new());
    for f in fields(b) {
        match f? {
            (1, v) => push_ints(&mut dims, v)?,
            (2, Field::Varint(v)) => dtype = v as i32,
            (4, Field::Bytes(p)) => floats.extend(p.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap()))),
            (4, Field::Fixed32(v)) => floats.push(f32::from_bits(v)),
            (7, v) => push_ints(&mut ints, v)?,
            (8, Field::Bytes(p)) => name = text(p)?,
            (9, Field::Bytes(p)) => raw = Some(p),
            _ => {}
        }
    }
    let t = match (dtype, raw) {
        (1, Some(r)) => {
            Tensor::F32 { dims, data: r.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect() }
        }
        (1, None) => Tensor::F32 { dims, data: floats },
        (7, Some(r)) => {
            Tensor::I64 { dims, data: r.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap())).collect() }
        }
        (7, None) => Tensor::I64 { dims, data: ints },
        (d, _) => return Err(OnnxError::DataType(name, d)),
    };
    Ok((name, t))
}

fn attribute(b: &[u8]) -> Result<(String, Attr), OnnxError> {
    let (mut name, mut attr, mut ints) = (String::new(), None, Vec::new());
    for f in fields(b) {
        match f? {
            (1, Field::Bytes(p)) => name = text(p)?,
            (2, Field::Fixed32(v)) => attr = Some(Attr::Float(f32::from_bits(v))),
            (3, Field::Varint(v)) => attr = Some(Attr::Int(v as i64)),
            (4, Field::Bytes(p)) => attr = Some(Attr::Bytes(p.to_vec())),
            (8, v) => push_ints(&mut ints, v)?,
            _ => {}
        }
    }
    Ok((name, attr.unwrap_or(Attr::Ints(ints))))
}

fn node(b: &[u8]) -> Result<Node, OnnxError> {
    let mut n = Node { op: String::new(), inputs: vec![], outputs: vec![], attrs: HashMap::new() };
    for f in fields(b) {
        match f? {
            (1, Field::Bytes(p)) => n.inputs.push(text(p)?),
            (2, Field::Bytes(p)) => n.outputs.push(text(p)?),
            (4, Field::Bytes(p)) => n.op = text(p)?,
            (5, Field::Bytes(p)) => {
                let (k, v) = attribute(p)?;
                n.attrs.insert(k, v);
            }
            _ => {}
        }
    }
    Ok(n)
}

/// The name inside a ValueInfoProto (graph input or output).
fn value_name(b: &[u8]) -> Result<String, OnnxError> {
    for f in fields(b) {
        if let (1, Field::Bytes(p)) = f? {
            return text(p);
        }
    }
    Err(OnnxError::Wire("a graph input or output has no name"))
}

/// Reads a ModelProto's graph.
pub fn parse(model: &[u8]) -> Result<Graph, OnnxError> {
    let mut graph = None;
    for f in fields(model) {
        if let (7, Field::Bytes(p)) = f? {
            graph = Some(p);
        }
    }
    let graph = graph.ok_or(OnnxError::Wire("no graph in the model"))?;
    let mut g = Graph { nodes: vec![], weights: HashMap::new(), inputs: vec![], outputs: vec![] };
    for f in fields(graph) {
        match f? {
            (1, Field::Bytes(p)) => g.nodes.push(node(p)?),
            (5, Field::Bytes(p)) => {
                let (name, t) = tensor(p)?;
                g.weights.insert(name, t);
            }
            (11, Field::Bytes(p)) => g.inputs.push(value_name(p)?),
            (12, Field::Bytes(p)) => g.outputs.push(value_name(p)?),
            _ => {}
        }
    }
    // Weights may also be listed as graph inputs (older exporters); they are not inputs to feed.
    g.inputs.retain(|i| !g.weights.contains_key(i));
    Ok(g)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_bundled_face_model() {
        let g = parse(&super::super::blazeface::model()).unwrap();
        assert_eq!(g.inputs, ["input"]);
        assert_eq!(g.outputs, ["regressors", "classificators"]);
        assert_eq!(g.nodes.len(), 94);
        assert_eq!(g.nodes.iter().filter(|n| n.op == "Conv").count(), 37);
        let first = &g.nodes[0];
        assert_eq!((first.op.as_str(), first.ints("strides")), ("Conv", Some(&[2i64, 2][..])));
        assert_eq!(first.ints("pads"), Some(&[1i64, 1, 2, 2][..]));
        let Some(Tensor::F32 { dims, data }) = g.weights.get("conv2d/Kernel") else { panic!("no first kernel") };
        assert_eq!(dims, &[24, 3, 5, 5]);
        assert_eq!(data.len(), 24 * 3 * 25);
        assert!(data.iter().all(|v| v.is_finite()) && data.iter().any(|&v| v != 0.0));
    }

    #[test]
    fn truncated_or_garbled_bytes_are_an_error_not_a_panic() {
        let m = super::super::blazeface::model();
        for cut in [1, 2, 10, 1000, m.len() / 2, m.len() - 1] {
            let _ = parse(&m[..cut]);
        }
        assert!(parse(&[0x3a, 0xff, 0xff, 0xff]).is_err());
        assert_eq!(parse(&[]), Err(OnnxError::Wire("no graph in the model")));
    }
}
