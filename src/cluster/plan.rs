//! The rebalancer's planning step: which pinned replicas to move so that replica load
//! evens out across schedulable nodes.
//!
//! Pure and deterministic on purpose: the leader plans a round from a snapshot, the CLI
//! can preview the very same plan (and its end state through [`simulate`]), and the
//! invariants can be tested without a database. Carrying out a [`Move`] (copy to `to`,
//! then remove from `from`) is the caller's job.
//!
//! The planner is greedy. It moves one pinned replica at a time from the most-loaded
//! schedulable node to the least-loaded one; when that pair has no legal move (every
//! pinned CID there is already on the target, or was moved earlier in this plan) it
//! tries the next most-loaded source and next least-loaded target, always among pairs
//! whose loads differ by two or more. Such a move lowers the sum of squared loads by at
//! least two, so repeated rounds cannot cycle: they end, and they end only when no
//! legal move can narrow any gap of two or more.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use uuid::Uuid;

/// A node as the planner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeView {
    pub id: Uuid,
    /// Live and `active`: may receive replicas and give them up.
    pub schedulable: bool,
}

/// One wanted replica (placement) of a CID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replica {
    pub cid: String,
    pub node: Uuid,
    /// Only pinned replicas are moved (a move copies first, then removes).
    pub pinned: bool,
}

/// Copy `cid` to `to`, then remove it from `from`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Move {
    pub cid: String,
    pub from: Uuid,
    pub to: Uuid,
}

/// The moves that even out replica load across schedulable nodes, at most `max_moves`.
///
/// Only schedulable nodes take part (replicas elsewhere neither count towards a load
/// nor move), only pinned replicas move, each CID moves at most once, and never onto a
/// node that already holds it, so every CID keeps its replica count on distinct nodes.
/// The result depends only on the contents of the inputs, not on their order: nodes
/// are considered by load, then id, and CIDs in string order.
pub fn plan(nodes: &[NodeView], replicas: &[Replica], max_moves: usize) -> Vec<Move> {
    // A node listed twice is schedulable only if every entry says so: when the caller's
    // view is inconsistent, leave the node alone.
    let mut schedulable: BTreeMap<Uuid, bool> = BTreeMap::new();
    for n in nodes {
        *schedulable.entry(n.id).or_insert(true) &= n.schedulable;
    }
    let mut load: BTreeMap<Uuid, usize> = schedulable
        .into_iter()
        .filter(|&(_, s)| s)
        .map(|(id, _)| (id, 0))
        .collect();
    if load.len() < 2 || max_moves == 0 {
        return Vec::new();
    }

    // Every node holding each CID, schedulable or not, so no move doubles one up.
    let mut holders: HashMap<&str, BTreeSet<Uuid>> = HashMap::new();
    // Pinned CIDs on each schedulable node, in CID order: the candidates to move.
    let mut movable: BTreeMap<Uuid, BTreeSet<&str>> = BTreeMap::new();
    for r in replicas {
        holders.entry(&r.cid).or_default().insert(r.node);
        if let Some(l) = load.get_mut(&r.node) {
            *l += 1;
            if r.pinned {
                movable.entry(r.node).or_default().insert(&r.cid);
            }
        }
    }

    let mut moves = Vec::new();
    while moves.len() < max_moves {
        let Some((cid, from, to)) = next_move(&load, &holders, &movable) else {
            break;
        };
        // At most one move per CID per plan: it is no longer a candidate anywhere.
        let held = holders.get_mut(cid).expect("a candidate CID has holders");
        for node in held.iter() {
            if let Some(set) = movable.get_mut(node) {
                set.remove(cid);
            }
        }
        held.remove(&from);
        held.insert(to);
        *load.get_mut(&from).expect("source is schedulable") -= 1;
        *load.get_mut(&to).expect("target is schedulable") += 1;
        moves.push(Move {
            cid: cid.to_owned(),
            from,
            to,
        });
    }
    moves
}

