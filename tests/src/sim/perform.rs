//! Performing the engine's actions (`Sim::perform`) and the scripted servers' answers to
//! the requests it sends.

use backhaul_core::{Action, ConnId, FileOp, Input, IoFailure, IoFailureKind};
use bytes::Bytes;

use super::certs::sim_leaf;
use super::proxies::ProxyAnswer;
use super::responses::{serve, serve_multipart, serve_truncated, status_response};
use super::{input_conn, Reply, SeenRequest, Sim, SimConn, Trace};
use crate::kerberos_peer::TokenAsked;
use crate::ntlm_peer::Verdict;

impl Sim {
    pub(super) fn perform(&mut self, action: Action) {
        let now = self.now;
        match action {
            Action::Connect {
                conn,
                host,
                port,
                tls_server_name,
            } => {
                self.connects += 1;
                self.trace.push(Trace::Connect {
                    conn,
                    host: host.clone(),
                    port,
                    tls: tls_server_name.is_some(),
                });
                let is_proxy = self.proxies.contains_key(&(host.clone(), port));
                let refused = !is_proxy
                    && self
                        .servers
                        .get(&(host.clone(), port))
                        .is_none_or(|s| s.refuse_connections);
                if refused {
                    let error = IoFailure::new(
                        IoFailureKind::ConnectRefused,
                        "Connection refused (simulated)",
                    );
                    self.later(Input::ConnectFailed { now, conn, error });
                } else {
                    self.conns.insert(
                        conn,
                        SimConn {
                            host,
                            port,
                            tunnel_to: None,
                        },
                    );
                    let peer_certificates = tls_server_name
                        .map(|name| {
                            let chain = self.chains.get(&name).cloned();
                            chain.unwrap_or_else(|| vec![sim_leaf(&name)])
                        })
                        .unwrap_or_default();
                    self.later(Input::Connected {
                        now,
                        conn,
                        peer_certificates,
                    });
                }
            }
            Action::Send { conn, data } if self.socks_handshaking(conn) => {
                self.trace.push(Trace::Send { conn });
                self.socks_answer(conn, &data)
            }
            Action::Send { conn, data } => {
                self.trace.push(Trace::Send { conn });
                self.answer(conn, &data);
            }
            Action::Close { conn } => {
                self.conns.remove(&conn);
                self.pending
                    .retain(|(_, _, input)| input_conn(input) != Some(conn));
            }
            Action::OpenTemp {
                job,
                file,
                path,
                create,
            } => {
                let dir_ok = path
                    .parent()
                    .is_some_and(|d| self.dirs.iter().any(|x| x == d));
                let result = if !dir_ok {
                    Err(IoFailureKind::NotFound)
                } else if create && self.files.contains_key(&path) {
                    Err(IoFailureKind::AlreadyExists)
                } else if !create && !self.files.contains_key(&path) {
                    Err(IoFailureKind::NotFound)
                } else {
                    Ok(())
                };
                match result {
                    Ok(()) => {
                        let len = self.files.entry(path.clone()).or_default().data.len() as u64;
                        self.open_files.insert((job, file), path);
                        self.trace.push(Trace::TempOpened { job, file });
                        self.results.push_back(Input::TempOpened {
                            now,
                            job,
                            file,
                            len,
                        });
                    }
                    Err(kind) => {
                        let error = IoFailure::new(kind, format!("{kind:?} (simulated)"));
                        self.results.push_back(Input::FileFailed {
                            now,
                            job,
                            file,
                            op: FileOp::OpenTemp,
                            error,
                        });
                    }
                }
            }
            Action::WriteFile {
                job,
                file,
                offset,
                data,
            } => {
                if let Some(kind) = self.fail_writes {
                    self.trace.push(Trace::WriteFailed { job, file });
                    let error = IoFailure::new(kind, format!("{kind:?} (simulated)"));
                    self.results.push_back(Input::FileFailed {
                        now,
                        job,
                        file,
                        op: FileOp::Write,
                        error,
                    });
                    return;
                }
                let path = self
                    .open_files
                    .get(&(job, file))
                    .expect("write to an open file")
                    .clone();
                let f = self.files.entry(path).or_default();
                let end = offset as usize + data.len();
                if f.data.len() < end {
                    f.data.resize(end, 0);
                }
                f.data[offset as usize..end].copy_from_slice(&data);
            }
            Action::TruncateFile { job, file, len } => {
                let path = self
                    .open_files
                    .get(&(job, file))
                    .expect("truncate an open file")
                    .clone();
                self.files
                    .entry(path)
                    .or_default()
                    .data
                    .truncate(len as usize);
            }
            Action::SyncFile { job, file, len } => {
                let path = self
                    .open_files
                    .get(&(job, file))
                    .expect("sync an open file")
                    .clone();
                // Like fdatasync, it syncs what is there (shorter than `len` after failed writes).
                let f = self.files.entry(path).or_default();
                f.durable = f.data.clone();
                self.syncs.push((job, file, len));
                self.results.push_back(Input::FileSynced {
                    now,
                    job,
                    file,
                    len,
                });
            }
            Action::CloseFile { job, file } => {
                self.open_files.remove(&(job, file));
            }
            Action::CommitFile {
                job,
                file,
                temp,
                dest,
                len: _,
            } => {
                self.open_files.remove(&(job, file));
                match self.files.remove(&temp) {
                    Some(mut f) => {
                        // The driver syncs the file before the rename, and the directory after.
                        f.durable = f.data.clone();
                        self.files.insert(dest, f);
                        self.results
                            .push_back(Input::FileCommitted { now, job, file });
                    }
                    None => {
                        let error = IoFailure::new(
                            IoFailureKind::NotFound,
                            "temp file missing (simulated)",
                        );
                        self.results.push_back(Input::FileFailed {
                            now,
                            job,
                            file,
                            op: FileOp::Commit,
                            error,
                        });
                    }
                }
            }
            Action::DeleteTemp { job, file, path } => {
                self.open_files.remove(&(job, file));
                self.files.remove(&path);
            }
            Action::Persist { job } => {
                self.persists += 1;
                let record = self.engine.job_record(job).expect("persist a live job");
                self.store.insert(job, record.clone());
                if !self.defer_persist {
                    self.save(job);
                } else if !self.persist_due.contains(&job) {
                    self.persist_due.push(job);
                }
            }
            Action::Forget { job } => {
                self.persists += 1;
                self.store.remove(&job);
            }
            Action::StartTls { conn, server_name } => {
                let peer_certificates = vec![sim_leaf(&server_name)];
                self.later(Input::TlsStarted {
                    now,
                    conn,
                    peer_certificates,
                });
            }
            Action::ValidateCertificate {
                conn,
                job,
                host,
                port,
                ..
            } => {
                self.validations.push((job, host, port));
                self.trace.push(Trace::Validate { conn });
                let verdict = self.verdicts.pop_front().unwrap_or(Ok(()));
                self.later(Input::CertificateVerdict { now, conn, verdict });
            }
            Action::RunProgram { job, program, args } => {
                self.programs.push((now, job, program, args));
                let code = self.program_exits.pop_front().unwrap_or(0);
                self.later(Input::ProgramExited {
                    now,
                    job,
                    exit: Ok(code),
                });
            }
            Action::FetchCrl { url } => {
                self.crl_fetches.push(url.clone());
                let result = match self.crls.get(&url) {
                    Some(Some(der)) => Ok(Bytes::from(der.clone())),
                    Some(None) => return, // never answers
                    None => Err(IoFailure::new(
                        IoFailureKind::ConnectRefused,
                        format!("cannot connect to {url} (simulated)"),
                    )),
                };
                self.later(Input::CrlFetched { now, url, result });
            }
            Action::SecurityToken {
                job,
                conn,
                target,
                service,
                input,
            } => {
                let input = input.map(|b| b.to_vec());
                let result = self.gss.step(&service, input.as_deref());
                self.token_requests.push(TokenAsked {
                    job,
                    conn,
                    target,
                    service,
                    input,
                });
                self.later(Input::SecurityToken {
                    now,
                    job,
                    conn,
                    target,
                    result,
                });
            }
            other => panic!("the simulation does not know {other:?}"),
        }
    }

