//! Group commit on the embedded DynamoDB: a batch's records share one `TransactWriteItems`,
//! and each still gets its own verdict (applied, duplicate, id reused); each add is an item of
//! the ledger, beside its record's idempotency record.

mod support;

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use aws_lambda_events::event::sqs::SqsEvent;
use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::types::AttributeValue;
use moebi::contract::{Event, EventId, Product, Quantity, Region, StockAdd, Store};
use moebi::engine::local::EmbeddedDynamo;
use moebi::handler::HandlerError;
use moebi::invoke;
use moebi::ports::{Bus, Outcome, PortError, Ports, StockShares, MAX_SHARE};
use moebi::store::{item, DynamoStore};
use moebi::topology::{Function, Topology};

/// Counts the `TransactWriteItems` requests sent.
#[derive(Debug, Clone, Default)]
struct Transactions(Arc<AtomicUsize>);

impl Intercept for Transactions {
    fn name(&self) -> &'static str {
        "Transactions"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        let target = context.request().headers().get("x-amz-target");
        if target.is_some_and(|t| t.ends_with("TransactWriteItems")) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }
}

impl Transactions {
    fn take(&self) -> usize {
        self.0.swap(0, Ordering::SeqCst)
    }
}

struct NoBus;

#[async_trait]
impl Bus for NoBus {
    async fn publish(&self, _: &[Event]) -> Result<(), PortError> {
        unreachable!("stock-add publishes nothing")
    }
}

use support::payloads::stock_add_batch as batch;

async fn run(store: &DynamoStore, batch: &SqsEvent) -> Vec<Result<Outcome, String>> {
    let topology = Topology::builtin();
    let ports = Ports {
        region: store.region(),
        topology: &topology,
        inboxes: store,
        stock: store,
        bus: &NoBus,
    };
    invoke::batch_of(Function::StockAdd, &ports, batch)
        .await
        .into_iter()
        .map(|r| {
            r.result
                .map_err(|e: HandlerError| e.error_type().to_owned())
        })
        .collect()
}

#[tokio::test]
async fn a_batch_shares_one_transaction_and_each_record_keeps_its_own_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let (_db, store, sent, east) = store_counting(dir.path()).await;

    // WHEN ten adds of ten products arrive in one batch
    let products = ["p0", "p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8", "p9"];
    let first: Vec<(String, &str, u64)> = products
        .iter()
        .enumerate()
        .map(|(i, p)| (format!("add-{i}"), *p, 1 + i as u64))
        .collect();
    let first_refs: Vec<(&str, &str, u64)> = first
        .iter()
        .map(|(id, p, q)| (id.as_str(), *p, *q))
        .collect();
    let results = run(&store, &batch(&first_refs)).await;
    // THEN all are applied, in one transaction
    assert_eq!(results, vec![Ok(Outcome::Applied); 10]);
    assert_eq!(
        sent.take(),
        1,
        "ten records of ten products: one transaction"
    );

    // GIVEN p9's share (of the design before the ledger) at the most one item may hold
    store
        .client()
        .put_item()
        .table_name("moebi")
        .item("pk", AttributeValue::S(item::STOCK_PK.into()))
        .item(
            "sk",
            AttributeValue::S(item::share_sk(&Product::parse("p9").unwrap(), &east)),
        )
        .item("product", AttributeValue::S("p9".into()))
        .item("region", AttributeValue::S("us-east-1".into()))
        .item("qty", AttributeValue::N(MAX_SHARE.to_string()))
        .send()
        .await
        .unwrap();
    // WHEN a batch holds redeliveries, an id used again for other content, an add past what
    // one item could hold, two fresh adds of one product and one of another
    let second = [
        ("add-0", "p0", 1),
        ("add-1", "p1", 2),
        ("add-2", "p2", 99),
        ("new-9", "p9", 1),
        ("new-a", "pa", 5),
        ("new-b", "pa", 6),
        ("new-c", "pc", 7),
    ];
    let results = run(&store, &batch(&second)).await;
    // THEN each record has its own verdict, in the batch's order
    assert_eq!(
        results,
        vec![
            Ok(Outcome::Duplicate),
            Ok(Outcome::Duplicate),
            Err("Permanent.IdReused".into()),
            Ok(Outcome::Applied),
            Ok(Outcome::Applied),
            Ok(Outcome::Applied),
            Ok(Outcome::Applied),
        ]
    );
    // first: all seven in flight, cancelled by three conditions; then the four new adds
    // together (each an item of its own: pa's two are two items)
    assert_eq!(sent.take(), 2);

    // AND the stock holds exactly what was applied once (the ledger adds past one item's
    // ceiling: the reader sums)
    let qty = |p: &str| {
        let store = &store;
        let p = Product::parse(p).unwrap();
        async move {
            store
                .shares(Some(&p))
                .await
                .unwrap()
                .iter()
                .map(|s| s.qty)
                .sum::<u64>()
        }
    };
    assert_eq!(qty("p0").await, 1);
    assert_eq!(qty("p2").await, 3);
    // p9: the first batch's 10, the old share's MAX_SHARE, new-9's 1
    assert_eq!(qty("p9").await, 10 + MAX_SHARE + 1);
    assert_eq!(qty("pa").await, 11);
    assert_eq!(qty("pc").await, 7);
}

