//! Every Postgres advisory lock anchorage takes, in one place so no two ever share a key
//! (a shared key once made the leader's lock block pin-count compaction for good).

/// First half of every two-integer key: 'anch'.
const NAMESPACE: i32 = 0x616e_6368;

/// `migrate up`/`down`, held for the whole run (transaction-independent).
pub const MIGRATIONS: (i32, i32) = (NAMESPACE, 1);
/// Folding the `pin_counts` ledger (transaction-scoped).
pub const PIN_COUNTS_COMPACT: (i32, i32) = (NAMESPACE, 2);
/// The leader lease's lock session.
pub const LEADER: (i32, i32) = (NAMESPACE, 3);
/// Node-name claims: `(NODE_CLAIMS, hashtext(name))`, one per running process.
pub const NODE_CLAIMS: i32 = 0x616e_634e;
/// Recomputing a CID's pin status: `(PIN_STATUS, hashtext(cid))` (transaction-scoped).
pub const PIN_STATUS: i32 = 0x616e_6353;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_distinct() {
        let keys = [MIGRATIONS, PIN_COUNTS_COMPACT, LEADER];
        for (i, a) in keys.iter().enumerate() {
            for b in &keys[i + 1..] {
                assert_ne!(a, b);
            }
        }
        for space in [NODE_CLAIMS, PIN_STATUS] {
            assert_ne!(space, NAMESPACE);
        }
        assert_ne!(NODE_CLAIMS, PIN_STATUS);
    }
}
