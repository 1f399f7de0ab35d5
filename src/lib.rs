//! moebi: a chat and a product stock spread over several AWS regions.
//!
//! Participants (`alex`, `kate`) send each other messages; Moebi the dog, a bot, answers every
//! message with `chicken?`; stores add products to a shared stock and anyone can ask what is in
//! it. Each message kind is a Lambda handler triggered by SQS or EventBridge; state lives in
//! DynamoDB. The same handlers run on one machine on an embedded engine.
//!
//! # Layout
//!
//! - [`contract`]: the event kinds (`chat.send`, `stock.add`, `stock.status`) and the
//!   validated values inside them. Input is parsed here, once; inside, values are trusted.
//! - [`topology`]: `infra/topology.json` (who lives in which region) and the EventBridge rules
//!   derived from it, the same rules Terraform writes.
//! - [`pattern`]: the EventBridge event-pattern matcher the embedded bus routes with.
//! - [`ports`]: the capabilities handlers need (inboxes, stock shares, the bus), as traits.
//! - [`store`]: the DynamoDB store (inboxes, shares, idempotency), on the official SDK, the one
//!   implementation of inboxes and shares both engines run.
//! - [`handler`]: one file per function (chat-send, moebi-reply, stock-add, stock-status);
//!   each depends only on the ports.
//! - [`front`]: the front door, the function behind each region's HTTP API: the caller from
//!   the token's claims, the body through the contract, the event on the region's bus.
//! - [`invoke`]: Lambda payloads (SQS batches, EventBridge events) handed to a handler record
//!   by record, with partial batch failures.
//! - [`engine`]: what runs the handlers. Shared: the event source mapping (`engine::pump`)
//!   over a queue port, and replication as global tables do it (`engine::replicator`).
//!   `engine::local` (an embedded DynamoDB, SQLite queues, an in-process bus) and
//!   `engine::aws` (EventBridge and SQS through the AWS SDK) keep only what differs.
//! - [`metric`]: what the functions count per invocation (the metrics), on both engines.
//! - `load` (feature `load`): `moebi load`, the open-model load generator, its end-to-end
//!   latency percentiles per kind and per hop, and its plots.
//! - [`api`]: a client of the HTTP API (sign-in, tokens, the front door's routes), as the CLI's
//!   `--engine api` uses it on AWS or the rehearsal's emulator.
//! - [`client`]: what a participant or store does (send, read an inbox, add, ask), over any engine.
//! - [`sdk`]: the AWS SDK as moebi uses it (HTTP client, retries and timeouts, configuration,
//!   the sorting of its errors); a leaf.
//! - [`resources`]: what a deployment's tables, buses, rules and queues are called.
//! - `lambda` (feature `function`): the Lambda runtime the four functions run on, with the
//!   ports it gives them (DynamoDB and EventBridge), and nothing of the engines.
//! - `src/bin/moebi`: the `moebi` CLI (the demo, `moebi chat`, `moebi sim`). `functions/*`: the
//!   four Lambda binaries, wiring only.
//!
//! # Features
//!
//! - `function`: what a Lambda function runs ([`lambda`]): the four `functions/*` take only it.
//! - `aws` (default): the AWS engine the CLI and the tests drive (SQS, DynamoDB Streams, the
//!   replicator, `setup`), on top of `function`.
//! - `local` (default): the embedded engine and the simulation.

#[cfg(any(feature = "local", feature = "aws", feature = "live"))]
pub mod api;
#[cfg(any(feature = "local", feature = "aws"))]
pub mod client;
pub mod contract;
#[cfg(any(feature = "local", feature = "aws"))]
pub mod engine;
pub mod front;
pub mod handler;
pub mod invoke;
#[cfg(feature = "function")]
pub mod lambda;
#[cfg(feature = "live")]
pub mod live;
#[cfg(feature = "load")]
pub mod load;
pub mod metric;
pub mod pattern;
pub mod ports;
pub mod resources;
pub mod sdk;
#[cfg(feature = "local")]
pub mod sim;
pub mod store;
pub mod topology;

/// An error with every cause under it, `outer: inner: innermost`, for a log line or a terminal.
pub fn report(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        let next = e.to_string();
        // Some errors repeat their cause in their own message; say it once.
        if !text.ends_with(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        cause = e.source();
    }
    text
}

/// Installs the `tracing` subscriber: human-readable on a terminal, JSON when `json` is set
/// (as in Lambda). The level comes from `RUST_LOG` (the CLI defaults to `error`: it prints failures itself).
pub fn init_tracing(json: bool, default_level: &str) {
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| default_level.to_owned());
    init_tracing_with(json, &filter);
}

/// Installs the `tracing` subscriber with a filter (`info`, `moebi=debug,warn`…); a filter
/// that does not parse falls back to `info`, saying so.
pub fn init_tracing_with(json: bool, filter: &str) {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::prelude::*;
    let parsed = filter.parse::<Targets>();
    let bad = parsed.is_err();
    let filter = parsed.unwrap_or_else(|_| Targets::new().with_default(LevelFilter::INFO));
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .without_time();
    let registry = tracing_subscriber::registry().with(filter);
    let _ = if json {
        registry
            .with(layer.json().with_current_span(true).with_span_list(true))
            .try_init()
    } else {
        registry.with(layer).try_init()
    };
    if bad {
        tracing::warn!("the log filter does not parse; logging at info");
    }
}
