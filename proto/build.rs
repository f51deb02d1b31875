//! Compiles the gRPC contract with a vendored `protoc`, so building needs no system protoc.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY of intent: build scripts are single-threaded; the variable only tells
    // prost-build which protoc to run.
    unsafe_set_protoc(&protoc);
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_protos(
            &["proto/repo.proto", "proto/logic.proto", "proto/task.proto"],
            &["proto"],
        )?;
    Ok(())
}

#[allow(unsafe_code)]
fn unsafe_set_protoc(path: &std::path::Path) {
    // Edition 2024 marks set_var unsafe because other threads may read the
    // environment; a build script has no other threads.
    unsafe { std::env::set_var("PROTOC", path) };
}
