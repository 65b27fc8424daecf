//! Compiles every `.proto` under `kem/` with the pure-Rust `protox` compiler (no system `protoc`),
//! embeds the encoded `FileDescriptorSet` with every option preserved, and generates the tonic code.

use std::path::{Path, PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let mut files = Vec::new();
    collect_protos(&root.join("kem"), &mut files)?;
    // The vendored Google protos are compiled whether or not a kem file imports them: the error
    // details (ErrorInfo, BadRequest, ...) are used by code, not by any message field.
    collect_protos(&root.join("google"), &mut files)?;
    files.sort();
    if files.is_empty() {
        return Err("no .proto files under proto/kem".into());
    }

    let mut compiler = protox::Compiler::new([&root])?;
    compiler.include_imports(true).include_source_info(true);
    for file in &files {
        let rel = file.strip_prefix(&root)?;
        compiler.open_file(rel).map_err(|e| format!("{}: {e:?}", rel.display()))?;
    }

    // The encoded set comes from prost-reflect, which keeps custom options such as
    // `google.api.http` and `kem.api.v1.access`; `prost_types` would drop them as unknown fields.
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out_dir.join("kem_descriptor.bin"), compiler.encode_file_descriptor_set())?;

    tonic_prost_build::configure()
        // Roles answer UNIMPLEMENTED for RPCs their service has not implemented yet.
        .generate_default_stubs(true)
        .compile_fds(compiler.file_descriptor_set())?;

    println!("cargo:rerun-if-changed={}", root.join("kem").display());
    println!("cargo:rerun-if-changed={}", root.join("google").display());
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    Ok(())
}

fn collect_protos(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_protos(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "proto") {
            out.push(path);
        }
    }
    Ok(())
}
