//! The `cohort` command: interactive shell, script runner and (later) server.

use std::collections::BTreeMap;
use std::io::{self, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser};
use cohort::Engine;
use cohort::chart::ChartSpec;
use cohort::demo::{DEFAULT_SEED, Dataset};
use cohort::engine::files::register_files;
use cohort::output::{DEFAULT_DIGITS, Format};
use cohort::script::{self, ScriptError, Source, parse_param};
use cohort::server::Role;
use cohort::server::users::Users;
use cohort::session::{Session, Settings};
use cohort::shell::meta::{ExpandedMode, Meta};
use cohort::shell::{self, ShellOptions};
use cohort::store::ModelStore;
use cohort_udfs::error::describe;

/// Exit codes, as scripts and schedulers see them.
const EXIT_FAILED: u8 = 1;
const EXIT_USAGE: u8 = 2;

/// Customer models inside SQL: train, score, segment, recommend and forecast from SQL.
///
/// With no -f or -c, and a terminal on standard input, starts the interactive shell;
/// otherwise runs the SQL it is given and exits: 0 on success, 1 when a statement fails
/// (the error goes to standard error with the script's name and line), 2 on a usage error
/// or an unreadable file.
#[derive(Debug, Parser)]
#[command(name = "cohort", version, max_term_width = 100)]
struct Cli {
    /// Data files to register as tables named after the file (CSV, TSV, Parquet, JSON,
    /// Arrow IPC, or a directory of them; CSV and JSON may be compressed).
    #[arg(value_name = "DATA_FILE")]
    files: Vec<PathBuf>,

    /// Run the SQL script FILE ('-' for standard input); repeatable, run in order.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    scripts: Vec<PathBuf>,

    /// Run SQL statements or backslash meta-commands (\d, \format csv, ...); repeatable,
    /// run in order with -f.
    #[arg(short = 'c', long = "command", value_name = "SQL")]
    commands: Vec<String>,

    /// After the last statement, draw its result into FILE (.svg or .png), as \chart does
    /// in the shell: first column X, numeric columns Y, `lower`/`upper` as a band.
    #[arg(long, value_name = "FILE")]
    chart: Option<PathBuf>,

    /// Show a progress line on standard error while a statement runs longer than a second
    /// (the shell shows it whenever standard error is a terminal).
    #[arg(long)]
    progress: bool,

    /// Do not run ~/.cohortrc (or ~/.config/cohort/init.sql) at start.
    #[arg(short = 'X', long = "no-rc")]
    no_rc: bool,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,

    /// Write results to FILE instead of standard output; a regular file appears or is
    /// replaced only when every statement succeeded (a FIFO or device is written directly).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,

    /// Substitute ${NAME} in scripts with VALUE; repeatable.
    #[arg(long = "param", value_name = "NAME=VALUE", value_parser = parse_param)]
    params: Vec<(String, String)>,

    /// Print only results: no banner, no row counts.
    #[arg(short, long)]
    quiet: bool,

    /// In scripts, report each statement's elapsed time on standard error as
    /// FILE:LINE: SECONDS s.
    #[arg(long)]
    timing: bool,

    /// Most rows to print in table and markdown output ('all' for no limit) [default: 40
    /// in the shell, all in scripts].
    #[arg(long, value_name = "N|all", value_parser = parse_maxrows)]
    maxrows: Option<MaxRows>,

    /// Register the built-in synthetic marketing dataset: customers, orders, products,
    /// interactions, daily_revenue.
    #[arg(long)]
    demo: bool,

    /// Size of the demo dataset: 10,000 customers × N.
    #[arg(long, value_name = "N", default_value_t = 1.0, requires = "demo")]
    demo_scale: f64,

    /// Seed of the demo dataset.
    #[arg(long, value_name = "SEED", default_value_t = DEFAULT_SEED, requires = "demo")]
    demo_seed: u64,

    /// Keep no shell history.
    #[arg(long)]
    no_history: bool,

