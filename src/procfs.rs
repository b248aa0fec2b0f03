//! A process's memory, CPU and open files, read from `/proc/PID` (Linux): what `streamgate
//! bench` reports of the server it measures, and the gateway's own process metrics.

/// Clock ticks per second in `/proc/PID/stat`: the kernel's `USER_HZ`, 100 on every
/// mainstream Linux architecture (it is part of the user-space ABI, not the kernel's HZ).
const TICKS_PER_SECOND: u64 = 100;

/// Resident memory (`VmRSS`) of `pid` in KiB; `None` if the process or the field is gone.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|line| {
        line.strip_prefix("VmRSS:")?
            .trim()
            .strip_suffix("kB")?
            .trim()
            .parse()
            .ok()
    })
}

/// User plus system CPU time `pid` has used, in microseconds (10 ms resolution).
pub fn cpu_micros(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name in parentheses may hold spaces; the fields after it do not. Counting
    // from field 3 (state) after the name, utime and stime are fields 14 and 15.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some((user + system) * 1_000_000 / TICKS_PER_SECOND)
}

/// Files (sockets included) `pid` holds open; `None` if they cannot be listed.
pub fn open_files(pid: u32) -> Option<u64> {
    let entries = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    Some(entries.count() as u64)
}

/// Resident memory of all `pids` together; `None` if any of them is gone.
pub fn rss_kib_total(pids: &[u32]) -> Option<u64> {
    total(pids, rss_kib)
}

/// CPU time of all `pids` together; `None` if any of them is gone.
pub fn cpu_micros_total(pids: &[u32]) -> Option<u64> {
    total(pids, cpu_micros)
}

fn total(pids: &[u32], read: impl Fn(u32) -> Option<u64>) -> Option<u64> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().map(|&pid| read(pid)).sum()
}

/// Checks that `pid` can be read before a run relies on it.
pub fn check(pid: u32) -> Result<(), String> {
    match (rss_kib(pid), cpu_micros(pid)) {
        (Some(_), Some(_)) => Ok(()),
        _ => Err(format!(
            "--pid {pid}: cannot read /proc/{pid}/status and /proc/{pid}/stat \
             (no such process, or not Linux)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let pid = std::process::id();
        assert!(rss_kib(pid).unwrap() > 0);
        assert!(cpu_micros(pid).is_some());
        assert!(check(pid).is_ok());
        assert!(open_files(pid).unwrap() >= 3);
        assert!(check(u32::MAX).is_err());
        assert_eq!(rss_kib_total(&[]), None);
        assert_eq!(rss_kib_total(&[pid, u32::MAX]), None);
        let one = cpu_micros_total(&[pid]).unwrap();
        assert!(cpu_micros_total(&[pid, pid]).unwrap() >= 2 * one);
    }
}
