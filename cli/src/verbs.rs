//! bitsadmin's verbs, talking to the daemon: `backhaul create`, `addfile`, `resume`, `info`,
//! `list`, `monitor`, … A job is named by id or display name.

use std::path::PathBuf;
use std::time::Duration;

use clap::Subcommand;
use serde_json::Value;

use crate::client::Client;
use crate::protocol::{Op, WireError, WirePassword};

/// The verbs that talk to the daemon.
#[derive(Debug, Subcommand)]
pub(crate) enum Verb {
    /// Create a download job (prints its id).
    Create {
        /// The job's display name.
        display_name: String,
    },
    /// Add a file: URL to an absolute local path.
    Addfile {
        job: String,
        url: String,
        local: PathBuf,
    },
    /// Add a file made of byte ranges of the remote file: RANGES is `offset:length` separated
    /// by commas (`eof` as a length: to the end); the local file is the ranges concatenated in
    /// the order given.
    Addfilewithranges {
        job: String,
        url: String,
        local: PathBuf,
        ranges: String,
    },
    /// Set credentials: TARGET server|proxy, SCHEME basic|digest|ntlm|negotiate|passport, USER
    /// (`NULL` for the logged-on user, NTLM/Negotiate). The password comes from
    /// --password-env or a prompt on a terminal, never from the command line.
    Setcredentials {
        job: String,
        target: String,
        scheme: String,
        user: String,
        #[arg(long, value_name = "VAR")]
        password_env: Option<String>,
    },
    /// Remove the credentials of one target and scheme.
    Removecredentials {
        job: String,
        target: String,
        scheme: String,
    },
    /// Set the proxy usage: preconfig|no_proxy|override|autodetect, with a proxy list and a
    /// bypass list for override.
    Setproxysettings {
        job: String,
        usage: String,
        list: Option<String>,
        bypass: Option<String>,
    },
    /// Set BITS' security flags (a number, or names: crl, ignore-cn, ignore-date,
    /// ignore-unknown-ca, ignore-wrong-usage).
    Setsecurityflags {
        job: String,
        #[arg(value_parser = crate::security::parse_security_flags)]
        flags: u32,
    },
    /// Set custom headers, one argument per header (`'Name: value'`); none clears them.
    Setcustomheaders { job: String, headers: Vec<String> },
    /// Set the priority: foreground, high, normal or low.
    Setpriority { job: String, priority: String },
    /// Set the notify flags (BG_NOTIFY_* bits, e.g. 3).
    Setnotifyflags { job: String, flags: u32 },
    /// Set the program run on TRANSFERRED or ERROR (`NULL` clears); PARAMETERS start with the
    /// program itself, as in BITS.
    Setnotifycmdline {
        job: String,
        program: String,
        parameters: Option<String>,
    },
    /// Set the minimum retry delay, seconds.
    Setminretrydelay { job: String, secs: u32 },
    /// Set the no-progress timeout, seconds.
    Setnoprogresstimeout { job: String, secs: u32 },
    /// Set the maximum download time, seconds (0: none).
    Setmaxdownloadtime { job: String, secs: u32 },
    /// Set the display name.
    Setdisplayname { job: String, name: String },
    /// Set the description.
    Setdescription { job: String, description: String },
    /// Resume (start or retry) the job.
    Resume { job: String },
    /// Suspend the job.
    Suspend { job: String },
    /// Cancel the job: its temp files are deleted.
    Cancel { job: String },
    /// Complete the job: its files appear at their local names.
    Complete { job: String },
    /// Everything about a job.
    Info {
        job: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List your jobs (every user's with --all-users, administrators only).
    List {
        #[arg(long)]
        all_users: bool,
        /// Files and errors too.
        #[arg(long)]
        verbose: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Refresh the list until interrupted.
    Monitor {
        #[arg(long)]
        all_users: bool,
        /// Seconds between refreshes.
        #[arg(long, default_value_t = 1)]
        refresh: u64,
        /// Stop after this many refreshes.
        #[arg(long)]
        count: Option<u64>,
        /// Print JSON (one array per refresh).
        #[arg(long)]
        json: bool,
    },
    /// Become the job's owner (its credentials and custom headers are removed).
    Takeownership { job: String },
}

/// Runs a verb against the daemon at `socket`; the exit code.
pub(crate) fn run(verb: Verb, socket: PathBuf, autostart: bool) -> u8 {
    let result =
        Client::connect(&socket, autostart).and_then(|mut client| execute(&mut client, verb));
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("backhaul: error: {e}");
            1
        }
    }
}

fn execute(client: &mut Client, verb: Verb) -> Result<(), WireError> {
    let (op, done) = match verb {
        Verb::Create { display_name } => {
            let reply = client.request(Op::Create { display_name })?;
            println!("{}", reply["job"].as_str().unwrap_or_default());
            return Ok(());
        }
        Verb::Info { job, json } => {
            let info = client.request(Op::Info { job })?;
            print_info(&info, json);
            return Ok(());
        }
        Verb::List {
            all_users,
            verbose,
            json,
        } => {
            let jobs = client.request(Op::List { all_users })?;
            print_list(&jobs, verbose, json);
            return Ok(());
        }
        Verb::Monitor {
            all_users,
            refresh,
            count,
            json,
        } => return monitor(client, all_users, refresh, count, json),
        Verb::Complete { job } => {
            let reply = client.request(Op::Complete { job })?;
            let partial = reply["hresult"] != "0x00000000";
            let word = if partial {
                "completed (partially: BG_S_PARTIAL_COMPLETE)"
            } else {
                "completed"
            };
            println!("job {} {word}", reply["job"].as_str().unwrap_or_default());
            return Ok(());
        }
        Verb::Setcredentials {
            job,
            target,
            scheme,
            user,
            password_env,
        } => {
            let implicit = user.eq_ignore_ascii_case("NULL");
            let password = if implicit {
                None
            } else {
                Some(WirePassword(read_password(
                    &target,
                    &user,
                    password_env.as_deref(),
                )?))
            };
            let op = Op::SetCredentials {
                job,
                target,
                scheme,
                user: (!implicit).then_some(user),
                password,
            };
            (op, "credentials set")
        }
        Verb::Removecredentials {
            job,
            target,
            scheme,
        } => {
            let reply = client.request(Op::RemoveCredentials {
                job,
                target,
                scheme,
            })?;
            let what = if reply["hresult"] == "0x00000000" {
                "removed"
            } else {
                "none were set (S_FALSE)"
            };
            println!(
                "job {}: credentials {what}",
                reply["job"].as_str().unwrap_or_default()
            );
            return Ok(());
        }
        Verb::Setproxysettings {
            job,
            usage,
            list,
            bypass,
        } => {
            let op = Op::SetProxySettings {
                job,
                usage,
                list,
                bypass,
            };
            (op, "proxy settings set")
        }
        Verb::Addfile { job, url, local } => (Op::AddFile { job, url, local }, "file added"),
        Verb::Addfilewithranges {
            job,
            url,
            local,
            ranges,
        } => {
            let op = Op::AddFileWithRanges {
                job,
                url,
                local,
                ranges,
            };
            (op, "file with ranges added")
        }
        Verb::Setsecurityflags { job, flags } => {
            (Op::SetSecurityFlags { job, flags }, "security flags set")
        }
        Verb::Setcustomheaders { job, headers } => {
            let headers = (!headers.is_empty()).then(|| headers.join("\r\n"));
            (Op::SetCustomHeaders { job, headers }, "custom headers set")
        }
        Verb::Setpriority { job, priority } => (Op::SetPriority { job, priority }, "priority set"),
        Verb::Setnotifyflags { job, flags } => {
            (Op::SetNotifyFlags { job, flags }, "notify flags set")
        }
        Verb::Setnotifycmdline {
            job,
            program,
            parameters,
        } => {
            // bitsadmin's spelling of "none".
            let null = |s: &str| s.eq_ignore_ascii_case("NULL");
            let program = (!null(&program)).then_some(program);
            let parameters = parameters.filter(|p| !null(p));
            let op = Op::SetNotifyCmdLine {
                job: job.clone(),
                program,
                parameters,
            };
            (op, "notify command line set")
        }
        Verb::Setminretrydelay { job, secs } => (
            Op::SetMinRetryDelay { job, secs },
            "minimum retry delay set",
        ),
        Verb::Setnoprogresstimeout { job, secs } => (
            Op::SetNoProgressTimeout { job, secs },
            "no-progress timeout set",
        ),
        Verb::Setmaxdownloadtime { job, secs } => (
            Op::SetMaxDownloadTime { job, secs },
            "maximum download time set",
        ),
        Verb::Setdisplayname { job, name } => {
            (Op::SetDisplayName { job, name }, "display name set")
        }
        Verb::Setdescription { job, description } => {
            (Op::SetDescription { job, description }, "description set")
        }
        Verb::Resume { job } => (Op::Resume { job }, "resumed"),
        Verb::Suspend { job } => (Op::Suspend { job }, "suspended"),
        Verb::Cancel { job } => (Op::Cancel { job }, "cancelled"),
        Verb::Takeownership { job } => (Op::TakeOwnership { job }, "ownership taken"),
    };
    let reply = client.request(op)?;
    println!("job {}: {done}", reply["job"].as_str().unwrap_or_default());
    Ok(())
}

/// The password for `setcredentials`: from the named variable, or asked on the terminal.
fn read_password(target: &str, user: &str, env: Option<&str>) -> Result<String, WireError> {
    let refuse = |why: String| WireError::new(backhaul_core::codes::E_INVALIDARG, why);
    if let Some(var) = env {
        return std::env::var(var).map_err(|_| refuse(format!("{var} is not set")));
    }
    if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        return Err(refuse(format!(
            "no password for {user}: pass --password-env VAR, or run on a terminal to be asked"
        )));
    }
    rpassword::prompt_password(format!("{target} password for {user}: "))
        .map_err(|e| refuse(format!("cannot read the password: {e}")))
}

