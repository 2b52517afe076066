//! Two network namespaces joined by a veth pair (root), for tests that send between them.

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// `prefix` + tickwatch with `args` (e.g. prefix `ip netns exec NS`), run as a child.
pub fn spawn(prefix: &[&str], args: &[&str]) -> Child {
    const BIN: &str = env!("CARGO_BIN_EXE_tickwatch");
    let (prog, rest) = match prefix.split_first() {
        Some((p, rest)) => (*p, [rest, &[BIN], args].concat()),
        None => (BIN, args.to_vec()),
    };
    Command::new(prog)
        .args(rest)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting tickwatch")
}

/// Waits for `c` at most `limit` (then kills it and fails).
pub fn finish(mut c: Child, limit: Duration) -> Output {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if c.try_wait().unwrap().is_some() {
            return c.wait_with_output().unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = c.kill();
    let o = c.wait_with_output().unwrap();
    panic!("timed out: {}", String::from_utf8_lossy(&o.stderr));
}

/// The standard output of a child that succeeded.
pub fn check_ok(o: &Output) -> String {
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

/// `ip ARGS`, its error output as the error.
pub fn ip(args: &[&str]) -> Result<(), String> {
    let o = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| e.to_string())?;
    match o.status.success() {
        true => Ok(()),
        false => Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&o.stderr).trim()
        )),
    }
}

/// Two namespaces and a veth pair between them, removed on drop.
pub struct Netns {
    /// The sending namespace (10.77.0.1).
    pub a: String,
    /// The receiving namespace (10.77.0.2).
    pub b: String,
    /// The veth ends in `a` and in `b`.
    pub va: String,
    pub vb: String,
}

impl Netns {
    /// Both namespaces, the pair between them, and a multicast route on each end.
    pub fn new() -> Result<Netns, String> {
        let id = std::process::id() % 100_000;
        let n = Netns {
            a: format!("twa{id}"),
            b: format!("twb{id}"),
            va: format!("twva{id}"),
            vb: format!("twvb{id}"),
        };
        let (va, vb) = (&n.va, &n.vb);
        ip(&["netns", "add", &n.a])?;
        ip(&["netns", "add", &n.b])?;
        ip(&[
            "link", "add", va, "netns", &n.a, "type", "veth", "peer", "name", vb, "netns", &n.b,
        ])?;
        for (ns, dev, addr) in [(&n.a, va, "10.77.0.1/24"), (&n.b, vb, "10.77.0.2/24")] {
            ip(&["-n", ns, "addr", "add", addr, "dev", dev])?;
            ip(&["-n", ns, "link", "set", dev, "up"])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
            ip(&["-n", ns, "route", "add", "224.0.0.0/4", "dev", dev])?;
        }
        Ok(n)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.a]); // takes its end of the veth pair with it
        let _ = ip(&["netns", "del", &self.b]);
    }
}