    /// Memory that queries and model training may hold, e.g. 512M or 4G [default: no limit].
    /// Sorts and joins spill beyond it; training rows that do not fit are read again for
    /// every pass of the fit.
    #[arg(long, value_name = "SIZE", value_parser = parse_memory_limit)]
    memory_limit: Option<String>,

    /// Model store directory [default: cohort/models in the user's data directory].
    #[arg(long = "store", value_name = "DIR", env = "COHORT_STORE")]
    store: Option<PathBuf>,

    /// Run queries on the Ballista cluster whose scheduler is at df://HOST:PORT (see
    /// `cohort scheduler` and `cohort executor`); they are planned here. Files must be at
    /// paths every executor can read.
    #[arg(long, value_name = "URL", env = "COHORT_BALLISTA")]
    ballista: Option<String>,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Serve Arrow Flight SQL to BI tools (ADBC, the Flight SQL JDBC driver) until SIGINT or
    /// SIGTERM. The options before `serve` (data files, --demo, --store, --memory-limit)
    /// apply.
    Serve(Box<ServeArgs>),
    /// Run a Ballista scheduler with cohort's functions: clients connect with `--ballista
    /// df://ADDR`, executors with `--scheduler ADDR`. Runs until SIGINT or SIGTERM. Of the
    /// options before `scheduler`, --store applies (models sent by reference).
    Scheduler(SchedulerArgs),
    /// Run a Ballista executor with cohort's functions for the scheduler at ADDR. Runs
    /// until SIGINT or SIGTERM.
    Executor(ExecutorArgs),
    /// Manage the users file of `serve --users`: who may log in and with which role.
    /// Passwords are stored as argon2id hashes only; a running server picks up changes at
    /// the next login. The options before `users` do not apply.
    Users(UsersArgs),
}

#[derive(Debug, clap::Args)]
struct SchedulerArgs {
    /// Address to listen on for clients and executors.
    #[arg(long, value_name = "ADDR", default_value_t = std::net::SocketAddr::from(([127, 0, 0, 1], cohort::cluster::SCHEDULER_PORT)))]
    listen: std::net::SocketAddr,

    /// How long an executor may go silent before its tasks are run elsewhere, e.g. 30s.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    executor_timeout: Duration,
}

#[derive(Debug, clap::Args)]
struct ExecutorArgs {
    /// The scheduler's address, HOST:PORT.
    #[arg(long, value_name = "ADDR")]
    scheduler: String,

    /// Address for results and shuffle data (Arrow Flight); the executor's gRPC service
    /// takes the next port.
    #[arg(long, value_name = "ADDR", default_value_t = std::net::SocketAddr::from(([127, 0, 0, 1], cohort::cluster::EXECUTOR_PORT)))]
    listen: std::net::SocketAddr,

    /// Directory for shuffle files [default: a temporary directory].
    #[arg(long, value_name = "DIR")]
    work_dir: Option<PathBuf>,

    /// Memory all of this executor's tasks may hold, e.g. 4G [default: 70% of the host's].
    /// Set it when several executors share a machine.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    memory_limit: Option<usize>,

    /// Tasks run at once [default: the machine's cores].
    #[arg(long, value_name = "N")]
    cores: Option<usize>,

    /// Seconds between heartbeats to the scheduler.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    heartbeat: Duration,
}

#[derive(Debug, clap::Args)]
struct UsersArgs {
    /// The users file; `add` creates it, readable by its owner only.
    #[arg(long, value_name = "FILE")]
    file: PathBuf,

    #[command(subcommand)]
    action: UsersAction,
}

/// A password is read from the first line of standard input when that is not a terminal,
/// else asked for twice without echo.
#[derive(Debug, clap::Subcommand)]
enum UsersAction {
    /// Add a user with a password.
    Add {
        /// Letters, digits and _ . - @.
        name: String,
        /// reader (queries and scoring), analyst (also models and its own views) or admin
        /// (also shared tables and allowed files).
        #[arg(long)]
        role: Role,
    },
    /// List the users and their roles.
    List,
    /// Remove a user: they cannot log in any more.
    Remove { name: String },
    /// Change a user's password.
    Passwd { name: String },
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Address to listen on; without --user only a loopback address is allowed.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:50051")]
    listen: std::net::SocketAddr,

