//! The interactive shell driven through a real pseudo-terminal, as a person types.

use rexpect::session::{PtySession, spawn_command};

use crate::common::cohort_binary;

const PROMPT: &str = "cohort> ";

fn start(home: &std::path::Path) -> PtySession {
    start_with(home, cohort_binary())
}

/// The shell in a terminal window of `rows` × `columns`: a new pseudo-terminal has no size, so
/// `stty` gives it one before the shell starts.
fn start_sized(home: &std::path::Path, rows: u16, columns: u16) -> PtySession {
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c")
        .arg(format!(
            "stty rows {rows} cols {columns} && exec \"$0\" \"$@\""
        ))
        .arg(env!("CARGO_BIN_EXE_cohort"));
    start_with(home, cmd)
}

fn start_with(home: &std::path::Path, mut cmd: std::process::Command) -> PtySession {
    cmd.args(["--demo", "--demo-scale", "1"])
        .env("XDG_DATA_HOME", home)
        .env("HOME", home)
        .env("NO_COLOR", "1")
        .env("TERM", "xterm");
    let mut p = spawn_command(cmd, Some(30_000)).expect("shell starts");
    p.exp_string("\\? for help").unwrap();
    p.exp_string(PROMPT).unwrap();
    p
}

#[test]
fn shell_session() {
    let home = tempfile::tempdir().unwrap();
    let mut p = start(home.path());

    // A statement over several lines runs once the `;` arrives, with row count and time.
    p.send_line("SELECT count(*) AS n").unwrap();
    p.send_line("FROM customers").unwrap();
    p.send_line("WHERE plan = 'a;b' OR true;").unwrap();
    p.exp_string("10000").unwrap();
    p.exp_regex(r"1 row in \d+\.\d{3} s").unwrap();
    p.exp_string(PROMPT).unwrap();

    // Errors are reported and the shell stays alive.
    p.send_line("SELECT * FROM nope;").unwrap();
    p.exp_string("Error: Error during planning: table 'datafusion.public.nope' not found")
        .unwrap();
    p.exp_string(PROMPT).unwrap();

    // Tab completes table names.
    p.send("SELECT count(*) AS k FROM daily_rev").unwrap();
    p.send("\t").unwrap();
    p.send_line(";").unwrap();
    p.exp_string("4560").unwrap();
    p.exp_string(PROMPT).unwrap();

    // --maxrows default in the shell: 40 rows shown, the rest counted.
    p.send_line("SELECT customer_id FROM customers ORDER BY customer_id LIMIT 45;")
        .unwrap();
    p.exp_string("45 rows (40 shown, 5 left out").unwrap();
    p.exp_string(PROMPT).unwrap();

    // Meta-commands.
    p.send_line("\\d").unwrap();
    p.exp_string("daily_revenue").unwrap();
    p.exp_string(PROMPT).unwrap();
    p.send_line("\\d customers").unwrap();
    p.exp_string("monthly_charges").unwrap();
    p.exp_string("Float64").unwrap();
    p.exp_string(PROMPT).unwrap();
    p.send_line("\\df abs").unwrap();
    p.exp_string("abs (scalar function)").unwrap();
    p.exp_string("Example:").unwrap();
    p.exp_string(PROMPT).unwrap();
    p.send_line("\\models").unwrap();
    p.exp_string(&format!(
        "Model store: {}",
        home.path().join("cohort").join("models").display()
    ))
    .unwrap();
    p.exp_string(PROMPT).unwrap();
    p.send_line("\\timing off").unwrap();
    p.exp_string("Timing is off.").unwrap();
    p.send_line("\\format csv").unwrap();
    p.exp_string("Output format is csv.").unwrap();
    p.send_line("SELECT 7 AS seven;").unwrap();
    p.exp_string("seven\r\n7").unwrap();
    p.exp_string(PROMPT).unwrap();
    p.send_line("\\format table").unwrap();
    p.exp_string(PROMPT).unwrap();

    // \o sends results to a file, \o alone back to the terminal; \i runs a script.
    let out = home.path().join("out.csv");
    let script = home.path().join("s.sql");
    std::fs::write(&script, "SELECT 'from script' AS origin;").unwrap();
    p.send_line(&format!("\\o {}", out.display())).unwrap();
    p.exp_string("Sending results to").unwrap();
    p.send_line(&format!("\\i {}", script.display())).unwrap();
    p.exp_string(PROMPT).unwrap();
    p.send_line("\\o").unwrap();
    p.exp_string(PROMPT).unwrap();
    assert!(
        std::fs::read_to_string(&out)
            .unwrap()
            .contains("from script")
    );
    p.send_line("\\bogus").unwrap();
    p.exp_string("unknown command \\bogus").unwrap();
    p.exp_string(PROMPT).unwrap();

    // Ctrl-C cancels a long query and returns to the prompt.
    p.send_line(
        "SELECT count(*) FROM orders a CROSS JOIN orders b WHERE a.amount + b.amount > 1e9;",
    )
    .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    p.send_control('c').unwrap();
    p.exp_string("Query cancelled.").unwrap();
    p.exp_string(PROMPT).unwrap();
    p.send_line("SELECT 'still alive' AS status;").unwrap();
    p.exp_string("still alive").unwrap();
    p.exp_string(PROMPT).unwrap();

    // Ctrl-D leaves; history was kept in the user's data directory.
    p.send_control('d').unwrap();
    p.exp_eof().unwrap();
    let history = std::fs::read_to_string(home.path().join("cohort").join("history.txt")).unwrap();
    assert!(history.contains("still alive"), "{history}");
}

