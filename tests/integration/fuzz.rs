//! Property tests that throw generated and mutated input at the statement splitter and
//! parser, CREATE MODEL's options, the file readers and the model loader. Whatever the input,
//! each answers with a value or an error that says what is wrong: never a panic, and never a
//! half-written or lost model.
//!
//! The test run draws the same cases every time (a fixed seed), a few seconds in all in a
//! debug build. To fuzz longer and wider, set `COHORT_FUZZ_SCALE` (a multiplier of the case
//! counts, with fresh random cases: `COHORT_FUZZ_SCALE=50 cargo test --workspace --test
//! integration fuzz::`). A failing case is shrunk to its smallest form and printed; what
//! the cases found is kept as regression tests beside the code they fixed.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use cohort::Engine;
use cohort::engine::parse_statement;
use cohort::engine::split::{is_complete, split_statements};
use cohort::store::ModelStore;
use proptest::prelude::*;
use proptest::test_runner::{RngSeed, TestCaseError};
use tokio::runtime::Runtime;

use crate::common::root;

/// `cases` scaled by `COHORT_FUZZ_SCALE`; shrinking is bounded so a failure reports quickly.
fn config(cases: u32) -> ProptestConfig {
    let scale: Option<f64> = std::env::var("COHORT_FUZZ_SCALE")
        .ok()
        .and_then(|s| s.parse().ok());
    ProptestConfig {
        cases: ((cases as f64 * scale.unwrap_or(1.0)).ceil() as u32).max(1),
        // The test run's cases are the same every time; fuzzing on demand draws new ones.
        rng_seed: match scale {
            None => RngSeed::Fixed(0x636f_686f_7274),
            Some(_) => RngSeed::Random,
        },
        max_shrink_iters: 2_000,
        // Found cases are kept as named tests below, not in files next to the sources.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_stack_size(cohort::STACK)
            .enable_all()
            .build()
            .unwrap()
    })
}

/// Runs `sql`, collecting its rows: Ok, or the error's message, which must say something and
/// must not be a caught panic.
fn run(engine: &Engine, sql: &str) -> Result<Result<usize, String>, TestCaseError> {
    match runtime().block_on(engine.execute(sql)) {
        Ok(result) => Ok(Ok(result.num_rows())),
        Err(e) => {
            let message = e.to_string();
            prop_assert!(!message.trim().is_empty(), "empty error for {sql}");
            prop_assert!(
                !message.contains("panicked"),
                "a panic became an error for {sql}: {message}"
            );
            Ok(Err(message))
        }
    }
}

// --- the statement splitter and parser ---

/// One lexical token, each kind of quoting and comment the splitter knows, with `;`, quotes
/// and newlines inside where the kind allows them.
fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-zA-Z_][a-zA-Z0-9_]{0,6}",
        2 => "[0-9]{1,4}(\\.[0-9]{1,3})?",
        1 => "[(),.+*=<>]",
        2 => "'([^']|'')*'",
        1 => "E'([^'\\\\]|\\\\(.|\n)|'')*'",
        1 => "\"[^\"]*\"",
        1 => "`[^`]*`",
        1 => "--[^\n]*\n",
        1 => "/\\*[^*/]*\\*/",
        1 => "\\$\\$[^$]*\\$\\$",
        1 => "\\$q\\$[^$]*\\$q\\$",
    ]
}

/// A statement: code first, then tokens separated by blanks (so that no two tokens join
/// into another, as `-` `-` would into a comment).
fn statement() -> impl Strategy<Value = String> {
    (
        "[a-zA-Z_][a-zA-Z0-9_]{0,6}",
        proptest::collection::vec(
            (token(), prop_oneof![Just(" "), Just("\n"), Just("\t ")]),
            0..8,
        ),
    )
        .prop_map(|(head, rest)| {
            rest.into_iter().fold(head, |mut s, (t, blank)| {
                s.push_str(blank);
                s.push_str(&t);
                s
            })
        })
}

