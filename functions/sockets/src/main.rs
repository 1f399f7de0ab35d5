//! The sockets Lambda function, behind each region's WebSocket API: wiring only; the authorizer
//! and the connections live in the moebi library (`moebi::live`).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    moebi::lambda::run_sockets().await
}
