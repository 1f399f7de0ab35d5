//! The front-door Lambda function, behind each region's HTTP API: wiring only; the front door
//! lives in the moebi library (`moebi::front`).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    moebi::lambda::run_front_door().await
}