fn monitor(
    client: &mut Client,
    all_users: bool,
    refresh: u64,
    count: Option<u64>,
    json: bool,
) -> Result<(), WireError> {
    let mut shown = 0;
    loop {
        let jobs = client.request(Op::List { all_users })?;
        if !json {
            // Clear the screen and go home, as `bitsadmin /monitor` refreshes in place.
            print!("\x1b[2J\x1b[H");
        }
        print_list(&jobs, false, json);
        shown += 1;
        if count.is_some_and(|c| shown >= c) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_secs(refresh.max(1)));
    }
}

fn print_info(info: &Value, json: bool) {
    if json {
        println!("{info}");
        return;
    }
    for key in [
        "id",
        "display_name",
        "description",
        "type",
        "state",
        "priority",
        "owner",
        "bytes_transferred",
        "bytes_total",
        "files_transferred",
        "files_total",
        "creation_time",
        "modification_time",
        "transfer_completion_time",
        "error_count",
        "notify_flags",
        "minimum_retry_delay",
        "no_progress_timeout",
        "maximum_download_time",
        "security_flags",
    ] {
        let is_a_time = matches!(
            key,
            "creation_time" | "modification_time" | "transfer_completion_time"
        );
        let value = if is_a_time {
            utc_time(&info[key])
        } else {
            plain(&info[key])
        };
        println!("{key}: {value}");
    }
    if let Some(error) = info["error"].as_object() {
        println!(
            "error: {} ({}) in {}: {}",
            plain(&error["name"]),
            plain(&error["hresult"]),
            plain(&error["context"]),
            plain(&error["description"])
        );
    }
    for file in info["files"].as_array().into_iter().flatten() {
        print_file(file);
    }
}

