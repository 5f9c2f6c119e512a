//! MediaPipe's BlazeFace short-range detector (Apache-2.0, `assets/NOTICE.md`), run by
//! [`super::infer`]: the frame letterboxed to 128×128, 896 anchors scored, boxes and six
//! keypoints decoded, overlapping hits blended (MediaPipe's weighted suppression). It finds
//! faces rolled 30° (tested both ways) and cut by the frame's edge, and its keypoints give the
//! head pose.

use std::sync::OnceLock;

use super::decode::Rgb;
use super::infer::{Net, NetError};
use super::onnx::OnnxError;

/// The model, compiled into the binary deflated: `blazeface_short_128.onnx` (425,659 bytes).
pub const MODEL_PACKED: &[u8] = crate::packed!("blazeface_short_128.onnx");

/// The bundled model's ONNX bytes.
pub fn model() -> Vec<u8> {
    crate::assets::inflate(MODEL_PACKED)
}

const SIDE: usize = 128;

/// Keypoints in the model's order. "Right" is the person's right: the left of the picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keypoint {
    RightEye = 0,
    LeftEye = 1,
    NoseTip = 2,
    Mouth = 3,
    RightEar = 4,
    LeftEar = 5,
}

/// One face: box and keypoints in fractions of the frame (x of its width, y of its height).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    pub score: f32,
    pub x: f32,
    pub y: f32,
    pub w: f32,
    pub h: f32,
    pub keypoints: [(f32, f32); 6],
}

