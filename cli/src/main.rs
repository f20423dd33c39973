//! `backhaul`: background, resumable HTTP(S) transfer jobs from the command line.
//!
//! This file holds the command line (clap) and the dispatch; each verb lives in its own
//! module. Exit codes: 0 success, 1 the transfer failed, 2 the command line was refused,
//! 130 interrupted by Ctrl+C.

mod client;
mod credentials;
mod daemon;
mod report;
mod security;
mod transfer;
mod verbs;

/// The wire protocol lives in the library half of this package (`src/lib.rs`).
use backhaul_cli::protocol;

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use backhaul_core::auth::AuthTarget;
use backhaul_core::job::RedirectPolicy;
use backhaul_core::JobPriority;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::error::ErrorKind;
use clap::{Args, CommandFactory, Parser, Subcommand};

use crate::transfer::Runtime;

/// The system daemon's job store.
const SYSTEM_STORE: &str = "/var/lib/backhaul/jobs.redb";

/// Set by the Ctrl+C handler; the running verb cancels its job and exits 130.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// backhaul: background, resumable HTTP(S) transfer jobs (a re-creation of Windows BITS).
#[derive(Debug, Parser)]
#[command(name = "backhaul", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,

    /// The daemon's socket (default: $BACKHAUL_SOCKET, else
    /// $XDG_RUNTIME_DIR/backhaul/backhaul.sock; /run/backhaul/backhaul.sock with --system).
    #[arg(long, global = true, value_name = "PATH")]
    socket: Option<PathBuf>,

    /// Talk to (or run) the system daemon, which serves every user.
    #[arg(long, global = true)]
    system: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Download files in one job and wait until they are in place.
    ///
    /// Creates a job, adds each URL/DEST pair, resumes it and waits. Transient errors
    /// (TRANSIENT_ERROR) are retried every --retry-delay seconds until --no-progress-timeout
    /// turns them fatal; a fatal error (ERROR) cancels the job and exits 1. On success the job
    /// is completed: every file appears whole at its DEST (exit 0).
    ///
    /// Exit codes: 0 every file is in place, 1 the transfer failed, 2 the command line was
    /// refused (nothing is created), 130 interrupted (the job is cancelled).
    #[command(
        override_usage = "backhaul transfer [OPTIONS] <URL> <DEST> [<URL> <DEST>]...",
        after_help = "Examples:\n  backhaul transfer https://example.com/a.iso /srv/a.iso\n  \
                      backhaul transfer --json -q http://h/a /tmp/a http://h/b /tmp/b"
    )]
    Transfer(Box<TransferArgs>),

    /// Run the engine over a job store and serve the verbs on a local socket.
    ///
    /// A per-user daemon is started by the first verb when none is running; `--system` (as
    /// root) serves every user, each seeing only their own jobs.
    Daemon(DaemonArgs),

    #[command(flatten)]
    Verb(verbs::Verb),
}

/// `backhaul daemon`'s arguments.
#[derive(Debug, Args)]
struct DaemonArgs {
    /// The job store (default: $XDG_STATE_HOME/backhaul/jobs.redb, or
    /// ~/.local/state/backhaul/jobs.redb; /var/lib/backhaul/jobs.redb with --system).
    #[arg(long, value_name = "PATH", conflicts_with = "memory")]
    store: Option<PathBuf>,

    /// Keep jobs in memory only: they end with the daemon.
    #[arg(long)]
    memory: bool,

    /// Trust the CA certificates in this PEM file for HTTPS, besides the system's (repeatable).
    #[arg(long = "ca-file", value_name = "PEM")]
    ca_files: Vec<PathBuf>,

    /// Checkpoint a running file after this many bytes (default 8 MiB): a crash re-fetches at
    /// most about this much of it, and each checkpoint costs an fdatasync and a store commit.
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(1..))]
    checkpoint_bytes: Option<u64>,

    /// …or after this many milliseconds (default 5000), whichever comes first.
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..))]
    checkpoint_interval_ms: Option<u64>,
}