fn print_file(file: &Value) {
    println!(
        "file {}: {} -> {} ({}/{} bytes{}) temp {}",
        plain(&file["index"]),
        plain(&file["remote_name"]),
        plain(&file["local_name"]),
        plain(&file["bytes_transferred"]),
        plain(&file["bytes_total"]),
        if file["completed"] == true {
            ", done"
        } else {
            ""
        },
        plain(&file["temporary_name"]),
    );
}

fn print_list(jobs: &Value, verbose: bool, json: bool) {
    if json {
        println!("{jobs}");
        return;
    }
    let jobs = jobs.as_array().map(Vec::as_slice).unwrap_or_default();
    for job in jobs {
        println!(
            "{} {:?} {} {}/{} bytes {}/{} files owner {}",
            plain(&job["id"]),
            job["display_name"].as_str().unwrap_or_default(),
            plain(&job["state"]),
            plain(&job["bytes_transferred"]),
            plain(&job["bytes_total"]),
            plain(&job["files_transferred"]),
            plain(&job["files_total"]),
            plain(&job["owner"]),
        );
        if verbose {
            for file in job["files"].as_array().into_iter().flatten() {
                print!("  ");
                print_file(file);
            }
            if let Some(error) = job["error"].as_object() {
                println!(
                    "  error: {} {}",
                    plain(&error["name"]),
                    plain(&error["description"])
                );
            }
        }
    }
    println!("listed {} job(s)", jobs.len());
}

/// A job time (the protocol's milliseconds since the Unix epoch) as RFC 3339 in UTC, e.g.
/// `2026-12-04T16:31:01.454Z`; null (not yet) as `-`.
fn utc_time(v: &Value) -> String {
    let Some(millis) = v.as_u64() else {
        return plain(v);
    };
    let nanos = i128::from(millis) * 1_000_000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("{millis} ms after the epoch"))
}

/// A JSON value as plain text: strings unquoted, null as `-`.
fn plain(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::utc_time;
    use serde_json::json;

    #[test]
    fn a_job_time_prints_as_rfc3339_in_utc_and_an_unset_one_as_a_dash() {
        assert_eq!(
            utc_time(&json!(1_796_401_861_454u64)),
            "2026-12-04T16:31:01.454Z"
        );
        assert_eq!(utc_time(&json!(0)), "1970-01-01T00:00:00Z");
        assert_eq!(utc_time(&json!(null)), "-");
    }
}
