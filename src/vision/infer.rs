//! A small CPU interpreter for the face model's graph: convolutions (full and depthwise), ReLU,
//! residual adds, channel padding, max pooling and the output reshapes. Activations are kept
//! height × width × channels, so every inner loop runs over contiguous channels and vectorises.
//! Anything outside that set is refused when the graph is compiled, not met mid-frame.

use std::collections::HashMap;

use super::onnx::{Graph, Node, Tensor};
use lanes::Lanes;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum NetError {
    #[error("the face model uses {op} in a way this interpreter does not run ({detail})")]
    Unsupported { op: String, detail: String },
    #[error("the face model refers to {0:?}, which no node or weight provides")]
    Missing(String),
    #[error("the face model's input must be {want:?} (h, w, c); got {got} values")]
    Input { want: (usize, usize, usize), got: usize },
}

/// An activation: height × width × channels, channels fastest.
#[derive(Debug, Clone, PartialEq)]
pub struct Act {
    pub h: usize,
    pub w: usize,
    pub c: usize,
    pub data: Vec<f32>,
}

#[derive(Debug)]
enum Step {
    Conv(Conv),
    Add {
        a: usize,
        b: usize,
        out: usize,
        relu: bool,
    },
    Relu {
        x: usize,
        out: usize,
    },
    /// Zero channels appended (the BlazeBlock shortcut when the width grows).
    PadChannels {
        x: usize,
        out: usize,
        extra: usize,
    },
    MaxPool {
        x: usize,
        out: usize,
        k: usize,
        stride: usize,
    },
    /// Concatenation along the flattened rows: the outputs one after the other.
    Concat {
        xs: Vec<usize>,
        out: usize,
    },
}

/// Output channels are computed 8 at a time, in registers.
const L: usize = 8;

#[derive(Debug)]
struct Conv {
    x: usize,
    out: usize,
    /// Depthwise: one filter per channel; weights `[kh][kw][c rounded up to L]`. Otherwise
    /// `[cout / L][kh][kw][cin][L]`, so each step reads 8 consecutive weights.
    depthwise: bool,
    cin: usize,
    cout: usize,
    k: (usize, usize),
    stride: usize,
    /// Top, left, bottom, right.
    pads: [usize; 4],
    weights: Vec<f32>,
    /// Rounded up to L with zeros.
    bias: Vec<f32>,
    relu: bool,
}

/// A compiled network: its steps in order, one slot per named value.
#[derive(Debug)]
pub struct Net {
    steps: Vec<Step>,
    slots: usize,
    input: usize,
    input_shape: (usize, usize, usize),
    outputs: Vec<usize>,
    /// Per slot, the last step that reads it (outputs: never), when its buffer can be reused.
    last_use: Vec<usize>,
    /// Buffers kept between runs: a fresh allocation of this size is a page fault per 4 KiB.
    pool: std::sync::Mutex<Pool>,
    /// The convolutions' vector instructions: [`Simd::detect`]'s, or in tests the baseline
    /// (private: `Avx2` on a CPU without it would run instructions it does not have).
    pub(crate) simd: Simd,
}

/// Which vector instructions the convolutions use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Simd {
    /// The target's baseline: SSE2 on x86_64, NEON on aarch64, none elsewhere.
    Baseline,
    /// 256-bit AVX2 with fused multiply-adds (Intel Core since 2013, AMD since 2015; not the
    /// Atom-class Celeron and Pentium chips of many x86 kiosks, which keep SSE): the face model
    /// in 2.5 ms here against 4.2.
    Avx2,
}

impl Simd {
    /// The best this CPU runs.
    pub fn detect() -> Simd {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            return Simd::Avx2;
        }
        Simd::Baseline
    }
}

/// Spare buffers kept at most: one run of the face model needs about 20.
const MAX_SPARE: usize = 64;

/// Spare activation buffers.
#[derive(Debug, Default)]
struct Pool(Vec<Vec<f32>>);

