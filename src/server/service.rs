//! The Flight SQL service over [`Engine`]: every statement, cohort's own included, runs
//! exactly as in the shell, in the caller's session.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::sql::metadata::{SqlInfoData, SqlInfoDataBuilder};
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest,
    ActionCreatePreparedStatementResult, Any, CommandGetCatalogs, CommandGetDbSchemas,
    CommandGetExportedKeys, CommandGetImportedKeys, CommandGetPrimaryKeys, CommandGetSqlInfo,
    CommandGetTableTypes, CommandGetTables, CommandPreparedStatementQuery,
    CommandPreparedStatementUpdate, CommandStatementQuery, CommandStatementUpdate,
    DoPutPreparedStatementResult, ProstMessageExt, SqlInfo, SqlSupportedTransaction,
    TicketStatementQuery,
};
use arrow_flight::{
    Action, ActionType, CancelFlightInfoRequest, CancelFlightInfoResult, CancelStatus,
    FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest, HandshakeResponse, IpcMessage,
    SchemaAsIpc, Ticket, decode::FlightRecordBatchStream,
};
use cohort_udfs::Error;
use cohort_udfs::error::describe;
use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef};
use datafusion::arrow::ipc::writer::IpcWriteOptions;
use datafusion::common::{DataFusionError, ParamValues, ScalarValue};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::stream::{AbortHandle, Abortable};
use futures::{Stream, StreamExt, TryStreamExt};
use prost::Message;
use tokio::runtime::Handle;
use tonic::metadata::MetadataMap;
use tonic::{Code, Request, Response, Status, Streaming};

use super::Limits;
use super::audit::{AuditLog, Entry, Event};
use super::auth::{Basic, Login, Logins};
use super::memory::SessionMemory;
use super::statement::{Statement, StatementTimeout};
use super::{Access, AllowedFiles};
use crate::Engine;
use crate::engine::catalog::tables;

type DoGetStream = <CohortFlightSql as FlightService>::DoGetStream;
type DoActionStream = <CohortFlightSql as FlightService>::DoActionStream;

/// How long a session may go unused before its token stops working.
const SESSION_IDLE: Duration = Duration::from_secs(8 * 60 * 60);

/// How long a session must have been unused before a login at `--max-sessions` may take
/// its place.
const MAKE_ROOM_IDLE: Duration = Duration::from_secs(60);

/// The Flight action that cancels a query.
const CANCEL_FLIGHT_INFO: &str = "CancelFlightInfo";

/// Results a client has asked for (GetFlightInfo) and not yet fetched (DoGet), at most this
/// many per session; the oldest go first.
const PENDING_RESULTS: usize = 64;

/// One client's session: who logged in and what it may do, its engine (settings, temporary
/// views), its results not yet fetched, the ones being sent (to cancel them), and its
/// prepared statements.
struct Session {
    pub(crate) login: Login,
    access: Access,
    engine: Engine,
    /// When the client last used it: sessions idle for [`SESSION_IDLE`] are let go.
    last_used: Mutex<Instant>,
    pending: Mutex<Vec<(Vec<u8>, SendableRecordBatchStream)>>,
    sending: Mutex<HashMap<Vec<u8>, AbortHandle>>,
    prepared: Mutex<HashMap<Vec<u8>, Prepared>>,
}

/// A prepared statement: its SQL and the parameter values last bound to it.
#[derive(Clone)]
struct Prepared {
    sql: String,
    params: Option<ParamValues>,
}

impl Session {
    fn new(engine: Engine, login: Login, access: Access) -> Arc<Self> {
        Arc::new(Self {
            login,
            access,
            engine,
            last_used: Mutex::new(Instant::now()),
            pending: Mutex::new(Vec::new()),
            sending: Mutex::new(HashMap::new()),
            prepared: Mutex::new(HashMap::new()),
        })
    }

