//! The model store: models as versioned directories on local disk.
//!
//! ```text
//! <root>/<model>/v000001/model.json      description: type, label, features, metrics, ...
//! <root>/<model>/v000001/<array>.arrow   large arrays (factors, centroids) as Arrow IPC
//! <root>/<model>/v000002/...             each CREATE adds a version; the highest is current
//! ```
//!
//! A version is written into a temporary directory, every file is synced, and the directory
//! is renamed into place and its parent synced: a crash part-way leaves the earlier versions
//! as they were and only a temporary directory behind, which later writes clean up.

mod table;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::ipc::reader::FileReader;
use datafusion::arrow::ipc::writer::FileWriter;
use datafusion::common::{DataFusionError, Result};
use serde::{Deserialize, Serialize};

pub use table::ModelsTable;

use cohort_udfs::model;
use cohort_udfs::model::Assessment;
use cohort_udfs::{Error, ModelResolver, ResolvedModel};
use datafusion::common::utils::datafusion_strsim::levenshtein;

/// The description format this build writes and reads. Format 2 adds `manifest.json`, the
/// checksum of every file of a version; format 1 versions have none and load unchecked.
pub const FORMAT_VERSION: u32 = 2;
const DESCRIPTION: &str = "model.json";
const MANIFEST: &str = "manifest.json";
const TEMP_PREFIX: &str = ".tmp-";
/// The highest version number: SHOW MODELS reports versions as Int64.
const MAX_VERSION: u64 = i64::MAX as u64;
/// How often a writer takes a fresh version number when other writers keep taking its own.
const MAX_ATTEMPTS: usize = 32;

/// What a write does when the model exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveMode {
    /// Fail with [`Error::AlreadyExists`] (CREATE MODEL); two writers racing cannot both win.
    New,
    /// Add a version (CREATE OR REPLACE MODEL).
    Replace,
}

/// A feature as the model saw it in training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Feature {
    pub name: String,
    /// The Arrow type of the training column, as text.
    pub data_type: String,
    /// How the column was encoded, e.g. `standardized` or `one-hot (3 levels)`.
    pub encoding: String,
}

/// Everything about a model but its large arrays.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelDescription {
    pub format_version: u32,
    pub name: String,
    /// Set by the store when the version is written.
    pub version: u64,
    pub model_type: String,
    pub label: Option<String>,
    pub features: Vec<Feature>,
    /// The CREATE MODEL options, as written.
    pub options: Vec<(String, String)>,
    pub training_rows: u64,
    pub rows_skipped: u64,
    /// Headline metrics, e.g. `r2` or `auc`, in a stable order.
    pub metrics: Vec<(String, f64)>,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// The model's parameters, specific to its type.
    pub parameters: serde_json::Value,
    /// Names of the Arrow IPC arrays stored beside the description.
    pub arrays: Vec<String>,
    /// Metrics on evaluation rows, over cross-validation folds and per tuning trial; absent
    /// from models created without them.
    #[serde(default, skip_serializing_if = "Assessment::is_empty")]
    pub assessment: Assessment,
}

/// The CRC-32 of every file of a version, by file name: damage (a flipped bit, a truncated
/// file) is found on load instead of changing predictions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Manifest {
    files: BTreeMap<String, u32>,
}

/// A model loaded from the store.
#[derive(Debug, Clone)]
pub struct StoredModel {
    pub description: ModelDescription,
    pub dir: PathBuf,
    /// None for a version written before checksums (format 1).
    manifest: Option<Manifest>,
}

impl StoredModel {
    /// Reads one of the model's arrays, checking it against its checksum.
    pub fn array(&self, name: &str) -> Result<Vec<RecordBatch>> {
        let file = format!("{name}.arrow");
        let path = self.dir.join(&file);
        let bytes = fs::read(&path).map_err(|e| io_error(&path, e))?;
        if let Some(manifest) = &self.manifest {
            verify(&self.description.name, &self.dir, &file, &bytes, manifest)?;
        }
        let reader = FileReader::try_new(io::Cursor::new(bytes), None)
            .map_err(|e| damaged(&self.description.name, &self.dir, &file, &unreadable(&e)))?;
        reader
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| damaged(&self.description.name, &self.dir, &file, &unreadable(&e)))
    }
}

/// One model as SHOW MODELS lists it: its current version, or why that cannot be read.
#[derive(Debug)]
pub enum Listed {
    /// Boxed: a description is several times the size of the other variant.
    Model(Box<ModelDescription>),
    Damaged {
        name: String,
        version: u64,
        problem: String,
    },
}

impl Listed {
    pub fn name(&self) -> &str {
        match self {
            Listed::Model(m) => &m.name,
            Listed::Damaged { name, .. } => name,
        }
    }

    pub fn version(&self) -> u64 {
        match self {
            Listed::Model(m) => m.version,
            Listed::Damaged { version, .. } => *version,
        }
    }
}

/// A directory of models.
#[derive(Debug, Clone)]
pub struct ModelStore {
    root: PathBuf,
}

