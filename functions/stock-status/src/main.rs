//! The stock-status Lambda function: wiring only; the handler lives in the moebi library.

use moebi::topology::Function;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    moebi::lambda::run(Function::StockStatus).await
}
