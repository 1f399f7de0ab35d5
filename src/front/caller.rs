//! Who calls: the participant or store the API's JWT authorizer proved, read from the token's
//! claims (never from the body).

use std::collections::HashMap;
use std::fmt;

use super::Refusal;
use crate::contract::{Participant, Store};
use crate::topology::Topology;

/// The Cognito group of the people who chat and ask the stock.
pub const PARTICIPANTS: &str = "participants";
/// The Cognito group of the stores, who add stock.
pub const STORES: &str = "stores";

/// The caller of a request, as its token names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// A participant of the topology (never a bot: bots do not sign in).
    Participant(Participant),
    /// A store of the topology.
    Store(Store),
}

impl fmt::Display for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Caller::Participant(p) => write!(f, "participant {p}"),
            Caller::Store(s) => write!(f, "store {s}"),
        }
    }
}

impl Caller {
    /// The caller the claims name: its user name (`username` in an access token,
    /// `cognito:username` in an ID token) and its kind (the group in `cognito:groups`), checked
    /// against the topology. No claims at all is a 401: a route wired without the authorizer
    /// must not become an open door.
    pub fn from_claims(
        topology: &Topology,
        claims: Option<&HashMap<String, String>>,
    ) -> Result<Self, Refusal> {
        let claims = claims.filter(|c| !c.is_empty()).ok_or_else(|| {
            Refusal::Unauthenticated("the request carries no verified token claims".into())
        })?;
        let name = ["username", "cognito:username"]
            .iter()
            .find_map(|c| claims.get(*c))
            .ok_or_else(|| Refusal::Unauthenticated("the token names no user (username)".into()))?;
        let groups = claims
            .get("cognito:groups")
            .map(|g| groups(g))
            .unwrap_or_default();
        let (participant, store) = (groups.contains(&PARTICIPANTS), groups.contains(&STORES));
        let unknown = |what: &str| Refusal::Forbidden(format!("{name:?} is not a {what} of moebi"));
        match (participant, store) {
            (true, false) => {
                let who = Participant::parse(name).map_err(|_| unknown("participant"))?;
                if topology.home_of(&who).is_none() || topology.bot(&who).is_some() {
                    return Err(unknown("participant"));
                }
                Ok(Caller::Participant(who))
            }
            (false, true) => {
                let store = Store::parse(name).map_err(|_| unknown("store"))?;
                topology.store_home(&store).ok_or_else(|| unknown("store"))?;
                Ok(Caller::Store(store))
            }
            _ => Err(Refusal::Forbidden(format!(
                "the token of {name:?} must be in exactly one of the groups {PARTICIPANTS}, {STORES}"
            ))),
        }
    }

    /// The participant calling, or 403 naming what this route is for.
    pub fn participant(&self, what: &str) -> Result<&Participant, Refusal> {
        match self {
            Caller::Participant(p) => Ok(p),
            Caller::Store(s) => Err(Refusal::Forbidden(format!(
                "store {s} cannot {what}: only participants can"
            ))),
        }
    }

    /// The store calling, or 403 naming what this route is for.
    pub fn store(&self, what: &str) -> Result<&Store, Refusal> {
        match self {
            Caller::Store(s) => Ok(s),
            Caller::Participant(p) => Err(Refusal::Forbidden(format!(
                "participant {p} cannot {what}: only stores can"
            ))),
        }
    }
}

/// The groups of a `cognito:groups` claim. API Gateway hands every claim over as a string, a
/// list as `[a b]`; a JSON list (`["a","b"]`) or a bare name are read too.
fn groups(claim: &str) -> Vec<&str> {
    claim
        .trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .split([' ', ','])
        .map(|g| g.trim().trim_matches('"'))
        .filter(|g| !g.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn caller(pairs: &[(&str, &str)]) -> Result<Caller, Refusal> {
        Caller::from_claims(&Topology::builtin(), Some(&claims(pairs)))
    }

    #[test]
    fn groups_are_read_as_api_gateway_and_json_write_them() {
        assert_eq!(groups("[participants]"), vec!["participants"]);
        assert_eq!(groups("[a b]"), vec!["a", "b"]);
        assert_eq!(groups(r#"["a","b"]"#), vec!["a", "b"]);
        assert_eq!(groups("stores"), vec!["stores"]);
        assert!(groups("[]").is_empty());
    }

    #[test]
    fn the_caller_is_the_token_user_of_its_group() {
        let alex = caller(&[("username", "alex"), ("cognito:groups", "[participants]")]);
        assert_eq!(
            alex.unwrap(),
            Caller::Participant(Participant::parse("alex").unwrap())
        );
        let store = caller(&[
            ("cognito:username", "store-1"),
            ("cognito:groups", "[stores]"),
        ]);
        assert_eq!(
            store.unwrap(),
            Caller::Store(Store::parse("store-1").unwrap())
        );
    }

    #[test]
    fn no_claims_is_unauthenticated_and_a_wrong_kind_or_name_forbidden() {
        let none = Caller::from_claims(&Topology::builtin(), None).unwrap_err();
        assert_eq!(none.status(), 401, "{none}");
        let no_user = caller(&[("cognito:groups", "[participants]")]).unwrap_err();
        assert_eq!(no_user.status(), 401, "{no_user}");
        for bad in [
            caller(&[("username", "alex"), ("cognito:groups", "[stores]")]),
            caller(&[("username", "moebi"), ("cognito:groups", "[participants]")]),
            caller(&[
                ("username", "mallory"),
                ("cognito:groups", "[participants]"),
            ]),
            caller(&[("username", "alex")]),
            caller(&[
                ("username", "alex"),
                ("cognito:groups", "[participants stores]"),
            ]),
        ] {
            assert_eq!(bad.unwrap_err().status(), 403);
        }
    }
}
