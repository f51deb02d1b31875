//! gochat-control: the control plane (logic, repo and task services) on tokio.
pub mod repo;
