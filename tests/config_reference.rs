//! docs/configuration.md is generated from the config types; this fails
//! when a key, default or doc comment changed without the document.

#[test]
fn the_configuration_reference_is_up_to_date() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/configuration.md");
    let written = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        written == gochat::config_cmd::reference(),
        "docs/configuration.md is stale: run `cargo run -- config reference > docs/configuration.md`"
    );
}
