//! The IPFS side against real Kubo cores: the Kubo client, the harness's Kubo test node
//! itself, and pins really getting pinned through the job queue and the runner.

mod client;
pub mod pinning;
mod test_node;