impl Pool {
    /// `n` zeros, in the smallest spare buffer that holds them.
    fn get(&mut self, n: usize) -> Vec<f32> {
        let mut v = self.get_dirty(n);
        v.fill(0.0);
        v
    }
    /// `n` values of whatever the buffer held, for outputs that write every value.
    fn get_dirty(&mut self, n: usize) -> Vec<f32> {
        let best = (0..self.0.len()).filter(|&i| self.0[i].capacity() >= n).min_by_key(|&i| self.0[i].capacity());
        let mut v = best.map(|i| self.0.swap_remove(i)).unwrap_or_default();
        v.resize(n, 0.0);
        v.truncate(n);
        v
    }
    /// Keeps `v` for later runs; a run takes back what it gives, the cap is a backstop.
    fn put(&mut self, v: Vec<f32>) {
        if v.capacity() > 0 && self.0.len() < MAX_SPARE {
            self.0.push(v);
        }
    }
}

fn unsupported(n: &Node, detail: impl Into<String>) -> NetError {
    NetError::Unsupported { op: n.op.clone(), detail: detail.into() }
}

fn f32s<'a>(g: &'a Graph, name: &str) -> Result<(&'a [i64], &'a [f32]), NetError> {
    match g.weights.get(name) {
        Some(Tensor::F32 { dims, data }) => Ok((dims, data)),
        _ => Err(NetError::Missing(name.into())),
    }
}

fn conv(n: &Node, g: &Graph, x: usize, out: usize) -> Result<Conv, NetError> {
    let (dims, w) = f32s(g, n.inputs.get(1).ok_or_else(|| unsupported(n, "no kernel"))?)?;
    let [cout, cin_g, kh, kw] = dims else { return Err(unsupported(n, "kernel is not 4-D")) };
    let (cout, cin_g, kh, kw) = (*cout as usize, *cin_g as usize, *kh as usize, *kw as usize);
    let bias = match n.inputs.get(2) {
        Some(b) => f32s(g, b)?.1.to_vec(),
        None => vec![0.0; cout],
    };
    let group = n.int("group").unwrap_or(1) as usize;
    let strides = n.ints("strides").unwrap_or(&[1, 1]);
    if strides.len() != 2 || strides[0] != strides[1] {
        return Err(unsupported(n, "strides differ by axis"));
    }
    if n.ints("dilations").is_some_and(|d| d.iter().any(|&v| v != 1)) {
        return Err(unsupported(n, "dilation"));
    }
    let p = n.ints("pads").unwrap_or(&[0, 0, 0, 0]);
    let [t, l, b, r] = p else { return Err(unsupported(n, "pads are not 4 values")) };
    let pads = [*t as usize, *l as usize, *b as usize, *r as usize];
    let depthwise = group > 1;
    if depthwise && !(group == cout && cin_g == 1) {
        return Err(unsupported(n, format!("group {group} is neither 1 nor depthwise")));
    }
    let cin = if depthwise { cout } else { cin_g };
    let chunks = cout.div_ceil(L);
    let mut weights = vec![0.0; if depthwise { kh * kw * chunks * L } else { chunks * kh * kw * cin * L }];
    for o in 0..cout {
        for i in 0..cin_g {
            for y in 0..kh {
                for xk in 0..kw {
                    let tap = y * kw + xk;
                    let v = w[((o * cin_g + i) * kh + y) * kw + xk];
                    let at = if depthwise {
                        tap * chunks * L + o
                    } else {
                        (((o / L) * kh * kw + tap) * cin + i) * L + o % L
                    };
                    weights[at] = v;
                }
            }
        }
    }
    let mut bias = bias;
    bias.resize(chunks * L, 0.0);
    Ok(Conv {
        x,
        out,
        depthwise,
        cin,
        cout,
        k: (kh, kw),
        stride: strides[0] as usize,
        pads,
        weights,
        bias,
        relu: false,
    })
}