impl ModelStore {
    /// The store in the user's data directory (`~/.local/share/cohort/models` on Linux).
    pub fn default_root() -> Option<PathBuf> {
        dirs::data_dir().map(|d| d.join("cohort").join("models"))
    }

    /// Opens (creating if needed) the store at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        create_private_dir(&root, true).map_err(|e| io_error(&root, e))?;
        Ok(Self { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The current version of every model, sorted by name. A model that cannot be read is
    /// listed with its problem, so one damaged model does not hide the others.
    pub fn list(&self) -> Result<Vec<Listed>> {
        let mut out = Vec::new();
        for name in self.names()? {
            let Some(version) = self.latest_version(&name)? else {
                continue;
            };
            out.push(match self.read_version(&name, version) {
                Ok(model) => Listed::Model(Box::new(model.description)),
                Err(e) => Listed::Damaged {
                    name,
                    version,
                    problem: Error::find(&e).map_or_else(|| e.to_string(), |e| e.to_string()),
                },
            });
        }
        Ok(out)
    }

    /// Whether a model of this name exists.
    pub fn exists(&self, name: &str) -> Result<bool> {
        Ok(self.latest_version(name)?.is_some())
    }

    /// The current version of `name`; the error names close matches.
    pub fn load(&self, name: &str) -> Result<StoredModel> {
        match self.latest(name)? {
            Some(m) => Ok(m),
            None => Err(Error::ModelNotFound {
                name: name.to_string(),
                message: self.unknown(name)?,
            }
            .into()),
        }
    }

    /// The message for a model that does not exist, with near names.
    pub fn unknown(&self, name: &str) -> Result<String> {
        let names = self.names()?;
        let mut near: Vec<&String> = names.iter().filter(|n| similar(n, name)).collect();
        near.truncate(5);
        let hint = match near.as_slice() {
            [] if names.is_empty() => {
                "the store is empty; create one with CREATE MODEL".to_string()
            }
            [] => "SHOW MODELS lists them".to_string(),
            near => format!(
                "did you mean {}?",
                near.iter()
                    .map(|n| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        Ok(format!(
            "no model named {name} in {}; {hint}",
            self.root.display()
        ))
    }

    /// Writes a new version of `description.name` with its arrays and returns the version.
    pub fn save(
        &self,
        mut description: ModelDescription,
        arrays: &[(&str, Vec<RecordBatch>)],
        mode: SaveMode,
    ) -> Result<u64> {
        let name = description.name.clone();
        validate_name(&name)?;
        if mode == SaveMode::New && self.exists(&name)? {
            return Err(already_exists(&name));
        }
        let dir = self.root.join(&name);
        create_private_dir(&dir, true).map_err(|e| io_error(&dir, e))?;
        remove_stale_temporaries(&dir);
        let temp = dir.join(format!("{TEMP_PREFIX}{}-{}", std::process::id(), unique()));
        create_private_dir(&temp, false).map_err(|e| io_error(&temp, e))?;
        let mut claimed = None;
        let written = (|| {
            description.format_version = FORMAT_VERSION;
            description.arrays = arrays.iter().map(|(n, _)| n.to_string()).collect();
            let mut manifest = Manifest::default();
            for (array, batches) in arrays {
                let file = format!("{array}.arrow");
                let crc = write_array(&temp.join(&file), batches)?;
                manifest.files.insert(file, crc);
            }
            let (version, target) = claim_version(&dir, &name, mode)?;
            claimed = Some(target.clone());
            description.version = version;
            let json = serde_json::to_vec_pretty(&description)
                .map_err(|e| DataFusionError::External(Box::new(e)))?;
            write_synced(&temp.join(DESCRIPTION), &json)?;
            manifest
                .files
                .insert(DESCRIPTION.to_string(), crc32fast::hash(&json));
            let manifest = serde_json::to_vec_pretty(&manifest)
                .map_err(|e| DataFusionError::External(Box::new(e)))?;
            write_synced(&temp.join(MANIFEST), &manifest)?;
            sync_dir(&temp)?;
            // The claimed directory is empty, so the rename replaces it in one step.
            fs::rename(&temp, &target).map_err(|e| {
                Error::Store(format!(
                    "cannot write version {version} of model {name}: {}: {e}",
                    target.display()
                ))
            })?;
            sync_dir(&dir)?;
            Ok(version)
        })();
        if written.is_err() {
            let _ = fs::remove_dir_all(&temp);
            if let Some(claimed) = claimed {
                // Only an empty claim: a version that made it into place stays.
                let _ = fs::remove_dir(claimed);
            }
        }
        written
    }

    /// Removes every version of `name`; false if there was none. All or nothing: a model
    /// that cannot be removed whole stays as it was.
    pub fn drop_model(&self, name: &str) -> Result<bool> {
        self.drop_with(name, |doomed| fs::remove_dir_all(doomed))
    }

    /// [`Self::drop_model`] with the removal of the renamed-aside directory given, so tests
    /// can make it fail where permissions do not (as root).
    fn drop_with(&self, name: &str, remove: impl Fn(&Path) -> io::Result<()>) -> Result<bool> {
        if !self.exists(name)? {
            return Ok(false);
        }
        let dir = self.root.join(name);
        let refuse = |path: &Path, e: io::Error| -> DataFusionError {
            Error::Store(format!(
                "cannot drop model {name}: {} cannot be changed ({e}); the model is unchanged",
                path.display()
            ))
            .into()
        };
        // Removing needs write access to the store and to every directory of the model:
        // check before anything moves.
        let mut dirs = vec![self.root.clone(), dir.clone()];
        for entry in fs::read_dir(&dir).map_err(|e| io_error(&dir, e))? {
            let entry = entry.map_err(|e| io_error(&dir, e))?;
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                dirs.push(entry.path());
            }
        }
        for d in &dirs {
            check_writable(d).map_err(|e| refuse(d, e))?;
        }
        // Rename first so readers never see a model half-removed.
        let doomed = self
            .root
            .join(format!("{TEMP_PREFIX}drop-{name}-{}", unique()));
        fs::rename(&dir, &doomed).map_err(|e| refuse(&dir, e))?;
        sync_dir(&self.root)?;
        if let Err(e) = remove(&doomed) {
            return Err(match fs::rename(&doomed, &dir) {
                Ok(()) => {
                    let _ = sync_dir(&self.root);
                    refuse(&doomed, e)
                }
                Err(back) => Error::Store(format!(
                    "cannot drop model {name}: {}: {e}; and it could not be put back ({back}), \
                     so it is left at {}",
                    doomed.display(),
                    doomed.display()
                ))
                .into(),
            });
        }
        Ok(true)
    }

    fn names(&self) -> Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(&self.root).map_err(|e| io_error(&self.root, e))? {
            let entry = entry.map_err(|e| io_error(&self.root, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.starts_with('.') && entry.path().is_dir() {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    /// The highest version of `name` that holds a description.
    fn latest_version(&self, name: &str) -> Result<Option<u64>> {
        let dir = self.root.join(name);
        if validate_name(name).is_err() || !dir.is_dir() {
            return Ok(None);
        }
        Ok(versions(&dir)?
            .into_iter()
            .filter(|(_, described)| *described)
            .map(|(v, _)| v)
            .max())
    }

    fn latest(&self, name: &str) -> Result<Option<StoredModel>> {
        match self.latest_version(name)? {
            Some(version) => self.read_version(name, version).map(Some),
            None => Ok(None),
        }
    }

    /// Reads and checks the description of one version.
    fn read_version(&self, name: &str, version: u64) -> Result<StoredModel> {
        let dir = self.root.join(name).join(version_dir(version));
        let path = dir.join(DESCRIPTION);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(damaged(name, &dir, DESCRIPTION, &"is missing"));
            }
            Err(e) => return Err(io_error(&path, e)),
        };
        // Read the format version first, so a newer file is reported as such rather than
        // as whatever field or checksum it happens to lack.
        let probe = serde_json::from_slice::<serde_json::Value>(&bytes);
        let format = probe
            .as_ref()
            .ok()
            .and_then(|p| p.get("format_version"))
            .and_then(|v| v.as_u64());
        if let Some(f) = format.filter(|f| *f > u64::from(FORMAT_VERSION)) {
            return Err(DataFusionError::from(Error::Store(format!(
                "{} was written by a newer cohort (model format {f}; this build reads up to \
                 {FORMAT_VERSION}); upgrade cohort to use model {name}",
                path.display()
            ))));
        }
        let manifest = match fs::read(dir.join(MANIFEST)) {
            Ok(m) => Some(
                serde_json::from_slice::<Manifest>(&m)
                    .map_err(|e| damaged(name, &dir, MANIFEST, &unreadable(&e)))?,
            ),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_error(&dir.join(MANIFEST), e)),
        };
        match &manifest {
            Some(manifest) => verify(name, &dir, DESCRIPTION, &bytes, manifest)?,
            None if format.is_some_and(|f| f >= 2) => {
                return Err(damaged(name, &dir, MANIFEST, &"is missing"));
            }
            None => {}
        }
        let probe = probe.map_err(|e| damaged(name, &dir, DESCRIPTION, &unreadable(&e)))?;
        if format.is_none() {
            return Err(damaged(name, &dir, DESCRIPTION, &"has no format_version"));
        }
        let description: ModelDescription = serde_json::from_value(probe)
            .map_err(|e| damaged(name, &dir, DESCRIPTION, &unreadable(&e)))?;
        Ok(StoredModel {
            description,
            dir,
            manifest,
        })
    }
}

/// The version directories in the model directory `dir`, each with whether it is installed
/// (it holds anything named `model.json`, or anything at all: a damaged one is reported,
/// not passed over). Names that look like versions but are not one are skipped with a warning.
fn versions(dir: &Path) -> Result<Vec<(u64, bool)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| io_error(dir, e))? {
        let entry = entry.map_err(|e| io_error(dir, e))?;
        let file_name = entry.file_name();
        let Some(digits) = file_name.to_str().and_then(|n| n.strip_prefix('v')) else {
            continue;
        };
        match parse_version(digits) {
            Some(v) => {
                // A version directory comes into place whole, by rename, so one that holds
                // anything but no description has lost it; only an empty one is a claim
                // still being written.
                let described = match fs::symlink_metadata(entry.path().join(DESCRIPTION)) {
                    Ok(_) => true,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        fs::read_dir(entry.path()).map_or(true, |mut d| d.next().is_some())
                    }
                    Err(_) => true,
                };
                out.push((v, described));
            }
            None => warn_once(
                &entry.path(),
                &format!("not a model version (versions run from v1 to v{MAX_VERSION}); skipped"),
            ),
        }
    }
    Ok(out)
}

/// `digits` as a version number: only ASCII digits, 1 to [`MAX_VERSION`].
fn parse_version(digits: &str) -> Option<u64> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits
        .parse::<u64>()
        .ok()
        .filter(|v| (1..=MAX_VERSION).contains(v))
}

/// Takes the version a write will install as its own by creating its directory, empty:
/// creating a directory is atomic, so of two writers only one gets a given version. A
/// new model takes version 1; another version takes the one after every version there.
fn claim_version(dir: &Path, name: &str, mode: SaveMode) -> Result<(u64, PathBuf)> {
    for _ in 0..MAX_ATTEMPTS {
        let version = match mode {
            SaveMode::New => 1,
            SaveMode::Replace => {
                let highest = versions(dir)?.into_iter().map(|(v, _)| v).max();
                match highest.unwrap_or(0).checked_add(1) {
                    Some(v) if v <= MAX_VERSION => v,
                    _ => {
                        return Err(Error::Store(format!(
                            "model {name} has reached the last version number (v{MAX_VERSION} \
                             in {}); DROP MODEL {name} and create it again",
                            dir.display()
                        ))
                        .into());
                    }
                }
            }
        };
        let target = dir.join(version_dir(version));
        match create_private_dir(&target, false) {
            Ok(()) => return Ok((version, target)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => match mode {
                SaveMode::New => return Err(already_exists(name)),
                // Another writer took it in between: the next look sees it.
                SaveMode::Replace => continue,
            },
            Err(e) => return Err(io_error(&target, e)),
        }
    }
    Err(Error::Store(format!(
        "cannot write model {name}: other writers took every version number tried in {} \
         ({MAX_ATTEMPTS} attempts); try again",
        dir.display()
    ))
    .into())
}

/// The error for creating a model that exists.
pub fn already_exists(name: &str) -> DataFusionError {
    Error::AlreadyExists(format!(
        "model {name} already exists; use CREATE OR REPLACE MODEL to train a new version, \
         or DROP MODEL first"
    ))
    .into()
}

/// Whether files can be created and removed in `dir`, by doing it.
fn check_writable(dir: &Path) -> io::Result<()> {
    let probe = dir.join(format!(
        "{TEMP_PREFIX}probe-{}-{}",
        std::process::id(),
        unique()
    ));
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)?;
    fs::remove_file(&probe)
}

/// Checks `bytes`, the content of `file` in the version directory `dir`, against the
/// manifest.
fn verify(name: &str, dir: &Path, file: &str, bytes: &[u8], manifest: &Manifest) -> Result<()> {
    match manifest.files.get(file) {
        Some(crc) if *crc == crc32fast::hash(bytes) => Ok(()),
        Some(_) => Err(damaged(name, dir, file, &"does not match its checksum")),
        None => Err(damaged(
            name,
            dir,
            file,
            &"has no checksum in manifest.json",
        )),
    }
}

/// Problems in the store's own layout are reported once per path and process: they are
/// skipped, and repeating them at every statement would drown the output.
fn warn_once(path: &Path, why: &str) {
    static WARNED: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());
    let mut warned = WARNED.lock().unwrap_or_else(|p| p.into_inner());
    if warned.insert(path.to_path_buf()) {
        eprintln!("warning: model store: {}: {why}", path.display());
    }
}