    /// The user clients log in as; its password comes from --password-env or
    /// --password-file, never from the command line.
    #[arg(long, value_name = "USER")]
    user: Option<String>,

    /// Environment variable holding the password.
    #[arg(
        long,
        value_name = "VAR",
        requires = "user",
        conflicts_with = "password_file"
    )]
    password_env: Option<String>,

    /// File whose first line is the password.
    #[arg(long, value_name = "FILE", requires = "user")]
    password_file: Option<PathBuf>,

    /// PEM certificate chain for TLS (with --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,

    /// PEM private key for TLS (with --tls-cert).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,

    /// Users file made with `cohort users`: logins and their roles (reader, analyst,
    /// admin), re-read when it changes or on SIGHUP.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["user", "password_file"])]
    users: Option<PathBuf>,

    /// A folder whose files admins may read and write (CREATE EXTERNAL TABLE, COPY, FROM
    /// 'path'); repeatable. Without it clients touch no server file.
    #[arg(long = "allow-files", value_name = "DIR")]
    allow_files: Vec<PathBuf>,

    /// Longest a statement may run (planning, execution and sending its rows), e.g. 90s,
    /// 15m, 2h; 0 for no limit.
    #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = parse_duration)]
    statement_timeout: Duration,

    /// Memory each session's queries may hold, e.g. 512M, 4G; all sessions together stay
    /// within --memory-limit when it is given.
    #[arg(long, value_name = "SIZE", default_value = "4G", value_parser = parse_size)]
    session_memory_limit: usize,

    /// Most sessions (logged-in clients) at once.
    #[arg(long, value_name = "N", default_value_t = 64)]
    max_sessions: usize,

    /// Append one JSON line per login attempt and per statement to FILE.
    #[arg(long, value_name = "FILE")]
    audit_log: Option<PathBuf>,
}

/// A duration such as 90s, 15m, 2h or 500ms; a bare number is seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let scale = match unit.trim() {
        "" | "s" => 1.0,
        "ms" => 1e-3,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => f64::NAN,
    };
    match number.parse::<f64>() {
        Ok(n) if n >= 0.0 && (n * scale).is_finite() => Ok(Duration::from_secs_f64(n * scale)),
        _ => Err(format!(
            "expected a duration such as 90s, 15m or 2h, got '{s}'"
        )),
    }
}

/// A size DataFusion's `SET datafusion.runtime.memory_limit` accepts, checked up front.
fn parse_memory_limit(s: &str) -> Result<String, String> {
    parse_size(s).map(|_| size_text(s))
}

/// A size such as 512M or 4G, in bytes; 512MB, 512MiB and lower-case units read the same.
fn parse_size(s: &str) -> Result<usize, String> {
    datafusion::prelude::SessionContext::parse_capacity_limit("size", &size_text(s))
        .map_err(|_| format!("expected a size such as 512M or 4G, got '{s}'"))
}

/// `s` in DataFusion's spelling of sizes: the unit one upper-case letter.
fn size_text(s: &str) -> String {
    let t = s.trim();
    t.strip_suffix("iB")
        .or_else(|| t.strip_suffix("ib"))
        .or_else(|| t.strip_suffix(['B', 'b']))
        .filter(|t| t.ends_with(|c: char| "kmgtKMGT".contains(c)))
        .unwrap_or(t)
        .to_ascii_uppercase()
}

#[derive(Debug, Clone, Copy)]
struct MaxRows(Option<usize>);

