//! Where a sandboxed build may connect (`--build-egress`): public addresses, the
//! resolver, and what the operator lets through; never this machine, its networks,
//! link-local addresses (cloud metadata) or the platform's ports.
//!
//! A build's network is pasta's, like a replica's with egress: pasta makes every
//! connection from this machine, so a wall inside the build's network namespace decides
//! what it may ask for. The wall is an nftables table the server writes there as root
//! before the build runs; the build's uid has no capability over that namespace, so it
//! cannot take it down. A mirror on this machine's loopback is reached through a pasta
//! port of its own instead (the namespace's loopback is its own).

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

/// What builds may reach.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum BuildEgress {
    /// No network at all.
    None,
    /// Public addresses, the resolver, and `allow` (an operator's mirror).
    #[default]
    Public,
}

/// The operator's choice, with what it lets through.
#[derive(Clone, Debug, Default)]
pub struct BuildNetwork {
    pub egress: BuildEgress,
    /// `--build-egress-allow`: addresses a build may reach although they are private.
    pub allow: Vec<SocketAddr>,
}

impl BuildNetwork {
    /// The loopback ports pasta forwards into a build's network, to this machine's
    /// loopback: the allowed mirrors that run here.
    pub(crate) fn loopback_ports(&self) -> Vec<u16> {
        let mut ports: Vec<u16> = self
            .allow
            .iter()
            .filter(|a| a.ip().is_loopback())
            .map(SocketAddr::port)
            .collect();
        ports.sort_unstable();
        ports.dedup();
        ports
    }
}

/// The ranges no build reaches unless allowed: this machine, private networks,
/// carrier-grade NAT, link-local (the cloud metadata address), multicast, reserved.
const BLOCKED_V4: &[&str] = &[
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "224.0.0.0/4",
    "240.0.0.0/4",
];
const BLOCKED_V6: &[&str] = &[
    "::/127",
    "::ffff:0:0/96",
    "64:ff9b:1::/48",
    "fc00::/7",
    "fe80::/10",
    "ff00::/8",
];

/// The wall for one build network: `allow` and the resolvers on port 53 pass, then the
/// blocked ranges and this machine's own addresses are refused (a connection is refused
/// at once, which the build's tools report as such), then everything else passes.
pub(crate) fn ruleset(allow: &[SocketAddr], resolvers: &[IpAddr], host: &[IpAddr]) -> String {
    // The namespace's loopback holds only the build and pasta's ports.
    let mut rules = vec!["oifname \"lo\" accept".to_owned()];
    for a in allow.iter().filter(|a| !a.ip().is_loopback()) {
        let family = family(a.ip());
        rules.push(format!(
            "{family} daddr {} tcp dport {} accept",
            a.ip(),
            a.port()
        ));
    }
    for r in resolvers {
        let family = family(*r);
        rules.push(format!(
            "{family} daddr {r} meta l4proto {{ tcp, udp }} th dport 53 accept"
        ));
    }
    rules.push(format!("ip daddr {{ {} }} reject", BLOCKED_V4.join(", ")));
    rules.push(format!("ip6 daddr {{ {} }} reject", BLOCKED_V6.join(", ")));
    let mut own: Vec<IpAddr> = host.iter().copied().filter(|ip| !in_blocked(*ip)).collect();
    own.sort_unstable();
    own.dedup();
    for (family, list) in [
        ("ip", own.iter().filter(|i| i.is_ipv4()).collect::<Vec<_>>()),
        (
            "ip6",
            own.iter().filter(|i| i.is_ipv6()).collect::<Vec<_>>(),
        ),
    ] {
        if !list.is_empty() {
            let list: Vec<String> = list.iter().map(ToString::to_string).collect();
            rules.push(format!("{family} daddr {{ {} }} reject", list.join(", ")));
        }
    }
    let body: String = rules.iter().map(|r| format!("    {r}\n")).collect();
    format!(
        "table inet micro_build {{\n  chain out {{\n    type filter hook output priority filter; policy accept;\n{body}  }}\n}}\n"
    )
}

fn family(ip: IpAddr) -> &'static str {
    if ip.is_ipv4() { "ip" } else { "ip6" }
}

/// Whether a blocked range holds `ip` already (an address listed twice in one nftables
/// set of ranges is an error).
fn in_blocked(ip: IpAddr) -> bool {
    let ranges = if ip.is_ipv4() { BLOCKED_V4 } else { BLOCKED_V6 };
    ranges
        .iter()
        .any(|r| r.parse::<ipnet::IpNet>().is_ok_and(|net| net.contains(&ip)))
}

