//! What `deploy/` ships stays right: every config file there is one `check-config` accepts,
//! the example names every key the gateway knows, and the systemd unit is one systemd
//! accepts.

use std::path::Path;
use std::process::Command;

fn deploy(file: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(file)
}

#[test]
fn every_config_in_deploy_is_accepted() {
    for file in ["streamgate.toml", "container.toml", "cluster.toml"] {
        let output = Command::new(env!("CARGO_BIN_EXE_streamgate"))
            .arg("check-config")
            .arg(deploy(file))
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{file}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[test]
fn the_example_names_every_section() {
    let example = std::fs::read_to_string(deploy("streamgate.toml")).unwrap();
    for section in [
        "[server]",
        "[log]",
        "[channels]",
        "[stream]",
        "[poll]",
        "[[api]]",
        "[[relay]]",
        "[[key]]",
        "[auth]",
        "[limits]",
        "[http]",
        "[bus]",
        "[mercure]",
    ] {
        assert!(example.contains(section), "{section} missing");
    }
    for key in [
        "tls_cert_file",
        "redis_url",
        "node_timeout_ms",
        "publish_burst",
        "jwks_file",
    ] {
        assert!(example.contains(key), "{key} missing");
    }
}

#[test]
fn the_systemd_unit_is_one_systemd_accepts() {
    // systemd checks that the program exists: this build's stands in for the installed one.
    let unit = std::fs::read_to_string(deploy("streamgate.service")).unwrap();
    let unit = unit.replace(
        "/usr/local/bin/streamgate",
        env!("CARGO_BIN_EXE_streamgate"),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("streamgate.service");
    std::fs::write(&path, unit).unwrap();
    let output = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze (Debian's systemd; ./test.sh installs it)");
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success() && said.trim().is_empty(), "{said}");
}
