//! `moebi serve-dynamodb`: one region's embedded DynamoDB on a loopback port, for `make bench`.

use moebi::contract::Region;

use crate::{Cli, Failure};

pub async fn dynamodb(cli: &Cli, region: &str, table: &str) -> Result<(), Failure> {
    use moebi::engine::local::EmbeddedDynamo;
    let region = Region::parse(region).map_err(|e| Failure(moebi::report(&e), 1))?;
    std::fs::create_dir_all(&cli.state)
        .map_err(|e| Failure(format!("cannot create {}: {e}", cli.state.display()), 1))?;
    let dynamo = EmbeddedDynamo::start(&cli.state.join(format!("{region}.dynamodb"))).await?;
    moebi::store::schema::ensure_table(&dynamo.dynamo(&region), table)
        .await
        .map_err(|e| Failure(moebi::report(&e), 1))?;
    // The address on stdout, flushed, for whoever started this process.
    println!("{}", dynamo.url().unwrap_or_default());
    use std::io::Write;
    let _ = std::io::stdout().flush();
    tokio::signal::ctrl_c()
        .await
        .map_err(|e| Failure(format!("cannot wait for a signal: {e}"), 1))?;
    Ok(())
}
