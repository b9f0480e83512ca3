//! What the harness reads from `/proc`: a process's CPU time
//! (`/proc/<pid>/stat`, `utime + stime`, all threads), its resident set
//! (`/proc/<pid>/status`, `VmRSS` and the peak `VmHWM`), and a description of
//! the machine (cores, CPU model, kernel, memory) for the report.
//!
//! Parsing is kept apart from reading so that it can be unit-tested on
//! captured text.

use anyhow::{Context, anyhow};
use serde::Serialize;

/// CPU time of a process in clock ticks (`sysconf(_SC_CLK_TCK)` per second).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuTicks {
    pub utime: u64,
    pub stime: u64,
}

impl CpuTicks {
    pub fn total(self) -> u64 {
        self.utime + self.stime
    }

    /// Ticks spent since `earlier` (zero if the counter went backwards).
    pub fn since(self, earlier: CpuTicks) -> u64 {
        self.total().saturating_sub(earlier.total())
    }
}

/// Parses the text of `/proc/<pid>/stat`. The command name (field 2) is in
/// parentheses and may itself contain spaces and parentheses, so fields are
/// counted from the last `)`: the next field is the state (field 3), and
/// `utime`, `stime` are fields 14 and 15.
pub fn parse_stat(text: &str) -> anyhow::Result<CpuTicks> {
    let rest = text
        .rfind(')')
        .and_then(|i| text.get(i + 1..))
        .ok_or_else(|| anyhow!("no command name in stat line"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| -> anyhow::Result<u64> {
        // fields[0] is field 3
        let raw = fields
            .get(n - 3)
            .ok_or_else(|| anyhow!("stat line has no field {n}"))?;
        raw.parse::<u64>()
            .with_context(|| format!("stat field {n} is not a number: {raw}"))
    };
    Ok(CpuTicks {
        utime: field(14)?,
        stime: field(15)?,
    })
}

/// Machine-wide CPU time from the first line of `/proc/stat`, in ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MachineTicks {
    /// user + nice + system + irq + softirq + steal.
    pub busy: u64,
    /// busy + idle + iowait.
    pub total: u64,
}

/// Parses the `cpu ` line of `/proc/stat`.
pub fn parse_machine_stat(text: &str) -> anyhow::Result<MachineTicks> {
    let line = text
        .lines()
        .find(|l| l.starts_with("cpu "))
        .ok_or_else(|| anyhow!("no cpu line in /proc/stat"))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse::<u64>())
        .collect::<Result<_, _>>()
        .context("a /proc/stat field is not a number")?;
    anyhow::ensure!(v.len() >= 8, "short cpu line in /proc/stat");
    let busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
    Ok(MachineTicks {
        busy,
        total: busy + v[3] + v[4],
    })
}

/// Machine-wide CPU ticks now.
pub fn machine_ticks() -> anyhow::Result<MachineTicks> {
    parse_machine_stat(&std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?)
}

/// A `kB` figure of `/proc/<pid>/status` (`VmRSS`, `VmHWM`, …).
pub fn parse_status_kb(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        if name.trim() != key {
            return None;
        }
        value.split_whitespace().next()?.parse().ok()
    })
}

/// CPU ticks of a running process.
pub fn cpu_ticks(pid: u32) -> anyhow::Result<CpuTicks> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    parse_stat(&text)
}

/// Resident set and its peak, in kB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct Memory {
    pub rss_kb: u64,
    pub hwm_kb: u64,
}

/// `VmRSS` and `VmHWM` of a running process.
pub fn memory(pid: u32) -> anyhow::Result<Memory> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    Ok(Memory {
        rss_kb: parse_status_kb(&text, "VmRSS").ok_or_else(|| anyhow!("no VmRSS"))?,
        hwm_kb: parse_status_kb(&text, "VmHWM").unwrap_or(0),
    })
}

/// Clock ticks per second for `/proc/<pid>/stat` (100 on Linux in practice).
pub fn ticks_per_second() -> u64 {
    // SAFETY: sysconf has no preconditions and touches no memory of ours.
    let v = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(v).ok().filter(|v| *v > 0).unwrap_or(100)
}

