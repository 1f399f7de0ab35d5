//! What `moebi setup` makes: idempotent, named where missing, and what the settings say.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_is_idempotent() {
    let (engine, ns) = engine().await;
    // WHEN setup runs again over what exists THEN it succeeds and says what is there
    let summary = engine.setup().await.expect("a second setup succeeds");
    for r in ["us-west-2", "us-east-1", "eu-west-1"] {
        assert!(
            summary.contains(&format!("{r}: table moebi-{ns}, bus moebi-{ns}")),
            "{summary}"
        );
    }
    assert!(
        summary.contains(&format!("moebi-{ns}-chat-send")),
        "{summary}"
    );
    // AND an empty system stays empty
    let report = engine.run_until_idle().await.unwrap();
    assert_eq!(report.handled + report.failed, 0);
    assert!(engine.dead_letters(None).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_without_setup_says_to_run_it() {
    let config = AwsConfig::for_cli(Some(emulator_url())).with_namespace(&namespace());
    let engine = AwsEngine::connect(config, Topology::builtin())
        .await
        .unwrap();
    let err = engine.run_until_idle().await.unwrap_err().to_string();
    assert!(
        err.contains("run `moebi --engine aws setup` first"),
        "{err}"
    );
}

#[tokio::test]
async fn a_bad_namespace_is_a_configuration_error() {
    let config = AwsConfig {
        endpoint_url: Some("http://127.0.0.1:9".into()),
        names: ResourceNames::namespaced("no spaces"),
    };
    let err = AwsEngine::connect(config, Topology::builtin())
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(err.starts_with("configuration:"), "{err}");
}

/// What setup made in one region, read back from the emulator in the shape of
/// `moebi::engine::settings` (which `tests/drift.rs` compares with Terraform's plan): the
/// table's keys, TTL and stream, each queue's visibility timeout and redrive.
async fn observed(ns: &str, r: &str) -> Value {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let table = format!("moebi-{ns}");
    let db = dynamo(r).await;
    let described = db.describe_table().table_name(&table).send().await.unwrap();
    let t = described.table().unwrap();
    let key = |kind: &str| {
        t.key_schema()
            .iter()
            .find(|k| k.key_type().as_str() == kind)
            .map(|k| k.attribute_name().to_owned())
    };
    let ttl = db
        .describe_time_to_live()
        .table_name(&table)
        .send()
        .await
        .unwrap();
    let q = sqs(r).await;
    let mut queues = serde_json::Map::new();
    for f in Function::ALL {
        let name = format!("moebi-{ns}-{}", f.name());
        let Ok(found) = q.get_queue_url().queue_name(&name).send().await else {
            continue;
        };
        let attrs = q
            .get_queue_attributes()
            .queue_url(found.queue_url().unwrap())
            .attribute_names(A::All)
            .send()
            .await
            .unwrap();
        let a = attrs.attributes().unwrap();
        let redrive: Value = serde_json::from_str(&a[&A::RedrivePolicy]).unwrap();
        let max_receives: u64 = match &redrive["maxReceiveCount"] {
            Value::String(s) => s.parse().unwrap(),
            other => other.as_u64().unwrap(),
        };
        queues.insert(
            f.name().into(),
            json!({
                "visibility_timeout_seconds": a[&A::VisibilityTimeout].parse::<u64>().unwrap(),
                "max_receive_count": max_receives,
            }),
        );
    }
    json!({
        "table": {
            "hash_key": key("HASH"),
            "range_key": key("RANGE"),
            "ttl_attribute": ttl.time_to_live_description().and_then(|d| d.attribute_name()),
            "stream_view_type": t.stream_specification().and_then(|s| s.stream_view_type()).map(|v| v.as_str()),
        },
        "queues": queues,
    })
}

/// `moebi setup` and Terraform cannot drift: what setup creates in the emulator is what
/// `moebi::engine::settings` says, which `tests/drift.rs` holds equal to Terraform's plan.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_creates_what_the_settings_say() {
    let (_engine, ns) = engine().await;
    let settings = moebi::engine::settings(&Topology::builtin());
    for r in ["us-west-2", "us-east-1", "eu-west-1"] {
        let want = &settings["regions"][r];
        // The emulator has no Lambda: a queue stands in for each function EventBridge invokes,
        // its maxReceiveCount the attempts Lambda makes, its visibility the wait between them.
        let mut queues = serde_json::Map::new();
        for (f, q) in want["queues"].as_object().unwrap() {
            queues.insert(
                f.clone(),
                json!({
                    "visibility_timeout_seconds": q["visibility_timeout_seconds"],
                    "max_receive_count": q["max_receive_count"],
                }),
            );
        }
        for (f, a) in want["async"].as_object().unwrap() {
            queues.insert(
                f.clone(),
                json!({
                    "visibility_timeout_seconds": moebi::engine::pump::ASYNC_RETRY_SECONDS,
                    "max_receive_count": a["attempts"],
                }),
            );
        }
        let expected = json!({ "table": want["table"], "queues": queues });
        assert_eq!(observed(&ns, r).await, expected, "setup in {r}");
    }
}
