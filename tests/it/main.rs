//! The one integration-test binary: each module drives the real server (and, where named, the
//! real `netcheck` binary) against the machine's PostgreSQL, Redis and RabbitMQ.

mod amqp;
mod helpers;
mod lookup;
mod netns;
mod pipeline;
mod rig;
mod targets;
mod timings;
mod tls;
mod trace_pacing;
mod traces;

mod abuse_auth;
mod abuse_broker;
mod agents;
mod auth;
mod bounded;
mod bounded_reads;
mod channels;
mod check_validation;
mod checks;
mod cli;
mod cli_maintenance;
mod connections;
mod disruptive;
mod disruptive_cluster;
mod errors;
mod expectations;
mod health;
mod history;
mod instances;
mod maintenance;
mod monitor_scheduling;
mod monitors;
mod overload;
mod own_host;
mod probe;
mod probe_peers;
mod result_messages;
mod selection;
mod status_pages;
mod users;
mod webhook_fairness;
mod webhook_receiver;