    /// Runs `sql` and keeps its result stream for a DoGet; the FlightInfo names it. The
    /// statement's clock runs until its last row is sent.
    async fn start(
        &self,
        statement: Statement,
        sql: &str,
        params: Option<ParamValues>,
        descriptor: FlightDescriptor,
    ) -> Result<Response<FlightInfo>, Status> {
        let (engine, sql) = (self.engine.clone(), sql.to_string());
        let run = async move { engine.execute_with(&sql, params).await };
        let stream = match statement.run(run).await {
            Ok(stream) => statement.stream(stream),
            Err(e) => {
                statement.finish(Err(&e));
                return Err(e);
            }
        };
        let schema = stream.schema();
        let handle = uuid::Uuid::new_v4().as_bytes().to_vec();
        {
            let mut pending = lock(&self.pending)?;
            if pending.len() >= PENDING_RESULTS {
                pending.remove(0);
            }
            pending.push((handle.clone(), stream));
        }
        let ticket = TicketStatementQuery {
            statement_handle: handle.into(),
        };
        let info = FlightInfo::new()
            .try_with_schema(&schema)
            .map_err(|e| Status::internal(e.to_string()))?
            .with_endpoint(
                FlightEndpoint::new().with_ticket(Ticket::new(ticket.as_any().encode_to_vec())),
            )
            .with_descriptor(descriptor);
        Ok(Response::new(info))
    }

    fn take(&self, handle: &[u8]) -> Result<SendableRecordBatchStream, Status> {
        let mut pending = lock(&self.pending)?;
        match pending.iter().position(|(h, _)| h == handle) {
            Some(i) => Ok(pending.remove(i).1),
            None => Err(Status::not_found(
                "no such result: it was fetched already or its statement was closed",
            )),
        }
    }

    /// The result of `handle` as a stream that [`Session::cancel`] can stop; stopping it
    /// drops the query, which ends its execution.
    fn send(&self, handle: &[u8]) -> Result<SendableRecordBatchStream, Status> {
        let stream = self.take(handle)?;
        let (abort, registration) = AbortHandle::new_pair();
        let mut sending = lock(&self.sending)?;
        sending.retain(|_, a| !a.is_aborted());
        sending.insert(handle.to_vec(), abort);
        let schema = stream.schema();
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            schema,
            Abortable::new(stream, registration),
        )))
    }

    /// Stops the result of `handle`, fetched or not; false when there is none.
    fn cancel(&self, handle: &[u8]) -> Result<bool, Status> {
        if self.take(handle).is_ok() {
            return Ok(true);
        }
        Ok(match lock(&self.sending)?.remove(handle) {
            Some(abort) => {
                abort.abort();
                true
            }
            None => false,
        })
    }

    /// Refuses a statement the session's user may not run, before anything of it runs.
    fn check(&self, sql: &str) -> Result<(), Status> {
        self.access.check(&self.engine, sql)
    }

    fn prepared(&self, handle: &[u8]) -> Result<Prepared, Status> {
        lock(&self.prepared)?
            .get(handle)
            .cloned()
            .ok_or_else(|| Status::not_found("no such prepared statement; prepare it again"))
    }
}

fn lock<T>(m: &Mutex<T>) -> Result<std::sync::MutexGuard<'_, T>, Status> {
    m.lock()
        .map_err(|_| Status::internal("a session's lock was poisoned by an earlier failure"))
}

/// The server: the engine every session starts from, who may log in, the sessions by bearer
/// token, what each may use, and where statements are recorded.
pub struct CohortFlightSql {
    base: Engine,
    /// `None` serves without a login.
    logins: Option<Logins>,
    limits: Limits,
    audit: Option<Arc<AuditLog>>,
    /// Where statements run.
    runtime: Handle,
    /// The folders whose files admins may use.
    files: Arc<AllowedFiles>,
    sessions: Mutex<HashMap<String, Arc<Session>>>,
    /// The sessions of clients that send their user and password with every call, one per
    /// user so that each keeps its role.
    per_user: Mutex<HashMap<String, Arc<Session>>>,
    /// The session of calls without a token when the server has no logins.
    anonymous: Arc<Session>,
}

impl CohortFlightSql {
    pub fn new(
        base: Engine,
        logins: Option<Logins>,
        files: Arc<AllowedFiles>,
        limits: Limits,
        audit: Option<AuditLog>,
        runtime: Handle,
    ) -> Result<Self, String> {
        let anonymous = open_session(&base, &limits, &files, Login::anonymous())
            .map_err(|e| e.message().to_string())?;
        Ok(Self {
            base,
            logins,
            files,
            limits,
            audit: audit.map(Arc::new),
            runtime,
            sessions: Mutex::new(HashMap::new()),
            per_user: Mutex::new(HashMap::new()),
            anonymous,
        })
    }