impl Net {
    /// Compiles `g`, whose single input is `input_shape` (h, w, c).
    pub fn compile(g: &Graph, input_shape: (usize, usize, usize)) -> Result<Net, NetError> {
        let mut slot: HashMap<&str, usize> = HashMap::new();
        let input_name = g.inputs.first().ok_or_else(|| NetError::Missing("the graph's input".into()))?;
        slot.insert(input_name, 0);
        let mut uses: HashMap<&str, usize> = HashMap::new();
        for n in &g.nodes {
            for i in &n.inputs {
                *uses.entry(i.as_str()).or_default() += 1;
            }
        }
        for o in &g.outputs {
            *uses.entry(o.as_str()).or_default() += 1;
        }
        let mut steps: Vec<Step> = Vec::new();
        for n in &g.nodes {
            let get = |name: &str, slot: &HashMap<&str, usize>| {
                slot.get(name).copied().ok_or_else(|| NetError::Missing(name.into()))
            };
            let out_name = n.outputs.first().ok_or_else(|| unsupported(n, "no output"))?;
            let out = slot.len();
            let first = || n.inputs.first().map(String::as_str).unwrap_or("");
            // A ReLU right after the conv or add that alone feeds it is applied in that step.
            if n.op == "Relu" {
                let x = get(first(), &slot)?;
                let sole = uses.get(first()).copied() == Some(1);
                match steps.last_mut() {
                    Some(Step::Conv(c)) if c.out == x && sole => c.relu = true,
                    Some(Step::Add { out: o, relu, .. }) if *o == x && sole => *relu = true,
                    _ => {
                        steps.push(Step::Relu { x, out });
                        slot.insert(out_name, out);
                        continue;
                    }
                }
                slot.insert(out_name, x);
                continue;
            }
            let step = match n.op.as_str() {
                "Conv" => Step::Conv(conv(n, g, get(first(), &slot)?, out)?),
                "Add" => {
                    let [a, b] = &n.inputs[..] else { return Err(unsupported(n, "not two inputs")) };
                    Step::Add { a: get(a, &slot)?, b: get(b, &slot)?, out, relu: false }
                }
                "Pad" => {
                    let pads = match n.inputs.get(1).and_then(|p| g.weights.get(p)) {
                        Some(Tensor::I64 { data, .. }) => data.clone(),
                        _ => return Err(unsupported(n, "pads are not a constant")),
                    };
                    // NCHW begin then end: only zeros appended to the channels.
                    let [0, 0, 0, 0, 0, extra, 0, 0] = pads[..] else {
                        return Err(unsupported(n, format!("pads {pads:?} are not channel padding")));
                    };
                    Step::PadChannels { x: get(first(), &slot)?, out, extra: extra as usize }
                }
                "MaxPool" => {
                    let k = n.ints("kernel_shape").unwrap_or(&[]);
                    let s = n.ints("strides").unwrap_or(&[]);
                    if k.len() != 2 || k[0] != k[1] || s.len() != 2 || s[0] != s[1] {
                        return Err(unsupported(n, "only square pooling"));
                    }
                    if n.ints("pads").is_some_and(|p| p.iter().any(|&v| v != 0)) {
                        return Err(unsupported(n, "padded pooling"));
                    }
                    Step::MaxPool { x: get(first(), &slot)?, out, k: k[0] as usize, stride: s[0] as usize }
                }
                "Transpose" => {
                    if n.ints("perm") != Some(&[0, 2, 3, 1][..]) {
                        return Err(unsupported(n, "only NCHW to NHWC"));
                    }
                    // Activations are already stored channels last: the same data.
                    slot.insert(out_name, get(first(), &slot)?);
                    continue;
                }
                "Reshape" => {
                    slot.insert(out_name, get(first(), &slot)?);
                    continue;
                }
                "Concat" => {
                    if n.int("axis") != Some(1) {
                        return Err(unsupported(n, "only along axis 1 of flattened rows"));
                    }
                    Step::Concat { xs: n.inputs.iter().map(|i| get(i, &slot)).collect::<Result<_, _>>()?, out }
                }
                _ => return Err(unsupported(n, "not an operator of this network")),
            };
            steps.push(step);
            slot.insert(out_name, out);
        }
        let outputs =
            g.outputs.iter().map(|o| slot.get(o.as_str()).copied().ok_or_else(|| NetError::Missing(o.clone())));
        let outputs: Vec<usize> = outputs.collect::<Result<_, _>>()?;
        let slots = slot.values().max().map_or(1, |m| m + 1);
        let mut last_use = vec![0; slots];
        for (i, s) in steps.iter().enumerate() {
            for x in s.reads() {
                last_use[x] = i;
            }
        }
        for &o in &outputs {
            last_use[o] = usize::MAX;
        }
        Ok(Net {
            steps,
            slots,
            input: 0,
            input_shape,
            outputs,
            last_use,
            pool: Default::default(),
            simd: Simd::detect(),
        })
    }

