//! The operating-system limits that decide how many connections one process may hold.

/// The open-file limit after raising the soft limit to the hard one where possible.
///
/// Every subscriber is a file descriptor; a process beyond its limit gets `EMFILE` on the
/// next connect, so this number decides how subscribers are split across processes. A
/// refused raise leaves the inherited limit, and subscribers are split to fit it.
pub fn raise_open_files() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(_) => rlimit::Resource::NOFILE
            .get()
            .map_or(1024, |(soft, _)| soft),
    }
}

/// How many local ports one source address can use for outgoing connections.
pub fn ephemeral_ports() -> u64 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| {
            let mut bounds = text.split_whitespace().map(|w| w.parse::<u64>().ok());
            let (low, high) = (bounds.next()??, bounds.next()??);
            Some(high.saturating_sub(low) + 1)
        })
        .unwrap_or(28_232)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_readable_and_raising_never_lowers() {
        let (soft, _) = rlimit::Resource::NOFILE.get().unwrap();
        assert!(raise_open_files() >= soft);
        assert!(ephemeral_ports() > 1000);
    }
}