    /// Starts the clock of a statement of `session`'s from `peer`, unless the session's user
    /// may not run it: a refusal is recorded, and nothing of the statement runs.
    fn begin(
        &self,
        session: &Session,
        event: Event,
        peer: Option<SocketAddr>,
        sql: &str,
    ) -> Result<Statement, Status> {
        let statement = Statement::start(
            self.runtime.clone(),
            self.audit.clone(),
            event,
            &session.login.user,
            peer,
            sql,
            self.limits.statement_timeout,
        );
        match session.check(sql) {
            Ok(()) => Ok(statement),
            Err(e) => {
                statement.finish(Err(&e));
                Err(e)
            }
        }
    }

    /// Checks a login, by handshake or by the user and password a call carries: every
    /// login attempt passes here, with its `authorization` header and the client's
    /// address. Without logins, everyone is [`Login::anonymous`].
    async fn login(&self, header: Option<&str>, peer: Option<SocketAddr>) -> Result<Login, Status> {
        let Some(logins) = &self.logins else {
            return Ok(Login::anonymous());
        };
        let started = Instant::now();
        let basic = Basic::parse(header);
        let result = match &basic {
            Ok(basic) => logins.check(basic, peer).await,
            Err(e) => Err(e.clone()),
        };
        if let Some(audit) = &self.audit {
            audit.record(&Entry {
                event: Event::Login,
                user: basic.as_ref().map_or("", |b| b.user.as_str()),
                peer,
                statement: None,
                outcome: result.as_ref().map(|_| None),
                elapsed: started.elapsed(),
            });
        }
        result
    }

    /// The caller's session, from its bearer token. Clients that send the user and
    /// password with every call instead (a preset `Basic` header, no handshake) share one
    /// session per user.
    async fn session<T>(&self, request: &Request<T>) -> Result<Arc<Session>, Status> {
        let header = authorization(request.metadata());
        if self.logins.is_some() && header.is_some_and(|h| h.starts_with("Basic ")) {
            let login = self.login(header, request.remote_addr()).await?;
            return self.per_user_session(login);
        }
        let token = header
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        match token {
            Some(token) => {
                let session = lock(&self.sessions)?.get(token).cloned().ok_or_else(|| {
                    Status::unauthenticated("unknown or expired token; log in again")
                })?;
                *lock(&session.last_used)? = Instant::now();
                Ok(session)
            }
            None if self.logins.is_none() => Ok(self.anonymous.clone()),
            None => Err(Status::unauthenticated(
                "log in first: this server needs a user and password",
            )),
        }
    }

    /// The session `login`'s calls share; a new one when the user's role changed.
    fn per_user_session(&self, login: Login) -> Result<Arc<Session>, Status> {
        let mut per_user = lock(&self.per_user)?;
        let session = match per_user.get(&login.user) {
            Some(s) if s.login == login => s.clone(),
            _ => {
                per_user
                    .retain(|_, s| s.last_used.lock().is_ok_and(|t| t.elapsed() < SESSION_IDLE));
                let s = open_session(&self.base, &self.limits, &self.files, login.clone())?;
                per_user.insert(login.user, s.clone());
                s
            }
        };
        *lock(&session.last_used)? = Instant::now();
        Ok(session)
    }
}

fn authorization(metadata: &MetadataMap) -> Option<&str> {
    metadata.get("authorization").and_then(|v| v.to_str().ok())
}

impl CohortFlightSql {
    /// The FlightInfo of a catalog listing: its schema, and the command itself as the
    /// ticket.
    async fn listing(
        &self,
        request: Request<FlightDescriptor>,
        schema: &Schema,
        command: impl ProstMessageExt,
    ) -> Result<Response<FlightInfo>, Status> {
        self.session(&request).await?;
        info(schema, request.into_inner(), command)
    }

    /// A listing with no rows: cohort's tables have no primary or foreign keys.
    async fn no_rows(
        &self,
        request: Request<Ticket>,
        schema: Schema,
    ) -> Result<Response<DoGetStream>, Status> {
        self.session(&request).await?;
        Ok(Response::new(batch_stream(RecordBatch::new_empty(
            Arc::new(schema),
        ))))
    }
}