    /// Runs the network on `input` (h × w × c values); the graph's outputs, flattened.
    pub fn run(&self, input: Vec<f32>) -> Result<Vec<Vec<f32>>, NetError> {
        let (h, w, c) = self.input_shape;
        if input.len() != h * w * c {
            return Err(NetError::Input { want: self.input_shape, got: input.len() });
        }
        let mut pool = std::mem::take(&mut *self.pool.lock().unwrap_or_else(|e| e.into_inner()));
        let mut v: Vec<Option<Act>> = (0..self.slots).map(|_| None).collect();
        v[self.input] = Some(Act { h, w, c, data: input });
        for (i, s) in self.steps.iter().enumerate() {
            let (out, act) = match s {
                Step::Conv(cv) => (cv.out, cv.run(take(&v, cv.x), &mut pool, self.simd)),
                Step::Add { a, b, out, relu } => {
                    let (a, b) = (take(&v, *a), take(&v, *b));
                    let mut data = pool.get_dirty(a.data.len());
                    for ((d, x), y) in data.iter_mut().zip(&a.data).zip(&b.data) {
                        *d = if *relu { (x + y).max(0.0) } else { x + y };
                    }
                    (*out, Act { data, ..*a })
                }
                Step::Relu { x, out } => {
                    let a = take(&v, *x);
                    let mut data = pool.get_dirty(a.data.len());
                    for (d, x) in data.iter_mut().zip(&a.data) {
                        *d = x.max(0.0);
                    }
                    (*out, Act { data, ..*a })
                }
                Step::PadChannels { x, out, extra } => {
                    let a = take(&v, *x);
                    let c = a.c + extra;
                    let mut data = pool.get(a.h * a.w * c);
                    for (dst, src) in data.chunks_exact_mut(c).zip(a.data.chunks_exact(a.c)) {
                        dst[..a.c].copy_from_slice(src);
                    }
                    (*out, Act { c, data, ..*a })
                }
                Step::MaxPool { x, out, k, stride } => (*out, max_pool(take(&v, *x), *k, *stride, &mut pool)),
                Step::Concat { xs, out } => {
                    let n = xs.iter().map(|&i| take(&v, i).data.len()).sum();
                    let mut data = pool.get_dirty(n);
                    let mut at = 0;
                    for &x in xs {
                        let d = &take(&v, x).data;
                        data[at..at + d.len()].copy_from_slice(d);
                        at += d.len();
                    }
                    (*out, Act { h: 1, w: 1, c: n, data })
                }
            };
            v[out] = Some(act);
            for x in s.reads() {
                if self.last_use[x] == i {
                    // The caller's input did not come from the pool: it is dropped, not kept.
                    if let (Some(done), false) = (v[x].take(), x == self.input) {
                        pool.put(done.data);
                    }
                }
            }
        }
        let outs = self.outputs.iter().map(|&o| take(&v, o).data.clone()).collect();
        for (i, a) in v.into_iter().enumerate() {
            if let (Some(a), false) = (a, i == self.input) {
                pool.put(a.data);
            }
        }
        *self.pool.lock().unwrap_or_else(|e| e.into_inner()) = pool;
        Ok(outs)
    }
}

impl Step {
    fn reads(&self) -> Vec<usize> {
        match self {
            Step::Conv(c) => vec![c.x],
            Step::Add { a, b, .. } => vec![*a, *b],
            Step::Relu { x, .. } | Step::PadChannels { x, .. } | Step::MaxPool { x, .. } => vec![*x],
            Step::Concat { xs, .. } => xs.clone(),
        }
    }
}

/// Eight f32 lanes: two SSE registers on x86_64 (always present there), or one AVX register
/// with fused multiply-adds where the CPU has AVX2 and FMA (chosen at run time, as OpenCV does);
/// two NEON registers on aarch64; plain arrays elsewhere (armv7 hard-float targets may lack
/// NEON). The compiler did not keep eight-wide accumulators in registers on its own (they were
/// spilled lane by lane).
mod lanes {
    pub trait Lanes: Copy {
        /// The dense kernel takes four pixels at a time (eight accumulators), not two. On with
        /// AVX, whose sixteen registers each hold all eight lanes (the face model here: 2.5 ms
        /// against 3.1). Off elsewhere: SSE needs two registers per value, and on ARM it was not
        /// measured (and costs a 64 KiB page of the aarch64 binary).
        const FOUR_PIXELS: bool;
        fn load(v: &[f32; 8]) -> Self;
        fn store(self, out: &mut [f32; 8]);
        /// `self + a · s`
        fn add_scaled(self, a: Self, s: f32) -> Self;
        /// `self + a · b`, lane by lane.
        fn add_mul(self, a: Self, b: Self) -> Self;
    }