/// `backhaul transfer`'s arguments.
#[derive(Debug, Args)]
struct TransferArgs {
    /// URL/DEST pairs: an http or https URL (at most 2,200 characters) and the absolute path
    /// the file is saved to (its directory must exist).
    #[arg(value_names = ["URL", "DEST"], required = true, num_args = 2..)]
    pairs: Vec<OsString>,

    /// Which driver runs the job.
    #[arg(long, value_enum, default_value_t = Runtime::Tokio)]
    runtime: Runtime,

    /// The job's priority.
    #[arg(long, default_value = "foreground", ignore_case = true, value_parser = priority_parser())]
    priority: JobPriority,

    /// Trust the CA certificates in this PEM file for HTTPS, besides the system's (repeatable).
    #[arg(long = "ca-file", value_name = "PEM")]
    ca_files: Vec<PathBuf>,

    /// Use the CRLs in this file (PEM or DER) when revocation is checked, before fetching
    /// any from the certificates' distribution points (repeatable).
    #[arg(long = "crl-file", value_name = "PATH")]
    crl_files: Vec<PathBuf>,

    /// Seconds to wait before retrying after a transient error (BITS' default is 600; the
    /// engine uses at least 5).
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    retry_delay: u32,

    /// Seconds without progress after which a transient error becomes fatal (BITS' default is
    /// 1,209,600, i.e. 14 days; 0 makes every error fatal).
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    no_progress_timeout: u32,

    /// The job's display name.
    #[arg(long, value_name = "NAME", default_value = "backhaul transfer")]
    display_name: String,

    /// BITS' SetSecurityFlags: a number (e.g. 0x0005) or names separated by commas: crl,
    /// ignore-cn, ignore-date, ignore-unknown-ca, ignore-wrong-usage.
    #[arg(long, value_name = "FLAGS", value_parser = security::parse_security_flags, default_value = "0")]
    security_flags: u32,

    /// What a redirect does: follow it (silent, the default), follow it and rename the file's
    /// remote name to the final URL (report), or fail the job (disallow).
    #[arg(long, value_name = "POLICY", value_parser = redirect_policy_parser())]
    redirect_policy: Option<RedirectPolicy>,

    /// Follow a redirect from https to http (refused by default).
    #[arg(long)]
    allow_https_to_http: bool,

    /// Server credentials, `SCHEME:USER` (repeatable, one per scheme: basic, digest, ntlm,
    /// negotiate, passport); `SCHEME:` for the logged-on user (ntlm, negotiate). The password
    /// comes from --password-env, or a prompt on a terminal — never the command line.
    #[arg(long = "server-auth", value_name = "SCHEME:USER", value_parser = credentials::parse_auth_option)]
    server_auth: Vec<credentials::AuthOption>,

    /// The environment variable holding the server password.
    #[arg(long, value_name = "VAR")]
    password_env: Option<String>,

    /// Proxy credentials, `SCHEME:USER` (repeatable), as --server-auth.
    #[arg(long = "proxy-auth", value_name = "SCHEME:USER", value_parser = credentials::parse_auth_option)]
    proxy_auth: Vec<credentials::AuthOption>,

    /// The environment variable holding the proxy password.
    #[arg(long, value_name = "VAR")]
    proxy_password_env: Option<String>,

    /// Go through this proxy (repeatable: a list tried in order): `host:port`,
    /// `http://host:port`, or `socks5://[user:password@]host:port`. Without it, the
    /// HTTP_PROXY / HTTPS_PROXY / ALL_PROXY / NO_PROXY environment applies.
    #[arg(long = "proxy", value_name = "URL", conflicts_with = "no_proxy")]
    proxies: Vec<String>,

    /// Hosts reached directly despite --proxy: `;`-separated, a leftmost `*` wildcard, and
    /// `<local>` for names without a dot.
    #[arg(long, value_name = "LIST")]
    proxy_bypass: Option<String>,

    /// Connect directly, whatever the environment says.
    #[arg(long)]
    no_proxy: bool,

    /// An extra request header, `'Name: value'` (repeatable). Sent on every request to the
    /// origin of each file's URL, never past a redirect to another origin.
    #[arg(long = "header", short = 'H', value_name = "'NAME: VALUE'")]
    headers: Vec<String>,

