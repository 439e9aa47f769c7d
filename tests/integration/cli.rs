//! The `cohort` binary as scheduled jobs use it: exit codes, standard error, formats,
//! parameters, atomic output files, broken pipes and data files.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::common::{cohort_binary, output_with_stdin, oversized_arrow_files, root};

fn cohort() -> Command {
    let mut cmd = cohort_binary();
    let store = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-model-store");
    cmd.stdin(Stdio::null())
        .env("NO_COLOR", "1")
        .env("COHORT_STORE", store);
    cmd
}

fn run(args: &[&str]) -> Output {
    cohort().args(args).output().expect("cohort runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `tests/data/NAME` as a command-line argument.
fn data(name: &str) -> String {
    crate::common::data(name).display().to_string()
}

/// Asserts that `o` is a usage error (exit 2) saying `message` on standard error.
fn assert_usage_error(o: &Output, message: &str) {
    assert_eq!(o.status.code(), Some(2), "{}", stderr(o));
    assert!(stderr(o).contains(message), "{}", stderr(o));
}

/// Trains linear_reg `dia` on tests/data/diabetes.csv into `store`, with more options;
/// returns the CSV result.
fn create_diabetes_model(store: &str, options: &[&str]) -> String {
    let diabetes = data("diabetes.csv");
    let mut args = vec!["--store", store];
    args.extend(options);
    args.extend([
        diabetes.as_str(),
        "--format",
        "csv",
        "-c",
        "CREATE MODEL dia OPTIONS (model_type = 'linear_reg', label = 'target') AS SELECT * FROM diabetes",
    ]);
    let o = run(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    stdout(&o)
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn every_format() {
    let sql = "SELECT 1 AS id, 'a,b' AS s, CAST(NULL AS DOUBLE) AS x UNION ALL SELECT 2, 'c', 2.5 ORDER BY id";
    let cases = [
        ("csv", "id,s,x\n1,\"a,b\",\n2,c,2.5\n"),
        (
            "json",
            "[{\"id\":1,\"s\":\"a,b\",\"x\":null},{\"id\":2,\"s\":\"c\",\"x\":2.5}]\n",
        ),
        (
            "ndjson",
            "{\"id\":1,\"s\":\"a,b\",\"x\":null}\n{\"id\":2,\"s\":\"c\",\"x\":2.5}\n",
        ),
        (
            "markdown",
            "| id | s | x |\n|---:|---|---:|\n| 1 | a,b | NULL |\n| 2 | c | 2.5 |\n",
        ),
        (
            "table",
            "+----+-----+------+\n| id | s   |    x |\n+----+-----+------+\n|  1 | a,b | NULL |\n|  2 | c   |  2.5 |\n+----+-----+------+\n2 rows\n",
        ),
    ];
    for (format, expected) in cases {
        let o = run(&["--format", format, "-c", sql]);
        assert!(o.status.success(), "{format}: {}", stderr(&o));
        assert_eq!(stdout(&o), expected, "{format}");
        assert_eq!(stderr(&o), "", "{format}");
    }
    let quiet = run(&["-q", "-c", "SELECT 1 AS one"]);
    assert!(!stdout(&quiet).contains("row"), "{}", stdout(&quiet));
    let timed = run(&[
        "--timing",
        "--format",
        "csv",
        "-c",
        "SELECT 1 AS one",
        "-c",
        "SELECT 2 AS two",
    ]);
    let err = stderr(&timed);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with("-c:1: ") && l.ends_with(" s")),
        "{err}"
    );
}

#[test]
fn unknown_format_is_a_usage_error() {
    let o = run(&["--format", "xml", "-c", "SELECT 1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("invalid value 'xml'"), "{}", stderr(&o));
}

#[test]
fn first_failing_statement_stops_the_job_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let script = write(
        dir.path(),
        "job.sql",
        "SELECT 1 AS a;\n-- a comment; with a semicolon\nSELECT 'x;y' AS b;\n\nSELECT *\n  FROM missing_table;\nSELECT 3 AS never;\n",
    );
    let o = run(&["--format", "csv", "-f", script.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o), "a\n1\nb\nx;y\n");
    let err = stderr(&o);
    assert!(
        err.starts_with(&format!(
            "{}:5: Error during planning: table 'datafusion.public.missing_table' not found",
            script.display()
        )),
        "{err}"
    );
}

#[test]
fn scripts_and_commands_run_in_command_line_order() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "a.sql", "CREATE TABLE t AS SELECT 1 AS v;");
    let b = write(dir.path(), "b.sql", "INSERT INTO t VALUES (3);");
    let o = run(&[
        "--format",
        "csv",
        "-f",
        a.to_str().unwrap(),
        "-c",
        "INSERT INTO t VALUES (2)",
        "-f",
        b.to_str().unwrap(),
        "-c",
        "SELECT sum(v) AS s, count(*) AS n FROM t",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).ends_with("s,n\n6,3\n"), "{}", stdout(&o));
}

#[test]
fn missing_script_exits_2_naming_it() {
    let o = run(&["-f", "/no/such/job.sql"]);
    assert_usage_error(&o, "cannot read script /no/such/job.sql");
}

#[test]
fn sql_on_standard_input() {
    let o = output_with_stdin(
        cohort().args(["--format", "csv"]),
        "SELECT 2 AS y;\nSELECT 'z' AS w",
    );
    assert!(o.status.success());
    assert_eq!(stdout(&o), "y\n2\nw\nz\n");
}

#[test]
fn parameters_are_substituted_and_unknown_ones_fail() {
    let o = run(&[
        "--format",
        "csv",
        "--param",
        "day=2026-11-01",
        "--param",
        "n=3",
        "-c",
        "SELECT DATE '${day}' + INTERVAL '1 day' AS next, ${n} * 2 AS six, '$${day}' AS literal",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "next,six,literal\n2026-11-02,6,${day}\n");

    let dir = tempfile::tempdir().unwrap();
    let script = write(dir.path(), "p.sql", "SELECT 1;\nSELECT\n  ${region} AS r;");
    let o = run(&["-f", script.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains(":3: Error during planning: unknown parameter ${region} (none were given); pass it with --param region=VALUE"),
        "{}",
        stderr(&o)
    );

    let bad = run(&["--param", "no_equals", "-c", "SELECT 1"]);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn output_file_is_written_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report.csv");
    let o = run(&[
        "--format",
        "csv",
        "-o",
        out.to_str().unwrap(),
        "-c",
        "SELECT 42 AS answer",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "answer\n42\n");

    // A failing job leaves the previous file as it was and no temporary file behind.
    let o = run(&[
        "--format",
        "csv",
        "-o",
        out.to_str().unwrap(),
        "-c",
        "SELECT 1 AS partial",
        "-c",
        "SELECT * FROM missing",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "answer\n42\n");
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec!["report.csv"]);

    let fresh = dir.path().join("never.csv");
    let o = run(&["-o", fresh.to_str().unwrap(), "-c", "SELECT * FROM missing"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(!fresh.exists());
}

/// The names in `dir`, sorted.
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn output_through_a_symbolic_link_replaces_its_target_keeping_permissions() {
    use std::os::unix::fs::{PermissionsExt, symlink};
    let dir = tempfile::tempdir().unwrap();
    let target = write(dir.path(), "report.csv", "old\n");
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o640)).unwrap();
    let link = dir.path().join("latest.csv");
    symlink("report.csv", &link).unwrap();
    let o = run(&[
        "--format",
        "csv",
        "-o",
        link.to_str().unwrap(),
        "-c",
        "SELECT 42 AS answer",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(link.symlink_metadata().unwrap().file_type().is_symlink());
    assert_eq!(std::fs::read_link(&link).unwrap(), Path::new("report.csv"));
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "answer\n42\n");
    let mode = std::fs::metadata(&target).unwrap().permissions().mode();
    assert_eq!(mode & 0o7777, 0o640);

    // A dangling link is written through, creating its target, as `>` in a shell does; the
    // new file is an ordinary one, not private to its owner.
    let dangling = dir.path().join("next.csv");
    symlink("created.csv", &dangling).unwrap();
    let o = run(&["-o", dangling.to_str().unwrap(), "-c", "SELECT 1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        dangling
            .symlink_metadata()
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let created = std::fs::metadata(dir.path().join("created.csv")).unwrap();
    assert!(created.is_file());
    assert_ne!(created.permissions().mode() & 0o777, 0o600);
    assert_eq!(
        names_in(dir.path()),
        ["created.csv", "latest.csv", "next.csv", "report.csv"]
    );
}

#[test]
fn output_to_a_device_is_written_directly() {
    use std::os::unix::fs::{FileTypeExt, symlink};
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("discard");
    symlink("/dev/null", &link).unwrap();
    let o = run(&["-o", link.to_str().unwrap(), "-c", "SELECT 1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        std::fs::metadata("/dev/null")
            .unwrap()
            .file_type()
            .is_char_device()
    );
    assert!(link.symlink_metadata().unwrap().file_type().is_symlink());
    assert_eq!(names_in(dir.path()), ["discard"]);
}

#[test]
fn output_to_a_fifo_is_written_directly() {
    use std::os::unix::fs::FileTypeExt;
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
    };
    let o = run(&[
        "--format",
        "csv",
        "-o",
        fifo.to_str().unwrap(),
        "-c",
        "SELECT 42 AS answer",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(reader.join().unwrap(), "answer\n42\n");
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
    assert_eq!(names_in(dir.path()), ["pipe"]);
}

#[test]
fn reading_a_fifo_as_a_table_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("feed.csv");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let path = fifo.to_str().unwrap();
    let said = format!(
        "{path} is a FIFO (named pipe), not a regular file, and reading it could wait for \
         ever; copy it to a file first and read that"
    );
    let by_path = format!("SELECT * FROM '{path}'");
    let external = format!("CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '{path}'");
    for (args, code) in [
        (vec!["-c", by_path.as_str()], 1),
        (vec!["-c", external.as_str()], 1),
        (vec![path, "-c", "SELECT 1"], 2),
    ] {
        // Without the check this would wait for a writer for ever.
        let mut child = cohort()
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let started = std::time::Instant::now();
        while child.try_wait().unwrap().is_none() {
            if started.elapsed() > std::time::Duration::from_secs(60) {
                child.kill().unwrap();
                panic!("{args:?} still waits after a minute");
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let o = child.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(code), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(&said), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn errors_reading_a_file_name_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("a,b\n");
    for i in 1..3000 {
        csv.push_str(&format!("{i},{i}\n"));
    }
    csv.push_str("oops,5\n");
    let mixed = write(dir.path(), "mixed.csv", &csv);
    let mixed = mixed.to_str().unwrap();
    let o = run(&["-c", &format!("SELECT sum(a) FROM '{mixed}'")]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains(&format!(
            "cannot read {mixed}: Arrow error: Parser error: Error while parsing value 'oops' \
             as type 'Int64' for column 0 (a) at line 3000"
        )),
        "{}",
        stderr(&o)
    );

    // A Parquet file with damaged pages, read by path, as a table, and in a folder.
    let parquet = dir.path().join("damaged.parquet");
    let parquet = parquet.to_str().unwrap();
    let written = run(&[
        "-c",
        &format!(
            "COPY (SELECT i AS a FROM generate_series(1, 100000) t(i)) TO '{parquet}' \
             STORED AS PARQUET"
        ),
    ]);
    assert!(written.status.success(), "{}", stderr(&written));
    let mut bytes = std::fs::read(parquet).unwrap();
    for b in &mut bytes[4..60] {
        *b ^= 0xff;
    }
    std::fs::write(parquet, bytes).unwrap();
    let o = run(&["-c", &format!("SELECT sum(a) FROM '{parquet}'")]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains(&format!("cannot read {parquet}: ")),
        "{}",
        stderr(&o)
    );
    let o = run(&[parquet, "-c", "SELECT sum(a) FROM damaged"]);
    assert!(
        stderr(&o).contains(&format!("cannot read {parquet}: ")),
        "{}",
        stderr(&o)
    );
    // A damaged footer stops planning, which names the file too.
    let footer = dir.path().join("footer.parquet");
    let footer = footer.to_str().unwrap();
    let mut bytes = std::fs::read(parquet).unwrap();
    let end = bytes.len() - 8;
    for b in bytes[end - 200..end].iter_mut().step_by(3) {
        *b ^= 0xff;
    }
    std::fs::write(footer, bytes).unwrap();
    let o = run(&["-c", &format!("SELECT * FROM '{footer}'")]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains(&format!("cannot read {footer}: ")),
        "{}",
        stderr(&o)
    );
}

#[test]
fn signal_during_output_leaves_the_file_and_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = write(dir.path(), "report.csv", "previous\n");
    for (signal, code) in [("-INT", 130), ("-TERM", 143)] {
        let child = cohort()
            .args([
                "--format",
                "csv",
                "-o",
                out.to_str().unwrap(),
                "-c",
                "SELECT * FROM generate_series(1, 500000000)",
            ])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Wait until the job is writing its temporary file.
        let started = std::time::Instant::now();
        while names_in(dir.path()).len() < 2 {
            assert!(
                started.elapsed().as_secs() < 30,
                "no temporary file appeared"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
        let killed = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let o = child.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(code), "{}", stderr(&o));
        assert!(stderr(&o).contains("interrupted"), "{}", stderr(&o));
        assert_eq!(names_in(dir.path()), ["report.csv"]);
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "previous\n");
    }
}

#[test]
fn closed_stdout_ends_quietly() {
    let mut child = cohort()
        .args([
            "--demo",
            "--format",
            "csv",
            "-c",
            "SELECT * FROM orders CROSS JOIN products",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("order_id,customer_id"), "{first}");
    // Dropping our end of the pipe closes it, like `| head -1`.
    let o = child.wait_with_output().unwrap();
    assert_eq!(stderr(&o), "");
    assert_eq!(o.status.code(), Some(0));
}

/// Every format writes rows as they come: a reader that stops after the first lines
/// (`| head -3`) ends a query over more rows than memory holds, and cohort exits quietly.
#[test]
fn results_stream_to_a_reader_that_stops() {
    for format in ["table", "markdown", "csv", "json", "ndjson"] {
        let mut child = cohort()
            .args([
                "--format",
                format,
                "-c",
                "SELECT value, 'row ' || value AS label FROM generate_series(1, 1000000000000)",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // A bounded read: a JSON array is one endless line. The partitions of the series
        // may come in any order.
        let mut head = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .take(4096)
            .read_to_string(&mut head)
            .unwrap();
        let expected = match format {
            "table" => "| value | label ",
            "markdown" => "| value | label |\n|---:|---|\n| ",
            "csv" => "value,label\n",
            "json" => "[{\"value\":",
            _ => "{\"value\":",
        };
        assert!(head.contains(expected), "{format}: {}", &head[..200]);
        let o = child.wait_with_output().unwrap();
        assert_eq!(stderr(&o), "", "{format}");
        assert_eq!(o.status.code(), Some(0), "{format}");
    }
}

/// A table's columns are as wide as their widest cell in the first rows; a wider cell
/// later widens only its own row, and the rows all show.
#[test]
fn long_tables_keep_their_first_widths() {
    let o = run(&[
        "-c",
        "SELECT value AS v FROM generate_series(1, 1200) ORDER BY value",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        &lines[..4],
        ["+------+", "|    v |", "+------+", "|    1 |"]
    );
    assert_eq!(lines[lines.len() - 3], "| 1200 |");
    assert_eq!(lines[lines.len() - 2], "+------+");
    assert_eq!(lines[lines.len() - 1], "1200 rows");
    let o = run(&[
        "-c",
        "SELECT repeat('x', CAST(value / 1000 AS INT)) AS s FROM generate_series(1, 2000) ORDER BY value",
    ]);
    let text = stdout(&o);
    assert!(
        text.starts_with("+---+\n| s |\n+---+\n|   |\n"),
        "{}",
        &text[..40]
    );
    assert!(text.contains("\n| xx |\n"), "{}", &text[text.len() - 60..]);
}

/// Models that keep every training row in memory take it from the pool first, and say
/// what they need and what to do when it is not there; models that stream their passes
/// (k-means then too) train within the limit.
#[test]
fn training_past_the_memory_limit() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().to_str().unwrap();
    let train = |options: &str, query: &str| {
        run(&[
            "--store",
            store,
            "--memory-limit",
            "64K",
            "--format",
            "csv",
            "-c",
            &format!("CREATE OR REPLACE MODEL m OPTIONS ({options}) AS {query}"),
        ])
    };
    let rows = "FROM generate_series(1, 50000)";
    let o = train(
        "model_type = 'kmeans', num_clusters = 3",
        &format!("SELECT value % 97 AS a, value % 89 AS b {rows}"),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains(
            "clustered in passes over the rows (left on the cluster, or more than the memory \
             pool holds), from a start fitted on a sample of them"
        ),
        "{}",
        stdout(&o)
    );
    let o = train(
        "model_type = 'matrix_factorization'",
        &format!("SELECT value % 1000 AS user_id, value % 997 AS item_id, 1.0 AS rating {rows}"),
    );
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        stderr(&o).contains(
            "CREATE MODEL m: matrix_factorization keeps the interactions and their factors in \
             memory while it trains: about"
        ),
        "{}",
        stderr(&o)
    );
    let o = train(
        "model_type = 'logistic_reg', label = 'y'",
        &format!(
            "SELECT value % 7 AS x, CAST((value * 7919) % 13 < 5 + value % 7 AS INT) AS y {rows}"
        ),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains(",50000,0,,"), "{out}");
    assert!(
        out.contains("auc is computed on the probabilities rounded to 1/1048576"),
        "{out}"
    );
}

#[test]
fn data_files_become_tables() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    // Make Parquet, Arrow IPC, gzipped CSV and a Parquet directory with DataFusion itself.
    let make = run(&[
        "-q",
        &data("people.csv"),
        "-c",
        &format!("COPY people TO '{d}/people.parquet' STORED AS PARQUET"),
        "-c",
        &format!("COPY people TO '{d}/people_ipc.arrow' STORED AS ARROW"),
        "-c",
        &format!(
            "COPY people TO '{d}/people_gz.csv.gz' STORED AS CSV OPTIONS ('format.compression' 'gzip')"
        ),
        "-c",
        &format!("COPY people TO '{d}/people_dir/' STORED AS PARQUET"),
    ]);
    assert!(make.status.success(), "{}", stderr(&make));
    let parquet = format!("{d}/people.parquet");
    let arrow = format!("{d}/people_ipc.arrow");
    let gz = format!("{d}/people_gz.csv.gz");
    let pdir = format!("{d}/people_dir");
    let tags = data("tags.ndjson");
    let mut args = vec!["--format", "csv"];
    for file in [&parquet, &arrow, &gz, &pdir, &tags] {
        args.push(file);
    }
    args.extend(["-c", "SELECT (SELECT sum(spend) FROM people) AS a, (SELECT sum(spend) FROM people_gz) AS b, (SELECT count(*) FROM people_dir) AS c, (SELECT count(tag) FROM tags) AS d, (SELECT max(name) FROM people_ipc) AS e"]);
    let o = run(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "a,b,c,d,e\n17.75,17.75,3,1,\"Cy, Jr.\"\n");

    // The CSV itself, with a quoted comma, registers as `people`.
    let o = run(&[
        &data("people.csv"),
        "--format",
        "csv",
        "-c",
        "SELECT name FROM people WHERE id = 3",
    ]);
    assert_eq!(stdout(&o), "name\n\"Cy, Jr.\"\n");
}

#[test]
fn unreadable_data_files_are_named() {
    let o = run(&[
        &data("people.csv"),
        "/no/such/file.parquet",
        "-c",
        "SELECT 1",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("cannot read /no/such/file.parquet"),
        "{}",
        stderr(&o)
    );

    let dir = tempfile::tempdir().unwrap();
    let notes = write(dir.path(), "notes.txt", "hello");
    let o = run(&[notes.to_str().unwrap(), "-c", "SELECT 1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("notes.txt: unknown file type"),
        "{}",
        stderr(&o)
    );

    let broken = write(dir.path(), "broken.parquet", "not parquet at all");
    let o = run(&[
        &data("people.csv"),
        broken.to_str().unwrap(),
        "-c",
        "SELECT 1",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("broken.parquet"), "{}", stderr(&o));
}

#[test]
fn unknown_table_or_column_fails_with_datafusions_message() {
    let o = run(&["-c", "SELECT nope FROM (SELECT 1 AS a)"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("-c:1: Schema error: No field named nope"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn models_persist_in_the_store_across_runs() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().to_str().unwrap();
    let diabetes = data("diabetes.csv");
    let out = create_diabetes_model(store, &[]);
    assert!(
        out.starts_with("model,version,rows_used,rows_skipped,skipped_because,training_seconds,metric,value,warnings,eval_metrics,cv_metrics,tuning\ndia,1,442,0,,"),
        "{out}"
    );
    let r2: f64 = out
        .trim_end()
        .trim_end_matches(',')
        .rsplit(',')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!((r2 - 0.5177484222203499).abs() < 1e-12, "{out}");

    // A new process finds the model on disk.
    let o = run(&[
        "--store",
        store,
        &diabetes,
        "--format",
        "csv",
        "-c",
        "SELECT round(PREDICT('dia', age, sex, bmi, bp, s1, s2, s3, s4, s5, s6), 4) AS p FROM diabetes LIMIT 1",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "p\n206.1167\n");

    let o = run(&[
        "--store",
        store,
        "-c",
        "DROP MODEL dia",
        "-c",
        "DESCRIBE MODEL dia",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("-c:1: Error during planning: no model named dia"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn demo_is_deterministic_and_scales() {
    let sql = "SELECT count(*) AS n, sum(monthly_charges) AS charges, sum(CAST(churned AS INT)) AS churned FROM customers";
    let a = run(&[
        "--demo",
        "--demo-scale",
        "0.5",
        "--format",
        "csv",
        "-c",
        sql,
    ]);
    let b = run(&[
        "--demo",
        "--demo-scale",
        "0.5",
        "--format",
        "csv",
        "-c",
        sql,
    ]);
    assert!(a.status.success(), "{}", stderr(&a));
    assert_eq!(stdout(&a), stdout(&b));
    assert!(
        stdout(&a).starts_with("n,charges,churned\n5000,"),
        "{}",
        stdout(&a)
    );
    let c = run(&[
        "--demo",
        "--demo-scale",
        "0.5",
        "--demo-seed",
        "7",
        "--format",
        "csv",
        "-c",
        sql,
    ]);
    assert_ne!(stdout(&a), stdout(&c));
    let bad = run(&["--demo", "--demo-scale", "-1", "-c", "SELECT 1"]);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn readme_tour_runs_on_demo_data() {
    // The README's first command, run in a scratch directory: churn.sql writes its CSV there.
    let dir = tempfile::tempdir().unwrap();
    let queries = root().join("queries");
    let o = cohort()
        .current_dir(dir.path())
        .args([
            "--store",
            dir.path().join("models").to_str().unwrap(),
            "--demo",
        ])
        .args(["-f", queries.join("tour.sql").to_str().unwrap()])
        .args(["-f", queries.join("churn.sql").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("daily_revenue"), "{}", stdout(&o));
    assert!(stdout(&o).contains("| decile |"), "{}", stdout(&o));
    let riskiest = std::fs::read_to_string(dir.path().join("riskiest_customers.csv")).unwrap();
    assert_eq!(riskiest.lines().count(), 1001);
    assert!(riskiest.starts_with("customer_id,region,plan,churn_probability\n"));
}

#[test]
fn killed_create_model_leaves_the_previous_version() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().to_str().unwrap();
    let create = |rows: u64| {
        format!(
            "CREATE OR REPLACE MODEL m OPTIONS (model_type = 'logistic_reg', label = 'y') AS \
             SELECT random() AS x1, random() AS x2, value % 3 = 0 AS y \
             FROM generate_series(1, {rows})"
        )
    };
    let o = run(&["--store", store, "-c", &create(1000)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let versions = || {
        let o = run(&[
            "--store",
            store,
            "--format",
            "csv",
            "-q",
            "-c",
            "SELECT model, version, training_rows FROM cohort.models",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o)
    };
    // Killed at moments from the start of the query to the end of training (or after it
    // finished): every time the store holds the model, whole, at some version.
    let mut last = 1;
    for delay_ms in [50, 200, 500, 1000, 2000, 4000] {
        let mut child = cohort()
            .args(["--store", store, "-c", &create(3_000_000)])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        child.kill().unwrap();
        child.wait().unwrap();
        let listed = versions();
        let row = listed.lines().nth(1).unwrap_or_default().to_string();
        let fields: Vec<&str> = row.split(',').collect();
        assert_eq!(fields.len(), 3, "{listed}");
        assert_eq!(fields[0], "m");
        let version: u64 = fields[1].parse().unwrap();
        assert!(version == last || version == last + 1, "{listed}");
        assert!(
            ["1000", "3000000"].contains(&fields[2]),
            "a version holds whole training: {listed}"
        );
        last = version;
        let o = run(&[
            "--store",
            store,
            "-c",
            "SELECT PREDICT_CHURN('m', 0.5, 0.5)",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
}

#[test]
fn memory_limit_bounds_training() {
    let dir = tempfile::tempdir().unwrap();
    let out = create_diabetes_model(dir.path().to_str().unwrap(), &["--memory-limit", "16K"]);
    assert!(out.contains(",r2,0.51774842222"), "{out}");
    assert!(out.contains("did not fit the memory pool"), "{out}");

    let o = run(&["--memory-limit", "lots", "-c", "SELECT 1"]);
    assert_usage_error(&o, "expected a size such as 512M or 4G, got 'lots'");
}

#[test]
fn serve_without_login_only_on_loopback() {
    let o = run(&["serve", "--listen", "0.0.0.0:50999"]);
    assert_usage_error(
        &o,
        "reachable from other machines: give --users FILE, or --user",
    );
    let o = run(&["serve", "--statement-timeout", "soon"]);
    assert_usage_error(&o, "expected a duration such as 90s, 15m or 2h, got 'soon'");
    let o = run(&["serve", "--statement-timeout=-5s"]);
    assert_usage_error(&o, "expected a duration such as 90s, 15m or 2h, got '-5s'");
    let o = run(&["serve", "--session-memory-limit", "lots"]);
    assert_usage_error(&o, "expected a size such as 512M or 4G, got 'lots'");
    let o = run(&["serve", "--user", "ana"]);
    assert_usage_error(
        &o,
        "--user needs --password-env VAR or --password-file FILE",
    );
    let o = cohort()
        .args([
            "serve",
            "--user",
            "ana",
            "--password-env",
            "COHORT_UNSET_PASSWORD",
        ])
        .env_remove("COHORT_UNSET_PASSWORD")
        .output()
        .unwrap();
    assert_usage_error(&o, "COHORT_UNSET_PASSWORD is not set");
}

#[test]
fn example_scripts_run_on_the_demo_data() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    for script in [
        "tour.sql",
        "churn.sql",
        "segments.sql",
        "recommend.sql",
        "forecast.sql",
        "value.sql",
    ] {
        let path = root().join("queries").join(script);
        let out = cohort()
            .current_dir(dir.path())
            .args(["--demo", "--demo-scale", "0.2", "--store"])
            .arg(&store)
            .arg("-f")
            .arg(&path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{script}: {}", stderr(&out));
    }
}

#[test]
fn users_file_is_managed_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("users");
    let file = file.to_str().unwrap();
    // The password is the first line of standard input when it is not a terminal.
    let users = |args: &[&str], stdin: &str| {
        output_with_stdin(cohort().args(["users", "--file", file]).args(args), stdin)
    };
    let o = users(&["add", "ana", "--role", "analyst"], "first secret\n");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("added ana (analyst)"), "{}", stderr(&o));
    let o = users(
        &["add", "bob@corp.example", "--role", "reader"],
        "second secret",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = users(&["list"], "");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "ana               analyst\nbob@corp.example  reader\n"
    );
    let before = std::fs::read_to_string(file).unwrap();
    let o = users(&["passwd", "ana"], "third secret\r\n");
    assert!(o.status.success(), "{}", stderr(&o));
    let after = std::fs::read_to_string(file).unwrap();
    assert_ne!(before, after);
    let o = users(&["remove", "bob@corp.example"], "");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&users(&["list"], "")), "ana  analyst\n");

    // Only hashes are stored, owner-only.
    let text = std::fs::read_to_string(file).unwrap();
    for clear in ["first", "second", "third", "secret"] {
        assert!(!text.contains(clear), "{text}");
    }
    assert!(text.contains("ana analyst $argon2id$"), "{text}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    // Mistakes are usage errors that leave the file as it was.
    let cases: [(&[&str], &str, &str); 6] = [
        (
            &["add", "ana", "--role", "admin"],
            "x\n",
            "user ana exists already",
        ),
        (
            &["add", "carl", "--role", "admin"],
            "\n",
            "the password is empty",
        ),
        (
            &["add", "carl jr", "--role", "admin"],
            "x\n",
            "bad user name 'carl jr'",
        ),
        (
            &["add", "carl", "--role", "chief"],
            "x\n",
            "unknown role 'chief'",
        ),
        (&["remove", "zed"], "", "no user named zed"),
        (&["passwd", "zed"], "x\n", "no user named zed"),
    ];
    for (args, stdin, message) in cases {
        assert_usage_error(&users(args, stdin), message);
    }
    assert_eq!(std::fs::read_to_string(file).unwrap(), text);
    let missing = dir.path().join("none").display().to_string();
    assert_usage_error(
        &run(&["users", "--file", &missing, "list"]),
        "cannot read the users file",
    );
}

/// Outsized k and horizon: answered (k past the items gives them all) or refused with an
/// error exit and a message naming the argument, never an abort.
#[test]
fn outsized_table_function_arguments_fail_cleanly() {
    let store = tempfile::tempdir().unwrap();
    let run_sql = |sql: &str| {
        cohort()
            .args(["--demo", "--demo-scale", "0.1", "--memory-limit", "200M"])
            .arg("--store")
            .arg(store.path())
            .args(["--format", "csv", "-c", sql])
            .output()
            .expect("cohort runs")
    };
    let o = run_sql(
        "CREATE MODEL recs OPTIONS (model_type = 'matrix_factorization', \
             feedback_type = 'implicit', num_factors = 8, seed = 3) AS \
             SELECT customer_id, product_id, COUNT(*) AS n FROM orders GROUP BY 1, 2; \
             CREATE MODEL fc OPTIONS (model_type = 'forecast', time_col = 'date', \
             value_col = 'revenue', id_col = 'region') AS \
             SELECT date, region, revenue FROM daily_revenue; \
         SELECT count(*) > 0 AS some FROM recommend('recs', 1000000000); \
         SELECT cardinality(RECOMMEND('recs', 7, 9223372036854775807)) < 500 AS fewer",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).ends_with("some\ntrue\nfewer\ntrue\n"),
        "{}",
        stdout(&o)
    );
    for (sql, message) in [
        (
            "SELECT count(*) FROM forecast('fc', 1000000)",
            "forecast's horizon must be at most 100000, the longest forecast a model makes, \
             got 1000000; forecast fewer steps",
        ),
        (
            "SELECT count(*) FROM forecast('fc', 9223372036854775807)",
            "got 9223372036854775807; forecast fewer steps",
        ),
        (
            "SET datafusion.runtime.memory_limit = '100K'; \
             SELECT count(*) FROM recommend('recs', 1000000000)",
            "recommend: k = 1000000000 would need",
        ),
        (
            "SET datafusion.runtime.memory_limit = '100K'; \
             SELECT count(*) FROM forecast('fc', 100000)",
            "lower horizon or raise --memory-limit",
        ),
        // The scalar form's lists are reserved in the same pool.
        (
            "SET datafusion.runtime.memory_limit = '100K'; \
             SELECT count(RECOMMEND('recs', customer_id, 1000000000)) FROM customers",
            "recommend: k = 1000000000 would need",
        ),
    ] {
        let o = run_sql(sql);
        assert_eq!(o.status.code(), Some(1), "{sql}: {}", stderr(&o));
        assert!(stderr(&o).contains(message), "{sql}: {}", stderr(&o));
    }
}

/// A damaged Parquet file behind CREATE EXTERNAL TABLE (truncated, or its footer flipped)
/// is named in the error, with what to do.
#[test]
fn damaged_parquet_tables_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.parquet");
    let o = cohort()
        .args(["-c"])
        .arg(format!(
            "COPY (SELECT v, v * 2 AS w FROM generate_series(1, 5000) g(v)) TO '{}'",
            good.display()
        ))
        .output()
        .expect("cohort runs");
    assert!(o.status.success(), "{}", stderr(&o));
    let bytes = std::fs::read(&good).unwrap();
    let n = bytes.len();
    let mut flipped = bytes.clone();
    // The footer's metadata, just before its length and magic.
    for b in &mut flipped[n - 40..n - 8] {
        *b = !*b;
    }
    for (name, damaged) in [("truncated", bytes[..n / 2].to_vec()), ("flipped", flipped)] {
        let path = dir.path().join(format!("{name}.parquet"));
        std::fs::write(&path, damaged).unwrap();
        let o = cohort()
            .args(["-c"])
            .arg(format!(
                "CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '{}'; SELECT sum(w) FROM t",
                path.display()
            ))
            .output()
            .expect("cohort runs");
        assert_eq!(o.status.code(), Some(1), "{name}: {}", stdout(&o));
        let message = stderr(&o);
        assert!(
            message.contains(&format!("cannot read {}", path.display()))
                && message.contains("write it again, or move it out of the table's location"),
            "{name}: {message}"
        );
    }
}

/// EVALUATE's pairs are held in the memory pool: a classifier's that do not fit are counted
/// per probability step (same metrics, AUC within the steps' rounding), a regression's end
/// the query naming --memory-limit.
#[test]
fn evaluate_within_the_memory_limit() {
    let store = tempfile::tempdir().unwrap();
    let run_sql = |limit: &str, sql: &str| {
        cohort()
            .arg("--store")
            .arg(store.path())
            .args(["--memory-limit", limit, "--format", "csv", "-c"])
            .arg(format!(
                "SET datafusion.execution.target_partitions = 1; {sql}"
            ))
            .output()
            .expect("cohort runs")
    };
    let rows = |n: u32| {
        format!(
            "(SELECT CAST(v % 97 AS DOUBLE) AS x, (v % 97) + (v % 13) * 5 > 80 AS y \
             FROM generate_series(1, {n}) g(v))"
        )
    };
    let o = run_sql(
        "1G",
        &format!(
            "CREATE MODEL clf OPTIONS (model_type = 'logistic_reg', label = 'y') AS \
             SELECT * FROM {}; \
             CREATE MODEL reg OPTIONS (model_type = 'linear_reg', label = 'x') AS \
             SELECT x, CAST(y AS DOUBLE) AS z FROM {}",
            rows(2000),
            rows(2000)
        ),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let metrics = |limit: &str| {
        let o = run_sql(
            limit,
            &format!(
                "SELECT rows, accuracy, precision, recall, f1, auc, log_loss \
                 FROM evaluate('clf', {})",
                rows(3_000_000)
            ),
        );
        assert!(o.status.success(), "{limit}: {}", stderr(&o));
        let out = stdout(&o);
        let values: Vec<f64> = out
            .lines()
            .nth(1)
            .unwrap_or_default()
            .split(',')
            .map(|v| v.parse().unwrap())
            .collect();
        values
    };
    // 3,000,000 pairs are 48 MB: kept under 1G, counted per step under 40M.
    let (exact, binned) = (metrics("1G"), metrics("40M"));
    assert_eq!(exact.len(), 7);
    assert_eq!(exact[..5], binned[..5], "{exact:?} {binned:?}");
    assert!((exact[5] - binned[5]).abs() < 1e-4, "{exact:?} {binned:?}");
    assert!((exact[6] - binned[6]).abs() < 1e-9, "{exact:?} {binned:?}");
    let o = run_sql(
        "10M",
        &format!(
            "SELECT r2 FROM evaluate('reg', (SELECT x, CAST(y AS DOUBLE) AS z FROM {}))",
            rows(3_000_000)
        ),
    );
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("evaluate: the predictions and labels of")
            && stderr(&o).contains("raise --memory-limit"),
        "{}",
        stderr(&o)
    );
}

/// Arrow IPC files that declare lengths past their end are refused by name, before a
/// reader allocates what they declare.
#[test]
fn arrow_files_declaring_more_than_they_hold_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for (path, why) in oversized_arrow_files(dir.path()) {
        let o = cohort()
            .arg(&path)
            .args(["-c", "SELECT 1"])
            .output()
            .expect("cohort runs");
        // Like any data file that cannot be read: a usage error.
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        let expected = format!(
            "cannot read {}: not a readable Arrow IPC file: {why}",
            path.display()
        );
        assert!(stderr(&o).contains(&expected), "{}", stderr(&o));
    }
}

/// The same files read by SQL, by path or as an external table (with any extension when
/// STORED AS ARROW, or in a folder): refused by name, as a failed statement.
#[test]
fn arrow_files_read_by_sql_are_checked_first() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("folder");
    std::fs::create_dir(&folder).unwrap();
    for (path, why) in oversized_arrow_files(dir.path()) {
        let renamed = path.with_extension("bin");
        std::fs::copy(&path, &renamed).unwrap();
        let inside = folder.join(path.file_name().unwrap());
        std::fs::copy(&path, &inside).unwrap();
        for (sql, named) in [
            (format!("SELECT * FROM '{}'", path.display()), &path),
            (
                format!(
                    "CREATE EXTERNAL TABLE t STORED AS ARROW LOCATION '{}'",
                    path.display()
                ),
                &path,
            ),
            (
                format!(
                    "CREATE EXTERNAL TABLE t STORED AS ARROW LOCATION '{}'",
                    renamed.display()
                ),
                &renamed,
            ),
            (
                format!(
                    "CREATE EXTERNAL TABLE t STORED AS ARROW LOCATION '{}/'",
                    folder.display()
                ),
                &inside,
            ),
        ] {
            let o = run(&["-c", &sql]);
            assert_eq!(o.status.code(), Some(1), "{sql}: {}", stderr(&o));
            let expected = format!(
                "cannot read {}: not a readable Arrow IPC file: {why}",
                named.display()
            );
            assert!(stderr(&o).contains(&expected), "{sql}: {}", stderr(&o));
        }
        std::fs::remove_file(&inside).unwrap();
    }
}

#[test]
fn commands_and_scripts_run_meta_commands() {
    // psql's habit: -c '\d' lists tables.
    let o = run(&["--demo", "-c", "\\d"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("| public | customers"),
        "{}",
        stdout(&o)
    );

    // In a script, a meta-command runs on its line; its confirmation goes to standard error.
    let dir = tempfile::tempdir().unwrap();
    let script = write(
        dir.path(),
        "job.sql",
        "\\format csv\nSELECT 1 AS a;\n\\x on\n\\format table\nSELECT 2 AS b, 3 AS c;\n",
    );
    let o = run(&["-f", script.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "a\n1\n-[ RECORD 1 ]+--------\nb | 2\nc | 3\n1 row\n"
    );
    assert!(
        stderr(&o).contains("Output format is csv."),
        "{}",
        stderr(&o)
    );

    // A bad meta-command fails the script at its line.
    let o = run(&["-c", "SELECT 1;\n\\bogus"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("-c:2: Error during planning: unknown command \\bogus"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn floats_are_rounded_in_tables_only() {
    let sql = "SELECT 0.23141361256544501 AS x";
    let o = run(&["-c", sql]);
    assert!(stdout(&o).contains("| 0.231414 |"), "{}", stdout(&o));
    let o = run(&["-c", "\\digits 3", "-c", sql]);
    assert!(stdout(&o).contains("| 0.231 |"), "{}", stdout(&o));
    let o = run(&["-c", "\\digits full", "-c", sql]);
    assert!(
        stdout(&o).contains("| 0.23141361256544501 |"),
        "{}",
        stdout(&o)
    );
    // Data formats and -o files keep every digit.
    let o = run(&["--format", "csv", "-c", sql]);
    assert_eq!(stdout(&o), "x\n0.23141361256544501\n");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.json");
    let o = run(&["--format", "json", "-o", out.to_str().unwrap(), "-c", sql]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "[{\"x\":0.23141361256544501}]\n"
    );
}

#[test]
fn copy_watch_and_charts_from_scripts() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("r.csv");
    let svg = dir.path().join("r.svg");
    let o = run(&[
        "--chart",
        svg.to_str().unwrap(),
        "-c",
        "SELECT x, x * 0.123456789 AS y FROM generate_series(1, 5) t(x)",
        "-c",
        &format!("\\copy TO '{}'", csv.display()),
        "-c",
        "\\watch 0.01 c=2",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        std::fs::read_to_string(&csv)
            .unwrap()
            .starts_with("x,y\n1,0.123456789\n2,0.246913578\n")
    );
    assert!(stderr(&o).contains("Wrote 5 rows to"), "{}", stderr(&o));
    assert_eq!(stdout(&o).matches("Run ").count(), 2, "{}", stdout(&o));
    // plotters writes each text on a line of its own: the x axis is described by its column,
    // the legend names the series y, drawn as one line through the five rows.
    let chart = std::fs::read_to_string(&svg).unwrap();
    assert!(chart.starts_with("<svg"), "{chart}");
    assert!(chart.contains(">\nx\n</text>"), "{chart}");
    assert!(chart.contains(">\ny\n</text>"), "{chart}");
    let series = chart
        .lines()
        .find(|l| l.starts_with("<polyline") && l.contains("stroke-width=\"2\""))
        .unwrap_or_else(|| panic!("no series line in {chart}"));
    assert_eq!(series.matches(',').count(), 5, "{series}");

    let o = run(&["--chart", "x.gif", "-c", "SELECT 1 AS a, 2 AS b"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains(".svg or .png"), "{}", stderr(&o));
}

#[test]
fn startup_file_runs_unless_told_not_to() {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join(".cohortrc"), "\\format csv\n").unwrap();
    let with_home = |args: &[&str]| {
        cohort()
            .env("HOME", home.path())
            .env("XDG_CONFIG_HOME", home.path().join("config"))
            .args(args)
            .output()
            .unwrap()
    };
    assert_eq!(stdout(&with_home(&["-c", "SELECT 1 AS a"])), "a\n1\n");
    assert!(stdout(&with_home(&["-X", "-c", "SELECT 1 AS a"])).contains("| a |"));
    std::fs::remove_file(home.path().join(".cohortrc")).unwrap();
    let config = home.path().join("config").join("cohort");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(config.join("init.sql"), "\\format json\n").unwrap();
    assert_eq!(
        stdout(&with_home(&["-c", "SELECT 1 AS a"])),
        "[{\"a\":1}]\n"
    );
}
