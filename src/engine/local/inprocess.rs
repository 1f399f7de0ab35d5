//! The embedded DynamoDB reached in process: the SDK's requests are handed to dynoxide's
//! `Database` as they are, with no socket or HTTP server in between. The store and the
//! replicator still build every request with the SDK (signing, serialising, retries), exactly
//! as they do against DynamoDB; only the transport is gone.
//!
//! Dynoxide's own HTTP front door does the same dispatch (by `X-Amz-Target`), after checking
//! the request's content type and signature; this one trusts its only caller, the SDK.

use aws_smithy_runtime_api::client::http::{
    http_client_fn, HttpConnector, HttpConnectorFuture, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::http::{Response, StatusCode};
use aws_smithy_types::body::SdkBody;
use dynoxide::DynoxideError;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// An SDK HTTP client whose every request is answered by `db`.
pub fn client(db: dynoxide::Database) -> SharedHttpClient {
    let connector = SharedHttpConnector::new(InProcess(db));
    http_client_fn(move |_, _| connector.clone())
}

#[derive(Clone)]
struct InProcess(dynoxide::Database);

impl std::fmt::Debug for InProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InProcess(dynoxide)")
    }
}

impl HttpConnector for InProcess {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let target = request.headers().get("x-amz-target").unwrap_or_default();
        let operation = target.rsplit('.').next().unwrap_or_default();
        let body = request.body().bytes().unwrap_or_default();
        let (status, json) = match dispatch(&self.0, operation, body) {
            Ok(json) => (200, json),
            Err(e) => (e.status_code(), e.to_json()),
        };
        let status = StatusCode::try_from(status)
            .unwrap_or_else(|_| StatusCode::try_from(500).expect("500 is a status code"));
        let mut response = Response::new(status, SdkBody::from(json));
        response
            .headers_mut()
            .insert("content-type", "application/x-amz-json-1.0");
        HttpConnectorFuture::ready(Ok(response))
    }
}

/// Runs one operation: the request read from `body`, the answer written as DynamoDB does.
fn run<Req, Resp>(
    body: &[u8],
    operation: impl FnOnce(Req) -> dynoxide::Result<Resp>,
) -> dynoxide::Result<String>
where
    Req: DeserializeOwned,
    Resp: Serialize,
{
    let request = serde_json::from_slice(body)
        .map_err(|e| DynoxideError::SerializationException(e.to_string()))?;
    let response = operation(request)?;
    serde_json::to_string(&response).map_err(|e| DynoxideError::InternalServerError(e.to_string()))
}

/// The operations the store, the replicator and the tables' setup call.
fn dispatch(db: &dynoxide::Database, operation: &str, body: &[u8]) -> dynoxide::Result<String> {
    match operation {
        "CreateTable" => run(body, |r| db.create_table(r)),
        "DescribeTable" => run(body, |r| db.describe_table(r)),
        "UpdateTimeToLive" => run(body, |r| db.update_time_to_live(r)),
        "DescribeTimeToLive" => run(body, |r| db.describe_time_to_live(r)),
        "PutItem" => run(body, |r| db.put_item(r)),
        "GetItem" => run(body, |r| db.get_item(r)),
        "DeleteItem" => run(body, |r| db.delete_item(r)),
        "UpdateItem" => run(body, |r| db.update_item(r)),
        "Query" => run(body, |r| db.query(r)),
        "Scan" => run(body, |r| db.scan(r)),
        "TransactWriteItems" => run(body, |r| db.transact_write_items(r)),
        "BatchWriteItem" => run(body, |r| db.batch_write_item(r)),
        "BatchGetItem" => run(body, |r| db.batch_get_item(r)),
        "ListStreams" => run(body, |r| db.list_streams(r)),
        "DescribeStream" => run(body, |r| db.describe_stream(r)),
        "GetShardIterator" => run(body, |r| db.get_shard_iterator(r)),
        "GetRecords" => run(body, |r| db.get_records(r)),
        other => Err(DynoxideError::ValidationException(format!(
            "the embedded DynamoDB serves no operation `{other}` in process"
        ))),
    }
}