impl ModelResolver for ModelStore {
    fn resolve(&self, name: &str) -> Result<ResolvedModel> {
        resolved(self.load(name)?)
    }

    fn assessment(&self, name: &str) -> Result<Option<Assessment>> {
        let assessment = self.load(name)?.description.assessment;
        Ok((!assessment.is_empty()).then_some(assessment))
    }

    fn resolve_version(&self, name: &str, version: u64) -> Result<ResolvedModel> {
        validate_name(name)?;
        resolved(self.read_version(name, version)?)
    }
}

/// A stored model with its arrays read.
fn resolved(stored: StoredModel) -> Result<ResolvedModel> {
    let d = stored.description.clone();
    let model = model::from_json(d.parameters, &|array| stored.array(array))?;
    Ok(ResolvedModel {
        name: d.name,
        version: d.version,
        model,
    })
}

/// The current time as RFC 3339 in UTC, for `created_at`.
pub fn now_rfc3339() -> String {
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64);
    datafusion::arrow::temporal_conversions::timestamp_us_to_datetime(micros)
        .map(|t| format!("{}Z", t.format("%Y-%m-%dT%H:%M:%S%.6f")))
        .unwrap_or_default()
}

/// The longest model name, in bytes of UTF-8: names are directory names, and file systems
/// cap those at 255 bytes.
const MAX_NAME_BYTES: usize = 128;