fn parse_maxrows(s: &str) -> Result<MaxRows, String> {
    match s {
        "all" | "inf" | "0" => Ok(MaxRows(None)),
        n => n
            .parse()
            .map(|n| MaxRows(Some(n)))
            .map_err(|_| format!("expected a number or 'all', got '{s}'")),
    }
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    if let Some(Command::Users(args)) = &cli.command {
        return users(args);
    }
    if !(cli.demo_scale.is_finite() && cli.demo_scale > 0.0) {
        return usage(&format!(
            "--demo-scale must be a positive number, got {}",
            cli.demo_scale
        ));
    }
    // The statements run on a thread with the same deep stack as the runtime's.
    let main = std::thread::Builder::new()
        .name("cohort".to_string())
        .stack_size(cohort::STACK)
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .thread_stack_size(cohort::STACK)
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => return fail(&format!("cannot start the runtime: {e}")),
            };
            let code = runtime.block_on(run(cli, &matches));
            // Work a cancelled query left running (a task between two polls, a blocking
            // thread) must not hold up the exit.
            runtime.shutdown_background();
            code
        });
    match main.map(|t| t.join()) {
        Ok(Ok(code)) => code,
        Ok(Err(_)) => fail("stopped by an internal error"),
        Err(e) => fail(&format!("cannot start: {e}")),
    }
}

