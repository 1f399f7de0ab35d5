//! Cognito's sign-in: `InitiateAuth` with `USER_PASSWORD_AUTH` and `REFRESH_TOKEN_AUTH`.
//! Both are calls without AWS credentials (a public app client), so they are a JSON POST.

use chrono::{DateTime, Utc};
use hyper::Method;
use serde_json::{json, Value};

use super::http::Http;
use super::ApiError;

/// The tokens of a sign-in or a refresh.
pub struct Tokens {
    pub access: String,
    pub id: String,
    pub refresh: Option<String>,
    pub expires_at: DateTime<Utc>,
}

pub fn refused(message: &str) -> ApiError {
    ApiError::SignIn {
        code: "Unexpected".into(),
        message: message.into(),
    }
}

pub async fn password(
    http: &Http,
    url: &str,
    client_id: &str,
    user: &str,
    password: &str,
) -> Result<Tokens, ApiError> {
    let params = json!({ "USERNAME": user, "PASSWORD": password });
    initiate(http, url, client_id, "USER_PASSWORD_AUTH", params).await
}

pub async fn refresh(
    http: &Http,
    url: &str,
    client_id: &str,
    refresh_token: &str,
) -> Result<Tokens, ApiError> {
    let params = json!({ "REFRESH_TOKEN": refresh_token });
    initiate(http, url, client_id, "REFRESH_TOKEN_AUTH", params).await
}

async fn initiate(
    http: &Http,
    url: &str,
    client_id: &str,
    flow: &str,
    params: Value,
) -> Result<Tokens, ApiError> {
    let body = json!({ "AuthFlow": flow, "ClientId": client_id, "AuthParameters": params });
    let headers = [
        (
            "x-amz-target",
            "AWSCognitoIdentityProviderService.InitiateAuth",
        ),
        ("content-type", "application/x-amz-json-1.1"),
    ];
    let answer = http
        .exchange(Method::POST, url, &headers, Some(&body))
        .await?;
    let b = &answer.body;
    if answer.status != 200 {
        let code = b["__type"].as_str().unwrap_or("Unknown");
        return Err(ApiError::SignIn {
            code: code.rsplit('#').next().unwrap_or(code).to_owned(),
            message: b["message"]
                .as_str()
                .or(b["Message"].as_str())
                .unwrap_or("no message")
                .to_owned(),
        });
    }
    if let Some(challenge) = b["ChallengeName"].as_str() {
        return Err(refused(&format!(
            "Cognito asks for {challenge}: an operator sets a permanent password (admin-set-user-password --permanent)"
        )));
    }
    let result = &b["AuthenticationResult"];
    let token = |k: &str| result[k].as_str().map(str::to_owned);
    let expires_in = result["ExpiresIn"].as_i64().unwrap_or(3600);
    Ok(Tokens {
        access: token("AccessToken").ok_or_else(|| refused("no AccessToken in the answer"))?,
        id: token("IdToken").ok_or_else(|| refused("no IdToken in the answer"))?,
        refresh: token("RefreshToken"),
        expires_at: Utc::now() + chrono::Duration::seconds(expires_in),
    })
}