/// Model names are directory names: keep them plain.
pub fn validate_name(name: &str) -> Result<()> {
    let why = if name.is_empty() {
        "is empty".to_string()
    } else if name.len() > MAX_NAME_BYTES {
        format!(
            "is {} bytes long; model names may be at most {MAX_NAME_BYTES} bytes (UTF-8), \
             so shorten it",
            name.len()
        )
    } else if name.starts_with('.')
        || !name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        "can hold only letters, digits, '_', '-' and '.', and may not start with '.'".to_string()
    } else {
        return Ok(());
    };
    Err(Error::InvalidArgument(format!("model name {name:?} {why}")).into())
}

fn version_dir(version: u64) -> String {
    format!("v{version:06}")
}

/// Temporary directories and empty version claims left by writers that died, older than a
/// minute (a writer claims its version only once its files are written, just before the
/// rename that fills the claim).
fn remove_stale_temporaries(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age.as_secs() > 60);
        let name = entry.file_name().to_string_lossy().into_owned();
        if !stale {
            continue;
        }
        if name.starts_with(TEMP_PREFIX) {
            let _ = fs::remove_dir_all(entry.path());
        } else if name.starts_with('v') {
            // Fails, as it should, for any version that holds files.
            let _ = fs::remove_dir(entry.path());
        }
    }
}

