//! One module per subcommand, each with its `Args` and `run`.

pub mod app;
pub mod app_test;
pub mod identity;
pub mod key;
pub mod publish;
pub mod repo;
pub mod sign;
pub mod trust;