    /// Accept an HTTPS server only when its leaf certificate's SHA-256 (64 hex digits, `:`
    /// allowed) is one of these (repeatable). Built on the certificate validation callback;
    /// runs after the usual checks, which --security-flags can relax.
    #[arg(long = "pin-sha256", value_name = "HEX", value_parser = security::parse_pin)]
    pins: Vec<[u8; 32]>,

    /// Keep the job in this job store (a redb file, created owner-only) while it runs: if the
    /// process dies (a crash, kill -9, a reboot) or is interrupted with Ctrl+C, the same command
    /// run again finds the job there and resumes each file from its last checkpoint.
    #[arg(long, value_name = "PATH")]
    store: Option<PathBuf>,

    /// Print one JSON object on stdout at the end: job id, final state, each file (url, dest,
    /// bytes) and, on failure, the error (context, code, hresult, message). Printed even with -q.
    #[arg(long)]
    json: bool,

    /// No progress bar and no output but errors.
    #[arg(short, long)]
    quiet: bool,
}

/// `--redirect-policy`: the three names, parsed by core's `RedirectPolicy::from_str`.
fn redirect_policy_parser() -> impl TypedValueParser<Value = RedirectPolicy> {
    PossibleValuesParser::new(["silent", "report", "disallow"])
        .try_map(|s| s.parse::<RedirectPolicy>())
}

/// `--priority`: the four names, parsed by core's `JobPriority::from_str`.
fn priority_parser() -> impl TypedValueParser<Value = JobPriority> {
    PossibleValuesParser::new(["foreground", "high", "normal", "low"])
        .try_map(|s| s.parse::<JobPriority>())
}

impl TransferArgs {
    /// The request, once the URL/DEST list has the right shape.
    fn into_request(self) -> Result<transfer::Request, clap::Error> {
        let security_flags = security::fold_security_flags(
            self.security_flags,
            self.redirect_policy,
            self.allow_https_to_http,
        )
        .map_err(|why| usage_error(format!("--security-flags: {why}")))?;
        if let Some(bad) = self.headers.iter().find(|h| h.contains(['\r', '\n'])) {
            return Err(usage_error(format!(
                "--header {:?}: one header per --header, without CR or LF",
                report::shorten(bad)
            )));
        }
        let mut auth = credentials::credentials(
            AuthTarget::Server,
            &self.server_auth,
            self.password_env.as_deref(),
        )
        .map_err(|why| usage_error(format!("--server-auth: {why}")))?;
        auth.extend(
            credentials::credentials(
                AuthTarget::Proxy,
                &self.proxy_auth,
                self.proxy_password_env.as_deref(),
            )
            .map_err(|why| usage_error(format!("--proxy-auth: {why}")))?,
        );
        let proxy =
            credentials::proxy_settings(&self.proxies, self.proxy_bypass.as_deref(), self.no_proxy)
                .map_err(|why| usage_error(format!("--proxy: {why}")))?;
        Ok(transfer::Request {
            credentials: auth,
            proxy,
            security_flags,
            headers: self.headers,
            pins: self.pins,
            runtime: self.runtime,
            pairs: pairs(self.pairs)?,
            display_name: self.display_name,
            priority: self.priority,
            ca_files: self.ca_files,
            crl_files: self.crl_files,
            retry_delay: self.retry_delay,
            no_progress_timeout: self.no_progress_timeout,
            json: self.json,
            quiet: self.quiet,
            store: self.store,
        })
    }
}

/// `transfer`'s clap command, to word usage errors found after parsing.
fn transfer_command() -> clap::Command {
    Cli::command()
        .find_subcommand_mut("transfer")
        .expect("transfer is a subcommand")
        .clone()
        .bin_name("backhaul transfer")
}

/// A usage error (exit 2) of `transfer` found after parsing.
fn usage_error(message: String) -> clap::Error {
    transfer_command().error(ErrorKind::ValueValidation, message)
}