/// Lets the least recently used session go to make room for a login at `--max-sessions`,
/// if it has been idle for [`MAKE_ROOM_IDLE`]: clients that connect anew for every query (as
/// many BI tools do) leave their old sessions behind, and those must not lock everyone out.
fn make_room(sessions: &mut HashMap<String, Arc<Session>>) -> Result<(), Status> {
    let idlest = sessions
        .iter()
        .filter_map(|(token, s)| Some((s.last_used.lock().ok()?.elapsed(), token)))
        .max();
    match idlest {
        Some((idle, token)) if idle >= MAKE_ROOM_IDLE => {
            let token = token.clone();
            sessions.remove(&token);
            Ok(())
        }
        _ => Err(Status::resource_exhausted(format!(
            "the server has {} sessions in use, its most (--max-sessions), each used within \
             the last {} seconds; try again shortly, or ask the administrator to raise \
             --max-sessions",
            sessions.len(),
            MAKE_ROOM_IDLE.as_secs()
        ))),
    }
}

/// A new session over `base` for `login`, with what its role allows, its queries held to the
/// session memory limit.
fn open_session(
    base: &Engine,
    limits: &Limits,
    files: &Arc<AllowedFiles>,
    login: Login,
) -> Result<Arc<Session>, Status> {
    let access = Access::new(login.role, files.clone());
    let engine = base.session_for(&access);
    let limit = limits.session_memory_limit;
    engine
        .set_memory_pool(|shared| Arc::new(SessionMemory::new(shared, limit)))
        .map_err(status)?;
    Ok(Session::new(engine, login, access))
}

/// A DataFusion error as the gRPC status a client can act on, chosen by its kind.
pub fn status(e: impl std::borrow::Borrow<DataFusionError>) -> Status {
    let e = e.borrow();
    let message = describe(e);
    let code = match Error::find(e).map(Error::root) {
        Some(Error::ModelNotFound { .. } | Error::TableNotFound { .. }) => Code::NotFound,
        Some(Error::AlreadyExists(_)) => Code::AlreadyExists,
        Some(Error::Store(_)) => Code::Unavailable,
        Some(Error::Query { source, .. }) => return status_of(source, message),
        Some(
            Error::WrongModelType(_)
            | Error::BadInput(_)
            | Error::InvalidOption(_)
            | Error::InvalidArgument(_)
            | Error::CreateModel { .. },
        ) => Code::InvalidArgument,
        None => return status_of(e, message),
    };
    Status::new(code, message)
}

/// The status of one of DataFusion's own errors, by its variant.
fn status_of(e: &DataFusionError, message: String) -> Status {
    let code = match e.find_root() {
        DataFusionError::External(e) if e.is::<StatementTimeout>() => Code::DeadlineExceeded,
        DataFusionError::Internal(_) => Code::Internal,
        DataFusionError::ResourcesExhausted(_) => Code::ResourceExhausted,
        DataFusionError::NotImplemented(_) => Code::Unimplemented,
        DataFusionError::IoError(_) => Code::Unavailable,
        _ => Code::InvalidArgument,
    };
    Status::new(code, message)
}

/// Batches as Flight data; Utf8View and BinaryView, which BI drivers reject, are sent as
/// Utf8 and Binary (the sessions expand views at the output; this covers what bypasses
/// planning, such as cohort's own statements).
fn flight_stream(schema: SchemaRef, batches: SendableRecordBatchStream) -> DoGetStream {
    let target = Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| {
                let t = match f.data_type() {
                    DataType::Utf8View => DataType::Utf8,
                    DataType::BinaryView => DataType::Binary,
                    other => other.clone(),
                };
                Field::new(f.name(), t, f.is_nullable())
            })
            .collect::<Vec<_>>(),
    ));
    let cast_to = target.clone();
    let batches = batches.map(move |b| {
        // The error keeps its code (a timeout stays DeadlineExceeded) on its way out.
        let b = b.map_err(|e| FlightError::Tonic(Box::new(status(e))))?;
        let columns = b
            .columns()
            .iter()
            .zip(cast_to.fields())
            .map(|(c, f)| datafusion::arrow::compute::cast(c, f.data_type()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RecordBatch::try_new(cast_to.clone(), columns)?)
    });
    let encoded = FlightDataEncoderBuilder::new()
        .with_schema(target)
        .build(batches)
        .map_err(Status::from);
    Box::pin(encoded)
}

