//! What the run was measured on (CPU model, cores, memory), and the process's resident memory.

use crate::report::Machine;

fn proc_field(file: &str, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines().find(|l| l.starts_with(key)).and_then(|l| l.split_once(':')).map(|(_, v)| v.trim().to_string())
}

/// The machine, from /proc.
pub fn machine() -> Machine {
    let cpu_model = proc_field("/proc/cpuinfo", "model name").unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let memory_mb = proc_field("/proc/meminfo", "MemTotal")
        .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse::<u64>().ok()))
        .map(|kb| kb / 1024)
        .unwrap_or(0);
    let os = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| format!("Linux {}", s.trim()))
        .unwrap_or_else(|_| std::env::consts::OS.into());
    Machine { cpu_model, cores, memory_mb, os }
}

// mimalloc's own entry point (the C library linked by the `mimalloc` crate exports it; the
// crate's wrapper needs a feature that would add a dependency).
extern "C" {
    fn mi_collect(force: bool);
}

/// This process's resident memory (VmRSS) in bytes, after asking the allocator to return the
/// memory it holds freed (the benchmark's generator frees about 40 MB per round; without this
/// VmRSS moves by tens of MB between identical runs).
pub fn rss_bytes() -> u64 {
    // SAFETY: mi_collect takes no pointers; it only releases free memory of the allocator.
    unsafe { mi_collect(true) };
    proc_field("/proc/self/status", "VmRSS")
        .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse::<u64>().ok()))
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// CPU time this process has used so far (user + system, all threads), in seconds.
pub fn cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct it is given and reads nothing else.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above; RUSAGE_SELF is a valid target.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return 0.0;
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}
