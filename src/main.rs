//! gochat: the one user-facing binary.

fn main() {}