    #[cfg(target_arch = "x86_64")]
    mod imp {
        use std::arch::x86_64::*;

        #[derive(Clone, Copy)]
        pub struct Sse(__m128, __m128);

        impl super::Lanes for Sse {
            const FOUR_PIXELS: bool = false;
            #[inline(always)]
            fn load(v: &[f32; 8]) -> Sse {
                // SAFETY: eight readable f32 behind the reference; unaligned loads.
                unsafe { Sse(_mm_loadu_ps(v.as_ptr()), _mm_loadu_ps(v.as_ptr().add(4))) }
            }
            #[inline(always)]
            fn store(self, out: &mut [f32; 8]) {
                // SAFETY: eight writable f32 behind the reference; unaligned stores.
                unsafe {
                    _mm_storeu_ps(out.as_mut_ptr(), self.0);
                    _mm_storeu_ps(out.as_mut_ptr().add(4), self.1);
                }
            }
            #[inline(always)]
            fn add_scaled(self, a: Sse, s: f32) -> Sse {
                // SAFETY: SSE is part of every x86_64 target; register arithmetic only.
                unsafe {
                    let k = _mm_set1_ps(s);
                    Sse(_mm_add_ps(self.0, _mm_mul_ps(a.0, k)), _mm_add_ps(self.1, _mm_mul_ps(a.1, k)))
                }
            }
            #[inline(always)]
            fn add_mul(self, a: Sse, b: Sse) -> Sse {
                // SAFETY: as above.
                unsafe { Sse(_mm_add_ps(self.0, _mm_mul_ps(a.0, b.0)), _mm_add_ps(self.1, _mm_mul_ps(a.1, b.1))) }
            }
        }

        /// Only for code compiled with AVX2 and FMA enabled, entered after the CPU reported
        /// both (`Conv::run_avx`): inlined there, these are single instructions.
        #[derive(Clone, Copy)]
        pub struct Avx(__m256);

        impl super::Lanes for Avx {
            const FOUR_PIXELS: bool = true;
            #[inline(always)]
            fn load(v: &[f32; 8]) -> Avx {
                // SAFETY: eight readable f32 behind the reference; AVX present (see the type).
                unsafe { Avx(_mm256_loadu_ps(v.as_ptr())) }
            }
            #[inline(always)]
            fn store(self, out: &mut [f32; 8]) {
                // SAFETY: eight writable f32 behind the reference; AVX present.
                unsafe { _mm256_storeu_ps(out.as_mut_ptr(), self.0) }
            }
            #[inline(always)]
            fn add_scaled(self, a: Avx, s: f32) -> Avx {
                // SAFETY: AVX and FMA present (see the type); register arithmetic only.
                unsafe { Avx(_mm256_fmadd_ps(a.0, _mm256_set1_ps(s), self.0)) }
            }
            #[inline(always)]
            fn add_mul(self, a: Avx, b: Avx) -> Avx {
                // SAFETY: as above.
                unsafe { Avx(_mm256_fmadd_ps(a.0, b.0, self.0)) }
            }
        }

        pub type Native = Sse;
    }

    #[cfg(target_arch = "aarch64")]
    mod imp {
        use std::arch::aarch64::*;

        #[derive(Clone, Copy)]
        pub struct Neon(float32x4_t, float32x4_t);