proptest! {
    #![proptest_config(config(3_000))]

    /// Statements joined by `;` split back into the same statements, at the right lines,
    /// whatever `;` their strings, identifiers and comments hold.
    #[test]
    fn splitter_finds_every_statement(statements in proptest::collection::vec(statement(), 1..6)) {
        let mut script = String::new();
        let mut lines = Vec::new();
        for s in &statements {
            lines.push(1 + script.matches('\n').count());
            script.push_str(s);
            script.push_str(";\n");
        }
        let pieces = split_statements(&script);
        let texts: Vec<&str> = pieces.iter().map(|p| p.text.as_str()).collect();
        let expected: Vec<&str> = statements.iter().map(|s| s.trim()).collect();
        prop_assert_eq!(texts, expected);
        prop_assert_eq!(pieces.iter().map(|p| p.line).collect::<Vec<_>>(), lines);
        prop_assert!(pieces.iter().all(|p| p.terminated));
        prop_assert!(is_complete(&script));
        // Without its last `;` the script is not complete.
        prop_assert!(!is_complete(script.trim_end().trim_end_matches(';')));
    }

    /// Any text at all, quotes and comments left open included: the splitter and parser
    /// answer, and each piece is a part of the text.
    #[test]
    fn splitter_and_parser_take_any_text(
        text in prop_oneof![
            any::<String>(),
            proptest::collection::vec(
                prop_oneof![token(), "['\"`$;/*E\\\\-]", "[^\\x00]{0,3}"],
                0..30,
            )
            .prop_map(|t| t.concat()),
        ]
    ) {
        let pieces = split_statements(&text);
        is_complete(&text);
        let lines = 1 + text.matches('\n').count();
        for piece in &pieces {
            prop_assert!(text.contains(piece.text.as_str()));
            prop_assert!((1..=lines).contains(&piece.line));
            let _ = parse_statement(&piece.text);
        }
        let _ = parse_statement(&text);
    }

    /// cohort's own statements with their parts in any order, missing or repeated.
    #[test]
    fn parser_takes_broken_model_statements(
        parts in proptest::collection::vec(
            prop_oneof![
                Just("CREATE"), Just("OR"), Just("REPLACE"), Just("MODEL"), Just("IF"),
                Just("NOT"), Just("EXISTS"), Just("OPTIONS"), Just("("), Just(")"), Just(","),
                Just("="), Just("AS"), Just("SELECT 1"), Just("DROP"), Just("SHOW"),
                Just("MODELS"), Just("DESCRIBE"), Just("m"), Just("'x'"), Just("1e999"),
                Just("-9223372036854775808"), Just("99999999999999999999"), Just("NULL"),
                Just("model_type"), Just("'linear_reg'"), Just(";"), Just("--"), Just("/*"),
            ],
            0..24,
        )
    ) {
        let _ = parse_statement(&parts.join(" "));
    }
}

// --- CREATE MODEL's options ---

/// An option value of any kind and size.
fn option_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|v| v.to_string()),
        (0i64..2_000).prop_map(|v| v.to_string()),
        any::<f64>().prop_map(|v| format!("{v:e}")),
        (-1.0f64..2.0).prop_map(|v| v.to_string()),
        "'[a-z_ ]{0,12}'",
        Just("true".to_string()),
        Just("false".to_string()),
        Just("'auto'".to_string()),
        Just("NULL".to_string()),
        Just("'y'".to_string()),
        Just("'x'".to_string()),
    ]
}

const OPTION_NAMES: &[&str] = &[
    "label",
    "l2_reg",
    "max_iterations",
    "num_clusters",
    "n_init",
    "seed",
    "standardize",
    "class_weight",
    "num_factors",
    "alpha",
    "feedback",
    "user",
    "item",
    "rating",
    "time",
    "value",
    "horizon",
    "seasonality",
    "fit_intercept",
    "bogus",
];

const MODEL_TYPES: &[&str] = &[
    "linear_reg",
    "logistic_reg",
    "kmeans",
    "matrix_factorization",
    "forecast",
    "nonsense",
];

/// A small table every model type can train on: numbers, a yes/no label, a text column, a
/// day and user/item ids.
fn options_engine() -> &'static Engine {
    static ENGINE: OnceLock<(Engine, tempfile::TempDir)> = OnceLock::new();
    &ENGINE
        .get_or_init(|| {
            let store = tempfile::tempdir().unwrap();
            let engine = Engine::new(ModelStore::open(store.path()).unwrap()).unwrap();
            runtime()
                .block_on(engine.execute(
                    "CREATE TABLE t AS SELECT v AS id, v % 7 AS user_id, v % 11 AS item_id, \
                     CAST(v % 5 AS DOUBLE) + 0.5 AS rating, sin(v) AS x, cos(v * 3) AS y, \
                     v % 2 = 0 AS yes, CASE WHEN v % 3 = 0 THEN 'a' ELSE 'b' END AS c, \
                     DATE '2024-01-01' + CAST(v AS INT) AS day FROM generate_series(1, 60) g(v)",
                ))
                .unwrap();
            (engine, store)
        })
        .0
}