async fn run(cli: Cli, matches: &ArgMatches) -> ExitCode {
    let Some(store_dir) = cli.store.clone().or_else(ModelStore::default_root) else {
        return usage("no data directory is known for the model store; give --store DIR");
    };
    if let Some(code) = cluster_role(&cli, &store_dir).await {
        return code;
    }
    let engine = ModelStore::open(&store_dir).and_then(|store| match &cli.ballista {
        Some(scheduler) => Engine::on_cluster(store, scheduler),
        None => Engine::new(store),
    });
    let engine = match engine {
        Ok(e) => e,
        Err(e) => return fail(&describe(&e)),
    };
    if let Some(limit) = &cli.memory_limit {
        // The same setting a script can change later with SET.
        let set = format!("SET datafusion.runtime.memory_limit = '{limit}'");
        if let Err(e) = engine.execute(&set).await {
            return fail(&describe(&e));
        }
    }
    let mut loaded = Vec::new();
    if cli.demo {
        let start = Instant::now();
        let registered = Dataset::generate(cli.demo_scale, cli.demo_seed)
            .and_then(|d| d.register(engine.context()));
        match registered {
            Ok(tables) => loaded.push(format!(
                "Demo data ({:.2} s): {}",
                start.elapsed().as_secs_f64(),
                tables
                    .iter()
                    .map(|(name, rows)| format!("{name} ({rows} rows)"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            Err(e) => return fail(&describe(&e)),
        }
    }
    match register_files(engine.context(), &cli.files).await {
        Ok(tables) if !tables.is_empty() => loaded.push(format!("Tables: {}", tables.join(", "))),
        Ok(_) => {}
        Err(e) => {
            eprintln!("cohort: {}", e.message());
            return ExitCode::from(EXIT_USAGE);
        }
    }

    if let Some(Command::Serve(args)) = &cli.command {
        return serve(engine, args).await;
    }
    let sources = match script_sources(&cli, matches) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let startup = if cli.no_rc { None } else { startup_script() };
    let mut settings = Settings {
        format: cli.format,
        maxrows: cli.maxrows.and_then(|m| m.0),
        digits: Some(DEFAULT_DIGITS),
        expanded: ExpandedMode::Off,
        timing: cli.timing,
        quiet: cli.quiet,
        params: cli.params.iter().cloned().collect::<BTreeMap<_, _>>(),
        interactive: false,
        progress: cli.progress,
    };
    let Some(sources) = sources else {
        if cli.output.is_some() {
            return usage(
                "-o needs SQL to run (-f, -c or standard input); in the shell use \\o FILE",
            );
        }
        if !cli.quiet {
            println!(
                "cohort {} · customer models inside SQL · \\? for help, \\q to quit",
                env!("CARGO_PKG_VERSION")
            );
            for line in &loaded {
                println!("{line}");
            }
        }
        let options = ShellOptions {
            history: if cli.no_history {
                None
            } else {
                shell::default_history_path()
            },
            color: io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        };
        settings.maxrows = cli.maxrows.map_or(Some(40), |m| m.0);
        settings.timing = true;
        settings.quiet = false;
        settings.interactive = true;
        settings.progress = cli.progress || io::stderr().is_terminal();
        let mut stdout = io::stdout();
        let mut session = Session::new(engine, settings, &mut stdout);
        run_startup(&mut session, startup).await;
        return match shell::run(&mut session, options).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(&e.to_string()),
        };
    };

    let job = Job {
        engine,
        settings,
        startup,
        sources,
        chart: cli.chart.clone(),
    };
    match &cli.output {
        Some(path) => run_to_file(job, path).await,
        None => {
            let mut stdout = io::BufWriter::new(io::stdout().lock());
            finish(job.run(&mut stdout).await)
        }
    }
}

/// The file run before anything else unless -X: `~/.cohortrc`, else
/// `~/.config/cohort/init.sql`, as psql runs `~/.psqlrc`.
fn startup_script() -> Option<Source> {
    let candidates = [
        dirs::home_dir().map(|h| h.join(".cohortrc")),
        dirs::config_dir().map(|c| c.join("cohort").join("init.sql")),
    ];
    candidates.into_iter().flatten().find_map(|path| {
        let text = std::fs::read_to_string(&path).ok()?;
        Some(Source {
            name: path.display().to_string(),
            text,
        })
    })
}

/// Runs the startup file; a failure in it is reported and does not stop what follows.
async fn run_startup(session: &mut Session<'_>, startup: Option<Source>) {
    if let Some(source) = startup
        && let Err(e) = script::run(session, &[source]).await
    {
        eprintln!("cohort: {e}");
    }
}

/// Scripts and commands to run, and what they run in.
struct Job {
    engine: Engine,
    settings: Settings,
    startup: Option<Source>,
    sources: Vec<Source>,
    /// `--chart`: where the last result is drawn.
    chart: Option<PathBuf>,
}

impl Job {
    async fn run(self, out: &mut dyn Write) -> Result<(), ScriptError> {
        let mut session = Session::new(self.engine, self.settings, out);
        run_startup(&mut session, self.startup).await;
        let mut result = script::run(&mut session, &self.sources).await;
        if let (Ok(()), Some(file)) = (&result, self.chart) {
            let spec = ChartSpec {
                file: Some(file),
                ..ChartSpec::default()
            };
            if let Err(error) = session.meta(Meta::Chart(spec)).await {
                result = Err(ScriptError::Statement {
                    source: "--chart".to_string(),
                    line: 0,
                    error,
                });
            }
        }
        session.close_output();
        result
    }
}

/// `cohort scheduler` and `cohort executor`: runs the role until the process is stopped;
/// `None` for the other commands.
async fn cluster_role(cli: &Cli, store_dir: &Path) -> Option<ExitCode> {
    use cohort::cluster::{ExecutorOptions, SchedulerOptions, run_executor, run_scheduler};
    // A store is used by these roles only when the user names one.
    let store = match cli
        .store
        .as_ref()
        .map(|_| ModelStore::open(store_dir))
        .transpose()
    {
        Ok(store) => store,
        Err(e) => return Some(fail(&describe(&e))),
    };
    let ran = match &cli.command {
        Some(Command::Scheduler(args)) => {
            run_scheduler(SchedulerOptions {
                listen: args.listen,
                store,
                executor_timeout: args.executor_timeout,
            })
            .await
        }
        Some(Command::Executor(args)) => {
            let scheduler = match cohort::cluster::Scheduler::parse(&args.scheduler) {
                Ok(s) => (s.host, s.port),
                Err(e) => return Some(usage(&describe(&e))),
            };
            run_executor(ExecutorOptions {
                scheduler,
                listen: args.listen,
                work_dir: args.work_dir.clone(),
                store,
                memory_limit: args.memory_limit,
                cores: args
                    .cores
                    .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
                    .unwrap_or(1),
                heartbeat: args.heartbeat,
            })
            .await
        }
        _ => return None,
    };
    Some(match ran {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&describe(&e)),
    })
}

/// `cohort serve`: runs the Flight SQL server until SIGINT or SIGTERM, then drains.
async fn serve(engine: Engine, args: &ServeArgs) -> ExitCode {
    use cohort::server::{Credentials, Limits, ServeOptions};
    let credentials = match (&args.user, &args.password_env, &args.password_file) {
        (None, _, _) => None,
        (Some(user), Some(var), _) => match Credentials::from_env(user, var) {
            Ok(c) => Some(c),
            Err(e) => return usage(&e),
        },
        (Some(user), None, Some(file)) => match Credentials::from_file(user, file) {
            Ok(c) => Some(c),
            Err(e) => return usage(&e),
        },
        (Some(_), None, None) => {
            return usage("--user needs --password-env VAR or --password-file FILE");
        }
    };
    let options = ServeOptions {
        listen: args.listen,
        credentials,
        tls: args.tls_cert.clone().zip(args.tls_key.clone()),
        users: args.users.clone(),
        allow_files: args.allow_files.clone(),
        limits: Limits {
            statement_timeout: (!args.statement_timeout.is_zero())
                .then_some(args.statement_timeout),
            session_memory_limit: args.session_memory_limit,
            max_sessions: args.max_sessions,
        },
        audit_log: args.audit_log.clone(),
    };
    if let Err(e) = options.check() {
        return usage(&e);
    }
    eprintln!(
        "cohort: Flight SQL on {}://{}{}",
        if options.tls.is_some() {
            "grpc+tls"
        } else {
            "grpc"
        },
        args.listen,
        if options.credentials.is_some() || options.users.is_some() {
            ""
        } else {
            " (no login: loopback only)"
        }
    );
    match cohort::server::serve(engine, options, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

/// `cohort users`: changes or lists the users file.
fn users(args: &UsersArgs) -> ExitCode {
    let path = &args.file;
    let edited = match &args.action {
        UsersAction::List => {
            return match Users::load(path) {
                Ok(users) => {
                    let width = users.list().map(|(n, _)| n.chars().count()).max();
                    for (name, role) in users.list() {
                        println!("{name:<w$}  {role}", w = width.unwrap_or(0));
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => usage(&e),
            };
        }
        UsersAction::Add { name, role } => Users::load_or_new(path).and_then(|mut users| {
            users.check_new(name)?;
            users.add(name, *role, &read_password(name)?)?;
            Ok((users, format!("added {name} ({role}) to")))
        }),
        UsersAction::Remove { name } => Users::load(path).and_then(|mut users| {
            users.remove(name)?;
            Ok((users, format!("removed {name} from")))
        }),
        UsersAction::Passwd { name } => Users::load(path).and_then(|mut users| {
            users.check_user(name)?;
            users.set_password(name, &read_password(name)?)?;
            Ok((users, format!("changed the password of {name} in")))
        }),
    };
    let (users, done) = match edited {
        Ok(e) => e,
        Err(e) => return usage(&e),
    };
    match users.save(path) {
        Ok(()) => {
            eprintln!("cohort: {done} {}", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

/// A new password: the first line of standard input when it is not a terminal, else asked
/// for twice without echo.
fn read_password(name: &str) -> Result<String, String> {
    if !io::stdin().is_terminal() {
        let mut line = String::new();
        io::stdin()
            .read_line(&mut line)
            .map_err(|e| format!("cannot read the password from standard input: {e}"))?;
        return Ok(line.trim_end_matches(['\n', '\r']).to_string());
    }
    let ask = |prompt: &str| {
        rpassword::prompt_password(prompt).map_err(|e| format!("cannot read the password: {e}"))
    };
    let password = ask(&format!("Password for {name}: "))?;
    if password.is_empty() {
        return Err("the password is empty".to_string());
    }
    if ask("Same password again: ")? != password {
        return Err("the passwords do not match".to_string());
    }
    Ok(password)
}

/// Completes at the first SIGINT or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    eprintln!("cohort: stopping; finishing requests in flight");
}

/// The scripts and commands to run, in command-line order; `None` means the shell.
fn script_sources(cli: &Cli, matches: &ArgMatches) -> Result<Option<Vec<Source>>, ExitCode> {
    let mut ordered: Vec<(usize, Source)> = Vec::new();
    let files = matches.indices_of("scripts").into_iter().flatten();
    for (index, path) in files.zip(&cli.scripts) {
        let source = if path == Path::new("-") {
            read_stdin()?
        } else {
            match std::fs::read_to_string(path) {
                Ok(text) => Source {
                    name: path.display().to_string(),
                    text,
                },
                Err(e) => {
                    eprintln!("cohort: cannot read script {}: {e}", path.display());
                    return Err(ExitCode::from(EXIT_USAGE));
                }
            }
        };
        ordered.push((index, source));
    }
    let commands = matches.indices_of("commands").into_iter().flatten();
    for (index, sql) in commands.zip(&cli.commands) {
        ordered.push((
            index,
            Source {
                name: "-c".to_string(),
                text: sql.clone(),
            },
        ));
    }
    if ordered.is_empty() {
        return if io::stdin().is_terminal() {
            Ok(None)
        } else {
            Ok(Some(vec![read_stdin()?]))
        };
    }
    ordered.sort_by_key(|(i, _)| *i);
    Ok(Some(ordered.into_iter().map(|(_, s)| s).collect()))
}

fn read_stdin() -> Result<Source, ExitCode> {
    let mut text = String::new();
    match io::stdin().read_to_string(&mut text) {
        Ok(_) => Ok(Source {
            name: "<stdin>".to_string(),
            text,
        }),
        Err(e) => {
            eprintln!("cohort: cannot read standard input: {e}");
            Err(ExitCode::from(EXIT_USAGE))
        }
    }
}

/// Runs the scripts into `path` the way `>` in a shell would, through symbolic links, except
/// that a regular file (or a new one) is written beside itself and renamed into place only when
/// everything succeeded, so a failed or interrupted job never leaves a half-written file.
async fn run_to_file(job: Job, path: &Path) -> ExitCode {
    let cannot_write = |e: io::Error| {
        eprintln!("cohort: cannot write {}: {e}", path.display());
        ExitCode::from(EXIT_USAGE)
    };
    let (target, permissions) = match output_target(path) {
        Ok(OutputTarget::Direct(device)) => {
            // A FIFO or a device: nothing to replace and nothing to clean up, so a signal may
            // end the process as usual. Opening a FIFO waits for its reader.
            let file = match std::fs::OpenOptions::new().write(true).open(&device) {
                Ok(f) => f,
                Err(e) => return cannot_write(e),
            };
            let mut writer = io::BufWriter::new(file);
            return finish(job.run(&mut writer).await);
        }
        Ok(OutputTarget::Replace { path, permissions }) => (path, permissions),
        Err(e) => return cannot_write(e),
    };
    // Caught before the temporary file exists, so no signal can leave it behind.
    let interrupted = match interrupted() {
        Ok(signal) => signal,
        Err(e) => return fail(&format!("cannot catch SIGINT and SIGTERM: {e}")),
    };
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut builder = tempfile::Builder::new();
    builder.prefix(".cohort-output-");
    // A new file is an ordinary one (0666 less the umask), not tempfile's private 0600.
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    let temp = match builder.tempfile_in(dir) {
        Ok(t) => t,
        Err(e) => return cannot_write(e),
    };
    // A replaced file keeps its permission bits exactly, whatever the umask.
    if let Some(permissions) = permissions
        && let Err(e) = temp.as_file().set_permissions(permissions)
    {
        return cannot_write(e);
    }
    let mut writer = io::BufWriter::new(temp);
    let outcome = tokio::select! {
        result = job.run(&mut writer) => Ok(result),
        code = interrupted => Err(code),
    };
    let result = match outcome {
        Ok(result) => result,
        Err(code) => {
            // Returning drops the temporary file, which deletes it.
            eprintln!("cohort: interrupted; {} left as it was", path.display());
            return code;
        }
    };
    if !matches!(result, Ok(())) {
        return finish(result);
    }
    let persisted = writer
        .into_inner()
        .map_err(|e| e.into_error())
        .and_then(|temp| {
            temp.as_file().sync_all()?;
            temp.persist(&target).map_err(|e| e.error)?;
            Ok(())
        });
    match persisted {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&format!("cannot write {}: {e}", path.display())),
    }
}

/// What `-o PATH` writes to once symbolic links are followed.
enum OutputTarget {
    /// A regular file, or none yet: replaced by rename, keeping an existing file's permissions.
    Replace {
        path: PathBuf,
        permissions: Option<std::fs::Permissions>,
    },
    /// A FIFO or a device: written directly.
    Direct(PathBuf),
}

fn output_target(path: &Path) -> io::Result<OutputTarget> {
    let path = follow_links(path)?;
    match std::fs::metadata(&path) {
        Ok(m) if m.is_file() => Ok(OutputTarget::Replace {
            path,
            permissions: Some(m.permissions()),
        }),
        Ok(m) if m.is_dir() => Err(io::Error::new(
            io::ErrorKind::IsADirectory,
            "it is a directory",
        )),
        Ok(_) => Ok(OutputTarget::Direct(path)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(OutputTarget::Replace {
            path,
            permissions: None,
        }),
        Err(e) => Err(e),
    }
}

/// The path a chain of symbolic links ends at, even where that does not exist yet (a dangling
/// link is written through, creating its target, as a shell does).
fn follow_links(path: &Path) -> io::Result<PathBuf> {
    // The kernel's own limit on links followed in one lookup (Linux's ELOOP).
    const MAX_LINKS: usize = 40;
    let mut path = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        let is_link = match std::fs::symlink_metadata(&path) {
            Ok(m) => m.file_type().is_symlink(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => return Err(e),
        };
        if !is_link {
            return Ok(path);
        }
        // A relative target is relative to the link's folder; an absolute one replaces it.
        let target = std::fs::read_link(&path)?;
        path = path.parent().unwrap_or(Path::new("")).join(target);
    }
    Err(io::Error::other("too many levels of symbolic links"))
}

/// Completes at SIGINT or SIGTERM with the exit status a shell reports for it (128 + the
/// signal's number). The handlers are in place when this returns.
fn interrupted() -> io::Result<impl Future<Output = ExitCode>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => ExitCode::from(128 + 2),
                _ = terminate.recv() => ExitCode::from(128 + 15),
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
            ExitCode::from(128 + 2)
        })
    }
}

fn finish(result: Result<(), ScriptError>) -> ExitCode {
    match result {
        Ok(()) | Err(ScriptError::BrokenPipe) => {
            // A reader that went away (`| head`) is not an error; make sure nothing more is
            // flushed into the closed pipe.
            let _ = io::stdout().flush();
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

fn usage(message: &str) -> ExitCode {
    eprintln!("cohort: {message}");
    ExitCode::from(EXIT_USAGE)
}

fn fail(message: &str) -> ExitCode {
    eprintln!("cohort: {message}");
    ExitCode::from(EXIT_FAILED)
}

#[cfg(test)]
mod tests {
    use super::parse_memory_limit;

    #[test]
    fn memory_limits_read_as_people_write_them() {
        for (given, read) in [
            ("512M", "512M"),
            ("100MB", "100M"),
            ("4GiB", "4G"),
            ("2g", "2G"),
        ] {
            assert_eq!(parse_memory_limit(given).as_deref(), Ok(read), "{given}");
        }
        for bad in ["100B", "lots", "-1G"] {
            assert_eq!(
                parse_memory_limit(bad),
                Err(format!("expected a size such as 512M or 4G, got '{bad}'"))
            );
        }
    }
}