/// A name part no other call in this process returns: the clock alone repeats when two
/// sessions write at once (its ticks are coarser than a save's start), so a counter follows.
fn unique() -> String {
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{nanos}-{call}")
}

/// Creates the directory `path` (and with `parents` its missing parents) readable by its
/// owner only: models hold customers' data.
fn create_private_dir(path: &Path, parents: bool) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(parents);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(path)
}

/// Creates (or truncates) the file `path`, readable by its owner only.
fn create_private_file(path: &Path) -> Result<File> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map_err(|e| io_error(path, e))
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = create_private_file(path)?;
    file.write_all(bytes).map_err(|e| io_error(path, e))?;
    file.sync_all().map_err(|e| io_error(path, e))
}

/// Writes `batches` as an Arrow IPC file and returns the file's CRC-32.
fn write_array(path: &Path, batches: &[RecordBatch]) -> Result<u32> {
    let Some(first) = batches.first() else {
        return Err(DataFusionError::Internal(format!(
            "no batches for model array {}",
            path.display()
        )));
    };
    let file = Hashed {
        inner: create_private_file(path)?,
        crc: crc32fast::Hasher::new(),
    };
    let mut writer = FileWriter::try_new(file, &first.schema())?;
    for batch in batches {
        writer.write(batch)?;
    }
    writer.finish()?;
    let hashed = writer.into_inner()?;
    hashed.inner.sync_all().map_err(|e| io_error(path, e))?;
    Ok(hashed.crc.finalize())
}

/// A writer that keeps the CRC-32 of what passes through it, so a file's checksum needs
/// no second read.
struct Hashed<W> {
    inner: W,
    crc: crc32fast::Hasher,
}

impl<W: Write> Write for Hashed<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error(dir, e))
}

fn io_error(path: &Path, e: io::Error) -> DataFusionError {
    Error::Store(format!("model store: {}: {e}", path.display())).into()
}

/// The error for `file` of the version directory `dir` of model `name` being damaged.
fn damaged(name: &str, dir: &Path, file: &str, problem: &dyn std::fmt::Display) -> DataFusionError {
    let version = dir
        .file_name()
        .map(|v| v.to_string_lossy())
        .unwrap_or_default();
    Error::Store(format!(
        "model {name} is damaged: {version}/{file} {problem}; retrain it or restore the file"
    ))
    .into()
}

/// How a file that does not parse is described in [`damaged`].
fn unreadable(e: &dyn std::fmt::Display) -> String {
    format!("cannot be read ({e})")
}