/// The machine the figures were taken on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// Online cores (`nproc`).
    pub cores: usize,
    /// Cores this harness may use (its affinity mask at start).
    pub cores_available: usize,
    pub cpu_model: String,
    pub kernel: String,
    pub mem_total_mb: u64,
    pub load_average: String,
}

/// The first `model name` of `/proc/cpuinfo`.
pub fn parse_cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == "model name").then(|| v.trim().to_string())
    })
}

/// Counts `processor` entries of `/proc/cpuinfo`.
pub fn parse_cpu_count(cpuinfo: &str) -> usize {
    cpuinfo
        .lines()
        .filter(|l| l.split(':').next().map(str::trim) == Some("processor"))
        .count()
}

/// Describes this machine (best effort: unknown fields are left empty).
pub fn machine() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    Machine {
        cores: parse_cpu_count(&cpuinfo).max(1),
        cores_available: std::thread::available_parallelism().map_or(1, usize::from),
        cpu_model: parse_cpu_model(&cpuinfo).unwrap_or_default(),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_default(),
        mem_total_mb: parse_status_kb(&meminfo, "MemTotal").unwrap_or(0) / 1024,
        load_average: std::fs::read_to_string("/proc/loadavg")
            .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "12345 (heimdall (x) y) S 1 12345 12345 0 -1 4194560 2345 0 0 0 \
        731 129 0 0 20 0 3 0 987654 123456789 4321 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0";

    #[test]
    fn stat_fields_are_counted_from_the_last_parenthesis() {
        let t = parse_stat(STAT).unwrap();
        assert_eq!(
            t,
            CpuTicks {
                utime: 731,
                stime: 129
            }
        );
        assert_eq!(t.total(), 860);
    }

    #[test]
    fn stat_without_enough_fields_is_an_error() {
        assert!(parse_stat("1 (x) S 1 2 3").is_err());
        assert!(parse_stat("garbage").is_err());
    }

    #[test]
    fn tick_deltas_never_go_negative() {
        let a = CpuTicks {
            utime: 10,
            stime: 5,
        };
        let b = CpuTicks {
            utime: 40,
            stime: 7,
        };
        assert_eq!(b.since(a), 32);
        assert_eq!(a.since(b), 0);
    }

    #[test]
    fn machine_stat_busy_and_total() {
        let text = "cpu  100 5 50 1000 20 3 2 1 0 0\ncpu0 50 2 25 500 10 1 1 0 0 0\n";
        let t = parse_machine_stat(text).unwrap();
        assert_eq!(t.busy, 100 + 5 + 50 + 3 + 2 + 1);
        assert_eq!(t.total, t.busy + 1000 + 20);
        assert!(parse_machine_stat("intr 1 2 3").is_err());
    }

    #[test]
    fn status_figures_in_kb() {
        let status = "Name:\theimdall\nVmPeak:\t  123 kB\nVmHWM:\t   20480 kB\nVmRSS:\t   18432 kB\nThreads:\t3\n";
        assert_eq!(parse_status_kb(status, "VmRSS"), Some(18432));
        assert_eq!(parse_status_kb(status, "VmHWM"), Some(20480));
        assert_eq!(parse_status_kb(status, "VmSwap"), None);
    }

    #[test]
    fn cpuinfo_model_and_count() {
        let info = "processor\t: 0\nmodel name\t: AMD EPYC 7B13\n\nprocessor\t: 1\nmodel name\t: AMD EPYC 7B13\n";
        assert_eq!(parse_cpu_model(info).as_deref(), Some("AMD EPYC 7B13"));
        assert_eq!(parse_cpu_count(info), 2);
    }

    #[test]
    fn reads_this_process() {
        let pid = std::process::id();
        assert!(cpu_ticks(pid).is_ok());
        assert!(memory(pid).unwrap().rss_kb > 0);
        assert!(ticks_per_second() > 0);
    }
}