fn batch_stream(batch: RecordBatch) -> DoGetStream {
    let schema = batch.schema();
    let stream = RecordBatchStreamAdapter::new(schema.clone(), futures::stream::iter([Ok(batch)]));
    flight_stream(schema, Box::pin(stream))
}

fn info(
    schema: &Schema,
    descriptor: FlightDescriptor,
    command: impl ProstMessageExt,
) -> Result<Response<FlightInfo>, Status> {
    let info = FlightInfo::new()
        .try_with_schema(schema)
        .map_err(|e| Status::internal(e.to_string()))?
        .with_endpoint(
            FlightEndpoint::new().with_ticket(Ticket::new(command.as_any().encode_to_vec())),
        )
        .with_descriptor(descriptor);
    Ok(Response::new(info))
}

fn arrow_status(e: impl std::fmt::Display) -> Status {
    Status::internal(e.to_string())
}

fn ipc_schema(schema: &Schema) -> Result<prost::bytes::Bytes, Status> {
    let IpcMessage(bytes) = SchemaAsIpc::new(schema, &IpcWriteOptions::default())
        .try_into()
        .map_err(arrow_status)?;
    Ok(bytes)
}

static SQL_INFO: LazyLock<SqlInfoData> = LazyLock::new(|| {
    let mut b = SqlInfoDataBuilder::new();
    b.append(SqlInfo::FlightSqlServerName, "cohort");
    b.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
    b.append(SqlInfo::FlightSqlServerArrowVersion, "1.3");
    b.append(SqlInfo::FlightSqlServerReadOnly, false);
    b.append(SqlInfo::FlightSqlServerSql, true);
    b.append(SqlInfo::FlightSqlServerSubstrait, false);
    b.append(
        SqlInfo::FlightSqlServerTransaction,
        SqlSupportedTransaction::None as i32,
    );
    b.append(SqlInfo::FlightSqlServerCancel, true);
    b.append(SqlInfo::SqlDdlCatalog, false);
    b.append(SqlInfo::SqlDdlSchema, true);
    b.append(SqlInfo::SqlDdlTable, true);
    b.append(SqlInfo::SqlIdentifierQuoteChar, "\"");
    b.append(SqlInfo::SqlSchemaTerm, "schema");
    b.append(SqlInfo::SqlCatalogTerm, "catalog");
    b.append(SqlInfo::SqlSupportsColumnAliasing, true);
    b.append(SqlInfo::SqlNullPlusNullIsNull, true);
    b.build().expect("the server information is well-formed")
});

/// The Flight SQL schema of GetPrimaryKeys.
fn primary_keys_schema() -> Schema {
    Schema::new(vec![
        Field::new("catalog_name", DataType::Utf8, true),
        Field::new("db_schema_name", DataType::Utf8, true),
        Field::new("table_name", DataType::Utf8, false),
        Field::new("column_name", DataType::Utf8, false),
        Field::new("key_sequence", DataType::Int32, false),
        Field::new("key_name", DataType::Utf8, true),
    ])
}

/// The Flight SQL schema of GetExportedKeys and GetImportedKeys.
fn foreign_keys_schema() -> Schema {
    let text = |name: &str, nullable: bool| Field::new(name, DataType::Utf8, nullable);
    Schema::new(vec![
        text("pk_catalog_name", true),
        text("pk_db_schema_name", true),
        text("pk_table_name", false),
        text("pk_column_name", false),
        text("fk_catalog_name", true),
        text("fk_db_schema_name", true),
        text("fk_table_name", false),
        text("fk_column_name", false),
        Field::new("key_sequence", DataType::Int32, false),
        text("fk_key_name", true),
        text("pk_key_name", true),
        Field::new("update_rule", DataType::UInt8, false),
        Field::new("delete_rule", DataType::UInt8, false),
    ])
}

/// The first row of bound parameters as `$1, $2, ...` values.
async fn read_params(stream: PeekableFlightDataStream) -> Result<Option<ParamValues>, Status> {
    let batches: Vec<RecordBatch> =
        FlightRecordBatchStream::new_from_flight_data(stream.map_err(FlightError::from))
            .try_collect()
            .await
            .map_err(|e| Status::invalid_argument(format!("cannot read the parameters: {e}")))?;
    let Some(batch) = batches.iter().find(|b| b.num_rows() > 0) else {
        return Ok(None);
    };
    let values = batch
        .columns()
        .iter()
        .map(|c| ScalarValue::try_from_array(c, 0))
        .collect::<Result<Vec<_>, _>>()
        .map_err(status)?;
    Ok(Some(ParamValues::List(
        values.into_iter().map(Into::into).collect(),
    )))
}

