//! The push Lambda function, on each region's inbox stream: wiring only; the pushes live in the
//! moebi library (`moebi::live`).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    moebi::lambda::run_push().await
}
