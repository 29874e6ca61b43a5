//! Child processes: the `linli-node` and `linli` binaries next to `linli-testnet`, free ports,
//! and a guard that kills every child (SIGKILL) when dropped unless the testnet is kept.
//! Children run in their own process group (a Ctrl-C at the terminal reaches only the testnet,
//! which then kills them) and, unless kept, die with the testnet (`PR_SET_PDEATHSIG`).

use anyhow::{bail, Context, Result};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Where the binaries are: the directory of the running `linli-testnet`, or `LINLI_BIN_DIR`.
#[derive(Clone, Debug)]
pub struct Bins {
    pub node: PathBuf,
    pub cli: PathBuf,
}

impl Bins {
    pub fn locate() -> Result<Bins> {
        let dir = match std::env::var_os("LINLI_BIN_DIR") {
            Some(d) => PathBuf::from(d),
            None => std::env::current_exe()?.parent().context("linli-testnet has no directory")?.to_path_buf(),
        };
        let bins = Bins { node: dir.join("linli-node"), cli: dir.join("linli") };
        for b in [&bins.node, &bins.cli] {
            if !b.is_file() {
                bail!("{} not found: build the workspace's binaries (cargo build --workspace --bins)", b.display());
            }
        }
        Ok(bins)
    }
}

/// Run a binary to completion (for `init`, `genesis`, `check`, `verify`); stdout on success.
/// Killed if the testnet gives up waiting (Ctrl-C drops the future).
pub async fn run(bin: &Path, args: &[&str]) -> Result<String> {
    let out = tokio::process::Command::new(bin)
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .with_context(|| format!("running {}", bin.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!(
            "{} {} failed ({}): {}{}",
            bin.display(),
            args.join(" "),
            out.status,
            stdout,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(stdout)
}

/// A free TCP port on 127.0.0.1 in 20000-32767 (below the kernel's ephemeral range, so
/// outgoing connections cannot take it between this check and the child's bind).
pub fn free_port() -> Result<u16> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let base = (std::process::id() % 64) * 190;
    for _ in 0..12_768 {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = 20000 + ((base + n) % 12_768) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    bail!("no free port in 20000-32767")
}

/// A long-running child (a node or a till), restartable with the same arguments.
pub struct Proc {
    pub name: String,
    bin: PathBuf,
    args: Vec<String>,
    log: PathBuf,
    child: Option<Child>,
    keep: bool,
    stopped: bool,
}

impl Proc {
    /// Start `bin args...` with stdout and stderr appended to `log`.
    pub fn spawn(name: &str, bin: &Path, args: &[String], log: &Path, keep: bool) -> Result<Proc> {
        let mut p = Proc {
            name: name.into(),
            bin: bin.into(),
            args: args.to_vec(),
            log: log.into(),
            child: None,
            keep,
            stopped: false,
        };
        p.start()?;
        Ok(p)
    }

    /// (Re)start the process after it exited or was killed.
    pub fn start(&mut self) -> Result<()> {
        let out = std::fs::OpenOptions::new().create(true).append(true).open(&self.log)?;
        let mut cmd = Command::new(&self.bin);
        cmd.args(&self.args)
            .env("RUST_LOG", std::env::var("LINLI_CHILD_LOG").unwrap_or_else(|_| "info".into()))
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .process_group(0);
        if !self.keep {
            // The signal fires when the spawning *thread* ends: spawn only from the main thread
            // or a runtime worker thread, never from a short-lived blocking thread.
            // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
            unsafe {
                cmd.pre_exec(|| {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        self.child = Some(cmd.spawn().with_context(|| format!("starting {}", self.name))?);
        self.stopped = false;
        Ok(())
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// `Some(status)` if the process has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.as_mut().and_then(|c| c.try_wait().ok().flatten())
    }

    fn signal(&self, sig: libc::c_int) -> Result<()> {
        let pid = self.pid().context("not running")?;
        // SAFETY: kill(2) on our own child's pid.
        if unsafe { libc::kill(pid as libc::pid_t, sig) } != 0 {
            bail!("signal {sig} to {}: {}", self.name, std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) -> Result<()> {
        self.cont();
        if let Some(mut c) = self.child.take() {
            c.kill().ok();
            c.wait()?;
        }
        Ok(())
    }

    /// Freeze the process (SIGSTOP): its sockets stay open but nothing is read or answered, so
    /// its peers see it cut off.
    pub fn pause(&mut self) -> Result<()> {
        self.signal(libc::SIGSTOP)?;
        self.stopped = true;
        Ok(())
    }

    /// Resume a frozen process (SIGCONT).
    pub fn cont(&mut self) {
        if self.stopped && self.signal(libc::SIGCONT).is_ok() {
            self.stopped = false;
        }
    }

    /// Graceful stop: SIGTERM, then SIGKILL after `grace`.
    pub async fn stop(&mut self, grace: Duration) -> Result<()> {
        self.cont();
        if self.child.is_none() {
            return Ok(());
        }
        self.signal(libc::SIGTERM).ok();
        let start = Instant::now();
        while start.elapsed() < grace {
            if self.exited().is_some() {
                self.child = None;
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.kill()
    }

    /// Forget the child without killing it (`--keep`, after a successful run).
    pub fn detach(&mut self) {
        self.child = None;
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.kill().ok();
        }
    }
}
