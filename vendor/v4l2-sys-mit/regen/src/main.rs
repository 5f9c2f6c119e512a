fn main() {
    let out = std::env::args().nth(1).unwrap();
    for (triple, name, inc) in [
        ("x86_64-unknown-linux-gnu", "x86_64", None),
        ("aarch64-unknown-linux-gnu", "aarch64", Some("/usr/aarch64-linux-gnu/include")),
        ("armv7-unknown-linux-gnueabihf", "arm", Some("/usr/arm-linux-gnueabihf/include")),
    ] {
        let mut args = vec![format!("--target={triple}")];
        if let Some(i) = inc { args.push(format!("-I{i}")); args.push("-nostdinc".into()); args.push(format!("-isystem{i}")); }
        let b = bindgen::Builder::default().header_contents("wrapper.h", "#include <linux/videodev2.h>\n").clang_args(args).generate().expect(triple);
        b.write_to_file(format!("{out}/{name}.rs")).unwrap();
    }
}
