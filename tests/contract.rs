//! One contract, two engines: the same tests run against the embedded engine and against the
//! AWS engine on the emulator. An engine may never behave differently in a way a test can see.

mod support;

use moebi::client::Client;
use moebi::contract::{Event, EventId, Participant, Region};
use moebi::engine::Engine;
use moebi::invoke::{Payload, Response};
use moebi::topology::{Function, Topology};

/// An engine under test, and whatever keeps its state alive.
struct Subject {
    engine: Box<dyn Engine>,
    _state: Option<tempfile::TempDir>,
}

async fn local() -> Subject {
    let dir = tempfile::tempdir().unwrap();
    let engine = moebi::engine::local::LocalEngine::open(dir.path(), Topology::builtin())
        .await
        .unwrap();
    Subject {
        engine: Box::new(engine),
        _state: Some(dir),
    }
}

#[cfg(feature = "aws")]
async fn aws() -> Subject {
    use moebi::engine::aws::{AwsConfig, AwsEngine};
    let ns = format!("c{}", &uuid_like()[..8]);
    let config = AwsConfig::for_cli(Some(support::emulator_url())).with_namespace(&ns);
    let engine = AwsEngine::connect(config, Topology::builtin())
        .await
        .unwrap();
    engine.setup().await.unwrap();
    Subject {
        engine: Box::new(engine),
        _state: None,
    }
}

#[cfg(feature = "aws")]
fn uuid_like() -> String {
    EventId::random().as_str().replace('-', "")
}

fn p(name: &str) -> Participant {
    Participant::parse(name).unwrap()
}

fn region(name: &str) -> Region {
    Region::parse(name).unwrap()
}

use support::payloads::{chat, stock_add as add};

async fn texts(engine: &dyn Engine, who: &str) -> Vec<String> {
    engine
        .inbox(&p(who))
        .await
        .unwrap()
        .into_iter()
        .map(|e| format!("{}: {}", e.from, e.text))
        .collect()
}

async fn delivers_a_message_once(s: Subject) {
    let e = s.engine.as_ref();
    // GIVEN a message published twice, as an at-least-once client may
    let msg = chat("contract-m1", "alex", "kate", "hi");
    e.publish(&region("us-west-2"), std::slice::from_ref(&msg))
        .await
        .unwrap();
    e.publish(&region("us-west-2"), &[msg]).await.unwrap();
    // WHEN the engine settles THEN kate's inbox holds it once
    e.run_until_idle().await.unwrap();
    assert_eq!(texts(e, "kate").await, ["alex: hi"]);
    assert!(texts(e, "alex").await.is_empty());
}

async fn moebi_answers_the_sender_only(s: Subject) {
    let e = s.engine.as_ref();
    let msg = chat("contract-m2", "alex", "moebi", "hi");
    e.publish(&region("us-west-2"), std::slice::from_ref(&msg))
        .await
        .unwrap();
    e.publish(&region("us-west-2"), &[msg]).await.unwrap();
    e.run_until_idle().await.unwrap();
    assert_eq!(texts(e, "moebi").await, ["alex: hi"]);
    let alex = e.inbox(&p("alex")).await.unwrap();
    assert_eq!(
        alex.len(),
        1,
        "one reply, however often the question came: {alex:?}"
    );
    assert_eq!(alex[0].text, "chicken?");
    assert_eq!(
        alex[0].in_reply_to.as_ref().map(EventId::as_str),
        Some("contract-m2")
    );
    assert!(texts(e, "kate").await.is_empty());
}

async fn stock_shares_sum_over_regions_and_duplicates_change_nothing(s: Subject) {
    let e = s.engine.as_ref();
    let client = Client::new(e);
    let nike30 = add("contract-a1", "store-1", "nike", 30);
    e.publish(&region("us-west-2"), std::slice::from_ref(&nike30))
        .await
        .unwrap();
    e.publish(&region("us-west-2"), &[nike30]).await.unwrap();
    e.publish(
        &region("eu-west-1"),
        &[
            add("contract-a2", "store-3", "nike", 5),
            add("contract-a3", "store-3", "adidas", 35),
        ],
    )
    .await
    .unwrap();
    e.run_until_idle().await.unwrap();
    // Asked from two regions: each sums every region's share.
    assert_eq!(
        client.ask_stock("kate", Some("nike")).await.unwrap(),
        "nike: 35"
    );
    assert_eq!(
        client.ask_stock("alex", Some("nike")).await.unwrap(),
        "nike: 35"
    );
    assert_eq!(
        client.ask_stock("alex", None).await.unwrap(),
        "adidas: 35, nike: 35"
    );
    assert_eq!(
        client.ask_stock("kate", Some("puma")).await.unwrap(),
        "there is no product puma"
    );
}