/// Near names: one is a prefix of the other, or they differ by at most two edits.
fn similar(a: &str, b: &str) -> bool {
    let (a, b) = (a.to_lowercase(), b.to_lowercase());
    a.starts_with(&b) || b.starts_with(&a) || levenshtein(&a, &b) <= 2
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::Float64Array;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn description(name: &str) -> ModelDescription {
        ModelDescription {
            format_version: FORMAT_VERSION,
            name: name.to_string(),
            version: 0,
            model_type: "linear_reg".to_string(),
            label: Some("spend".to_string()),
            features: vec![Feature {
                name: "tenure".into(),
                data_type: "Int64".into(),
                encoding: "standardized".into(),
            }],
            options: vec![("l2_reg".into(), "0".into())],
            training_rows: 10,
            rows_skipped: 1,
            metrics: vec![("r2".into(), 0.5)],
            created_at: "2026-11-22T12:00:00Z".into(),
            parameters: serde_json::json!({"weights": [1.5]}),
            arrays: vec![],
            assessment: Assessment::default(),
        }
    }

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("w", DataType::Float64, false)]));
        RecordBatch::try_new(schema, vec![Arc::new(Float64Array::from(vec![1.0, 2.0]))]).unwrap()
    }

    /// Models hold customers' data: the store, its model directories and their files are
    /// the owner's alone, whatever the umask allows.
    #[cfg(unix)]
    #[test]
    fn the_store_is_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("shared/models");
        let store = ModelStore::open(&root).unwrap();
        store
            .save(
                description("m"),
                &[("weights", vec![batch()])],
                SaveMode::Replace,
            )
            .unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        for d in [root.clone(), root.join("m"), root.join("m/v000001")] {
            assert_eq!(mode(&d), 0o700, "{}", d.display());
        }
        for f in [DESCRIPTION, "weights.arrow"] {
            let path = root.join("m/v000001").join(f);
            assert_eq!(mode(&path), 0o600, "{}", path.display());
        }
    }

    #[test]
    fn versions_list_load_and_drop() {
        let dir = tempfile::tempdir().unwrap();
        let store = ModelStore::open(dir.path()).unwrap();
        assert!(store.list().unwrap().is_empty());
        assert_eq!(
            store
                .save(description("m"), &[], SaveMode::Replace)
                .unwrap(),
            1
        );
        assert_eq!(
            store
                .save(
                    description("m"),
                    &[("weights", vec![batch()])],
                    SaveMode::Replace
                )
                .unwrap(),
            2
        );
        store
            .save(description("other"), &[], SaveMode::Replace)
            .unwrap();
        let listed = store.list().unwrap();
        assert_eq!(
            listed
                .iter()
                .map(|d| (d.name(), d.version()))
                .collect::<Vec<_>>(),
            vec![("m", 2), ("other", 1)]
        );
        let m = store.load("m").unwrap();
        assert_eq!(m.description.arrays, vec!["weights"]);
        assert_eq!(m.array("weights").unwrap(), vec![batch()]);
        assert!(store.drop_model("m").unwrap());
        assert!(!store.drop_model("m").unwrap());
        let e = store.load("othr").unwrap_err().to_string();
        assert!(
            e.contains("no model named othr") && e.contains("did you mean other?"),
            "{e}"
        );
    }

    #[test]
    fn an_interrupted_write_leaves_the_previous_version() {
        let dir = tempfile::tempdir().unwrap();
        let store = ModelStore::open(dir.path()).unwrap();
        store
            .save(description("m"), &[], SaveMode::Replace)
            .unwrap();
        // A writer that died before its rename leaves only a temporary directory, and a
        // version directory without its description does not count.
        fs::create_dir_all(dir.path().join("m/.tmp-123-456")).unwrap();
        fs::write(dir.path().join("m/.tmp-123-456/model.json"), b"{\"trunc").unwrap();
        fs::create_dir_all(dir.path().join("m/v000002")).unwrap();
        let m = store.load("m").unwrap();
        assert_eq!(m.description.version, 1);
        assert_eq!(store.list().unwrap().len(), 1);
        // A failed save (an empty array) leaves nothing new behind.
        assert!(
            store
                .save(description("m"), &[("w", vec![])], SaveMode::Replace)
                .is_err()
        );
        assert_eq!(store.load("m").unwrap().description.version, 1);
    }

    #[test]
    fn damaged_and_newer_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let store = ModelStore::open(dir.path()).unwrap();
        store
            .save(description("m"), &[], SaveMode::Replace)
            .unwrap();
        let path = dir.path().join("m/v000001/model.json");
        fs::write(&path, b"not json").unwrap();
        let e = store.load("m").unwrap_err().to_string();
        assert!(
            e.contains("model m is damaged: v000001/model.json does not match its checksum"),
            "{e}"
        );
        fs::write(&path, br#"{"format_version": 99}"#).unwrap();
        let e = store.load("m").unwrap_err().to_string();
        assert!(
            e.contains("written by a newer cohort (model format 99"),
            "{e}"
        );
    }

    #[test]
    fn names_must_be_plain() {
        let dir = tempfile::tempdir().unwrap();
        let store = ModelStore::open(dir.path()).unwrap();
        assert!(
            store
                .save(description("../escape"), &[], SaveMode::Replace)
                .is_err()
        );
        assert!(
            store
                .save(description(".hidden"), &[], SaveMode::Replace)
                .is_err()
        );
        assert!(!store.exists("../escape").unwrap());
    }

    /// A copy of version 1's files as version `dir_name`, as someone editing the store by
    /// hand might leave.
    fn copy_version(root: &Path, dir_name: &str) {
        let target = root.join("m").join(dir_name);
        fs::create_dir_all(&target).unwrap();
        for f in [DESCRIPTION, MANIFEST] {
            fs::copy(root.join("m/v000001").join(f), target.join(f)).unwrap();
        }
    }

    #[test]
    fn version_names_are_checked_and_never_wrap() {
        let dir = tempfile::tempdir().unwrap();
        let store = ModelStore::open(dir.path()).unwrap();
        store
            .save(description("m"), &[], SaveMode::Replace)
            .unwrap();
        // Beyond the range, beyond u64, not numbers at all: skipped, not wrapped to 0.
        for bogus in [
            "v18446744073709551615",
            "v99999999999999999999999",
            "vabc",
            "v+3",
            "v0",
            "v",
        ] {
            copy_version(dir.path(), bogus);
        }
        assert_eq!(store.load("m").unwrap().description.version, 1);
        assert_eq!(
            store
                .save(description("m"), &[], SaveMode::Replace)
                .unwrap(),
            2
        );
        assert_eq!(store.load("m").unwrap().description.version, 2);
        assert_eq!(parse_version("000042"), Some(42));
        assert_eq!(parse_version("9223372036854775808"), None);
        // At the end of the range a new version is refused with the reason.
        copy_version(dir.path(), &format!("v{MAX_VERSION}"));
        let e = store
            .save(description("m"), &[], SaveMode::Replace)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("model m has reached the last version number (v9223372036854775807"),
            "{e}"
        );
        assert_eq!(store.latest_version("m").unwrap(), Some(MAX_VERSION));
    }

    /// A description that is a directory or a symbolic link loop is an error at once when
    /// loading, and the next version is written past it instead of retrying forever.
    #[cfg(unix)]
    #[test]
    fn unreadable_descriptions_fail_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = ModelStore::open(dir.path()).unwrap();
        store
            .save(description("m"), &[], SaveMode::Replace)
            .unwrap();
        fs::create_dir_all(dir.path().join("m/v000002/model.json")).unwrap();
        let e = store.load("m").unwrap_err().to_string();
        assert!(e.contains("m/v000002/model.json"), "{e}");
        assert_eq!(
            store
                .save(description("m"), &[], SaveMode::Replace)
                .unwrap(),
            3
        );
        let looped = dir.path().join("m/v000004");
        fs::create_dir_all(&looped).unwrap();
        std::os::unix::fs::symlink(looped.join(DESCRIPTION), looped.join(DESCRIPTION)).unwrap();
        let e = store.load("m").unwrap_err().to_string();
        assert!(e.contains("m/v000004/model.json"), "{e}");
        assert_eq!(
            store
                .save(description("m"), &[], SaveMode::Replace)
                .unwrap(),
            5
        );
        assert_eq!(store.load("m").unwrap().description.version, 5);
        // A claim another writer filled in between is an error, not a retry.
        let e = store
            .save(description("m"), &[("w", vec![])], SaveMode::Replace)
            .unwrap_err();
        assert!(e.to_string().contains("no batches"), "{e}");
        assert!(!dir.path().join("m/v000006").exists());
    }

    #[test]
    fn a_drop_that_cannot_finish_leaves_the_model() {
        let dir = tempfile::tempdir().unwrap();
        let store = ModelStore::open(dir.path()).unwrap();
        store
            .save(
                description("m"),
                &[("weights", vec![batch()])],
                SaveMode::Replace,
            )
            .unwrap();
        let leftovers = || {
            fs::read_dir(dir.path())
                .unwrap()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(TEMP_PREFIX))
                .collect::<Vec<_>>()
        };
        // A store the process may not change: refused before anything moves. Root may
        // change it anyway, and then the drop goes through, as it should.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o500)).unwrap();
            let enforced = check_writable(dir.path()).is_err();
            let dropped = store.drop_model("m");
            fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).unwrap();
            if enforced {
                let e = dropped.unwrap_err().to_string();
                assert!(
                    e.contains("cannot drop model m") && e.contains("the model is unchanged"),
                    "{e}"
                );
                assert_eq!(
                    store.load("m").unwrap().array("weights").unwrap(),
                    vec![batch()]
                );
            } else {
                assert!(dropped.unwrap());
                store
                    .save(
                        description("m"),
                        &[("weights", vec![batch()])],
                        SaveMode::Replace,
                    )
                    .unwrap();
            }
        }
        // Removal failing after the rename (whatever the permissions): the model is put back.
        let e = store
            .drop_with("m", |_| Err(io::Error::other("disk on fire")))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("cannot drop model m") && e.contains("disk on fire"),
            "{e}"
        );
        assert_eq!(
            store.load("m").unwrap().array("weights").unwrap(),
            vec![batch()]
        );
        assert!(leftovers().is_empty(), "{:?}", leftovers());
        assert!(store.drop_model("m").unwrap());
        assert!(!store.exists("m").unwrap());
        assert!(leftovers().is_empty(), "{:?}", leftovers());
    }

    /// Two writers creating the same new model: exactly one wins, every round.
    #[test]
    fn creating_a_new_model_is_exclusive() {
        let dir = tempfile::tempdir().unwrap();
        for round in 0..50 {
            let name = format!("m{round}");
            let barrier = std::sync::Barrier::new(2);
            let results: Vec<Result<u64>> = std::thread::scope(|s| {
                let writers: Vec<_> = (0..2)
                    .map(|_| {
                        s.spawn(|| {
                            let store = ModelStore::open(dir.path()).unwrap();
                            barrier.wait();
                            store.save(description(&name), &[], SaveMode::New)
                        })
                    })
                    .collect();
                writers.into_iter().map(|w| w.join().unwrap()).collect()
            });
            let won = results.iter().filter(|r| r.is_ok()).count();
            assert_eq!(won, 1, "round {round}: {results:?}");
            for r in results.iter().filter_map(|r| r.as_ref().err()) {
                assert!(
                    r.to_string()
                        .contains(&format!("model {name} already exists")),
                    "{r}"
                );
            }
        }
        let store = ModelStore::open(dir.path()).unwrap();
        assert_eq!(store.list().unwrap().len(), 50);
        assert!(store.list().unwrap().iter().all(|m| m.version() == 1));
    }

    #[test]
    fn damage_is_found_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let store = ModelStore::open(dir.path()).unwrap();
        for name in ["churn", "ok"] {
            store
                .save(
                    description(name),
                    &[("weights", vec![batch()])],
                    SaveMode::Replace,
                )
                .unwrap();
        }
        let version = dir.path().join("churn/v000001");
        let arrow = version.join("weights.arrow");
        let mut bytes = fs::read(&arrow).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x10;
        fs::write(&arrow, &bytes).unwrap();
        let e = store
            .load("churn")
            .unwrap()
            .array("weights")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(
                "model churn is damaged: v000001/weights.arrow does not match its checksum; \
                 retrain it or restore the file"
            ),
            "{e}"
        );
        // A truncated description: the same kind of message, and the listing still shows
        // every model, the damaged one with its problem.
        let json = version.join(DESCRIPTION);
        let text = fs::read(&json).unwrap();
        fs::write(&json, &text[..text.len() / 2]).unwrap();
        let e = store.load("churn").unwrap_err().to_string();
        assert!(
            e.contains("model churn is damaged: v000001/model.json does not match its checksum"),
            "{e}"
        );
        let listed = store.list().unwrap();
        assert!(
            matches!(&listed[0], Listed::Damaged { name, version: 1, problem }
                if name == "churn" && problem.contains("v000001/model.json does not match")),
            "{listed:?}"
        );
        assert!(matches!(&listed[1], Listed::Model(m) if m.name == "ok"));
        assert_eq!(
            store.load("ok").unwrap().array("weights").unwrap(),
            vec![batch()]
        );
        // A damaged manifest is named too.
        fs::write(&json, &text).unwrap();
        fs::write(version.join(MANIFEST), b"{").unwrap();
        let e = store.load("churn").unwrap_err().to_string();
        assert!(
            e.contains("model churn is damaged: v000001/manifest.json"),
            "{e}"
        );
    }

    /// Versions written before checksums (format 1, no manifest) still load; a format 2
    /// version without its manifest is damaged.
    #[test]
    fn versions_without_checksums_still_load() {
        let dir = tempfile::tempdir().unwrap();
        let store = ModelStore::open(dir.path()).unwrap();
        store
            .save(
                description("m"),
                &[("weights", vec![batch()])],
                SaveMode::Replace,
            )
            .unwrap();
        let version = dir.path().join("m/v000001");
        fs::remove_file(version.join(MANIFEST)).unwrap();
        let e = store.load("m").unwrap_err().to_string();
        assert!(
            e.contains("model m is damaged: v000001/manifest.json is missing"),
            "{e}"
        );
        let mut old: serde_json::Value =
            serde_json::from_slice(&fs::read(version.join(DESCRIPTION)).unwrap()).unwrap();
        old["format_version"] = 1.into();
        fs::write(version.join(DESCRIPTION), old.to_string()).unwrap();
        let m = store.load("m").unwrap();
        assert_eq!(m.description.format_version, 1);
        assert_eq!(m.array("weights").unwrap(), vec![batch()]);
        // Unparsable old descriptions get the same kind of message.
        fs::write(version.join(DESCRIPTION), b"{\"format_version\": 1, \"na").unwrap();
        let e = store.load("m").unwrap_err().to_string();
        assert!(
            e.contains("model m is damaged: v000001/model.json cannot be read"),
            "{e}"
        );
        // A version that lost its description is damaged, not gone (found by the property
        // tests); an empty one is a claim still being written, so it is passed over.
        fs::remove_file(version.join(DESCRIPTION)).unwrap();
        let e = store.load("m").unwrap_err().to_string();
        assert!(
            e.contains("model m is damaged: v000001/model.json is missing"),
            "{e}"
        );
        assert!(matches!(
            &store.list().unwrap()[..],
            [Listed::Damaged { .. }]
        ));
        fs::remove_dir_all(&version).unwrap();
        fs::create_dir(&version).unwrap();
        assert!(!store.exists("m").unwrap());
    }
}