proptest! {
    #![proptest_config(config(250))]

    /// Any mix of options: the model is trained or refused with a message naming the option,
    /// and a refused CREATE MODEL leaves nothing in the store.
    #[test]
    fn model_options_are_checked(
        model_type in proptest::sample::select(MODEL_TYPES),
        options in proptest::collection::vec(
            (proptest::sample::select(OPTION_NAMES), option_value()),
            0..5,
        ),
        columns in proptest::sample::select(&[
            "x, y",
            "x, y, c",
            "x, yes",
            "user_id, item_id, rating",
            "day, rating",
            "day, c, rating",
            "x",
        ][..]),
    ) {
        let engine = options_engine();
        let name = format!("m{}", std::process::id());
        let options: String = options.iter().map(|(k, v)| format!(", {k} = {v}")).collect();
        let sql = format!(
            "CREATE OR REPLACE MODEL {name} OPTIONS (model_type = '{model_type}'{options}) \
             AS SELECT {columns} FROM t"
        );
        let _ = engine.store().drop_model(&name);
        let result = run(engine, &sql)?;
        prop_assert_eq!(engine.store().exists(&name).unwrap(), result.is_ok(), "{}", sql);
    }
}

// --- file readers ---

/// One way to damage a file.
#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: usize, bit: u8 },
    Set { at: usize, byte: u8 },
    Truncate { at: usize },
    Insert { at: usize, bytes: Vec<u8> },
    Repeat { at: usize, len: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let at = any::<usize>();
    prop_oneof![
        4 => (at, 0u8..8).prop_map(|(at, bit)| Mutation::Flip { at, bit }),
        2 => (at, any::<u8>()).prop_map(|(at, byte)| Mutation::Set { at, byte }),
        1 => at.prop_map(|at| Mutation::Truncate { at }),
        1 => (at, proptest::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        1 => (at, 1usize..64).prop_map(|(at, len)| Mutation::Repeat { at, len }),
    ]
}

fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let n = bytes.len().max(1);
        match m {
            Mutation::Flip { at, bit } => {
                if let Some(b) = bytes.get_mut(at % n) {
                    *b ^= 1 << bit;
                }
            }
            Mutation::Set { at, byte } => {
                if let Some(b) = bytes.get_mut(at % n) {
                    *b = *byte;
                }
            }
            Mutation::Truncate { at } => bytes.truncate(at % n),
            Mutation::Insert { at, bytes: new } => {
                let at = (at % n).min(bytes.len());
                bytes.splice(at..at, new.iter().copied());
            }
            Mutation::Repeat { at, len } => {
                let start = (at % n).min(bytes.len());
                let end = (start + len).min(bytes.len());
                let copy = bytes[start..end].to_vec();
                bytes.splice(end..end, copy);
            }
        }
    }
    bytes
}

/// Files of each format the engine reads, with their extensions: two committed ones and
/// Parquet and Arrow files written by the engine itself.
fn seed_files() -> &'static [(String, Vec<u8>)] {
    static FILES: OnceLock<Vec<(String, Vec<u8>)>> = OnceLock::new();
    FILES.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let store = tempfile::tempdir().unwrap();
        let engine = Engine::new(ModelStore::open(store.path()).unwrap()).unwrap();
        let data = root().join("tests/data");
        let mut files = vec![
            (
                "csv".to_string(),
                std::fs::read(data.join("people.csv")).unwrap(),
            ),
            (
                "json".to_string(),
                std::fs::read(data.join("tags.ndjson")).unwrap(),
            ),
        ];
        for format in ["parquet", "arrow"] {
            let path = dir.path().join(format!("seed.{format}"));
            runtime()
                .block_on(engine.execute(&format!(
                    "COPY (SELECT v AS id, 'n' || v AS name, v * 0.5 AS score, \
                     [v, v + 1] AS pair, DATE '2024-01-01' + CAST(v AS INT) AS day \
                     FROM generate_series(1, 40) g(v)) TO '{}'",
                    path.display()
                )))
                .unwrap();
            files.push((format.to_string(), std::fs::read(&path).unwrap()));
        }
        files
    })
}

fn read_engine() -> &'static (Engine, tempfile::TempDir) {
    static ENGINE: OnceLock<(Engine, tempfile::TempDir)> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::new(ModelStore::open(dir.path().join("models")).unwrap()).unwrap();
        (engine, dir)
    })
}

