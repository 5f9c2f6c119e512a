//! Frontal face detection with a local-binary-pattern boosted cascade: OpenCV's
//! `lbpcascade_frontalface.xml` (BSD-3, `assets/NOTICE.md`), compiled into the binary and
//! evaluated here. Multi-scale sliding window over an integral image, then overlapping hits are
//! grouped; a face needs several neighbouring hits, which keeps false positives rare.
//!
//! Cost falls steeply with the smallest face searched for: the kiosk wants faces that fill a
//! good part of the frame, so [`Detector::min_face`] is large.

use std::sync::OnceLock;

use super::decode::Gray;

const CASCADE_XML: &str = include_str!("../../assets/lbpcascade_frontalface.xml");

/// A face box: in the pixels of the image searched when the cascade gives it, in fractions of the
/// frame in [`super::quality::Analysis`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaceBox {
    pub x: f32,
    pub y: f32,
    pub w: f32,
    pub h: f32,
    /// The cascade: how many raw window hits were grouped into this box (a confidence proxy).
    /// The face model: its score in hundredths.
    pub hits: u32,
}

impl FaceBox {
    pub fn center(&self) -> (f32, f32) {
        (self.x + self.w / 2.0, self.y + self.h / 2.0)
    }
    pub fn scaled(&self, k: f32) -> FaceBox {
        FaceBox { x: self.x * k, y: self.y * k, w: self.w * k, h: self.h * k, hits: self.hits }
    }
}

struct Weak {
    feature: usize,
    subset: [u32; 8],
    leaves: [f32; 2],
}

struct Stage {
    threshold: f32,
    weak: Vec<Weak>,
}

/// A parsed cascade: window size, stages, and the feature rectangles (x, y, block w, block h).
pub struct Cascade {
    win: u32,
    stages: Vec<Stage>,
    features: Vec<[u32; 4]>,
}

/// Text of every `<tag>…</tag>` in order.
fn all<'a>(xml: &'a str, tag: &str) -> Vec<&'a str> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        let body = &rest[i + open.len()..];
        let Some(j) = body.find(&close) else { break };
        out.push(body[..j].trim());
        rest = &body[j + close.len()..];
    }
    out
}

fn nums<T: std::str::FromStr>(s: &str) -> Result<Vec<T>, String> {
    s.split_whitespace().map(|t| t.parse::<T>().map_err(|_| format!("bad number {t:?}"))).collect()
}

impl Cascade {
    /// Parses OpenCV's cascade XML (LBP features, depth-1 trees, the "new" format).
    pub fn parse(xml: &str) -> Result<Cascade, String> {
        if !xml.contains("<featureType>LBP</featureType>") {
            return Err("not an LBP cascade".into());
        }
        let win: u32 = all(xml, "width").first().ok_or("no window width")?.parse().map_err(|_| "bad width")?;
        let stages_xml = all(xml, "stages").into_iter().next().ok_or("no stages")?;
        let features_xml = all(xml, "features").into_iter().next().ok_or("no features")?;
        let features = all(features_xml, "rect")
            .into_iter()
            .map(|r| {
                let v = nums::<u32>(r)?;
                v.try_into().map_err(|_| "a feature rect needs 4 numbers".to_string())
            })
            .collect::<Result<Vec<[u32; 4]>, String>>()?;
        let thresholds = all(stages_xml, "stageThreshold");
        let counts = all(stages_xml, "maxWeakCount");
        let nodes = all(stages_xml, "internalNodes");
        let leaves = all(stages_xml, "leafValues");
        if thresholds.len() != counts.len() || nodes.len() != leaves.len() {
            return Err("stage and tree counts do not match".into());
        }
        let mut trees = nodes.into_iter().zip(leaves);
        let mut stages = Vec::new();
        for (t, c) in thresholds.into_iter().zip(counts) {
            let n: usize = c.parse().map_err(|_| "bad maxWeakCount")?;
            let mut weak = Vec::with_capacity(n);
            for _ in 0..n {
                let (nd, lv) = trees.next().ok_or("fewer trees than maxWeakCount says")?;
                let nd = nums::<i64>(nd)?;
                let lv = nums::<f32>(lv)?;
                if nd.len() != 11 || lv.len() != 2 || nd[2] < 0 || nd[2] as usize >= features.len() {
                    return Err("only depth-1 LBP trees are supported".into());
                }
                let mut subset = [0u32; 8];
                for (s, v) in subset.iter_mut().zip(&nd[3..]) {
                    *s = *v as i32 as u32;
                }
                weak.push(Weak { feature: nd[2] as usize, subset, leaves: [lv[0], lv[1]] });
            }
            stages.push(Stage { threshold: t.parse().map_err(|_| "bad stageThreshold")?, weak });
        }
        Ok(Cascade { win, stages, features })
    }

    /// The bundled frontal-face cascade, parsed once.
    pub fn frontal_face() -> &'static Cascade {
        static C: OnceLock<Cascade> = OnceLock::new();
        C.get_or_init(|| Cascade::parse(CASCADE_XML).expect("the bundled cascade parses"))
    }
}

