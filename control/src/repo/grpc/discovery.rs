//! Where the repo service is: `grpc.repo_endpoint` names one or more
//! endpoints (`http://repo-0:9002,http://repo-1:9002`), each a host that
//! may resolve to several addresses (a Kubernetes headless Service lists
//! every ready pod). Every address found is an endpoint of one balanced
//! channel (tonic's power-of-two-choices over the open connections); the
//! names are resolved again every [`RESOLVE_EVERY`], so pods that come and
//! go are added and dropped without a restart.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use tonic::transport::channel::Change;
use tonic::transport::{Channel, Endpoint};

use crate::repo::{RepoError, RepoResult};

/// How often the names are resolved again.
pub const RESOLVE_EVERY: Duration = Duration::from_secs(10);
/// How long dialling one address may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The configured endpoints: their scheme (one for all) and the
/// `host:port` of each, to resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Targets {
    scheme: String,
    authorities: Vec<String>,
}

/// The endpoints of a comma-separated list of URLs.
fn targets(list: &str) -> RepoResult<Targets> {
    let mut schemes = HashSet::new();
    let mut authorities = Vec::new();
    for url in list.split(',').map(str::trim).filter(|u| !u.is_empty()) {
        let invalid = |why: String| RepoError::Invalid(format!("repo endpoint {url}: {why}"));
        let uri: tonic::codegen::http::Uri = url.parse().map_err(|e| invalid(format!("{e}")))?;
        let authority = uri.authority().ok_or_else(|| invalid("no host".into()))?;
        schemes.insert(uri.scheme_str().unwrap_or("http").to_owned());
        let port = authority.port_u16().unwrap_or(80);
        authorities.push(format!("{}:{port}", authority.host()));
    }
    let mut schemes = schemes.into_iter();
    match (schemes.next(), schemes.next()) {
        (Some(scheme), None) => Ok(Targets {
            scheme,
            authorities,
        }),
        (None, _) => Err(RepoError::Invalid("repo endpoint: empty".into())),
        (Some(_), Some(_)) => Err(RepoError::Invalid(
            "repo endpoint: one scheme for every URL".into(),
        )),
    }
}

/// A channel balanced over every address the endpoints resolve to, kept
/// current by a task of the caller's runtime (the task ends when every
/// clone of the channel is dropped); each call fails after `timeout`, if given.
pub fn balanced_channel(list: &str, timeout: Option<Duration>) -> RepoResult<Channel> {
    let targets = targets(list)?;
    let (channel, changes) = Channel::balance_channel::<SocketAddr>(64);
    tokio::spawn(async move {
        let mut known: HashSet<SocketAddr> = HashSet::new();
        loop {
            let found = resolve(&targets).await;
            // A failed lookup keeps what was known: DNS hiccups must not
            // empty the balancer.
            if !found.is_empty() {
                for gone in known.difference(&found).copied().collect::<Vec<_>>() {
                    known.remove(&gone);
                    if changes.send(Change::Remove(gone)).await.is_err() {
                        return;
                    }
                }
                for addr in found.difference(&known).copied().collect::<Vec<_>>() {
                    let url = format!("{}://{addr}", targets.scheme);
                    let Ok(endpoint) = Endpoint::from_shared(url) else {
                        continue;
                    };
                    let mut endpoint = endpoint.connect_timeout(CONNECT_TIMEOUT);
                    if let Some(timeout) = timeout {
                        endpoint = endpoint.timeout(timeout);
                    }
                    if changes.send(Change::Insert(addr, endpoint)).await.is_err() {
                        return;
                    }
                    known.insert(addr);
                }
            }
            tokio::time::sleep(RESOLVE_EVERY).await;
            if changes.is_closed() {
                return;
            }
        }
    });
    Ok(channel)
}

/// Every address of every target (those that resolve).
async fn resolve(targets: &Targets) -> HashSet<SocketAddr> {
    let mut found = HashSet::new();
    for authority in &targets.authorities {
        match tokio::net::lookup_host(authority).await {
            Ok(addrs) => found.extend(addrs),
            Err(e) => {
                tracing::warn!(endpoint = %authority, error = %e, "repo endpoint does not resolve")
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_of_urls_becomes_hosts_to_resolve() -> RepoResult<()> {
        let parsed = targets("http://repo-0:9002, http://repo.gochat.svc:9002,")?;
        assert_eq!(parsed.scheme, "http");
        assert_eq!(parsed.authorities, ["repo-0:9002", "repo.gochat.svc:9002"]);
        assert!(targets("").is_err());
        assert!(targets("http://").is_err());
        assert!(targets("http://a:1,https://b:2").is_err());
        Ok(())
    }
}
