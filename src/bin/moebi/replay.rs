//! `moebi replay`: Lambda payloads fed to the function wired for them, answered as Lambda would.

use std::path::{Path, PathBuf};

use moebi::engine::{function_for, Engine};
use moebi::front::HttpPayload;
use moebi::invoke::{batch_response, Payload, Response};
use moebi::topology::Function;

use crate::Failure;

pub async fn replay(
    engine: &dyn Engine,
    function: Option<Function>,
    files: &[PathBuf],
) -> Result<(), Failure> {
    let mut failed = false;
    for file in files {
        let payload = read_payload(file)?;
        let at = |e: &dyn std::fmt::Display| Failure(format!("{}: {e}", file.display()), 1);
        if let Payload::Event(value) = &payload {
            if HttpPayload::is_http(value) {
                if function.is_some() {
                    return Err(at(
                        &"an HTTP API request goes to the front door: drop --function",
                    ));
                }
                failed |= !front_door(engine, file, value.clone()).await?;
                continue;
            }
        }
        let region = payload
            .region()
            .ok_or_else(|| at(&"the payload names no region (awsRegion or region)"))?
            .map_err(|e| at(&e))?;
        // When no record can even be parsed, any function rejects them all the same way.
        let function = function
            .or_else(|| function_for(engine.topology(), &region, &payload))
            .unwrap_or(Function::ChatSend);
        let response = engine.invoke(&region, function, &payload).await?;
        engine.run_until_idle().await?;
        print_response(file, &response);
        failed |= !response.succeeded();
    }
    if failed {
        Err(Failure(String::new(), 2))
    } else {
        Ok(())
    }
}

/// An HTTP API request fed to the front door of the region it names; answers whether it was
/// accepted (a 2xx).
async fn front_door(
    engine: &dyn Engine,
    file: &Path,
    value: serde_json::Value,
) -> Result<bool, Failure> {
    let at = |e: &dyn std::fmt::Display| Failure(format!("{}: {e}", file.display()), 1);
    let payload = HttpPayload::parse(value).map_err(|e| at(&e))?;
    let region = payload
        .region()
        .ok_or_else(|| at(&"the request names no region (requestContext.domainName)"))?
        .map_err(|e| at(&e))?;
    let reply = moebi::front::answer(&engine.front_ports(&region)?, &payload.request()).await;
    engine.run_until_idle().await?;
    let response = serde_json::to_string(&reply.to_response()).expect("a response serializes");
    println!("{response}");
    if reply.status >= 300 {
        eprintln!(
            "{}: refused with {}: {}",
            file.display(),
            reply.status,
            reply.body["error"]
        );
    }
    Ok(reply.status < 300)
}

/// A payload file; whatever is wrong with the file is the file's error, not a record's.
fn read_payload(file: &Path) -> Result<Payload, Failure> {
    Payload::read(file).map_err(|e| Failure(moebi::report(&e), 1))
}

/// What the function answered, as Lambda would return it (stdout), and why records failed (stderr).
fn print_response(file: &Path, response: &Response) {
    match response {
        Response::Batch(records) => {
            println!(
                "{}",
                serde_json::to_string(&batch_response(records))
                    .expect("a batch response serializes")
            );
            for (id, reason) in response.failures() {
                eprintln!(
                    "{}: record {id} failed: {}",
                    file.display(),
                    moebi::report(reason)
                );
            }
        }
        Response::Event(Ok(outcome)) => println!(
            "{}",
            serde_json::json!({ "outcome": format!("{outcome:?}").to_lowercase() })
        ),
        Response::Event(Err(e)) => {
            println!(
                "{}",
                serde_json::json!({ "errorType": e.error_type(), "errorMessage": moebi::report(e) })
            );
            eprintln!("{}: event failed: {}", file.display(), moebi::report(e));
        }
    }
}

/// `--function`: a function's name, or an error listing them.
pub(crate) fn parse_function(name: &str) -> Result<Function, String> {
    Function::parse(name).ok_or_else(|| {
        let names: Vec<_> = Function::ALL.iter().map(|f| f.name()).collect();
        format!(
            "unknown function {name:?} (functions: {})",
            names.join(", ")
        )
    })
}