impl Detection {
    pub fn keypoint(&self, k: Keypoint) -> (f32, f32) {
        self.keypoints[k as usize]
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(transparent)]
    Onnx(#[from] OnnxError),
    #[error(transparent)]
    Net(#[from] NetError),
}

pub struct FaceModel {
    net: Net,
    /// Anchor centres in the 128-pixel input, as fractions.
    anchors: Vec<(f32, f32)>,
    /// Lowest score kept (MediaPipe's 0.5).
    pub min_score: f32,
}

/// Where the frame sits in the square input.
struct Letterbox {
    scale: f32,
    ox: f32,
    oy: f32,
}

impl FaceModel {
    pub fn load(model: &[u8]) -> Result<FaceModel, ModelError> {
        let graph = super::onnx::parse(model)?;
        let net = Net::compile(&graph, (SIDE, SIDE, 3))?;
        // Short-range SSD anchors: 2 per cell on the 16×16 grid, 6 per cell on 8×8.
        let mut anchors = Vec::with_capacity(896);
        for (cells, per) in [(16usize, 2usize), (8, 6)] {
            for y in 0..cells {
                for x in 0..cells {
                    let c = ((x as f32 + 0.5) / cells as f32, (y as f32 + 0.5) / cells as f32);
                    anchors.extend(std::iter::repeat_n(c, per));
                }
            }
        }
        Ok(FaceModel { net, anchors, min_score: 0.5 })
    }

    /// The bundled model, loaded once per process.
    pub fn shared() -> &'static FaceModel {
        static M: OnceLock<FaceModel> = OnceLock::new();
        M.get_or_init(|| FaceModel::load(&model()).expect("the bundled face model loads (unit-tested)"))
    }

    /// The model's raw outputs for an input already letterboxed: 896 × 16 regressors, 896 scores
    /// (logits).
    pub fn raw(&self, input: Vec<f32>) -> Result<(Vec<f32>, Vec<f32>), NetError> {
        let mut out = self.net.run(input)?;
        let scores = out.pop().unwrap_or_default();
        Ok((out.pop().unwrap_or_default(), scores))
    }

    /// Every face in `img`, best first.
    pub fn detect(&self, img: &Rgb) -> Vec<Detection> {
        if img.width == 0 || img.height == 0 || img.data.len() < (img.width * img.height * 3) as usize {
            return Vec::new();
        }
        let (input, lb) = letterbox(img);
        let Ok((reg, logits)) = self.raw(input) else { return Vec::new() };
        let (fw, fh) = (img.width as f32, img.height as f32);
        // From input pixels back to fractions of the frame.
        let fx = |x: f32| (x - lb.ox) / lb.scale / fw;
        let fy = |y: f32| (y - lb.oy) / lb.scale / fh;
        let s = SIDE as f32;
        let mut found: Vec<Detection> = Vec::new();
        for (i, &(ax, ay)) in self.anchors.iter().enumerate() {
            let score = 1.0 / (1.0 + (-logits[i].clamp(-100.0, 100.0)).exp());
            if score < self.min_score {
                continue;
            }
            let r = &reg[i * 16..][..16];
            let (cx, cy) = (r[0] + ax * s, r[1] + ay * s);
            let mut keypoints = [(0.0, 0.0); 6];
            for (k, p) in keypoints.iter_mut().enumerate() {
                *p = (fx(r[4 + 2 * k] + ax * s), fy(r[5 + 2 * k] + ay * s));
            }
            let d = Detection {
                score,
                x: fx(cx - r[2] / 2.0),
                y: fy(cy - r[3] / 2.0),
                w: r[2] / lb.scale / fw,
                h: r[3] / lb.scale / fh,
                keypoints,
            };
            let finite =
                [d.x, d.y, d.w, d.h].iter().chain(keypoints.iter().flat_map(|k| [&k.0, &k.1])).all(|v| v.is_finite());
            if finite && d.w > 0.0 && d.h > 0.0 {
                found.push(d);
            }
        }
        blend(found)
    }
}

/// The frame scaled to fit 128×128 (area average), centred on black, as −1…1 values.
fn letterbox(img: &Rgb) -> (Vec<f32>, Letterbox) {
    let (w, h) = (img.width.max(1) as usize, img.height.max(1) as usize);
    let scale = SIDE as f32 / w.max(h) as f32;
    let (nw, nh) = (((w as f32 * scale).round() as usize).max(1), ((h as f32 * scale).round() as usize).max(1));
    let (ox, oy) = ((SIDE - nw) / 2, (SIDE - nh) / 2);
    let mut out = vec![-1.0f32; SIDE * SIDE * 3];
    for y in 0..nh {
        let (y0, y1) = (y * h / nh, ((y + 1) * h / nh).max(y * h / nh + 1));
        for x in 0..nw {
            let (x0, x1) = (x * w / nw, ((x + 1) * w / nw).max(x * w / nw + 1));
            let mut acc = [0u32; 3];
            for sy in y0..y1 {
                for px in img.data[(sy * w + x0) * 3..(sy * w + x1) * 3].chunks_exact(3) {
                    acc[0] += px[0] as u32;
                    acc[1] += px[1] as u32;
                    acc[2] += px[2] as u32;
                }
            }
            let n = ((y1 - y0) * (x1 - x0)) as f32;
            let dst = &mut out[((y + oy) * SIDE + x + ox) * 3..][..3];
            for (d, a) in dst.iter_mut().zip(acc) {
                *d = a as f32 / n / 127.5 - 1.0;
            }
        }
    }
    (out, Letterbox { scale, ox: ox as f32, oy: oy as f32 })
}

fn iou(a: &Detection, b: &Detection) -> f32 {
    let ix = ((a.x + a.w).min(b.x + b.w) - a.x.max(b.x)).max(0.0);
    let iy = ((a.y + a.h).min(b.y + b.h) - a.y.max(b.y)).max(0.0);
    let i = ix * iy;
    i / (a.w * a.h + b.w * b.h - i).max(1e-9)
}

/// MediaPipe's weighted suppression: each best remaining hit takes every hit overlapping it by
/// more than 0.3 and becomes their score-weighted mean.
fn blend(mut hits: Vec<Detection>) -> Vec<Detection> {
    hits.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut out = Vec::new();
    while !hits.is_empty() {
        let best = hits.remove(0);
        let (mut group, rest): (Vec<Detection>, Vec<Detection>) = hits.into_iter().partition(|d| iou(&best, d) > 0.3);
        group.push(best);
        hits = rest;
        let total: f32 = group.iter().map(|d| d.score).sum();
        let mut m = Detection { score: best.score, x: 0.0, y: 0.0, w: 0.0, h: 0.0, keypoints: [(0.0, 0.0); 6] };
        for d in &group {
            let k = d.score / total;
            m.x += d.x * k;
            m.y += d.y * k;
            m.w += d.w * k;
            m.h += d.h * k;
            for (mk, dk) in m.keypoints.iter_mut().zip(d.keypoints) {
                mk.0 += dk.0 * k;
                mk.1 += dk.1 * k;
            }
        }
        out.push(m);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::infer::Simd;

    #[test]
    fn the_bundled_model_compiles_and_finds_the_fixture_face() {
        let img = image::load_from_memory(crate::camera::synthetic::FIXTURE_FACE).unwrap().to_rgb8();
        let rgb = Rgb { width: img.width(), height: img.height(), data: img.into_raw() };
        let found = FaceModel::shared().detect(&rgb);
        assert_eq!(found.len(), 1, "{found:?}");
        let d = found[0];
        assert!(d.score > 0.8, "{d:?}");
        let (re, le) = (d.keypoint(Keypoint::RightEye), d.keypoint(Keypoint::LeftEye));
        let nose = d.keypoint(Keypoint::NoseTip);
        assert!(re.0 < le.0, "the person's right eye is on the picture's left");
        assert!(nose.1 > re.1 && nose.1 < d.keypoint(Keypoint::Mouth).1);
        assert!(d.x < nose.0 && nose.0 < d.x + d.w);
    }

    /// The interpreter against onnxruntime on the same picture (`scripts/blazeface_golden.py`;
    /// the JPEG decoders differ by a level here and there, hence the tolerance), with each set of
    /// vector instructions this CPU runs.
    #[test]
    fn the_interpreter_agrees_with_onnxruntime() {
        let golden: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/data/blazeface_golden.json")).unwrap();
        let img = image::load_from_memory(crate::camera::synthetic::FIXTURE_FACE).unwrap().to_rgb8();
        let rgb = Rgb { width: img.width(), height: img.height(), data: img.into_raw() };
        let (input, _) = letterbox(&rgb);
        let mut sets = vec![Simd::Baseline, Simd::detect()];
        sets.dedup();
        for simd in sets {
            let mut m = FaceModel::load(&model()).unwrap();
            m.net.simd = simd;
            let (reg, logits) = m.raw(input.clone()).unwrap();
            assert_eq!((reg.len(), logits.len()), (896 * 16, 896));
            let (mut worst_logit, mut worst_reg) = (0f32, 0f32);
            for t in golden["top"].as_array().unwrap() {
                let i = t["anchor"].as_u64().unwrap() as usize;
                worst_logit = worst_logit.max((logits[i] - t["logit"].as_f64().unwrap() as f32).abs());
                for (k, v) in t["regressors"].as_array().unwrap().iter().enumerate() {
                    worst_reg = worst_reg.max((reg[i * 16 + k] - v.as_f64().unwrap() as f32).abs());
                }
            }
            let sum: f32 = logits.iter().sum();
            let want_sum = golden["logit_sum"].as_f64().unwrap() as f32;
            assert!(
                worst_logit < 0.02 && worst_reg < 0.05,
                "{simd:?}: logit off by {worst_logit}, regressor by {worst_reg} px"
            );
            assert!((sum - want_sum).abs() / want_sum.abs() < 0.01, "{simd:?}: logit sum {sum} against {want_sum}");
        }
    }

    #[test]
    fn a_blank_frame_has_no_face() {
        let rgb = Rgb { width: 64, height: 48, data: vec![128; 64 * 48 * 3] };
        assert!(FaceModel::shared().detect(&rgb).is_empty());
    }
}