        impl super::Lanes for Neon {
            const FOUR_PIXELS: bool = false;
            #[inline(always)]
            fn load(v: &[f32; 8]) -> Neon {
                // SAFETY: eight readable f32 behind the reference.
                unsafe { Neon(vld1q_f32(v.as_ptr()), vld1q_f32(v.as_ptr().add(4))) }
            }
            #[inline(always)]
            fn store(self, out: &mut [f32; 8]) {
                // SAFETY: eight writable f32 behind the reference.
                unsafe {
                    vst1q_f32(out.as_mut_ptr(), self.0);
                    vst1q_f32(out.as_mut_ptr().add(4), self.1);
                }
            }
            #[inline(always)]
            fn add_scaled(self, a: Neon, s: f32) -> Neon {
                // SAFETY: NEON is part of every aarch64 Linux target; register arithmetic only.
                unsafe { Neon(vfmaq_n_f32(self.0, a.0, s), vfmaq_n_f32(self.1, a.1, s)) }
            }
            #[inline(always)]
            fn add_mul(self, a: Neon, b: Neon) -> Neon {
                // SAFETY: as above.
                unsafe { Neon(vfmaq_f32(self.0, a.0, b.0), vfmaq_f32(self.1, a.1, b.1)) }
            }
        }

        pub type Native = Neon;
    }

    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    mod imp {
        #[derive(Clone, Copy)]
        pub struct Plain([f32; 8]);

        impl super::Lanes for Plain {
            const FOUR_PIXELS: bool = false;
            #[inline(always)]
            fn load(v: &[f32; 8]) -> Plain {
                Plain(*v)
            }
            #[inline(always)]
            fn store(self, out: &mut [f32; 8]) {
                *out = self.0;
            }
            #[inline(always)]
            fn add_scaled(mut self, a: Plain, s: f32) -> Plain {
                for (d, a) in self.0.iter_mut().zip(a.0) {
                    *d += a * s;
                }
                self
            }
            #[inline(always)]
            fn add_mul(mut self, a: Plain, b: Plain) -> Plain {
                for ((d, a), b) in self.0.iter_mut().zip(a.0).zip(b.0) {
                    *d += a * b;
                }
                self
            }
        }

        pub type Native = Plain;
    }

    pub use imp::*;
}

fn lanes(v: &[f32]) -> &[f32; L] {
    v[..L].try_into().expect("L values")
}

fn take(v: &[Option<Act>], i: usize) -> &Act {
    v[i].as_ref().expect("compiled order runs producers first")
}

fn max_pool(a: &Act, k: usize, stride: usize, pool: &mut Pool) -> Act {
    let (oh, ow) = ((a.h - k) / stride + 1, (a.w - k) / stride + 1);
    let mut data = pool.get_dirty(oh * ow * a.c);
    data.fill(f32::MIN);
    for oy in 0..oh {
        for ox in 0..ow {
            let dst = &mut data[(oy * ow + ox) * a.c..][..a.c];
            for ky in 0..k {
                for kx in 0..k {
                    let src = &a.data[((oy * stride + ky) * a.w + ox * stride + kx) * a.c..][..a.c];
                    for (d, s) in dst.iter_mut().zip(src) {
                        *d = d.max(*s);
                    }
                }
            }
        }
    }
    Act { h: oh, w: ow, c: a.c, data }
}