async fn bad_records_fail_alone(s: Subject) {
    let e = s.engine.as_ref();
    let text = std::fs::read_to_string(support::fixture("bad/mixed-batch.json")).unwrap();
    let payload = Payload::parse(serde_json::from_str(&text).unwrap()).unwrap();
    let response = e
        .invoke(&region("us-west-2"), Function::StockAdd, &payload)
        .await
        .unwrap();
    assert!(
        matches!(response, Response::Batch(_)),
        "a batch answers a batch"
    );
    let bad = support::message_ids("bad/mixed-batch.json", |b| {
        ["mix-2", "mix-4", "mix-5"].iter().any(|m| b.contains(m))
    });
    let failed = |r: &Response| -> Vec<String> {
        r.failures().iter().map(|(id, _)| id.to_string()).collect()
    };
    assert_eq!(failed(&response), bad);
    // Replaying the same batch fails the same records and applies nothing twice.
    let again = e
        .invoke(&region("us-west-2"), Function::StockAdd, &payload)
        .await
        .unwrap();
    assert_eq!(failed(&again), bad);
    let client = Client::new(e);
    assert_eq!(
        client.ask_stock("alex", Some("nike")).await.unwrap(),
        "nike: 10"
    );
    assert_eq!(
        client.ask_stock("alex", Some("reebok")).await.unwrap(),
        "reebok: 5"
    );
}

async fn a_share_written_in_one_region_is_read_in_every_other(s: Subject) {
    let e = s.engine.as_ref();
    // GIVEN a store of us-west-2 adding nike, handed to its function directly
    let payload = Payload::Event(moebi::engine::local::envelope(
        &region("us-west-2"),
        &add("contract-r1", "store-1", "nike", 30),
    ));
    e.invoke(&region("us-west-2"), Function::StockAdd, &payload)
        .await
        .unwrap();
    // WHEN replication has run THEN every region holds us-west-2's share, and only that
    e.run_until_idle().await.unwrap();
    let expected = vec![("nike".to_owned(), "us-west-2".to_owned(), 30)];
    for r in ["us-west-2", "us-east-1", "eu-west-1"] {
        assert_eq!(support::shares(e, r).await, expected, "shares read in {r}");
    }
}

async fn a_duplicate_delivery_changes_nothing_anywhere(s: Subject) {
    let e = s.engine.as_ref();
    let payload = Payload::Event(moebi::engine::local::envelope(
        &region("eu-west-1"),
        &add("contract-r2", "store-3", "adidas", 7),
    ));
    // GIVEN an add applied and replicated
    for _ in 0..2 {
        let r = e
            .invoke(&region("eu-west-1"), Function::StockAdd, &payload)
            .await
            .unwrap();
        assert!(r.succeeded(), "{r:?}");
        e.run_until_idle().await.unwrap();
    }
    // WHEN it came again (above) THEN every region still holds it once
    let expected = vec![("adidas".to_owned(), "eu-west-1".to_owned(), 7)];
    for r in ["us-west-2", "us-east-1", "eu-west-1"] {
        assert_eq!(support::shares(e, r).await, expected, "shares read in {r}");
    }
}

async fn a_poisoned_message_ends_in_the_dlq_and_the_rest_applies(s: Subject) {
    let e = s.engine.as_ref();
    // `zed` is no participant: the rule routes by recipient, and chat-send rejects the sender.
    e.publish(
        &region("us-west-2"),
        &[
            chat("contract-p1", "zed", "alex", "boo"),
            chat("contract-p2", "kate", "alex", "ok"),
        ],
    )
    .await
    .unwrap();
    e.run_until_idle().await.unwrap();
    assert_eq!(texts(e, "alex").await, ["kate: ok"]);
    let dead = e.dead_letters(None).await.unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert!(dead[0].body.contains("contract-p1"), "{dead:?}");
    assert_eq!(dead[0].region.as_str(), "us-west-2");
    assert!(dead[0].queue.contains("chat-send"), "{dead:?}");
    assert!(
        dead[0].reason.contains("unknown participant \"zed\""),
        "{dead:?}"
    );
    assert_eq!(dead[0].receive_count, e.topology().queues.max_receive_count);
}

