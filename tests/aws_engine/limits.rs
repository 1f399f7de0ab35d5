//! The store's limits on the SDK: the ledger past one item's ceiling, and idempotency records
//! that expire.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ledger_adds_past_what_one_share_could_hold_exactly() {
    let (engine, ns) = engine().await;
    let max = moebi::ports::MAX_SHARE;
    // GIVEN a share of the design before the ledger, two units below what one item may hold
    dynamo("us-west-2")
        .await
        .put_item()
        .table_name(format!("moebi-{ns}"))
        .item("pk", AttributeValue::S("stock".into()))
        .item("sk", AttributeValue::S("big#us-west-2".into()))
        .item("product", AttributeValue::S("big".into()))
        .item("region", AttributeValue::S("us-west-2".into()))
        .item("qty", AttributeValue::N((max - 2).to_string()))
        .send()
        .await
        .unwrap();
    let add = |id: &str, qty: i64| {
        Payload::parse(stock_add("us-west-2", id, "store-1", "big", qty)).unwrap()
    };
    // WHEN three more units come THEN they are an item of their own, which DynamoDB never adds
    // to another: the reader sums in 64 unsigned bits, and says so exactly
    let response = engine
        .invoke(&region("us-west-2"), Function::StockAdd, &add("big-1", 3))
        .await
        .unwrap();
    assert!(response.succeeded(), "{response:?}");
    assert_eq!(
        Client::new(&engine)
            .ask_stock("alex", Some("big"))
            .await
            .unwrap(),
        format!("big: {}", max + 1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_records_expire() {
    let (engine, ns) = engine().await;
    let client = Client::new(&engine);
    let added = client.add_stock("store-1", "hat", 1).await.unwrap();
    let sent = client.send("alex", "kate", "hi").await.unwrap();
    let week = 7 * 24 * 3600;
    for (region, key) in [
        ("us-west-2", format!("applied#stock-add#{added}")),
        ("us-east-1", format!("applied#chat-send#{sent}")),
    ] {
        let item = dynamo(region)
            .await
            .get_item()
            .table_name(format!("moebi-{ns}"))
            .key("pk", AttributeValue::S(key.clone()))
            .key("sk", AttributeValue::S("applied".into()))
            .send()
            .await
            .unwrap()
            .item
            .unwrap_or_else(|| panic!("no record {key} in {region}"));
        let expires: i64 = item["expires_at"].as_n().unwrap().parse().unwrap();
        let expected = Utc::now().timestamp() + week;
        assert!(
            (expected - 120..=expected).contains(&expires),
            "{key}: expires_at {expires}, expected about {expected}"
        );
    }
}
