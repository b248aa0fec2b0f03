//! A real `redis-server` on a free loopback port, started by the test and killed on drop.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Redis {
    child: Option<Child>,
    pub port: u16,
    /// With TLS: the folder holding the server's certificate and key.
    tls: Option<tempfile::TempDir>,
    /// Where it keeps its snapshot, if it keeps one.
    dir: Option<tempfile::TempDir>,
    /// The password clients must give, if any.
    password: Option<String>,
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

    /// What a gateway's config needs to use this server.
    pub fn bus_config(&self) -> String {
        format!(
            "[bus]\nbackend = \"redis\"\nredis_url = \"redis://127.0.0.1:{}/0\"\n",
            self.port
        )
    }

    /// Kills the server (SIGKILL): everything it held is gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port: empty, or from its last snapshot.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
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

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}