#[tokio::test]
async fn records_waiting_for_a_leader_that_is_dropped_are_sent_alone() {
    let dir = tempfile::tempdir().unwrap();
    let db = EmbeddedDynamo::open(&dir.path().join("dynamo.db")).unwrap();
    let east = Region::parse("us-east-1").unwrap();
    let client = db.dynamo(&east);
    moebi::store::schema::ensure_table(&client, "moebi")
        .await
        .unwrap();
    let store = DynamoStore::new(east, "moebi", client);
    let add = |id: &str| {
        let event = StockAdd {
            id: EventId::parse(id).unwrap(),
            store: Store::parse("store-2").unwrap(),
            product: Product::parse(id).unwrap(),
            qty: Quantity::new(1).unwrap(),
        };
        moebi::ports::EffectKey::new(Function::StockAdd, &event.id, &event).unwrap()
    };
    let (first, second) = (add("first"), add("second"));
    let product = |key: &moebi::ports::EffectKey| Product::parse(key.id.as_str()).unwrap();
    let (p1, p2) = (product(&first), product(&second));
    let qty = Quantity::new(1).unwrap();
    // GIVEN a record that leads, waiting a turn for others, and one that joined it
    let mut leader = Box::pin(store.add(&first, &p1, qty));
    let mut joined = Box::pin(store.add(&second, &p2, qty));
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    assert!(leader.as_mut().poll(&mut cx).is_pending());
    assert!(joined.as_mut().poll(&mut cx).is_pending());
    // WHEN the leader is dropped before it sends (its invocation cancelled)
    drop(leader);
    // THEN the record that joined it is sent alone, not left waiting
    let outcome = tokio::time::timeout(std::time::Duration::from_secs(10), joined).await;
    assert!(matches!(outcome, Ok(Ok(Outcome::Applied))), "{outcome:?}");
}

/// A store on a fresh embedded DynamoDB, its `TransactWriteItems` counted.
async fn store_counting(
    dir: &std::path::Path,
) -> (EmbeddedDynamo, DynamoStore, Transactions, Region) {
    let db = EmbeddedDynamo::open(&dir.join("dynamo.db")).unwrap();
    let east = Region::parse("us-east-1").unwrap();
    let sent = Transactions::default();
    let client = db.dynamo(&east);
    let config = client
        .config()
        .to_builder()
        .interceptor(sent.clone())
        .build();
    let client = aws_sdk_dynamodb::Client::from_conf(config);
    moebi::store::schema::ensure_table(&client, "moebi")
        .await
        .unwrap();
    (
        db,
        DynamoStore::new(east.clone(), "moebi", client),
        sent,
        east,
    )
}

#[tokio::test]
async fn adds_to_a_few_products_cost_one_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let (_db, store, sent, _east) = store_counting(dir.path()).await;
    let qty = |p: &str| {
        let store = &store;
        let p = Product::parse(p).unwrap();
        async move {
            store
                .shares(Some(&p))
                .await
                .unwrap()
                .iter()
                .map(|s| s.qty)
                .sum::<u64>()
        }
    };
    // WHEN ten adds over five products arrive in one batch, a store adding the same few
    // products over and over
    let ids: Vec<String> = (0..10).map(|i| format!("mix-{i}")).collect();
    let products = ["m0", "m1", "m2", "m3", "m4"];
    let adds: Vec<(&str, &str, u64)> = (0..10)
        .map(|i| (ids[i].as_str(), products[i % 5], 1 + i as u64))
        .collect();
    let results = run(&store, &batch(&adds)).await;
    // THEN all are applied in one round trip, each product's stock its adds' sum
    assert_eq!(results, vec![Ok(Outcome::Applied); 10]);
    assert_eq!(
        sent.take(),
        1,
        "ten adds over five products: one transaction"
    );
    assert_eq!(qty("m0").await, 1 + 6);
    assert_eq!(qty("m4").await, 5 + 10);

    // WHEN the same batch is delivered again, with one new add to m0
    let mut again = adds.clone();
    again.push(("mix-new", "m0", 100));
    let results = run(&store, &batch(&again)).await;
    // THEN the redeliveries are duplicates and the new add alone is applied
    let mut expected = vec![Ok(Outcome::Duplicate); 10];
    expected.push(Ok(Outcome::Applied));
    assert_eq!(results, expected);
    assert_eq!(qty("m0").await, 107);
}
