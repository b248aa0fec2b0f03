//! A real `redis-server` on a free loopback port, started by the test and killed on drop.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A Redis started by a test: one server, or a cluster.
pub trait BusUnderTest {
    /// What a gateway's config needs to use it.
    fn bus_config(&self) -> String;
    /// Kills it (SIGKILL): everything it held is gone.
    fn kill(&mut self);
    /// Starts it again on the same ports, empty (or from its last snapshot), and waits
    /// until it serves.
    fn restart(&mut self);
}

pub struct Redis {
    child: Option<Child>,
    pub port: u16,
    /// With TLS: the folder holding the server's certificate and key.
    tls: Option<tempfile::TempDir>,
    /// Where it keeps its snapshot, if it keeps one.
    dir: Option<tempfile::TempDir>,
    /// The password clients must give, if any.
    password: Option<String>,
    /// A node of a Redis Cluster: the file it keeps the cluster's state in.
    cluster: Option<std::path::PathBuf>,
}

impl Redis {
    /// Starts a Redis that keeps nothing on disk (a restart is a Redis that lost its data).
    pub fn start() -> Redis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut redis = Redis {
            child: None,
            port,
            tls: None,
            dir: None,
            password: None,
            cluster: None,
        };
        redis.spawn();
        redis
    }

    /// Starts a Redis that speaks only TLS, with `cert` and `key` (PEM).
    pub fn start_tls(cert: &str, key: &str) -> Redis {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cert.pem"), cert).unwrap();
        std::fs::write(dir.path().join("key.pem"), key).unwrap();
        let mut redis = Redis::start();
        redis.kill();
        redis.tls = Some(dir);
        redis.spawn();
        redis
    }

    /// Starts a Redis that keeps a snapshot when told (`SAVE`) and starts again from it:
    /// a restart is a Redis gone back to its last snapshot, as a replica that lagged is
    /// when it is promoted.
    pub fn start_saving() -> Redis {
        let mut redis = Redis::start();
        redis.kill();
        redis.dir = Some(tempfile::tempdir().unwrap());
        redis.spawn();
        redis
    }

    /// Starts a Redis that refuses clients without `password`.
    pub fn start_with_password(password: &str) -> Redis {
        let mut redis = Redis::start();
        redis.kill();
        redis.password = Some(password.to_owned());
        redis.spawn();
        redis
    }

    fn spawn(&mut self) {
        let mut command = Command::new("redis-server");
        match &self.tls {
            None => command.args(["--port", &self.port.to_string()]),
            Some(dir) => command
                .args(["--port", "0", "--tls-port", &self.port.to_string()])
                .arg("--tls-cert-file")
                .arg(dir.path().join("cert.pem"))
                .arg("--tls-key-file")
                .arg(dir.path().join("key.pem"))
                .args(["--tls-auth-clients", "no"]),
        };
        command
            .args(["--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"]);
        if let Some(dir) = &self.dir {
            command.arg("--dir").arg(dir.path());
        }
        if let Some(password) = &self.password {
            command.args(["--requirepass", password]);
        }
        if let Some(file) = &self.cluster {
            command
                .args(["--cluster-enabled", "yes", "--cluster-config-file"])
                .arg(file);
        }
        let child = command.stdout(Stdio::null()).spawn().expect(
            "redis-server is not installed: ./test.sh installs it (apt-get install redis-server)",
        );
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs a command with `redis-cli`, returning what it printed.
    pub fn cli(&self, args: &[&str]) -> String {
        let mut command = Command::new("redis-cli");
        if let Some(password) = &self.password {
            command.args(["--no-auth-warning", "-a", password]);
        }
        let out = command
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli comes with redis-server");
        assert!(out.status.success(), "redis-cli {args:?} failed");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl BusUnderTest for Redis {
    fn bus_config(&self) -> String {
        format!(
            "[bus]\nbackend = \"redis\"\nredis_url = \"redis://127.0.0.1:{}/0\"\n",
            self.port
        )
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A Redis Cluster of three primaries (no replicas) on free loopback ports, its slots spread
/// over them by `redis-cli --cluster create`.
pub struct RedisCluster {
    nodes: Vec<Redis>,
    _dir: tempfile::TempDir,
}

impl RedisCluster {
    pub fn start() -> RedisCluster {
        let dir = tempfile::tempdir().unwrap();
        let nodes: Vec<Redis> = (0..3)
            .map(|_| {
                let mut node = Redis::start();
                node.kill();
                node.cluster = Some(dir.path().join(format!("nodes-{}.conf", node.port)));
                node.spawn();
                node
            })
            .collect();
        let addresses: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let out = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::null())
            .status()
            .expect("redis-cli comes with redis-server");
        assert!(out.success(), "redis-cli --cluster create failed");
        let cluster = RedisCluster { nodes, _dir: dir };
        cluster.until_ok();
        cluster
    }

    /// Waits until every node says the cluster serves all its slots.
    fn until_ok(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let ok = |n: &Redis| n.cli(&["cluster", "info"]).contains("cluster_state:ok");
        while !self.nodes.iter().all(ok) {
            assert!(Instant::now() < deadline, "the cluster did not come up");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Moves the slot of `key`, with the keys in it, to another node, as resharding does.
    pub fn move_slot_of(&self, key: &str) {
        let slot: u16 = self.nodes[0]
            .cli(&["cluster", "keyslot", key])
            .trim()
            .parse()
            .unwrap();
        let slot_text = slot.to_string();
        // `cluster nodes`: id, address, flags, ..., then the slot ranges it serves.
        let table = self.nodes[0].cli(&["cluster", "nodes"]);
        let serves = |line: &&str| {
            line.split_whitespace().skip(8).any(|range| {
                let (from, to) = range.split_once('-').unwrap_or((range, range));
                from.parse::<u16>().is_ok_and(|f| f <= slot)
                    && to.parse::<u16>().is_ok_and(|t| slot <= t)
            })
        };
        let owner = table.lines().find(serves).expect("the slot is served");
        let source_id = owner.split_whitespace().next().unwrap();
        let port_of = |line: &str| -> u16 {
            let address = line.split_whitespace().nth(1).unwrap();
            address.split(['@', ':']).nth(1).unwrap().parse().unwrap()
        };
        let source = self.node(port_of(owner));
        let target_line = table
            .lines()
            .find(|l| !l.starts_with(source_id) && !l.is_empty())
            .unwrap();
        let target_id = target_line.split_whitespace().next().unwrap();
        let target = self.node(port_of(target_line));
        target.cli(&["cluster", "setslot", &slot_text, "importing", source_id]);
        source.cli(&["cluster", "setslot", &slot_text, "migrating", target_id]);
        let keys = source.cli(&["cluster", "getkeysinslot", &slot_text, "1000"]);
        let keys: Vec<&str> = keys.lines().filter(|k| !k.is_empty()).collect();
        if !keys.is_empty() {
            let port = target.port.to_string();
            let mut migrate = vec!["migrate", "127.0.0.1", &port, "", "0", "5000", "keys"];
            migrate.extend(keys);
            source.cli(&migrate);
        }
        for node in &self.nodes {
            node.cli(&["cluster", "setslot", &slot_text, "node", target_id]);
        }
    }

    fn node(&self, port: u16) -> &Redis {
        self.nodes.iter().find(|n| n.port == port).unwrap()
    }

    /// The shard channels with a subscriber, and the classic ones, over every node.
    pub fn channels(&self) -> (Vec<String>, Vec<String>) {
        let lines = |args: &[&str]| -> Vec<String> {
            let nodes = self.nodes.iter().map(|n| n.cli(args));
            nodes
                .flat_map(|out| out.lines().map(str::to_owned).collect::<Vec<_>>())
                .filter(|l| !l.is_empty())
                .collect()
        };
        (
            lines(&["pubsub", "shardchannels"]),
            lines(&["pubsub", "channels"]),
        )
    }
}

impl BusUnderTest for RedisCluster {
    fn kill(&mut self) {
        self.nodes.iter_mut().for_each(Redis::kill);
    }

    /// Every node comes back empty, with the slots it had (its cluster state file).
    fn restart(&mut self) {
        self.nodes.iter_mut().for_each(Redis::restart);
        self.until_ok();
    }

    fn bus_config(&self) -> String {
        let urls: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("redis://127.0.0.1:{}", n.port))
            .collect();
        format!(
            "[bus]\nbackend = \"redis\"\nredis_cluster = true\nredis_url = \"{}\"\n",
            urls.join(",")
        )
    }
}