/// Searches gray images for faces of at least `min_face` pixels.
pub struct Detector {
    pub min_face: u32,
    /// Ratio between successive window sizes.
    pub scale_step: f32,
    /// Raw hits needed for a face.
    pub min_hits: u32,
}

impl Default for Detector {
    fn default() -> Self {
        Detector { min_face: 40, scale_step: 1.2, min_hits: 3 }
    }
}

impl Detector {
    /// Faces in `g`, largest first.
    pub fn detect(&self, g: &Gray) -> Vec<FaceBox> {
        let c = Cascade::frontal_face();
        let mut raw = Vec::new();
        let mut scale = (self.min_face.max(c.win) as f32) / c.win as f32;
        let mut small = Gray { width: 0, height: 0, data: Vec::new() };
        let mut integral = Vec::new();
        loop {
            let (w, h) = ((g.width as f32 / scale) as u32, (g.height as f32 / scale) as u32);
            if w < c.win || h < c.win {
                break;
            }
            resize_bilinear(g, w, h, &mut small);
            integrate(&small, &mut integral);
            let step = if scale > 2.0 { 1 } else { 2 };
            scan(c, &integral, w, h, step, |x, y| {
                raw.push(FaceBox {
                    x: x as f32 * scale,
                    y: y as f32 * scale,
                    w: c.win as f32 * scale,
                    h: c.win as f32 * scale,
                    hits: 1,
                })
            });
            scale *= self.scale_step;
        }
        let mut faces = group(&raw, self.min_hits);
        faces.sort_by(|a, b| b.w.total_cmp(&a.w));
        faces
    }
}

fn resize_bilinear(g: &Gray, w: u32, h: u32, out: &mut Gray) {
    out.width = w;
    out.height = h;
    out.data.resize((w * h) as usize, 0);
    let (sx, sy) = (g.width as f32 / w as f32, g.height as f32 / h as f32);
    let sw = g.width as usize;
    // Horizontal sample positions are the same for every row: compute them once (16.16 fixed point).
    let xs: Vec<(usize, u32)> = (0..w)
        .map(|x| {
            let fx = ((x as f32 + 0.5) * sx - 0.5).clamp(0.0, (g.width - 1) as f32);
            let x0 = (fx as usize).min(g.width as usize - 2);
            (x0, ((fx - x0 as f32) * 256.0) as u32)
        })
        .collect();
    for y in 0..h as usize {
        let fy = ((y as f32 + 0.5) * sy - 0.5).clamp(0.0, (g.height - 1) as f32);
        let y0 = (fy as usize).min(g.height as usize - 2);
        let wy = ((fy - y0 as f32) * 256.0) as u32;
        let (r0, r1) = (&g.data[y0 * sw..][..sw], &g.data[(y0 + 1) * sw..][..sw]);
        for (o, &(x0, wx)) in out.data[y * w as usize..][..w as usize].iter_mut().zip(&xs) {
            let top = r0[x0] as u32 * (256 - wx) + r0[x0 + 1] as u32 * wx;
            let bot = r1[x0] as u32 * (256 - wx) + r1[x0 + 1] as u32 * wx;
            *o = ((top * (256 - wy) + bot * wy) >> 16) as u8;
        }
    }
}

/// Summed-area table with a zero first row and column: `(w+1)×(h+1)`.
fn integrate(g: &Gray, out: &mut Vec<u32>) {
    let (w, h) = (g.width as usize, g.height as usize);
    out.clear();
    out.resize((w + 1) * (h + 1), 0);
    for y in 0..h {
        let mut row = 0u32;
        for x in 0..w {
            row += g.data[y * w + x] as u32;
            out[(y + 1) * (w + 1) + x + 1] = out[y * (w + 1) + x + 1] + row;
        }
    }
}

fn scan(c: &Cascade, ii: &[u32], w: u32, h: u32, step: usize, mut hit: impl FnMut(u32, u32)) {
    let stride = w as usize + 1;
    // For each feature, the 16 corner offsets of its 3×3 blocks relative to the window origin.
    let offs: Vec<[usize; 16]> = c
        .features
        .iter()
        .map(|&[fx, fy, fw, fh]| {
            let mut o = [0usize; 16];
            for (i, v) in o.iter_mut().enumerate() {
                let (cx, cy) = ((fx + fw * (i as u32 % 4)) as usize, (fy + fh * (i as u32 / 4)) as usize);
                *v = cy * stride + cx;
            }
            o
        })
        .collect();
    for y in (0..=(h - c.win) as usize).step_by(step) {
        for x in (0..=(w - c.win) as usize).step_by(step) {
            let base = y * stride + x;
            if c.stages.iter().all(|s| {
                let sum: f32 = s
                    .weak
                    .iter()
                    .map(|wk| {
                        let code = lbp(ii, base, &offs[wk.feature]);
                        wk.leaves[(wk.subset[code >> 5] >> (code & 31)) as usize & 1 ^ 1]
                    })
                    .sum();
                sum >= s.threshold
            }) {
                hit(x as u32, y as u32);
            }
        }
    }
}

