//! `moebi login` and `--engine api`: a person's client of the HTTP API, signed in to the user
//! pool, sending, reading, adding and asking through their region's front door.

use std::io::BufRead;
use std::path::PathBuf;
use std::time::Duration;

use moebi::api::{http::Http, ApiClient, ApiError, Session};

use crate::{Cli, Failure};

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        Failure(moebi::report(&e), 1)
    }
}

/// How long `stock status` looks for its answer in the inbox.
const ANSWER_WAIT: Duration = Duration::from_secs(30);

/// Where the sessions live: `--sessions`, else `<state>/sessions`.
pub fn sessions(cli: &Cli) -> PathBuf {
    cli.sessions
        .clone()
        .unwrap_or_else(|| cli.state.join("sessions"))
}

/// The password: `MOEBI_PASSWORD`, else one line of standard input (never an argument, which
/// other users of the machine could read in the process list).
fn password(user: &str) -> Result<String, Failure> {
    if let Ok(p) = std::env::var("MOEBI_PASSWORD") {
        return Ok(p);
    }
    eprint!("password for {user}: ");
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Failure(format!("cannot read the password: {e}"), 1))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// `moebi login USER --api URL --client-id ID --cognito-url URL`.
/// `moebi login`'s arguments.
#[derive(Debug, clap::Args)]
pub struct Login {
    /// The user: a participant or a store.
    pub user: String,
    /// The HTTP API's URL (your home region's).
    #[arg(long, env = "MOEBI_API")]
    pub api: String,
    /// Another region's HTTP API, tried when the ones before it cannot be reached (your
    /// region is down); repeat it, your region's standby first.
    #[arg(long = "failover", value_name = "URL")]
    pub failover: Vec<String>,
    /// The user pool's app client id.
    #[arg(long, env = "MOEBI_CLIENT_ID")]
    pub client_id: String,
    /// Cognito's endpoint: https://cognito-idp.<pool region>.amazonaws.com, or an emulator's.
    #[arg(long, env = "MOEBI_COGNITO_URL")]
    pub cognito_url: String,
}

pub async fn login(cli: &Cli, login: &Login) -> Result<(), Failure> {
    let Login {
        user,
        api,
        failover,
        client_id,
        cognito_url,
    } = login;
    let password = password(user)?;
    let http = Http::new()?;
    let apis = (api.as_str(), failover.as_slice());
    let session = Session::login(&http, cognito_url, client_id, apis, user, &password).await?;
    let path = session.save(&sessions(cli))?;
    println!(
        "signed in as {user} (until {}); session in {}",
        session.expires_at.format("%H:%M:%S UTC"),
        path.display()
    );
    Ok(())
}

pub fn client(cli: &Cli, user: &str) -> Result<ApiClient, Failure> {
    Ok(ApiClient::open(&sessions(cli), user)?)
}

pub async fn send(cli: &Cli, from: &str, to: &str, text: &str) -> Result<(), Failure> {
    let id = client(cli, from)?.send(from, to, text).await?;
    println!("sent {id}");
    Ok(())
}

pub async fn inbox(cli: &Cli, participant: &str, json: bool) -> Result<(), Failure> {
    for e in client(cli, participant)?.inbox(None).await? {
        if json {
            println!("{}", serde_json::to_string(&e).expect("entries serialize"));
        } else {
            println!("{e}");
        }
    }
    Ok(())
}

pub async fn add_stock(cli: &Cli, store: &str, product: &str, qty: i64) -> Result<(), Failure> {
    let id = client(cli, store)?.add_stock(store, product, qty).await?;
    println!("added {qty} {product} from {store} ({id})");
    Ok(())
}

pub async fn ask_stock(cli: &Cli, asker: &str, product: Option<&str>) -> Result<(), Failure> {
    let answer = client(cli, asker)?
        .ask_stock(asker, product, ANSWER_WAIT)
        .await?;
    println!("{answer}");
    Ok(())
}