async fn a_client_id_cannot_preempt_the_id_of_a_reply(s: Subject) {
    let e = s.engine.as_ref();
    // GIVEN kate sending alex a message whose id is the one Moebi will give its reply to "pre-1"
    let taken = EventId::parse("pre-1").unwrap().derived("reply");
    let mut forged = chat("unused", "kate", "alex", "gotcha");
    if let Event::ChatSend(m) = &mut forged {
        m.id = taken.clone();
    }
    e.publish(&region("us-east-1"), &[forged]).await.unwrap();
    e.run_until_idle().await.unwrap();
    // THEN it is refused, and named
    assert!(texts(e, "alex").await.is_empty());
    let dead = e.dead_letters(None).await.unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert!(
        dead[0]
            .reason
            .contains("field `detail.id`: ids starting with `moebi:` are moebi's own"),
        "{dead:?}"
    );
    // WHEN alex then writes "pre-1" to Moebi THEN the reply reaches alex
    e.publish(
        &region("us-west-2"),
        &[chat("pre-1", "alex", "moebi", "hi")],
    )
    .await
    .unwrap();
    e.run_until_idle().await.unwrap();
    let alex = e.inbox(&p("alex")).await.unwrap();
    assert_eq!(alex.len(), 1, "{alex:?}");
    assert_eq!((alex[0].text.as_str(), &alex[0].id), ("chicken?", &taken));
}

async fn an_id_reused_for_other_content_is_refused_and_named(s: Subject) {
    let e = s.engine.as_ref();
    // GIVEN an add applied, and a chat
    e.publish(
        &region("us-west-2"),
        &[add("contract-u1", "store-1", "nike", 30)],
    )
    .await
    .unwrap();
    e.publish(
        &region("us-west-2"),
        &[chat("contract-u2", "alex", "kate", "hi")],
    )
    .await
    .unwrap();
    e.run_until_idle().await.unwrap();
    // WHEN the same id comes with another quantity, the same add comes again, and the chat is
    // sent again with a new timestamp (a client retrying stamps its message again)
    let resent = chat("contract-u2", "alex", "kate", "hi");
    e.publish(
        &region("us-west-2"),
        &[
            add("contract-u1", "store-1", "nike", 31),
            add("contract-u1", "store-1", "nike", 30),
            resent,
        ],
    )
    .await
    .unwrap();
    e.run_until_idle().await.unwrap();
    // THEN the other content is refused and named; the redeliveries are duplicates
    let dead = e.dead_letters(None).await.unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    let body: serde_json::Value = serde_json::from_str(&dead[0].body).unwrap();
    assert_eq!(body["detail"]["qty"], 31, "{dead:?}");
    assert!(
        dead[0]
            .reason
            .contains("event id contract-u1 was applied by stock-add before, for other content"),
        "{dead:?}"
    );
    let expected = vec![("nike".to_owned(), "us-west-2".to_owned(), 30)];
    assert_eq!(support::shares(e, "us-east-1").await, expected);
    assert_eq!(texts(e, "kate").await, ["alex: hi"]);
}

macro_rules! contract {
    ($engine:ident, [$($case:ident),* $(,)?]) => {
        mod $engine {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::$engine().await).await;
                }
            )*
        }
    };
}

contract!(
    local,
    [
        delivers_a_message_once,
        moebi_answers_the_sender_only,
        stock_shares_sum_over_regions_and_duplicates_change_nothing,
        bad_records_fail_alone,
        a_poisoned_message_ends_in_the_dlq_and_the_rest_applies,
        a_share_written_in_one_region_is_read_in_every_other,
        a_duplicate_delivery_changes_nothing_anywhere,
        a_client_id_cannot_preempt_the_id_of_a_reply,
        an_id_reused_for_other_content_is_refused_and_named,
    ]
);

#[cfg(feature = "aws")]
contract!(
    aws,
    [
        delivers_a_message_once,
        moebi_answers_the_sender_only,
        stock_shares_sum_over_regions_and_duplicates_change_nothing,
        bad_records_fail_alone,
        a_poisoned_message_ends_in_the_dlq_and_the_rest_applies,
        a_share_written_in_one_region_is_read_in_every_other,
        a_duplicate_delivery_changes_nothing_anywhere,
        a_client_id_cannot_preempt_the_id_of_a_reply,
        an_id_reused_for_other_content_is_refused_and_named,
    ]
);
