//! `cohort serve`: an Arrow Flight SQL endpoint for BI tools over the same [`Engine`] as the
//! shell and scripts, so every statement (CREATE MODEL, PREDICT, ...) works there as it
//! does at the prompt.

pub mod access;
pub mod audit;
pub mod auth;
mod memory;
pub mod role;
mod service;
mod statement;
mod throttle;
pub mod users;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;

use std::sync::Arc;
use std::time::Duration;

use arrow_flight::flight_service_server::FlightServiceServer;
use tokio::sync::Notify;
use tonic::transport::{Identity, Server, ServerTlsConfig};

pub use access::{Access, AllowedFiles};
pub use auth::{Credentials, Login, Logins};
pub use role::Role;
pub use service::CohortFlightSql;
pub use users::{Users, UsersFile};

use crate::Engine;

/// How long requests in flight may take to finish after SIGINT or SIGTERM.
const DRAIN: Duration = Duration::from_secs(10);

/// How the server listens and whom it lets in.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub listen: SocketAddr,
    /// `None` serves without a login, allowed only on a loopback address.
    pub credentials: Option<Credentials>,
    /// PEM certificate chain and private key for TLS.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// The users file (`cohort users`), instead of `credentials`.
    pub users: Option<PathBuf>,
    /// Folders whose files admins may use; none by default.
    pub allow_files: Vec<PathBuf>,
    pub limits: Limits,
    /// Where one JSON line per login attempt and statement is appended.
    pub audit_log: Option<PathBuf>,
}

/// What one client may use of the server.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Longest a statement may run, sending its rows included.
    pub statement_timeout: Option<Duration>,
    /// Bytes each session's queries may hold.
    pub session_memory_limit: usize,
    pub max_sessions: usize,
}

impl ServeOptions {
    /// Refuses to serve without a login anywhere but on loopback, or with an allowed
    /// folder that is not one.
    pub fn check(&self) -> Result<(), String> {
        AllowedFiles::new(&self.allow_files)?;
        if self.credentials.is_none() && self.users.is_none() && !self.listen.ip().is_loopback() {
            return Err(format!(
                "{} is reachable from other machines: give --users FILE, or --user and \
                 --password-env (or --password-file), or listen on 127.0.0.1",
                self.listen
            ));
        }
        Ok(())
    }
}

/// Serves until `shutdown` completes, then lets requests in flight finish.
pub async fn serve(
    engine: Engine,
    options: ServeOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<(), String> {
    options.check()?;
    let files = Arc::new(AllowedFiles::new(&options.allow_files)?);
    // BI drivers reject Utf8View and BinaryView: plans end with the plain types.
    engine
        .execute("SET datafusion.optimizer.expand_views_at_output = true")
        .await
        .map_err(|e| e.strip_backtrace())?;
    let users_file = match &options.users {
        Some(path) => Some(Arc::new(UsersFile::open(path)?)),
        None => None,
    };
    let logins = match (&users_file, options.credentials.clone()) {
        (Some(file), _) => Some(Logins::file(file.clone())),
        (None, Some(credentials)) => Some(Logins::one(credentials)?),
        (None, None) => None,
    };
    let audit = options
        .audit_log
        .as_deref()
        .map(audit::AuditLog::open)
        .transpose()?;
    // Queries run on threads of their own, as DataFusion advises for servers: the threads
    // answering clients stay free for logins, cancels and deadlines however long a step of a
    // query keeps its thread.
    let queries = tokio::runtime::Builder::new_multi_thread()
        .thread_name("cohort-query")
        .thread_stack_size(crate::STACK)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the query threads: {e}"))?;
    let service = CohortFlightSql::new(
        engine,
        logins,
        files,
        options.limits.clone(),
        audit,
        queries.handle().clone(),
    )?;
    let rereading = users_file.map(reread_on_hangup).transpose()?;
    let result = listen(service, &options, shutdown).await;
    if let Some(task) = rereading {
        task.abort();
    }
    // Work a cancelled query left behind must not hold up the exit.
    queries.shutdown_background();
    result
}

/// Serves `service` until `shutdown` completes, then lets requests in flight finish.
async fn listen(
    service: CohortFlightSql,
    options: &ServeOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<(), String> {
    let mut server = Server::builder();
    if let Some((cert, key)) = &options.tls {
        let read =
            |p: &PathBuf| std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()));
        let identity = Identity::from_pem(read(cert)?, read(key)?);
        server = server
            .tls_config(ServerTlsConfig::new().identity(identity))
            .map_err(|e| format!("TLS: {e}"))?;
    }
    let signalled = Arc::new(Notify::new());
    let notify = signalled.clone();
    let serving = server
        .add_service(FlightServiceServer::new(service))
        .serve_with_shutdown(options.listen, async move {
            shutdown.await;
            notify.notify_one();
        });
    tokio::pin!(serving);
    let failed = |e: tonic::transport::Error| format!("cannot serve on {}: {e}", options.listen);
    tokio::select! {
        result = &mut serving => return result.map_err(failed),
        _ = signalled.notified() => {}
    }
    // Requests in flight finish; clients that keep idle connections open past the drain
    // window do not hold the server up.
    match tokio::time::timeout(DRAIN, serving).await {
        Ok(result) => result.map_err(failed),
        Err(_) => Ok(()),
    }
}

/// Re-reads the users file at each SIGHUP (it is also re-read when it changes).
fn reread_on_hangup(file: Arc<UsersFile>) -> Result<tokio::task::JoinHandle<()>, String> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangup =
            signal(SignalKind::hangup()).map_err(|e| format!("cannot catch SIGHUP: {e}"))?;
        Ok(tokio::spawn(async move {
            while hangup.recv().await.is_some() {
                if file.reload() {
                    eprintln!("cohort: re-read the users file {}", file.path().display());
                }
            }
        }))
    }
    #[cfg(not(unix))]
    Ok(tokio::spawn(async move { drop(file) }))
}
