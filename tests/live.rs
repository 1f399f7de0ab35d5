//! Live delivery's logic, without AWS: the sockets function's token check (a maintained JWT
//! crate against a pool's JWKS) and its routes, and the push function's batch (partial
//! failures, gone connections). The same code runs on the rehearsal (scripts/live-check.py).
#![cfg(feature = "live")]

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use moebi::contract::Participant;
use moebi::live::push::{push, Pushed};
use moebi::live::socket::{authorize, route, SocketEvent};
use moebi::live::token::{KeySource, TokenError, Verifier};
use moebi::live::{Connections, LiveError, PostError, Sockets, CONNECTION_TTL_SECONDS};
use moebi::topology::Topology;

const ISSUER: &str = "https://cognito-idp.us-west-2.amazonaws.com/us-west-2_pool";
const CLIENT: &str = "moebi-client";
const POOL_KEY: &str = include_str!("fixtures/live/pool-key.pem");
const OTHER_KEY: &str = include_str!("fixtures/live/other-key.pem");
const JWKS: &str = include_str!("fixtures/live/jwks.json");

struct Jwks(Arc<AtomicUsize>);

#[async_trait]
impl KeySource for Jwks {
    async fn fetch(&self) -> Result<JwkSet, TokenError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(serde_json::from_str(JWKS).unwrap())
    }
}