/// The first legal move, trying sources from most to least loaded and targets from
/// least to most loaded (ties by node id), among pairs whose loads differ by two or
/// more; within a pair, the smallest CID the target does not hold.
fn next_move<'a>(
    load: &BTreeMap<Uuid, usize>,
    holders: &HashMap<&'a str, BTreeSet<Uuid>>,
    movable: &BTreeMap<Uuid, BTreeSet<&'a str>>,
) -> Option<(&'a str, Uuid, Uuid)> {
    // `load` iterates in id order and the sorts are stable, so ties stay in id order.
    let mut targets: Vec<(Uuid, usize)> = load.iter().map(|(&id, &l)| (id, l)).collect();
    targets.sort_by_key(|&(_, l)| l);
    let mut sources = targets.clone();
    sources.sort_by_key(|&(_, l)| std::cmp::Reverse(l));

    for &(from, from_load) in &sources {
        let Some(cids) = movable.get(&from) else {
            continue;
        };
        for &(to, to_load) in &targets {
            if from_load < to_load + 2 {
                break;
            }
            if let Some(&cid) = cids.iter().find(|&&c| !holders[c].contains(&to)) {
                return Some((cid, from, to));
            }
        }
    }
    None
}

/// Applies `moves` to `replicas` as a completed round would (for convergence tests and
/// for the CLI's preview of the end state): each moved replica now sits on `to`, pinned.
///
/// Each move relocates one replica of its CID found on `from` (the first, in input
/// order); a move with no such replica changes nothing. Order is otherwise preserved.
pub fn simulate(replicas: &[Replica], moves: &[Move]) -> Vec<Replica> {
    let mut pending: HashMap<(&str, Uuid), Uuid> = moves
        .iter()
        .map(|m| ((m.cid.as_str(), m.from), m.to))
        .collect();
    replicas
        .iter()
        .map(|r| match pending.remove(&(r.cid.as_str(), r.node)) {
            Some(to) => Replica {
                cid: r.cid.clone(),
                node: to,
                pinned: true,
            },
            None => r.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use rand::{rngs::StdRng, seq::SliceRandom, Rng, SeedableRng};

    use super::*;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn nodes(spec: &[(u128, bool)]) -> Vec<NodeView> {
        spec.iter()
            .map(|&(n, schedulable)| NodeView {
                id: id(n),
                schedulable,
            })
            .collect()
    }

    fn rep(cid: &str, node: u128, pinned: bool) -> Replica {
        Replica {
            cid: cid.to_owned(),
            node: id(node),
            pinned,
        }
    }

    /// `count` pinned replicas named `{prefix}{i}` on `node`.
    fn fill(node: u128, prefix: &str, count: usize) -> Vec<Replica> {
        (0..count)
            .map(|i| rep(&format!("{prefix}{i:02}"), node, true))
            .collect()
    }

    fn mv(cid: &str, from: u128, to: u128) -> Move {
        Move {
            cid: cid.to_owned(),
            from: id(from),
            to: id(to),
        }
    }

    /// Load of each schedulable node.
    fn loads(nodes: &[NodeView], replicas: &[Replica]) -> BTreeMap<Uuid, usize> {
        let mut load: BTreeMap<Uuid, usize> = nodes
            .iter()
            .filter(|n| n.schedulable)
            .map(|n| (n.id, 0))
            .collect();
        for r in replicas {
            if let Some(l) = load.get_mut(&r.node) {
                *l += 1;
            }
        }
        load
    }

    #[test]
    fn empty_and_single_node_inputs_give_empty_plan() {
        assert!(plan(&[], &[], 10).is_empty());
        assert!(plan(&[], &fill(1, "a", 5), 10).is_empty());
        assert!(plan(&nodes(&[(1, true)]), &fill(1, "a", 5), 10).is_empty());
        // Two nodes, but only one schedulable.
        assert!(plan(&nodes(&[(1, true), (2, false)]), &fill(1, "a", 5), 10).is_empty());
    }

    #[test]
    fn already_balanced_gives_empty_plan() {
        let ns = nodes(&[(1, true), (2, true), (3, true)]);
        let mut rs = fill(1, "a", 3);
        rs.extend(fill(2, "b", 2));
        rs.extend(fill(3, "c", 3));
        assert!(plan(&ns, &rs, 10).is_empty());
    }

    #[test]
    fn empty_new_node_receives_moves_from_the_loaded_ones() {
        let ns = nodes(&[(1, true), (2, true), (3, true), (4, true)]);
        let mut rs = fill(1, "a", 6);
        rs.extend(fill(2, "b", 6));
        rs.extend(fill(3, "c", 6));
        let moves = plan(&ns, &rs, 50);
        // 6/6/6/0 → 5/6/6/1 → 5/5/6/2 → 5/5/5/3 → 4/5/5/4.
        assert_eq!(
            moves,
            vec![
                mv("a00", 1, 4),
                mv("b00", 2, 4),
                mv("c00", 3, 4),
                mv("a01", 1, 4)
            ]
        );
        let after = loads(&ns, &simulate(&rs, &moves));
        assert_eq!(after.values().copied().collect::<Vec<_>>(), [4, 5, 5, 4]);
    }

    #[test]
    fn unpinned_replicas_are_not_moved() {
        let ns = nodes(&[(1, true), (2, true)]);
        let mut rs = vec![
            rep("a", 1, false),
            rep("b", 1, false),
            rep("c", 1, true),
            rep("d", 1, false),
        ];
        assert_eq!(plan(&ns, &rs, 10), vec![mv("c", 1, 2)]);
        rs[2].pinned = false;
        assert!(plan(&ns, &rs, 10).is_empty());
    }

    #[test]
    fn non_schedulable_nodes_never_appear_in_moves_and_do_not_count() {
        // 3 is loaded but draining, 4 is empty but cordoned: only 1 → 2 is allowed,
        // and 3's replicas neither count towards a load nor move.
        let ns = nodes(&[(1, true), (2, true), (3, false), (4, false)]);
        let mut rs = fill(1, "a", 4);
        rs.extend(fill(3, "c", 20));
        // 5 is not in the node list at all: treated as not schedulable.
        rs.extend(fill(5, "e", 20));
        let moves = plan(&ns, &rs, 50);
        assert_eq!(moves, vec![mv("a00", 1, 2), mv("a01", 1, 2)]);
        // A node listed both ways is left alone.
        let twice = nodes(&[(1, true), (2, true), (2, false)]);
        assert!(plan(&twice, &rs, 50).is_empty());
    }

    #[test]
    fn max_moves_is_respected() {
        let ns = nodes(&[(1, true), (2, true)]);
        let rs = fill(1, "a", 10);
        assert!(plan(&ns, &rs, 0).is_empty());
        assert_eq!(plan(&ns, &rs, 2), vec![mv("a00", 1, 2), mv("a01", 1, 2)]);
        assert_eq!(plan(&ns, &rs, 100).len(), 5);
    }

    #[test]
    fn cid_already_on_the_target_is_not_moved_there() {
        let ns = nodes(&[(1, true), (2, true)]);
        let rs = vec![
            rep("a", 1, true),
            rep("b", 1, true),
            rep("c", 1, true),
            rep("d", 1, true),
            rep("a", 2, true),
            rep("b", 2, true),
        ];
        assert_eq!(plan(&ns, &rs, 10), vec![mv("c", 1, 2)]);
        // When everything movable on the source is already on the target, nothing moves.
        let blocked = vec![
            rep("a", 1, true),
            rep("b", 1, false),
            rep("c", 1, false),
            rep("a", 2, true),
        ];
        assert!(plan(&ns, &blocked, 10).is_empty());
    }

    #[test]
    fn each_cid_moves_at_most_once_per_plan() {
        // After a:1→3, the 2→4 pair would pick `a` again; it must take `b` instead.
        let ns = nodes(&[(1, true), (2, true), (3, true), (4, true)]);
        let mut rs = Vec::new();
        for cid in ["a", "b", "c"] {
            rs.push(rep(cid, 1, true));
            rs.push(rep(cid, 2, true));
        }
        assert_eq!(plan(&ns, &rs, 10), vec![mv("a", 1, 3), mv("b", 2, 4)]);
    }

    #[test]
    fn falls_back_to_the_next_pair_when_max_to_min_is_blocked() {
        // 1 is the most loaded but holds nothing pinned; 2 → 3 still evens things out.
        let ns = nodes(&[(1, true), (2, true), (3, true)]);
        let mut rs: Vec<Replica> = ["a", "b", "c", "d"]
            .iter()
            .map(|c| rep(c, 1, false))
            .collect();
        rs.extend(fill(2, "e", 3));
        assert_eq!(plan(&ns, &rs, 10), vec![mv("e00", 2, 3)]);
    }

    #[test]
    fn same_input_gives_same_plan_in_any_order() {
        let ns = nodes(&[(7, true), (3, true), (5, true), (9, false)]);
        let mut rs = fill(7, "x", 9);
        rs.extend(fill(3, "x", 2));
        rs.extend(fill(9, "y", 4));
        let expected = plan(&ns, &rs, 20);
        assert!(!expected.is_empty());
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..20 {
            let (mut ns2, mut rs2) = (ns.clone(), rs.clone());
            ns2.shuffle(&mut rng);
            rs2.shuffle(&mut rng);
            assert_eq!(plan(&ns2, &rs2, 20), expected);
        }
    }

    #[test]
    fn simulate_relocates_moved_replicas_as_pinned() {
        let rs = vec![rep("a", 1, true), rep("b", 1, false), rep("a", 2, false)];
        let out = simulate(&rs, &[mv("a", 1, 3), mv("zzz", 1, 3)]);
        assert_eq!(
            out,
            vec![rep("a", 3, true), rep("b", 1, false), rep("a", 2, false)]
        );
    }

    // ---- Property tests: random clusters from fixed seeds. ----

    const RUNS: u64 = 300;
    const ROUND_LIMIT: usize = 200;

    struct Cluster {
        nodes: Vec<NodeView>,
        replicas: Vec<Replica>,
        max_moves: usize,
    }

    /// 1–8 nodes (about a quarter not schedulable), 0–200 CIDs with 1–3 replicas on
    /// distinct nodes, random pinned flags, max_moves 1–50. Replicas land only on a
    /// random prefix of the nodes, so the rest start empty like freshly added nodes.
    fn random_cluster(seed: u64) -> Cluster {
        let mut rng = StdRng::seed_from_u64(seed);
        let n = rng.random_range(1..=8usize);
        let nodes: Vec<NodeView> = (0..n)
            .map(|_| NodeView {
                id: Uuid::from_u128(rng.random()),
                schedulable: rng.random_bool(0.75),
            })
            .collect();
        let used = rng.random_range(1..=n);
        let mut replicas = Vec::new();
        for c in 0..rng.random_range(0..=200) {
            let k = rng.random_range(1..=3usize).min(used);
            for i in rand::seq::index::sample(&mut rng, used, k) {
                replicas.push(Replica {
                    cid: format!("bafy{c:03}"),
                    node: nodes[i].id,
                    pinned: rng.random_bool(0.8),
                });
            }
        }
        replicas.shuffle(&mut rng);
        Cluster {
            nodes,
            replicas,
            max_moves: rng.random_range(1..=50),
        }
    }

    fn replica_counts(replicas: &[Replica]) -> BTreeMap<&str, usize> {
        let mut counts = BTreeMap::new();
        for r in replicas {
            *counts.entry(r.cid.as_str()).or_insert(0) += 1;
        }
        counts
    }

    fn sum_of_squares(load: &BTreeMap<Uuid, usize>) -> usize {
        load.values().map(|l| l * l).sum()
    }

    /// Checks one plan and its simulated result; returns the result.
    fn check_round(seed: u64, c: &Cluster, before: &[Replica], moves: &[Move]) -> Vec<Replica> {
        let schedulable: HashSet<Uuid> = c
            .nodes
            .iter()
            .filter(|n| n.schedulable)
            .map(|n| n.id)
            .collect();
        assert!(moves.len() <= c.max_moves, "seed {seed}: too many moves");
        let mut moved = HashSet::new();
        for m in moves {
            assert!(moved.insert(&m.cid), "seed {seed}: {} moved twice", m.cid);
            assert!(
                schedulable.contains(&m.from) && schedulable.contains(&m.to),
                "seed {seed}: {m:?} touches a non-schedulable node"
            );
            assert!(
                before
                    .iter()
                    .any(|r| r.cid == m.cid && r.node == m.from && r.pinned),
                "seed {seed}: {m:?} moves a replica that is not pinned on its source"
            );
        }
        let after = simulate(before, moves);
        assert_eq!(
            replica_counts(before),
            replica_counts(&after),
            "seed {seed}: replica counts changed"
        );
        let mut seen = HashSet::new();
        for r in &after {
            assert!(
                seen.insert((&r.cid, r.node)),
                "seed {seed}: {} twice on {}",
                r.cid,
                r.node
            );
        }
        after
    }

    #[test]
    fn random_plans_keep_replica_counts_distinct_nodes_and_are_deterministic() {
        for seed in 0..RUNS {
            let c = random_cluster(seed);
            let moves = plan(&c.nodes, &c.replicas, c.max_moves);
            check_round(seed, &c, &c.replicas, &moves);
            let mut rng = StdRng::seed_from_u64(seed ^ 0xdead_beef);
            let (mut ns, mut rs) = (c.nodes.clone(), c.replicas.clone());
            ns.shuffle(&mut rng);
            rs.shuffle(&mut rng);
            assert_eq!(
                plan(&ns, &rs, c.max_moves),
                moves,
                "seed {seed}: input order changed the plan"
            );
        }
    }

    #[test]
    fn random_clusters_converge_to_balance() {
        let mut most_rounds = 0;
        for seed in 0..RUNS {
            let c = random_cluster(seed);
            let mut current = c.replicas.clone();
            let mut rounds = 0;
            loop {
                let moves = plan(&c.nodes, &current, c.max_moves);
                if moves.is_empty() {
                    break;
                }
                rounds += 1;
                assert!(
                    rounds <= ROUND_LIMIT,
                    "seed {seed}: no empty plan after {ROUND_LIMIT} rounds"
                );
                let before = sum_of_squares(&loads(&c.nodes, &current));
                current = check_round(seed, &c, &current, &moves)
                    .into_iter()
                    .map(|r| Replica { pinned: true, ..r })
                    .collect();
                let after = sum_of_squares(&loads(&c.nodes, &current));
                assert!(after < before, "seed {seed}: a round did not even out load");
            }
            most_rounds = most_rounds.max(rounds);

            // Any gap of two or more left must be unbridgeable: every pinned CID on the
            // fuller node is already on the emptier one. This covers max vs min.
            let load = loads(&c.nodes, &current);
            for (&from, &from_load) in &load {
                for (&to, &to_load) in &load {
                    if from_load < to_load + 2 {
                        continue;
                    }
                    let on_to: HashSet<&str> = current
                        .iter()
                        .filter(|r| r.node == to)
                        .map(|r| r.cid.as_str())
                        .collect();
                    let bridgeable = current
                        .iter()
                        .find(|r| r.node == from && r.pinned && !on_to.contains(r.cid.as_str()));
                    assert!(
                        bridgeable.is_none(),
                        "seed {seed}: after {rounds} rounds {from} ({from_load}) could still \
                         give {bridgeable:?} to {to} ({to_load})"
                    );
                }
            }
        }
        println!("convergence: at most {most_rounds} rounds over {RUNS} random clusters");
    }
}