    /// The scripted server reads one request and schedules its response.
    fn answer(&mut self, conn: ConnId, data: &[u8]) {
        let now = self.now;
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let mut key = c.tunnel_to.clone().unwrap_or((c.host.clone(), c.port));
        let proxy = match c.tunnel_to {
            None => self.proxies.get(&key).cloned(),
            Some(_) => None,
        };
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        let parsed = req.parse(data).expect("the engine sends valid requests");
        assert!(
            parsed.is_complete(),
            "the engine sends a whole request head at once"
        );
        let path = req.path.unwrap_or("/").to_string();
        let seen = SeenRequest {
            host: c.host.clone(),
            path: path.clone(),
            headers: req
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_ascii_lowercase(),
                        String::from_utf8_lossy(h.value).into_owned(),
                    )
                })
                .collect(),
            conn,
        };
        self.requests.push(seen.clone());
        let mut path = path;
        if let Some(proxy) = proxy {
            match self.proxy_answer(conn, &key, &proxy, req.method, &seen) {
                ProxyAnswer::Done => return,
                // Absolute form: the origin's answer, relayed.
                ProxyAnswer::Forward(origin, origin_path) => (key, path) = (origin, origin_path),
            }
        }
        if let Some(data) = self.auth_challenge(conn, &key, &path, seen.header("authorization")) {
            self.later(Input::Received { now, conn, data });
            return;
        }
        let server = self.servers.entry(key).or_default();
        let reply = match server.scripts.get_mut(&path) {
            Some(script) if script.len() > 1 => script.pop_front().expect("non-empty"),
            Some(script) => script.front().cloned().unwrap_or(Reply::Serve),
            None => Reply::Serve,
        };
        let reset = matches!(reply, Reply::Reset(_));
        let (bytes, truncate_at) = match reply {
            Reply::Serve => (serve(server.resources.get(&path), &seen), None),
            Reply::Truncate(n) => serve_truncated(server.resources.get(&path), &seen, n),
            Reply::Reset(n) => {
                let (bytes, _) = serve_truncated(server.resources.get(&path), &seen, n);
                (bytes, None)
            }
            Reply::Close => (Vec::new(), Some(0)),
            Reply::Status(status, extra) => (status_response(status, &extra), None),
            Reply::ChangeTo(resource) => {
                server.resources.insert(path.clone(), resource);
                (serve(server.resources.get(&path), &seen), None)
            }
            Reply::ChangeToTruncated(resource, n) => {
                server.resources.insert(path.clone(), resource);
                serve_truncated(server.resources.get(&path), &seen, n)
            }
            Reply::IgnoreRange => {
                let mut whole = seen.clone();
                whole.headers.retain(|(name, _)| name != "range");
                (serve(server.resources.get(&path), &whole), None)
            }
            Reply::Multipart(parts) => (
                serve_multipart(server.resources.get(&path), &seen, parts),
                None,
            ),
            Reply::Raw(bytes) => (bytes, None),
            Reply::Silence => return,
        };
        // Seeded fault: the response arrives split at random points, as real reads do.
        let mut rest = Bytes::from(bytes);
        while !rest.is_empty() {
            let piece = 1 + (self.next_rand() % 70_000) as usize;
            let data = rest.split_to(piece.min(rest.len()));
            self.later(Input::Received { now, conn, data });
        }
        if truncate_at.is_some() {
            self.later(Input::Closed { now, conn });
        }
        if reset {
            let error = IoFailure::new(
                IoFailureKind::ConnectionReset,
                "Connection reset by peer (simulated)",
            );
            self.later(Input::ConnectionFailed { now, conn, error });
        }
    }
}

