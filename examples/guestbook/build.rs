//! Compiles the guestbook's proto with the pure-Rust `protox` compiler (no system `protoc`), as
//! `proto/build.rs` does for kem's contracts: the encoded `FileDescriptorSet` keeps every option
//! (`google.api.http`, `kem.api.v1.access`) for the authorization policy, and tonic generates the
//! server and client.

use std::path::PathBuf;

/// The one file this crate owns; everything it imports comes from the main proto tree.
const PROTO: &str = "kem/guestbook/v1/guestbook.proto";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let own = root.join("proto");
    // `google/api/*.proto` and `kem/api/v1/options.proto` are imported from kem's contracts, so
    // the options mean exactly what they mean for the seven real services.
    let shared = root.join("../../proto");
    let mut compiler = protox::Compiler::new([&own, &shared])?;
    compiler.include_source_info(true);
    compiler.open_file(PROTO).map_err(|e| format!("{PROTO}: {e:?}"))?;

    // With its imports, so a `DescriptorPool` decodes from it alone and knows the extensions,
    // and prost can see the imported messages it derives from. Encoded by protox rather than
    // through `prost_types`, which would drop the custom options.
    compiler.include_imports(true);
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out_dir.join("guestbook_descriptor.bin"), compiler.encode_file_descriptor_set())?;

    // Code is written for every file of the set; the crate includes `kem.guestbook.v1` only
    // (kem-proto owns the imported packages, and `google.protobuf` maps to `prost_types`).
    tonic_prost_build::configure().compile_fds(compiler.file_descriptor_set())?;

    println!("cargo:rerun-if-changed={}", own.join(PROTO).display());
    for import in [
        "google/api/annotations.proto",
        "google/api/http.proto",
        "google/api/field_behavior.proto",
        "kem/api/v1/options.proto",
    ] {
        println!("cargo:rerun-if-changed={}", shared.join(import).display());
    }
    Ok(())
}
