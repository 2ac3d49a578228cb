//! Several nodes over one database: real `anchorage serve` processes (claims, leader
//! failover, replicas, operating a running cluster, crashes) and in-process checks of
//! the leader lease, cache invalidation and concurrent acks.

mod crash;
mod invalidation;
mod leader;
mod multi_node;
mod nats;
mod ops;
mod pin_status_race;