#[test]
fn quit_command_exits_cleanly() {
    let home = tempfile::tempdir().unwrap();
    let mut p = start(home.path());
    p.send_line("\\q").unwrap();
    p.exp_eof().unwrap();
    let status = p.process().wait().unwrap();
    assert!(
        matches!(status, rexpect::process::WaitStatus::Exited(_, 0)),
        "{status:?}"
    );
}

#[test]
fn users_passwords_are_asked_twice_at_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("users");
    let add = || {
        let mut cmd = cohort_binary();
        cmd.args(["users", "--file"])
            .arg(&file)
            .args(["add", "ana", "--role", "admin"]);
        spawn_command(cmd, Some(30_000)).expect("cohort users starts")
    };
    let mut p = add();
    p.exp_string("Password for ana: ").unwrap();
    p.send_line("one").unwrap();
    p.exp_string("Same password again: ").unwrap();
    p.send_line("two").unwrap();
    p.exp_string("the passwords do not match").unwrap();
    p.exp_eof().unwrap();
    assert!(!file.exists());

    let mut p = add();
    p.exp_string("Password for ana: ").unwrap();
    p.send_line("s3cret").unwrap();
    p.exp_string("Same password again: ").unwrap();
    p.send_line("s3cret").unwrap();
    p.exp_string("added ana (admin)").unwrap();
    p.exp_eof().unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("ana admin $argon2id$") && !text.contains("s3cret"));
}

/// The lines written between now and the next prompt.
fn until_prompt(p: &mut PtySession) -> String {
    utf8(&p.exp_string(PROMPT).unwrap())
}

/// rexpect hands back each byte the terminal wrote as one char (as if Latin-1); this reads them as
/// the UTF-8 the shell wrote, so bars, dots and Braille count as one character each.
fn utf8(read: &str) -> String {
    let bytes: Vec<u8> = read.chars().map(|c| c as u32 as u8).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// `text` as rexpect reads it back from the terminal: one char per UTF-8 byte.
fn as_read(text: &str) -> String {
    text.bytes().map(char::from).collect()
}

#[test]
fn progress_shows_on_long_statements_and_clears_before_the_result() {
    let home = tempfile::tempdir().unwrap();
    let mut p = start(home.path());
    let file = home.path().join("o.parquet");
    p.send_line(&format!(
        "COPY (SELECT a.* FROM orders a CROSS JOIN generate_series(1, 40) b) TO '{}';",
        file.display()
    ))
    .unwrap();
    until_prompt(&mut p);
    // A scan of a Parquet file knows its rows: a bar with the share read and the rate.
    p.send_line(&format!(
        "SELECT sum(length(repeat(CAST(amount AS VARCHAR), 300))) AS n FROM '{}';",
        file.display()
    ))
    .unwrap();
    p.exp_regex(&as_read(r"\d+% · [\d.]+[kM]?/[\d.]+M rows"))
        .unwrap();
    // The sum's header is right-aligned, as numbers are.
    let before = utf8(&p.exp_string(" n |").unwrap());
    // The line was cleared before the table started.
    let cleared = before
        .rfind("\x1b[2K")
        .expect("the progress line is cleared");
    assert!(!before[cleared..].contains("rows/s"), "{before:?}");
    until_prompt(&mut p);
    p.send_line("\\q").unwrap();
    p.exp_eof().unwrap();
}

#[test]
fn charts_fit_the_terminal() {
    let home = tempfile::tempdir().unwrap();
    let mut p = start_sized(home.path(), 18, 60);
    p.send_line("SELECT x, x * x AS y FROM generate_series(1, 50) t(x);")
        .unwrap();
    // The line is wider than the window, so its echo redraws the prompt: wait for the result.
    p.exp_string("50 rows").unwrap();
    until_prompt(&mut p);
    p.send_line("\\chart").unwrap();
    let chart = until_prompt(&mut p);
    let lines: Vec<&str> = chart.lines().filter(|l| !l.contains("\\chart")).collect();
    // The chart, the prompt and the command fit the window's 18 rows; its lines fill the
    // window's 60 columns without wrapping.
    assert!((8..=16).contains(&lines.len()), "{chart}");
    let widest = lines.iter().map(|l| l.trim_end().chars().count()).max();
    assert!(widest.is_some_and(|w| (50..=60).contains(&w)), "{chart}");
    assert!(chart.contains('y') && chart.contains("50"), "{chart}");
    assert!(
        chart
            .chars()
            .any(|c| ('\u{2801}'..='\u{28ff}').contains(&c)),
        "{chart}"
    );
    let svg = home.path().join("c.svg");
    p.send_line(&format!("\\chart scatter x y > {}", svg.display()))
        .unwrap();
    p.exp_string("Wrote the chart to").unwrap();
    until_prompt(&mut p);
    assert!(std::fs::read_to_string(&svg).unwrap().contains("<circle"));
    p.send_line("\\q").unwrap();
    p.exp_eof().unwrap();
}

#[test]
fn meta_commands_given_with_c_run_at_a_terminal_too() {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = cohort_binary();
    cmd.args(["--demo", "-c", "\\d"])
        .env("HOME", home.path())
        .env("NO_COLOR", "1");
    let mut p = spawn_command(cmd, Some(30_000)).unwrap();
    p.exp_string("daily_revenue").unwrap();
    p.exp_eof().unwrap();
}
