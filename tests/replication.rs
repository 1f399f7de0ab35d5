//! Replication as global tables do it, on the embedded engine: links that lag or partition and
//! heal, last writer wins between regions, and a stream applied twice changing nothing.

mod support;

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use moebi::contract::{EventId, Product, Quantity, Region};
use moebi::engine::local::LocalEngine;
use moebi::engine::replicator::Link;
use moebi::engine::Engine;
use moebi::ports::{EffectKey, StockShares};
use moebi::topology::{Function, Topology};

fn region(name: &str) -> Region {
    Region::parse(name).unwrap()
}

async fn engine() -> (LocalEngine, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let engine = LocalEngine::open(dir.path(), Topology::builtin())
        .await
        .unwrap();
    (engine, dir)
}

/// Adds `qty` of `product` to `r`'s own share, as its stock-add would.
async fn add(engine: &LocalEngine, r: &str, id: &str, product: &str, qty: u64) {
    let store = engine.store(&region(r)).unwrap();
    let key = EffectKey::new(
        Function::StockAdd,
        &EventId::parse(id).unwrap(),
        &(id, product, qty),
    )
    .unwrap();
    store
        .add(
            &key,
            &Product::parse(product).unwrap(),
            Quantity::new(qty).unwrap(),
        )
        .await
        .unwrap();
}

fn share(product: &str, owner: &str, qty: u64) -> (String, String, u64) {
    (product.to_owned(), owner.to_owned(), qty)
}

#[tokio::test]
async fn a_partitioned_link_holds_replication_until_it_heals() {
    let (engine, _dir) = engine().await;
    // GIVEN us-west-2 cut off from eu-west-1
    engine.set_link(
        &region("us-west-2"),
        &region("eu-west-1"),
        Link::Partitioned,
    );
    add(&engine, "us-west-2", "p1", "nike", 30).await;
    engine.run_until_idle().await.unwrap();
    // THEN us-east-1 has the share and eu-west-1 not yet
    assert_eq!(
        support::shares(&engine, "us-east-1").await,
        [share("nike", "us-west-2", 30)]
    );
    assert!(support::shares(&engine, "eu-west-1").await.is_empty());
    // WHEN the partition heals THEN eu-west-1 catches up, with nothing doubled
    engine.replicator().heal();
    engine.run_until_idle().await.unwrap();
    assert_eq!(
        support::shares(&engine, "eu-west-1").await,
        [share("nike", "us-west-2", 30)]
    );
}

#[tokio::test]
async fn a_lagged_link_copies_only_what_is_old_enough() {
    let (engine, _dir) = engine().await;
    engine.set_link(
        &region("us-west-2"),
        &region("us-east-1"),
        Link::Lagged(Duration::from_secs(3600)),
    );
    add(&engine, "us-west-2", "l1", "nike", 3).await;
    engine.run_until_idle().await.unwrap();
    assert!(
        support::shares(&engine, "us-east-1").await.is_empty(),
        "an hour's lag"
    );
    engine.set_link(
        &region("us-west-2"),
        &region("us-east-1"),
        Link::Lagged(Duration::ZERO),
    );
    engine.run_until_idle().await.unwrap();
    assert_eq!(
        support::shares(&engine, "us-east-1").await,
        [share("nike", "us-west-2", 3)]
    );
}

