//! `shotfix sensor`: the sensor agent's command line ([`agent::cmd`]).

pub use agent::cmd::main;