/// The 8-bit LBP code of a 3×3 block feature: each outer block's sum compared with the centre's,
/// clockwise from the top-left block (bit 7) to the left block (bit 0).
#[inline]
fn lbp(ii: &[u32], base: usize, p: &[usize; 16]) -> usize {
    let s = |a: usize, b: usize, c: usize, d: usize| {
        ii[base + p[a]].wrapping_sub(ii[base + p[b]]).wrapping_sub(ii[base + p[c]]).wrapping_add(ii[base + p[d]])
    };
    // Block (row r, col k) spans corners r*4+k .. (r+1)*4+k+1: sum = D - B - C + A.
    let block = |r: usize, k: usize| s((r + 1) * 4 + k + 1, r * 4 + k + 1, (r + 1) * 4 + k, r * 4 + k);
    let centre = block(1, 1);
    ((block(0, 0) >= centre) as usize) << 7
        | ((block(0, 1) >= centre) as usize) << 6
        | ((block(0, 2) >= centre) as usize) << 5
        | ((block(1, 2) >= centre) as usize) << 4
        | ((block(2, 2) >= centre) as usize) << 3
        | ((block(2, 1) >= centre) as usize) << 2
        | ((block(2, 0) >= centre) as usize) << 1
        | (block(1, 0) >= centre) as usize
}

/// Clusters overlapping hits (similar position and size), averages each cluster, keeps those
/// with at least `min_hits` members, and drops boxes that sit inside a stronger one.
fn group(raw: &[FaceBox], min_hits: u32) -> Vec<FaceBox> {
    let similar = |a: &FaceBox, b: &FaceBox| {
        let d = 0.2 * (a.w.min(b.w) + a.h.min(b.h)) * 0.5;
        (a.x - b.x).abs() <= d
            && (a.y - b.y).abs() <= d
            && (a.x + a.w - b.x - b.w).abs() <= d
            && (a.y + a.h - b.y - b.h).abs() <= d
    };
    let mut label: Vec<usize> = (0..raw.len()).collect();
    fn root(l: &mut [usize], mut i: usize) -> usize {
        while l[i] != i {
            l[i] = l[l[i]];
            i = l[i];
        }
        i
    }
    for i in 0..raw.len() {
        for j in i + 1..raw.len() {
            if similar(&raw[i], &raw[j]) {
                let (a, b) = (root(&mut label, i), root(&mut label, j));
                label[a] = b;
            }
        }
    }
    let mut sums: std::collections::BTreeMap<usize, (FaceBox, u32)> = Default::default();
    for (i, r) in raw.iter().enumerate() {
        let e = sums.entry(root(&mut label, i)).or_insert((FaceBox { x: 0.0, y: 0.0, w: 0.0, h: 0.0, hits: 0 }, 0));
        e.0.x += r.x;
        e.0.y += r.y;
        e.0.w += r.w;
        e.0.h += r.h;
        e.1 += 1;
    }
    let boxes: Vec<FaceBox> = sums
        .into_values()
        .filter(|(_, n)| *n >= min_hits)
        .map(|(s, n)| {
            let k = n as f32;
            FaceBox { x: s.x / k, y: s.y / k, w: s.w / k, h: s.h / k, hits: n }
        })
        .collect();
    boxes
        .iter()
        .filter(|a| {
            !boxes.iter().any(|b| {
                !std::ptr::eq(*a, b)
                    && b.hits >= a.hits
                    && a.x >= b.x - 0.2 * b.w
                    && a.y >= b.y - 0.2 * b.h
                    && a.x + a.w <= b.x + 1.2 * b.w
                    && a.y + a.h <= b.y + 1.2 * b.h
            })
        })
        .copied()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_cascade_parses() {
        let c = Cascade::frontal_face();
        assert_eq!(c.win, 24);
        assert_eq!(c.stages.len(), 20);
        assert!(c.features.len() > 100);
    }

    #[test]
    fn bad_cascades_are_refused() {
        assert!(Cascade::parse("<featureType>HAAR</featureType>").is_err());
        assert!(Cascade::parse("<featureType>LBP</featureType><width>24</width>").is_err());
    }

    #[test]
    fn blank_image_has_no_face() {
        let g = Gray { width: 320, height: 240, data: vec![128; 320 * 240] };
        assert!(Detector::default().detect(&g).is_empty());
    }

    #[test]
    fn integral_sums_rectangles() {
        let g = Gray { width: 3, height: 2, data: vec![1, 2, 3, 4, 5, 6] };
        let mut ii = Vec::new();
        integrate(&g, &mut ii);
        assert_eq!(ii[2 * 4 + 3], 21);
        assert_eq!(ii[4 + 2], 3);
    }
}