proptest! {
    #![proptest_config(config(400))]

    /// A damaged CSV, JSON, Parquet or Arrow file reads, or fails with a message.
    #[test]
    fn damaged_files_read_or_fail_cleanly(
        file in 0usize..4,
        mutations in proptest::collection::vec(mutation(), 1..4),
    ) {
        let (format, bytes) = &seed_files()[file];
        let (engine, dir) = read_engine();
        let path = dir.path().join(format!("damaged.{format}"));
        std::fs::write(&path, mutate(bytes.clone(), &mutations)).unwrap();
        // Rows or an error: either is an answer.
        let _ = run(engine, &format!("SELECT * FROM '{}'", path.display()))?;
        let _ = run(engine, &format!("SELECT count(*) FROM '{}'", path.display()))?;
    }
}

// --- the model loader ---

/// A store holding a linear model `lin` and a k-means model `seg`, made once.
fn seed_store() -> &'static Path {
    static STORE: OnceLock<tempfile::TempDir> = OnceLock::new();
    STORE
        .get_or_init(|| {
            let store = tempfile::tempdir().unwrap();
            let engine = Engine::new(ModelStore::open(store.path()).unwrap()).unwrap();
            for sql in [
                "CREATE TABLE t AS SELECT sin(v) AS x, cos(v) AS y, 2 * sin(v) + v % 3 AS z \
                 FROM generate_series(1, 50) g(v)",
                "CREATE MODEL lin OPTIONS (model_type = 'linear_reg', label = 'z') \
                 AS SELECT x, y, z FROM t",
                "CREATE MODEL seg OPTIONS (model_type = 'kmeans', num_clusters = 3) \
                 AS SELECT x, y FROM t",
            ] {
                runtime().block_on(engine.execute(sql)).unwrap();
            }
            store
        })
        .path()
}

/// Every file under `dir`, in a fixed order.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files.sort();
    files
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// What becomes of a model's file.
#[derive(Debug, Clone)]
enum Damage {
    Bytes(Vec<Mutation>),
    Removed,
    Directory,
    LinkLoop,
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        8 => proptest::collection::vec(mutation(), 1..3).prop_map(Damage::Bytes),
        1 => Just(Damage::Removed),
        1 => Just(Damage::Directory),
        1 => Just(Damage::LinkLoop),
    ]
}

proptest! {
    #![proptest_config(config(150))]

    /// One damaged file of model `lin`: PREDICT either gives the model's answers or an error
    /// naming `lin`; SHOW MODELS still lists both; `seg` keeps working.
    #[test]
    fn damaged_models_fail_alone(file in any::<usize>(), damage in damage()) {
        let store = tempfile::tempdir().unwrap();
        copy_dir(seed_store(), store.path());
        let files = files_under(&store.path().join("lin"));
        let victim = &files[file % files.len()];
        match &damage {
            Damage::Bytes(mutations) => {
                let bytes = std::fs::read(victim).unwrap();
                std::fs::write(victim, mutate(bytes, mutations)).unwrap();
            }
            Damage::Removed => std::fs::remove_file(victim).unwrap(),
            Damage::Directory => {
                std::fs::remove_file(victim).unwrap();
                std::fs::create_dir(victim).unwrap();
            }
            Damage::LinkLoop => {
                std::fs::remove_file(victim).unwrap();
                #[cfg(unix)]
                std::os::unix::fs::symlink(victim, victim).unwrap();
            }
        }
        let engine = Engine::new(ModelStore::open(store.path()).unwrap()).unwrap();
        let answer = |sql: &str| run(&engine, sql);
        answer("CREATE TABLE t AS SELECT sin(v) AS x, cos(v) AS y FROM generate_series(1, 5) g(v)")?
            .map_err(TestCaseError::fail)?;
        if let Err(e) = answer("SELECT PREDICT('lin', x, y) FROM t")? {
            prop_assert!(e.contains("lin"), "{e}");
        }
        let listed = answer("SHOW MODELS")?;
        prop_assert_eq!(listed, Ok(2));
        prop_assert_eq!(answer("SELECT SEGMENT('seg', x, y) FROM t")?, Ok(5));
        // A damaged model is replaced whole.
        prop_assert_eq!(
            answer("CREATE OR REPLACE MODEL lin OPTIONS (model_type = 'linear_reg', label = 'y') \
                    AS SELECT x, y FROM t")?
                .map(|_| ()),
            Ok(())
        );
        prop_assert_eq!(answer("SELECT PREDICT('lin', x) FROM t")?, Ok(5));
    }
}