impl Conv {
    fn run(&self, a: &Act, pool: &mut Pool, simd: Simd) -> Act {
        #[cfg(target_arch = "x86_64")]
        if simd == Simd::Avx2 {
            // SAFETY: `Simd::Avx2` is only chosen when the CPU reports AVX2 and FMA.
            return unsafe { self.run_avx(a, pool) };
        }
        let _ = simd;
        self.run_with::<lanes::Native>(a, pool)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn run_avx(&self, a: &Act, pool: &mut Pool) -> Act {
        self.run_with::<lanes::Avx>(a, pool)
    }

    /// Inlined into each entry above, so that the lanes' operations compile for its features.
    #[inline(always)]
    fn run_with<V: Lanes>(&self, a: &Act, pool: &mut Pool) -> Act {
        let (kh, kw) = self.k;
        let [pt, pl, pb, pr] = self.pads;
        let (ph, pw) = (a.h + pt + pb, a.w + pl + pr);
        let (oh, ow) = ((ph - kh) / self.stride + 1, (pw - kw) / self.stride + 1);
        // The input with its zero border (and, for depthwise, its channels rounded up to L), so
        // the loops below never test bounds.
        let cs = if self.depthwise { self.cout.div_ceil(L) * L } else { a.c };
        let copy = cs != a.c || self.pads != [0; 4];
        let mut padded = Vec::new();
        if copy {
            // Only the border and the added channels are zeroed: the rest is overwritten.
            padded = pool.get_dirty(ph * pw * cs);
            let row_len = pw * cs;
            padded[..pt * row_len].fill(0.0);
            padded[(pt + a.h) * row_len..].fill(0.0);
            for y in 0..a.h {
                let line = &mut padded[(y + pt) * row_len..][..row_len];
                line[..pl * cs].fill(0.0);
                line[(pl + a.w) * cs..].fill(0.0);
                let (row, dst) = (&a.data[y * a.w * a.c..][..a.w * a.c], &mut line[pl * cs..][..a.w * cs]);
                if cs == a.c {
                    dst.copy_from_slice(row);
                } else {
                    for (d, s) in dst.chunks_exact_mut(cs).zip(row.chunks_exact(a.c)) {
                        d[..a.c].copy_from_slice(s);
                        d[a.c..].fill(0.0);
                    }
                }
            }
        }
        let src = if copy { &padded[..] } else { &a.data[..] };
        let mut out = pool.get_dirty(oh * ow * self.cout);
        for oy in 0..oh {
            let mut ox = 0;
            if self.depthwise {
                for ox in 0..ow {
                    self.depthwise_at::<V>(src, pw, cs, oy, ox, &mut out[(oy * ow + ox) * self.cout..][..self.cout]);
                }
                continue;
            }
            if V::FOUR_PIXELS {
                ox = self.dense_run::<V, 4>(src, pw, (oy, ox), ow, &mut out);
            }
            ox = self.dense_run::<V, 2>(src, pw, (oy, ox), ow, &mut out);
            let chunks = self.cout.div_ceil(L);
            for ox in ox..ow {
                let dst = &mut out[(oy * ow + ox) * self.cout..][..self.cout];
                for c in 0..chunks {
                    self.dense_at::<V, 1, 1>(src, pw, (oy, ox), c, dst);
                }
            }
        }
        pool.put(padded);
        Act { h: oh, w: ow, c: self.cout, data: out }
    }

    /// Row `oy`'s output pixels from `ox` on, `P` at a time while `P` are left; where it
    /// stopped.
    #[inline(always)]
    fn dense_run<V: Lanes, const P: usize>(
        &self,
        src: &[f32],
        pw: usize,
        (oy, mut ox): (usize, usize),
        ow: usize,
        out: &mut [f32],
    ) -> usize {
        let chunks = self.cout.div_ceil(L);
        while ox + P <= ow {
            let dst = &mut out[(oy * ow + ox) * self.cout..][..P * self.cout];
            let mut c = 0;
            while c + 2 <= chunks {
                self.dense_at::<V, P, 2>(src, pw, (oy, ox), c, dst);
                c += 2;
            }
            if c < chunks {
                self.dense_at::<V, P, 1>(src, pw, (oy, ox), c, dst);
            }
            ox += P;
        }
        ox
    }

    fn store(&self, acc: &[f32; L], chunk: usize, dst: &mut [f32]) {
        let n = L.min(self.cout - chunk * L);
        for (d, v) in dst[chunk * L..][..n].iter_mut().zip(acc) {
            *d = if self.relu { v.max(0.0) } else { *v };
        }
    }

    /// `P` neighbouring output pixels × `G` groups of L output channels from `chunk` on: each
    /// weight read serves `P` pixels, each input value `G` groups.
    #[inline(always)]
    fn dense_at<V: Lanes, const P: usize, const G: usize>(
        &self,
        src: &[f32],
        pw: usize,
        (oy, ox): (usize, usize),
        chunk: usize,
        dst: &mut [f32],
    ) {
        let (kh, kw) = self.k;
        let (cin, s) = (self.cin, self.stride);
        let per_chunk = kh * kw * cin * L;
        let mut acc: [[V; G]; P] = [std::array::from_fn(|g| V::load(lanes(&self.bias[(chunk + g) * L..]))); P];
        // One kernel row's taps × input channels are consecutive in the input and in the
        // weights: one flat loop per kernel row.
        let n = kw * cin;
        for ky in 0..kh {
            let wt: [&[f32]; G] =
                std::array::from_fn(|g| &self.weights[(chunk + g) * per_chunk + ky * n * L..][..n * L]);
            let rows: [&[f32]; P] = std::array::from_fn(|p| &src[((oy * s + ky) * pw + (ox + p) * s) * cin..][..n]);
            for i in 0..n {
                let w: [V; G] = std::array::from_fn(|g| V::load(lanes(&wt[g][i * L..])));
                for p in 0..P {
                    let v = rows[p][i];
                    for g in 0..G {
                        acc[p][g] = acc[p][g].add_scaled(w[g], v);
                    }
                }
            }
        }
        for (p, acc) in acc.iter().enumerate() {
            for (g, acc) in acc.iter().enumerate() {
                let mut v = [0.0; L];
                acc.store(&mut v);
                self.store(&v, chunk + g, &mut dst[p * self.cout..][..self.cout]);
            }
        }
    }

    #[inline(always)]
    fn depthwise_at<V: Lanes>(&self, src: &[f32], pw: usize, cs: usize, oy: usize, ox: usize, dst: &mut [f32]) {
        let (kh, kw) = self.k;
        let s = self.stride;
        for chunk in 0..cs / L {
            let mut acc = V::load(lanes(&self.bias[chunk * L..]));
            for ky in 0..kh {
                for kx in 0..kw {
                    let px = V::load(lanes(&src[((oy * s + ky) * pw + ox * s + kx) * cs + chunk * L..]));
                    acc = acc.add_mul(px, V::load(lanes(&self.weights[(ky * kw + kx) * cs + chunk * L..])));
                }
            }
            let mut v = [0.0; L];
            acc.store(&mut v);
            self.store(&v, chunk, dst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::onnx::Attr;

    fn node(op: &str, inputs: &[&str], out: &str, attrs: &[(&str, Attr)]) -> Node {
        Node {
            op: op.into(),
            inputs: inputs.iter().map(|s| s.to_string()).collect(),
            outputs: vec![out.into()],
            attrs: attrs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
        }
    }

    #[test]
    fn a_conv_with_padding_and_stride_matches_the_sum_by_hand() {
        // 1 channel in, 2 out, 3×3 kernel of ones (second filter doubled), pad 1, stride 2 on 4×4.
        let mut weights = HashMap::new();
        let k: Vec<f32> = (0..18).map(|i| if i < 9 { 1.0 } else { 2.0 }).collect();
        weights.insert("k".into(), Tensor::F32 { dims: vec![2, 1, 3, 3], data: k });
        weights.insert("b".into(), Tensor::F32 { dims: vec![2], data: vec![0.5, -100.0] });
        let attrs = [
            ("strides", Attr::Ints(vec![2, 2])),
            ("pads", Attr::Ints(vec![1, 1, 1, 1])),
            ("kernel_shape", Attr::Ints(vec![3, 3])),
        ];
        let g = Graph {
            nodes: vec![node("Conv", &["x", "k", "b"], "c", &attrs), node("Relu", &["c"], "y", &[])],
            weights,
            inputs: vec!["x".into()],
            outputs: vec!["y".into()],
        };
        let net = Net::compile(&g, (4, 4, 1)).unwrap();
        let x: Vec<f32> = (0..16).map(|v| v as f32).collect();
        let y = net.run(x).unwrap().remove(0);
        // Output (0,0): window rows -1..1, cols -1..1 → 0+1+4+5 = 10; (0,1): cols 1..3 → 1+2+3+5+6+7 = 24.
        assert_eq!(y.len(), 2 * 2 * 2);
        assert_eq!(&y[..4], &[10.5, 0.0, 24.5, 0.0], "the second filter is clipped by the fused ReLU");
        assert_eq!(y[6], (5 + 6 + 7 + 9 + 10 + 11 + 13 + 14 + 15) as f32 + 0.5);
        assert!(net.run(vec![0.0; 3]).is_err());
        // Buffers are reused, not gathered: the spare count settles after the first run.
        let spare = || net.pool.lock().unwrap().0.len();
        net.run(vec![1.0; 16]).unwrap();
        let settled = spare();
        for _ in 0..20 {
            net.run(vec![1.0; 16]).unwrap();
        }
        assert_eq!(spare(), settled);
    }

    #[test]
    fn operators_outside_the_set_are_refused_at_compile_time() {
        let g = Graph {
            nodes: vec![node("Sigmoid", &["x"], "y", &[])],
            weights: HashMap::new(),
            inputs: vec!["x".into()],
            outputs: vec!["y".into()],
        };
        assert!(matches!(Net::compile(&g, (1, 1, 1)), Err(NetError::Unsupported { .. })));
    }
}