/// Rows changed by a statement: DataFusion's DML reports a `count` column; other statements
/// change none.
async fn update_count(stream: SendableRecordBatchStream) -> datafusion::common::Result<i64> {
    let batches: Vec<RecordBatch> = stream.try_collect().await?;
    Ok(batches
        .iter()
        .filter_map(|b| {
            let c = b.column_by_name("count")?;
            let c = datafusion::arrow::compute::cast(c, &DataType::Int64).ok()?;
            Some(c.as_primitive::<Int64Type>().iter().flatten().sum::<i64>())
        })
        .sum())
}

#[tonic::async_trait]
impl FlightSqlService for CohortFlightSql {
    type FlightService = CohortFlightSql;

    async fn do_handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<
        Response<Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>>,
        Status,
    > {
        let login = self
            .login(authorization(request.metadata()), request.remote_addr())
            .await?;
        let token = uuid::Uuid::new_v4().simple().to_string();
        let session = open_session(&self.base, &self.limits, &self.files, login)?;
        {
            let mut sessions = lock(&self.sessions)?;
            // Logins are when idle sessions (and their open statements) are let go.
            sessions.retain(|_, s| s.last_used.lock().is_ok_and(|t| t.elapsed() < SESSION_IDLE));
            if sessions.len() >= self.limits.max_sessions {
                make_room(&mut sessions)?;
            }
            sessions.insert(token.clone(), session);
        }
        let reply = HandshakeResponse {
            protocol_version: 0,
            payload: token.clone().into(),
        };
        let mut response: Response<Pin<Box<dyn Stream<Item = _> + Send>>> =
            Response::new(Box::pin(futures::stream::iter([Ok(reply)])));
        let header = format!("Bearer {token}")
            .parse()
            .map_err(|_| Status::internal("a token is ASCII"))?;
        response.metadata_mut().insert("authorization", header);
        Ok(response)
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let session = self.session(&request).await?;
        let statement = self.begin(
            &session,
            Event::Statement,
            request.remote_addr(),
            &query.query,
        )?;
        session
            .start(statement, &query.query, None, request.into_inner())
            .await
    }