fn verifier() -> (Verifier, Arc<AtomicUsize>) {
    let fetched = Arc::new(AtomicUsize::new(0));
    (
        Verifier::new(ISSUER, CLIENT, Box::new(Jwks(fetched.clone()))),
        fetched,
    )
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A token as Cognito signs it: `claims` over an access token of alex, the participant.
fn token(key: &str, kid: &str, claims: Value) -> String {
    let mut all = json!({
        "iss": ISSUER, "token_use": "access", "client_id": CLIENT, "username": "alex",
        "cognito:groups": ["participants"], "exp": now() + 3600, "iat": now(),
    });
    for (k, v) in claims.as_object().unwrap() {
        all[k] = v.clone();
    }
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.into());
    encode(
        &header,
        &all,
        &EncodingKey::from_rsa_pem(key.as_bytes()).unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn a_token_of_the_pool_for_moebi_is_taken_and_its_keys_fetched_once() {
    let (v, fetched) = verifier();
    let claims = v
        .verify(&token(POOL_KEY, "pool-key-1", json!({})))
        .await
        .unwrap();
    assert_eq!(claims.username.as_deref(), Some("alex"));
    // An ID token names the client in `aud`.
    let id = json!({"token_use": "id", "client_id": null, "aud": CLIENT, "username": null, "cognito:username": "kate"});
    let claims = v.verify(&token(POOL_KEY, "pool-key-1", id)).await.unwrap();
    assert_eq!(claims.cognito_username.as_deref(), Some("kate"));
    assert_eq!(
        fetched.load(Ordering::SeqCst),
        1,
        "the JWKS is fetched once and kept"
    );
}

#[tokio::test]
async fn a_token_that_is_not_valid_for_moebi_is_refused_naming_why() {
    let (v, _) = verifier();
    let refused = |claims: Value| token(POOL_KEY, "pool-key-1", claims);
    let expired = refused(json!({"exp": now() - 3600, "iat": now() - 7200}));
    assert!(
        matches!(v.verify(&expired).await, Err(TokenError::Invalid(e)) if e.contains("Expired"))
    );
    let issuer = refused(json!({"iss": "https://cognito-idp.us-west-2.amazonaws.com/another"}));
    assert!(matches!(v.verify(&issuer).await, Err(TokenError::Invalid(e)) if e.contains("Issuer")));
    let client = refused(json!({"client_id": "another-client"}));
    assert!(matches!(
        v.verify(&client).await,
        Err(TokenError::WrongAudience(_))
    ));
    let refresh = refused(json!({"token_use": "refresh"}));
    assert!(matches!(
        v.verify(&refresh).await,
        Err(TokenError::WrongAudience(_))
    ));
    assert!(matches!(v.verify("").await, Err(TokenError::Missing)));
    assert!(matches!(
        v.verify("not.a.jwt").await,
        Err(TokenError::Invalid(_))
    ));
    // alex's claims, alex's header, kate's name swapped into the signed payload.
    let good = refused(json!({}));
    let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
    let forged = refused(json!({"username": "kate"}));
    parts[1] = forged.split('.').nth(1).unwrap().to_owned();
    assert!(
        matches!(v.verify(&parts.join(".")).await, Err(TokenError::Invalid(e)) if e.contains("Signature"))
    );
    // HS256 with the client id as secret: the pool never signs so.
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("pool-key-1".into());
    let hs = encode(
        &header,
        &json!({"iss": ISSUER, "exp": now() + 60}),
        &EncodingKey::from_secret(CLIENT.as_bytes()).unwrap(),
    )
    .unwrap();
    assert!(matches!(v.verify(&hs).await, Err(TokenError::Invalid(e)) if e.contains("RS256")));
}

#[tokio::test]
async fn another_pools_key_is_unknown_and_refetches_at_most_once_a_minute() {
    let (v, fetched) = verifier();
    let foreign = token(OTHER_KEY, "other-pool-key", json!({}));
    assert!(
        matches!(v.verify(&foreign).await, Err(TokenError::UnknownKey(k)) if k == "other-pool-key")
    );
    // Signed by another key under the pool's kid: the signature fails.
    let spoofed = token(OTHER_KEY, "pool-key-1", json!({}));
    assert!(matches!(
        v.verify(&spoofed).await,
        Err(TokenError::Invalid(_))
    ));
    for _ in 0..5 {
        assert!(v
            .verify(&token(OTHER_KEY, "rotated-or-forged", json!({})))
            .await
            .is_err());
    }
    assert_eq!(
        fetched.load(Ordering::SeqCst),
        1,
        "unknown kids within a minute fetch no more"
    );
}

#[tokio::test]
async fn the_authorizer_allows_participants_only_and_names_them() {
    let (v, _) = verifier();
    let topology = Topology::builtin();
    let arn = "arn:aws:execute-api:us-west-2:123456789012:api/live/$connect";
    let alex = token(POOL_KEY, "pool-key-1", json!({}));
    let allowed = authorize(&v, &topology, Some(&alex), arn).await.unwrap();
    assert_eq!(allowed["principalId"], "alex");
    assert_eq!(allowed["context"]["participant"], "alex");
    assert_eq!(allowed["policyDocument"]["Statement"][0]["Effect"], "Allow");
    assert_eq!(allowed["policyDocument"]["Statement"][0]["Resource"], arn);
    let store = token(
        POOL_KEY,
        "pool-key-1",
        json!({"username": "store-1", "cognito:groups": ["stores"]}),
    );
    let stranger = token(POOL_KEY, "pool-key-1", json!({"username": "mallory"}));
    let expired = token(POOL_KEY, "pool-key-1", json!({"exp": now() - 10_000}));
    for refused in [
        Some(store.as_str()),
        Some(stranger.as_str()),
        Some(expired.as_str()),
        None,
    ] {
        let denied = authorize(&v, &topology, refused, arn).await.unwrap();
        assert_eq!(
            denied["policyDocument"]["Statement"][0]["Effect"], "Deny",
            "{refused:?}"
        );
    }
}

#[derive(Default)]
struct Table(Mutex<BTreeMap<(String, String), i64>>);

#[async_trait]
impl Connections for Table {
    async fn open(&self, who: &Participant, c: &str, now: i64) -> Result<(), LiveError> {
        self.0
            .lock()
            .unwrap()
            .insert((who.to_string(), c.into()), now + CONNECTION_TTL_SECONDS);
        Ok(())
    }
    async fn close(&self, who: &Participant, c: &str) -> Result<(), LiveError> {
        self.0.lock().unwrap().remove(&(who.to_string(), c.into()));
        Ok(())
    }
    async fn of(&self, who: &Participant, now: i64) -> Result<Vec<String>, LiveError> {
        if who.as_str() == "broken" {
            return Err(LiveError::new("Query", "throttled"));
        }
        let t = self.0.lock().unwrap();
        Ok(t.iter()
            .filter(|((p, _), exp)| p == who.as_str() && **exp > now)
            .map(|((_, c), _)| c.clone())
            .collect())
    }
}

/// Sockets: `gone-*` answer 410, `throttled-*` fail; the others keep what they receive.
#[derive(Default)]
struct Apis(Mutex<Vec<(String, Pushed)>>);

#[async_trait]
impl Sockets for Apis {
    async fn post(&self, c: &str, data: &[u8]) -> Result<(), PostError> {
        if c.starts_with("gone-") {
            return Err(PostError::Gone);
        }
        if c.starts_with("throttled-") {
            return Err(PostError::Failed(LiveError::new(
                "PostToConnection",
                "LimitExceededException",
            )));
        }
        self.0
            .lock()
            .unwrap()
            .push((c.into(), serde_json::from_slice(data).unwrap()));
        Ok(())
    }
}

fn record(seq: &str, event: &str, pk: &str, id: &str, text: &str) -> Value {
    json!({
        "eventID": seq, "eventName": event, "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
        "dynamodb": {
            "Keys": {"pk": {"S": pk}, "sk": {"S": format!("2026-12-07T00:00:00.000000Z#{id}")}},
            "NewImage": {"pk": {"S": pk}, "sk": {"S": format!("2026-12-07T00:00:00.000000Z#{id}")},
                "id": {"S": id}, "from": {"S": "alex"}, "text": {"S": text}, "sent_at": {"S": "2026-12-07T00:00:00.000000Z"}},
            "SequenceNumber": seq, "SizeBytes": 100, "StreamViewType": "NEW_AND_OLD_IMAGES"
        }
    })
}

async fn connected(table: &Table, who: &str, connections: &[&str]) {
    for c in connections {
        table
            .open(&Participant::parse(who).unwrap(), c, now())
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_batch_pushes_each_entry_to_its_recipients_sockets_and_fails_only_its_own_records() {
    let (table, apis) = (Table::default(), Apis::default());
    connected(&table, "kate", &["k1", "gone-k2"]).await;
    connected(&table, "alex", &["throttled-a1"]).await;
    let records = vec![
        record("100", "INSERT", "inbox#kate", "m1", "hi kate"),
        record("101", "INSERT", "inbox#alex", "m2", "hi alex"),
        record("102", "MODIFY", "inbox#kate", "m3", "an update: not pushed"),
        record(
            "103",
            "INSERT",
            "share#nike#us-east-1",
            "m4",
            "not an inbox entry",
        ),
        json!({"eventName": "INSERT", "dynamodb": "garbage"}),
        record(
            "105",
            "INSERT",
            "inbox#broken",
            "m5",
            "its connections cannot be read",
        ),
        record("106", "INSERT", "inbox#kate", "m6", "again, kate"),
        record(
            "107",
            "INSERT",
            "inbox#nobody",
            "m7",
            "no socket: nothing to do",
        ),
    ];
    let outcome = push(&records, &table, &apis, now()).await;
    let got = apis.0.lock().unwrap().clone();
    let texts: Vec<(&str, &str)> = got
        .iter()
        .map(|(c, p)| (c.as_str(), p.entry.text.as_str()))
        .collect();
    assert_eq!(
        texts,
        vec![("k1", "hi kate"), ("k1", "again, kate")],
        "kate's socket, in order; the gone one skipped"
    );
    assert!(got
        .iter()
        .all(|(_, p)| p.kind == "inbox" && p.owner == "kate"));
    assert_eq!(
        outcome.failed,
        vec!["101".to_string(), "105".to_string()],
        "only the throttled post's and the unreadable connections' records fail"
    );
    assert_eq!(
        (
            outcome.entries,
            outcome.delivered,
            outcome.gone,
            outcome.unreadable
        ),
        (5, 2, 1, 1)
    );
    assert_eq!(
        outcome.reads, 4,
        "one connections read per recipient, not per entry"
    );
    let left: HashSet<String> = table
        .0
        .lock()
        .unwrap()
        .keys()
        .map(|(_, c)| c.clone())
        .collect();
    assert!(!left.contains("gone-k2"), "a gone connection is deleted");
    assert_eq!(
        outcome.response(),
        json!({"batchItemFailures": [{"itemIdentifier": "101"}, {"itemIdentifier": "105"}]})
    );
}

#[tokio::test]
async fn connections_expire_after_two_hours_and_routes_record_and_forget_them() {
    let table = Table::default();
    let connect = SocketEvent::parse(&json!({
        "requestContext": {"routeKey": "$connect", "eventType": "CONNECT", "connectionId": "c1",
            "authorizer": {"participant": "kate", "principalId": "kate"}}
    }))
    .unwrap();
    assert_eq!(
        route(connect, &table, now()).await.unwrap()["statusCode"],
        200
    );
    let kate = Participant::parse("kate").unwrap();
    assert_eq!(table.of(&kate, now()).await.unwrap(), vec!["c1"]);
    assert!(table
        .of(&kate, now() + CONNECTION_TTL_SECONDS)
        .await
        .unwrap()
        .is_empty());
    let ping = SocketEvent::parse(&json!({"requestContext": {"routeKey": "$default", "eventType": "MESSAGE", "connectionId": "c1"}, "body": "{\"action\":\"ping\"}"})).unwrap();
    let answer = route(ping, &table, now()).await.unwrap();
    assert_eq!(
        answer,
        json!({"statusCode": 200}),
        "no body: AWS would not send it without a route response"
    );
    let anonymous = SocketEvent::parse(&json!({"requestContext": {"routeKey": "$connect", "eventType": "CONNECT", "connectionId": "c2"}})).unwrap();
    assert_eq!(
        route(anonymous, &table, now()).await.unwrap()["statusCode"],
        401,
        "a route without the authorizer's participant opens nothing"
    );
    let gone = SocketEvent::parse(&json!({"requestContext": {"routeKey": "$disconnect", "eventType": "DISCONNECT", "connectionId": "c1", "authorizer": {"principalId": "kate"}}})).unwrap();
    route(gone, &table, now()).await.unwrap();
    assert!(table.of(&kate, now()).await.unwrap().is_empty());
    let authorize = SocketEvent::parse(
        &json!({"type": "REQUEST", "methodArn": "arn:x", "queryStringParameters": {"token": "t"}}),
    )
    .unwrap();
    assert_eq!(
        authorize,
        SocketEvent::Authorize {
            token: Some("t".into()),
            method_arn: "arn:x".into()
        }
    );
    assert!(SocketEvent::parse(&json!({"Records": []})).is_err());
}