impl Sim {
    /// The 401 an NTLM- or Kerberos-protected path answers on a connection that has not (yet)
    /// authenticated, or `None` when the request is to be served.
    fn auth_challenge(
        &mut self,
        conn: ConnId,
        key: &(String, u16),
        path: &str,
        authorization: Option<&str>,
    ) -> Option<Bytes> {
        let protects = |paths: &Vec<String>| paths.iter().any(|p| p == path);
        let ntlm = self.ntlm.get_mut(key).filter(|(_, paths)| protects(paths));
        if let Some(Verdict::Challenge(token)) =
            ntlm.map(|(peer, _)| peer.judge(conn, authorization))
        {
            return Some(challenge_response("NTLM", token));
        }
        let kerberos = self
            .kerberos
            .get_mut(key)
            .filter(|(_, paths)| protects(paths));
        if let Some(Verdict::Challenge(token)) =
            kerberos.map(|(peer, _)| peer.judge(conn, authorization))
        {
            return Some(challenge_response("Negotiate", token));
        }
        None
    }
}

/// `401` with `WWW-Authenticate: <scheme> [token]`.
fn challenge_response(scheme: &str, token: Option<String>) -> Bytes {
    let value = token.map_or(scheme.to_string(), |t| format!("{scheme} {t}"));
    Bytes::from(status_response(
        401,
        &[("WWW-Authenticate".to_string(), value)],
    ))
}