    async fn get_flight_info_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let session = self.session(&request).await?;
        let prepared = session.prepared(&query.prepared_statement_handle)?;
        let statement = self.begin(
            &session,
            Event::Statement,
            request.remote_addr(),
            &prepared.sql,
        )?;
        session
            .start(
                statement,
                &prepared.sql,
                prepared.params,
                request.into_inner(),
            )
            .await
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let session = self.session(&request).await?;
        let stream = session.send(&ticket.statement_handle)?;
        Ok(Response::new(flight_stream(stream.schema(), stream)))
    }

    async fn do_put_statement_update(
        &self,
        command: CommandStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let session = self.session(&request).await?;
        let statement = self.begin(
            &session,
            Event::Statement,
            request.remote_addr(),
            &command.query,
        )?;
        let engine = session.engine.clone();
        let result = statement
            .run(async move { update_count(engine.execute_stream(&command.query).await?).await })
            .await;
        statement.finish_with(result, |n| u64::try_from(*n).ok())
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let session = self.session(&request).await?;
        let statement = self.begin(
            &session,
            Event::Prepare,
            request.remote_addr(),
            &query.query,
        )?;
        let (engine, sql) = (session.engine.clone(), query.query.clone());
        let described = statement
            .run(async move { engine.describe(&sql).await })
            .await;
        let (schema, params) = statement.finish_with(described, |_| None)?;
        let parameter_schema = Schema::new(
            params
                .iter()
                .enumerate()
                .map(|(i, t)| Field::new(format!("${}", i + 1), t.clone(), true))
                .collect::<Vec<_>>(),
        );
        let handle = uuid::Uuid::new_v4().as_bytes().to_vec();
        lock(&session.prepared)?.insert(
            handle.clone(),
            Prepared {
                sql: query.query,
                params: None,
            },
        );
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: handle.into(),
            dataset_schema: ipc_schema(&schema)?,
            parameter_schema: ipc_schema(&parameter_schema)?,
        })
    }

    async fn do_put_prepared_statement_query(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        let session = self.session(&request).await?;
        let handle = query.prepared_statement_handle.to_vec();
        session.prepared(&handle)?;
        let params = read_params(request.into_inner()).await?;
        if let Some(p) = lock(&session.prepared)?.get_mut(&handle) {
            p.params = params;
        }
        Ok(DoPutPreparedStatementResult {
            prepared_statement_handle: Some(handle.into()),
        })
    }

    async fn do_put_prepared_statement_update(
        &self,
        query: CommandPreparedStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let session = self.session(&request).await?;
        let mut prepared = session.prepared(&query.prepared_statement_handle)?;
        let peer = request.remote_addr();
        if let Some(params) = read_params(request.into_inner()).await? {
            prepared.params = Some(params);
        }
        let statement = self.begin(&session, Event::Statement, peer, &prepared.sql)?;
        let engine = session.engine.clone();
        let (sql, params) = (prepared.sql.clone(), prepared.params);
        let run = async move { update_count(engine.execute_with(&sql, params).await?).await };
        let result = statement.run(run).await;
        statement.finish_with(result, |n| u64::try_from(*n).ok())
    }

    async fn do_action_close_prepared_statement(
        &self,
        query: ActionClosePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<(), Status> {
        let session = self.session(&request).await?;
        lock(&session.prepared)?.remove(query.prepared_statement_handle.as_ref());
        Ok(())
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder().schema();
        self.listing(request, &schema, query).await
    }

    async fn do_get_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let session = self.session(&request).await?;
        let mut builder = query.into_builder();
        for name in session.engine.context().catalog_names() {
            builder.append(name);
        }
        Ok(Response::new(batch_stream(
            builder.build().map_err(arrow_status)?,
        )))
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        self.listing(request, &schema, query).await
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let session = self.session(&request).await?;
        let ctx = session.engine.context();
        let mut builder = query.into_builder();
        for catalog_name in ctx.catalog_names() {
            if let Some(catalog) = ctx.catalog(&catalog_name) {
                for schema_name in catalog.schema_names() {
                    builder.append(&catalog_name, schema_name);
                }
            }
        }
        Ok(Response::new(batch_stream(
            builder.build().map_err(arrow_status)?,
        )))
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        self.listing(request, &schema, query).await
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let session = self.session(&request).await?;
        let mut builder = query.into_builder();
        let tables = tables(session.engine.context()).await.map_err(status)?;
        for t in tables {
            let table_type = match t.provider.table_type() {
                datafusion::datasource::TableType::View => "VIEW",
                datafusion::datasource::TableType::Temporary => "LOCAL TEMPORARY",
                datafusion::datasource::TableType::Base => "TABLE",
            };
            builder
                .append(
                    &t.catalog,
                    &t.schema,
                    &t.name,
                    table_type,
                    &t.provider.schema(),
                )
                .map_err(arrow_status)?;
        }
        Ok(Response::new(batch_stream(
            builder.build().map_err(arrow_status)?,
        )))
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder().schema();
        self.listing(request, &schema, query).await
    }

    async fn do_get_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        self.session(&request).await?;
        let mut builder = query.into_builder();
        for t in ["LOCAL TEMPORARY", "TABLE", "VIEW"] {
            builder.append(t);
        }
        Ok(Response::new(batch_stream(
            builder.build().map_err(arrow_status)?,
        )))
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder(&SQL_INFO).schema();
        self.listing(request, &schema, query).await
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        self.session(&request).await?;
        let batch = query
            .into_builder(&SQL_INFO)
            .build()
            .map_err(arrow_status)?;
        Ok(Response::new(batch_stream(batch)))
    }

    async fn get_flight_info_primary_keys(
        &self,
        query: CommandGetPrimaryKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.listing(request, &primary_keys_schema(), query).await
    }

    async fn do_get_primary_keys(
        &self,
        _query: CommandGetPrimaryKeys,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        self.no_rows(request, primary_keys_schema()).await
    }

    async fn get_flight_info_exported_keys(
        &self,
        query: CommandGetExportedKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.listing(request, &foreign_keys_schema(), query).await
    }

    async fn do_get_exported_keys(
        &self,
        _query: CommandGetExportedKeys,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        self.no_rows(request, foreign_keys_schema()).await
    }

    async fn get_flight_info_imported_keys(
        &self,
        query: CommandGetImportedKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.listing(request, &foreign_keys_schema(), query).await
    }

    async fn do_get_imported_keys(
        &self,
        _query: CommandGetImportedKeys,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        self.no_rows(request, foreign_keys_schema()).await
    }

    async fn do_get_fallback(
        &self,
        _request: Request<Ticket>,
        message: Any,
    ) -> Result<Response<DoGetStream>, Status> {
        Err(Status::unimplemented(format!(
            "cohort does not serve {}",
            message.type_url
        )))
    }

    /// CancelFlightInfo: stops the results a FlightInfo names, fetched or not.
    async fn do_action_fallback(
        &self,
        request: Request<Action>,
    ) -> Result<Response<DoActionStream>, Status> {
        let action = request.get_ref();
        if action.r#type != CANCEL_FLIGHT_INFO {
            return Err(Status::invalid_argument(format!(
                "unknown action {}; cohort takes the Flight SQL actions and {CANCEL_FLIGHT_INFO}",
                action.r#type
            )));
        }
        let session = self.session(&request).await?;
        let info = CancelFlightInfoRequest::decode(action.body.clone())
            .ok()
            .and_then(|r| r.info)
            .ok_or_else(|| Status::invalid_argument("CancelFlightInfo needs a FlightInfo"))?;
        let mut cancelled = false;
        for ticket in info.endpoint.into_iter().filter_map(|e| e.ticket) {
            let handle = Any::decode(ticket.ticket)
                .ok()
                .and_then(|any| any.unpack::<TicketStatementQuery>().ok().flatten());
            if let Some(t) = handle {
                cancelled |= session.cancel(&t.statement_handle)?;
            }
        }
        if !cancelled {
            return Err(Status::not_found(
                "no such query: it finished, was cancelled, or was never started",
            ));
        }
        let result = CancelFlightInfoResult::new(CancelStatus::Cancelled);
        let body = arrow_flight::Result {
            body: result.encode_to_vec().into(),
        };
        Ok(Response::new(Box::pin(futures::stream::iter([Ok(body)]))))
    }

    async fn list_custom_actions(&self) -> Option<Vec<Result<ActionType, Status>>> {
        Some(vec![Ok(ActionType {
            r#type: CANCEL_FLIGHT_INFO.to_string(),
            description: "Stop the query a FlightInfo names".to_string(),
        })])
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_login_at_the_most_sessions_takes_the_place_of_one_idle_for_a_minute() {
        let dir = tempfile::tempdir().unwrap();
        let base = Engine::new(crate::store::ModelStore::open(dir.path()).unwrap()).unwrap();
        let limits = Limits {
            statement_timeout: None,
            session_memory_limit: 1 << 30,
            max_sessions: 2,
        };
        let files = Arc::new(AllowedFiles::default());
        let session = || open_session(&base, &limits, &files, Login::anonymous()).unwrap();
        let mut sessions =
            HashMap::from([("a".to_string(), session()), ("b".to_string(), session())]);
        let e = make_room(&mut sessions).unwrap_err();
        assert_eq!(e.code(), Code::ResourceExhausted);
        assert!(
            e.message().contains("each used within the last 60 seconds"),
            "{e}"
        );
        let long_ago = Instant::now().checked_sub(Duration::from_secs(90)).unwrap();
        *sessions["b"].last_used.lock().unwrap() = long_ago;
        make_room(&mut sessions).unwrap();
        assert_eq!(sessions.keys().collect::<Vec<_>>(), ["a"]);
    }

    #[test]
    fn errors_map_to_codes() {
        let plan = DataFusionError::from(Error::ModelNotFound {
            name: "x".into(),
            message: "no model named x; did you mean y?".into(),
        });
        assert_eq!(status(plan).code(), tonic::Code::NotFound);
        let sql = DataFusionError::Plan("syntax error".into());
        assert_eq!(status(sql).code(), tonic::Code::InvalidArgument);
        let bug = DataFusionError::Internal("bad".into());
        assert_eq!(status(bug).code(), tonic::Code::Internal);
    }
}
