//! gochat-benches: criterion benchmarks (see `benches/README.md` for figures).
