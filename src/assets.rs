//! Files bundled into the binary: the fonts and the face model, deflated by `build.rs` (half
//! the size) and inflated where they are loaded, once per process.

/// The deflated bytes of a file under `assets/`, as `build.rs` wrote them.
#[macro_export]
macro_rules! packed {
    ($name:literal) => {
        include_bytes!(concat!(env!("OUT_DIR"), "/", $name, ".deflate"))
    };
}

/// The bytes of a bundled file from its [`packed!`] form.
pub fn inflate(packed: &[u8]) -> Vec<u8> {
    // The input is this binary's own, checked by the tests below: failing here is a broken build.
    miniz_oxide::inflate::decompress_to_vec(packed).expect("the bundled files inflate (deflated by build.rs)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bundled_file_inflates_to_its_source() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets");
        for (name, packed) in crate::display::typeset::fonts::FILES
            .iter()
            .map(|(name, _, packed)| (format!("fonts/{name}"), *packed))
            .chain([("blazeface_short_128.onnx".to_string(), crate::vision::blazeface::MODEL_PACKED)])
        {
            let source = std::fs::read(root.join(&name)).unwrap();
            assert!(packed.len() < source.len() * 3 / 4, "{name}: {} of {} bytes", packed.len(), source.len());
            assert!(inflate(packed) == source, "{name} inflates to other bytes than assets/{name}");
        }
    }
}