/// Split `URL DEST URL DEST …` into pairs: an odd count, or a URL that is not UTF-8, is a
/// usage error (exit 2) before any job exists.
fn pairs(args: Vec<OsString>) -> Result<Vec<(String, PathBuf)>, clap::Error> {
    let usage = |message: String| transfer_command().error(ErrorKind::WrongNumberOfValues, message);
    if !args.len().is_multiple_of(2) {
        let last = args
            .last()
            .map(|a| a.to_string_lossy().into_owned())
            .unwrap_or_default();
        return Err(usage(format!(
            "URL and DEST come in pairs, but {} arguments were given: {} has no DEST",
            args.len(),
            report::shorten(&last)
        )));
    }
    let mut out = Vec::with_capacity(args.len() / 2);
    let mut it = args.into_iter();
    while let (Some(url), Some(dest)) = (it.next(), it.next()) {
        let url = url
            .into_string()
            .map_err(|u| usage(format!("URL {} is not valid UTF-8", u.to_string_lossy())))?;
        out.push((url, PathBuf::from(dest)));
    }
    Ok(out)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let socket = cli
        .socket
        .clone()
        .unwrap_or_else(|| daemon::socket::default_socket(cli.system));
    match cli.command {
        Command::Daemon(args) => {
            let store = if args.memory {
                None
            } else if cli.system {
                Some(args.store.unwrap_or_else(|| PathBuf::from(SYSTEM_STORE)))
            } else {
                args.store.or_else(backhaul_io::default_store_path)
            };
            let options = daemon::DaemonOptions {
                socket,
                store,
                system: cli.system,
                ca_files: args.ca_files,
                checkpoint_bytes: args.checkpoint_bytes,
                checkpoint_interval: args
                    .checkpoint_interval_ms
                    .map(std::time::Duration::from_millis),
            };
            match daemon::run(options) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("backhaul: daemon: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Verb(verb) => ExitCode::from(verbs::run(verb, socket, !cli.system)),
        Command::Transfer(args) => {
            let request = args.into_request().unwrap_or_else(|e| e.exit());
            catch_ctrl_c();
            let outcome = transfer::run(&request, &INTERRUPTED);
            if let Some(failure) = &outcome.failure {
                eprintln!("{}", failure.error_line());
            }
            if request.json {
                println!("{}", outcome.to_json());
            } else if !request.quiet && outcome.failure.is_none() {
                println!("{}", outcome.summary_line());
            }
            let _ = std::io::stdout().flush();
            ExitCode::from(outcome.exit_code())
        }
    }
}

/// On the first Ctrl+C, set [`INTERRUPTED`] (the verb cancels its job); on the second, exit at
/// once. Listens on a small thread of its own, whichever driver runs the job.
fn catch_ctrl_c() {
    let spawned = std::thread::Builder::new()
        .name("backhaul-ctrl-c".into())
        .spawn(|| {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                while tokio::signal::ctrl_c().await.is_ok() {
                    if INTERRUPTED.swap(true, Ordering::SeqCst) {
                        std::process::exit(i32::from(report::EXIT_INTERRUPTED));
                    }
                }
            });
        });
    // Without the thread, Ctrl+C keeps its default action: the process ends, the job with it.
    drop(spawned);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<transfer::Request, clap::Error> {
        let mut argv = vec!["backhaul", "transfer"];
        argv.extend_from_slice(args);
        let cli = Cli::try_parse_from(argv)?;
        match cli.command {
            Command::Transfer(args) => args.into_request(),
            other => panic!("parsed as another command: {other:?}"),
        }
    }

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn daemon_checkpoints_are_tunable_but_never_zero() {
        // Zero would checkpoint (fdatasync and commit) after every body chunk.
        let parse = |args: &[&str]| Cli::try_parse_from([&["backhaul", "daemon"], args].concat());
        assert!(parse(&["--checkpoint-bytes", "0"]).is_err());
        assert!(parse(&["--checkpoint-interval-ms", "0"]).is_err());
        let cli = parse(&[
            "--checkpoint-bytes",
            "32768",
            "--checkpoint-interval-ms",
            "100",
        ]);
        match cli.unwrap().command {
            Command::Daemon(a) => assert_eq!(
                (a.checkpoint_bytes, a.checkpoint_interval_ms),
                (Some(32_768), Some(100))
            ),
            other => panic!("parsed as another command: {other:?}"),
        }
    }

    #[test]
    fn defaults_are_tokio_foreground_10s_retry_300s_timeout() {
        let r = parse(&["http://h/a", "/tmp/a"]).unwrap();
        assert_eq!(r.runtime, Runtime::Tokio);
        assert_eq!(r.priority, JobPriority::Foreground);
        assert_eq!(r.retry_delay, 10);
        assert_eq!(r.no_progress_timeout, 300);
        assert_eq!(r.display_name, "backhaul transfer");
        assert!(!r.json && !r.quiet && r.ca_files.is_empty() && r.crl_files.is_empty());
        assert_eq!(
            r.pairs,
            [("http://h/a".to_string(), PathBuf::from("/tmp/a"))]
        );
    }

    #[test]
    fn every_option_is_parsed() {
        let r = parse(&[
            "--runtime",
            "blocking",
            "--priority",
            "LOW",
            "--ca-file",
            "a.pem",
            "--ca-file",
            "b.pem",
            "--crl-file",
            "a.crl",
            "--crl-file",
            "b.crl",
            "--retry-delay",
            "7",
            "--no-progress-timeout",
            "0",
            "--display-name",
            "nightly",
            "--json",
            "-q",
            "http://h/a",
            "/tmp/a",
            "https://h/b",
            "/tmp/b",
        ])
        .unwrap();
        assert_eq!(r.runtime, Runtime::Blocking);
        assert_eq!(r.priority, JobPriority::Low);
        assert_eq!(r.ca_files, [PathBuf::from("a.pem"), PathBuf::from("b.pem")]);
        assert_eq!(
            r.crl_files,
            [PathBuf::from("a.crl"), PathBuf::from("b.crl")]
        );
        assert_eq!((r.retry_delay, r.no_progress_timeout), (7, 0));
        assert_eq!(r.display_name, "nightly");
        assert!(r.json && r.quiet);
        assert_eq!(r.pairs.len(), 2);
        assert_eq!(
            r.pairs[1],
            ("https://h/b".to_string(), PathBuf::from("/tmp/b"))
        );
    }

    #[test]
    fn odd_argument_count_is_a_usage_error_naming_the_lone_url() {
        let e = parse(&["http://h/a", "/tmp/a", "http://h/b"]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::WrongNumberOfValues);
        assert_eq!(e.exit_code(), 2);
        let text = e.to_string();
        assert!(
            text.contains("come in pairs") && text.contains("http://h/b has no DEST"),
            "{text}"
        );
    }

    #[test]
    fn a_single_argument_is_a_usage_error() {
        let e = parse(&["http://h/a"]).unwrap_err();
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn no_argument_is_a_usage_error() {
        let e = parse(&[]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::MissingRequiredArgument);
    }

    #[test]
    fn unknown_priority_is_a_usage_error_listing_the_values() {
        let e = parse(&["--priority", "urgent", "http://h/a", "/tmp/a"]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidValue);
        assert_eq!(e.exit_code(), 2);
        let text = e.to_string();
        assert!(
            text.contains("urgent") && text.contains("foreground"),
            "{text}"
        );
    }

    #[test]
    fn unknown_runtime_is_a_usage_error() {
        let e = parse(&["--runtime", "async-std", "http://h/a", "/tmp/a"]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidValue);
    }

    #[test]
    fn bad_numbers_are_usage_errors() {
        let e = parse(&["--retry-delay", "-1", "http://h/a", "/tmp/a"]).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        let e = parse(&["--no-progress-timeout", "soon", "http://h/a", "/tmp/a"]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ValueValidation);
    }

    #[test]
    fn help_states_the_defaults() {
        let mut cmd = Cli::command();
        let help = cmd
            .find_subcommand_mut("transfer")
            .unwrap()
            .render_long_help()
            .to_string();
        assert!(help.contains("[default: 10]"), "{help}");
        assert!(help.contains("[default: 300]"), "{help}");
        assert!(help.contains("[default: foreground]"), "{help}");
        assert!(help.contains("[default: tokio]"), "{help}");
    }
}
