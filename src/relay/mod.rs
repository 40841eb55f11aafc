//! The MCP relay (README: "MCP relay").

pub mod token;
