//! The web page (`web/index.html`) and its settings, served by the front door without a token:
//! `GET /` (the page, its region's settings inside) and `GET /config.json` (the same settings,
//! for the CLI: where to open a socket).

use serde_json::{json, Value};

use crate::front::Reply;

/// The page, as shipped: one static file with no build step.
const PAGE: &str = include_str!("../../web/index.html");
/// Where the page's settings go.
const PLACEHOLDER: &str = r#"{"moebi":"config"}"#;

/// A region's settings for clients: its WebSocket URL, where to sign in, the app client.
pub fn settings(region: &str) -> Value {
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    json!({
        "region": region,
        "sockets_url": var("MOEBI_SOCKETS_URL"),
        "cognito_url": var("MOEBI_COGNITO_URL"),
        "client_id": var("MOEBI_JWT_CLIENT_ID"),
    })
}

/// What the front door serves without a token, if `method` and `path` name it.
pub fn public(method: &str, path: &str, region: &str) -> Option<(Reply, &'static str)> {
    match (method, path) {
        ("GET", "/") | ("GET", "") => {
            // `</` inside the JSON would end the script element early.
            let config = settings(region).to_string().replace("</", "<\\/");
            let page = PAGE.replace(PLACEHOLDER, &config);
            Some((
                Reply {
                    status: 200,
                    body: Value::String(page),
                },
                "text/html; charset=utf-8",
            ))
        }
        ("GET", "/config.json") => Some((
            Reply {
                status: 200,
                body: settings(region),
            },
            "application/json",
        )),
        _ => None,
    }
}
