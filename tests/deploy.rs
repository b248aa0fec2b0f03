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
        "write_window_ms",
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

/// The Grafana dashboard charts every series docs/METRICS.md lists, and only those.
#[test]
fn the_dashboard_charts_every_documented_series() {
    let dashboard = std::fs::read_to_string(deploy("grafana-dashboard.json")).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&dashboard).unwrap();
    let exprs: Vec<&str> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|panel| panel["targets"].as_array().unwrap())
        .map(|target| target["expr"].as_str().unwrap())
        .collect();
    let charted: std::collections::BTreeSet<String> = exprs
        .iter()
        .flat_map(|expr| expr.match_indices("streamgate_").map(|(i, _)| &expr[i..]))
        .map(|rest| {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            name.trim_end_matches("_bucket").to_owned()
        })
        .collect();
    let docs =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/METRICS.md"))
            .unwrap();
    let documented: std::collections::BTreeSet<String> = docs
        .lines()
        .filter_map(|line| line.strip_prefix("| `")?.split('`').next())
        .map(str::to_owned)
        .collect();
    assert!(documented.len() >= 20, "{documented:?}");
    assert_eq!(charted, documented);
}