#[tokio::test]
async fn a_step_copies_a_bounded_number_of_records_in_order() {
    let (engine, _dir) = engine().await;
    for link in [("us-west-2", "us-east-1"), ("us-west-2", "eu-west-1")] {
        engine.set_link(&region(link.0), &region(link.1), Link::Partitioned);
    }
    for (i, qty) in [5, 7, 11].into_iter().enumerate() {
        add(&engine, "us-west-2", &format!("s{i}"), "nike", qty).await;
    }
    engine.replicator().heal();
    let r = engine.replicator();
    let (west, east) = (region("us-west-2"), region("us-east-1"));
    // Each add wrote the share and its idempotency record: two stream records per add.
    assert_eq!(r.step(&west, &east, 2).await.unwrap(), 2);
    assert_eq!(
        support::shares(&engine, "us-east-1").await,
        [share("nike", "us-west-2", 5)]
    );
    assert_eq!(r.step(&west, &east, 2).await.unwrap(), 2);
    assert_eq!(
        support::shares(&engine, "us-east-1").await,
        [share("nike", "us-west-2", 12)]
    );
    assert_eq!(r.step(&west, &east, 100).await.unwrap(), 2);
    assert_eq!(
        support::shares(&engine, "us-east-1").await,
        [share("nike", "us-west-2", 23)]
    );
    assert_eq!(r.step(&west, &east, 100).await.unwrap(), 0, "caught up");
}

#[tokio::test]
async fn applying_a_stream_again_from_its_start_changes_nothing() {
    let (engine, _dir) = engine().await;
    add(&engine, "eu-west-1", "a1", "adidas", 35).await;
    add(&engine, "eu-west-1", "a2", "adidas", 5).await;
    engine.run_until_idle().await.unwrap();
    // GIVEN the replication positions forgotten (as if every record were redelivered)
    for r in ["us-west-2", "us-east-1"] {
        let client = engine.store(&region(r)).unwrap().client().clone();
        let positions = client
            .scan()
            .table_name("moebi")
            .filter_expression("begins_with(pk, :p)")
            .expression_attribute_values(":p", AttributeValue::S("replication#".into()))
            .send()
            .await
            .unwrap();
        assert!(!positions.items().is_empty(), "{r} keeps its positions");
        for item in positions.items() {
            client
                .delete_item()
                .table_name("moebi")
                .key("pk", item["pk"].clone())
                .key("sk", item["sk"].clone())
                .send()
                .await
                .unwrap();
        }
    }
    // WHEN replication runs again from the start THEN it applies nothing and nothing changes
    assert_eq!(engine.replicator().run().await.unwrap(), 0);
    for r in ["us-west-2", "us-east-1", "eu-west-1"] {
        assert_eq!(
            support::shares(&engine, r).await,
            [share("adidas", "eu-west-1", 40)],
            "{r}"
        );
    }
}

/// The same item written in two regions (which moebi's own items never are: each share has one
/// writer): replication keeps the later write everywhere, as global tables do.
#[tokio::test]
async fn between_regions_the_last_writer_wins_everywhere() {
    let (engine, _dir) = engine().await;
    let put = |r: &'static str, at: &'static str, qty: u64| {
        let client = engine.store(&region(r)).unwrap().client().clone();
        async move {
            client
                .put_item()
                .table_name("moebi")
                .item("pk", AttributeValue::S("stock".into()))
                .item("sk", AttributeValue::S("puma#shared".into()))
                .item("qty", AttributeValue::N(qty.to_string()))
                .item("rep_at", AttributeValue::S(format!("{at}#{r}")))
                .item("rep_in", AttributeValue::S(r.into()))
                .send()
                .await
                .unwrap();
        }
    };
    // us-east-1 writes later than us-west-2, but us-west-2's write is replicated last.
    put("us-east-1", "2026-11-22T10:00:02.000000Z", 2).await;
    put("us-west-2", "2026-11-22T10:00:01.000000Z", 1).await;
    engine.run_until_idle().await.unwrap();
    for r in ["us-west-2", "us-east-1", "eu-west-1"] {
        let item = engine
            .store(&region(r))
            .unwrap()
            .client()
            .get_item()
            .table_name("moebi")
            .key("pk", AttributeValue::S("stock".into()))
            .key("sk", AttributeValue::S("puma#shared".into()))
            .send()
            .await
            .unwrap();
        let qty = item
            .item()
            .and_then(|i| i.get("qty"))
            .and_then(|v| v.as_n().ok());
        assert_eq!(qty.map(String::as_str), Some("2"), "the later write in {r}");
    }
}