/// The resolvers a sandbox's `/etc/resolv.conf` names.
pub(crate) fn resolvers(resolv: &str) -> Vec<IpAddr> {
    resolv
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|rest| rest.split_whitespace().next())
        // A scoped IPv6 resolver (`fe80::1%eth0`) is link-local: the wall lets it through
        // by address.
        .filter_map(|a| a.split('%').next()?.parse().ok())
        .collect()
}

/// This machine's own addresses, which a build must not reach by another name than
/// loopback.
pub(crate) fn host_addresses() -> Vec<IpAddr> {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    addrs
        .filter_map(|a| {
            let address = a.address?;
            if let Some(v4) = address.as_sockaddr_in() {
                Some(IpAddr::V4(v4.ip()))
            } else {
                address.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip()))
            }
        })
        .collect()
}

/// The tools that raise the wall: found at start, or builds get no network.
#[derive(Clone, Debug)]
pub(crate) struct WallTools {
    nsenter: PathBuf,
    nft: PathBuf,
}

impl WallTools {
    pub(crate) fn find() -> Option<Self> {
        Some(WallTools {
            nsenter: find("nsenter")?,
            nft: find("nft")?,
        })
    }

    /// Writes `rules` into the network namespace of `pid`.
    pub(crate) async fn raise(&self, pid: i32, rules: &str) -> std::io::Result<()> {
        use tokio::io::AsyncWriteExt;
        let mut child = tokio::process::Command::new(&self.nsenter)
            .arg(format!("--net=/proc/{pid}/ns/net"))
            .arg("--")
            .arg(&self.nft)
            .args(["-f", "-"])
            .env_clear()
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(rules.as_bytes()).await?;
        }
        let out = child.wait_with_output().await?;
        if out.status.success() {
            Ok(())
        } else {
            Err(std::io::Error::other(format!(
                "the build's network wall (nft) failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )))
        }
    }
}

fn find(name: &str) -> Option<PathBuf> {
    ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wall_lets_through_the_allowed_and_the_resolver_and_refuses_this_machine() {
        let allow: Vec<SocketAddr> = vec![
            "10.1.2.3:3141".parse().unwrap(),
            "127.0.0.1:4873".parse().unwrap(),
        ];
        let resolvers = resolvers("# x\nnameserver 10.255.255.53\nnameserver fe80::1%eth0\n");
        assert_eq!(resolvers.len(), 2);
        let host: Vec<IpAddr> = [
            "127.0.0.1",
            "192.0.2.2",
            "192.0.2.2",
            "10.0.0.5",
            "2001:db8::2",
        ]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
        let rules = ruleset(&allow, &resolvers, &host);
        let lines: Vec<&str> = rules.lines().map(str::trim).collect();
        let at = |needle: &str| {
            lines
                .iter()
                .position(|l| l.contains(needle))
                .unwrap_or_else(|| panic!("{needle} not in\n{rules}"))
        };
        // The allowed private mirror and the resolver pass before the private ranges are
        // refused; a loopback mirror is pasta's port, not a rule.
        assert!(at("ip daddr 10.1.2.3 tcp dport 3141 accept") < at("10.0.0.0/8"));
        assert!(
            at("10.255.255.53 meta l4proto { tcp, udp } th dport 53 accept") < at("10.0.0.0/8")
        );
        assert!(!rules.contains("4873"));
        assert!(rules.contains("169.254.0.0/16") && rules.contains("fe80::/10"));
        // This machine's public addresses are refused, once each; those in a blocked
        // range already are not listed again.
        assert!(lines.contains(&"ip daddr { 192.0.2.2 } reject"), "{rules}");
        assert!(
            lines.contains(&"ip6 daddr { 2001:db8::2 } reject"),
            "{rules}"
        );
        assert!(!rules.contains("10.0.0.5"));
    }

    #[test]
    fn only_loopback_mirrors_become_pasta_ports() {
        let net = BuildNetwork {
            egress: BuildEgress::Public,
            allow: vec![
                "127.0.0.1:4873".parse().unwrap(),
                "[::1]:4873".parse().unwrap(),
                "10.1.2.3:3141".parse().unwrap(),
            ],
        };
        assert_eq!(net.loopback_ports(), [4873]);
    }
}
