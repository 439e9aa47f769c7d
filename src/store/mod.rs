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

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::ipc::reader::FileReader;
use datafusion::arrow::ipc::writer::FileWriter;
use datafusion::common::{DataFusionError, Result};
use serde::{Deserialize, Serialize};

pub use table::ModelsTable;

use cohort_udfs::model;
use cohort_udfs::{Error, ModelResolver, ResolvedModel};
use datafusion::common::utils::datafusion_strsim::levenshtein;

/// The description format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
const DESCRIPTION: &str = "model.json";
const TEMP_PREFIX: &str = ".tmp-";

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
}

/// A model loaded from the store.
#[derive(Debug, Clone)]
pub struct StoredModel {
    pub description: ModelDescription,
    pub dir: PathBuf,
}

impl StoredModel {
    /// Reads one of the model's arrays.
    pub fn array(&self, name: &str) -> Result<Vec<RecordBatch>> {
        let path = self.dir.join(format!("{name}.arrow"));
        let file = File::open(&path).map_err(|e| io_error(&path, e))?;
        let reader = FileReader::try_new(file, None).map_err(|e| corrupt(&path, &e))?;
        reader
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| corrupt(&path, &e))
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
        create_private_dir(&root, true)?;
        Ok(Self { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The current version of every model, sorted by name.
    pub fn list(&self) -> Result<Vec<ModelDescription>> {
        let mut out = Vec::new();
        for name in self.names()? {
            if let Some(model) = self.latest(&name)? {
                out.push(model.description);
            }
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
    ) -> Result<u64> {
        validate_name(&description.name)?;
        let dir = self.root.join(&description.name);
        create_private_dir(&dir, true)?;
        remove_stale_temporaries(&dir);
        let temp = dir.join(format!("{TEMP_PREFIX}{}-{}", std::process::id(), unique()));
        create_private_dir(&temp, false)?;
        let written = (|| {
            description.format_version = FORMAT_VERSION;
            description.arrays = arrays.iter().map(|(n, _)| n.to_string()).collect();
            for (name, batches) in arrays {
                write_array(&temp.join(format!("{name}.arrow")), batches)?;
            }
            // The version is settled at the rename; retry if another writer took it.
            loop {
                let version = self.latest_version(&description.name)?.unwrap_or(0) + 1;
                description.version = version;
                let json = serde_json::to_vec_pretty(&description)
                    .map_err(|e| DataFusionError::External(Box::new(e)))?;
                write_synced(&temp.join(DESCRIPTION), &json)?;
                sync_dir(&temp)?;
                let target = dir.join(version_dir(version));
                match fs::rename(&temp, &target) {
                    Ok(()) => {
                        sync_dir(&dir)?;
                        return Ok(version);
                    }
                    Err(_) if target.exists() => continue,
                    Err(e) => return Err(io_error(&target, e)),
                }
            }
        })();
        if written.is_err() {
            let _ = fs::remove_dir_all(&temp);
        }
        written
    }

    /// Removes every version of `name`; false if there was none.
    pub fn drop_model(&self, name: &str) -> Result<bool> {
        if !self.exists(name)? {
            return Ok(false);
        }
        let dir = self.root.join(name);
        // Rename first so readers never see a model half-removed.
        let doomed = self
            .root
            .join(format!("{TEMP_PREFIX}drop-{name}-{}", unique()));
        fs::rename(&dir, &doomed).map_err(|e| io_error(&dir, e))?;
        sync_dir(&self.root)?;
        fs::remove_dir_all(&doomed).map_err(|e| io_error(&doomed, e))?;
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

    fn latest_version(&self, name: &str) -> Result<Option<u64>> {
        let dir = self.root.join(name);
        if validate_name(name).is_err() || !dir.is_dir() {
            return Ok(None);
        }
        let mut latest = None;
        for entry in fs::read_dir(&dir).map_err(|e| io_error(&dir, e))? {
            let entry = entry.map_err(|e| io_error(&dir, e))?;
            let file_name = entry.file_name();
            let Some(v) = file_name
                .to_str()
                .and_then(|n| n.strip_prefix('v'))
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            if entry.path().join(DESCRIPTION).is_file() {
                latest = latest.max(Some(v));
            }
        }
        Ok(latest)
    }

    fn latest(&self, name: &str) -> Result<Option<StoredModel>> {
        let Some(version) = self.latest_version(name)? else {
            return Ok(None);
        };
        let dir = self.root.join(name).join(version_dir(version));
        let path = dir.join(DESCRIPTION);
        let bytes = fs::read(&path).map_err(|e| io_error(&path, e))?;
        // Read the format version first, so a newer file is reported as such rather than
        // as whatever field it happens to lack.
        let probe: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| corrupt(&path, &e))?;
        let format = probe.get("format_version").and_then(|v| v.as_u64());
        match format {
            Some(f) if f > u64::from(FORMAT_VERSION) => {
                return Err(DataFusionError::from(Error::Store(format!(
                    "{} was written by a newer cohort (model format {f}; this build reads up to \
                     {FORMAT_VERSION}); upgrade cohort to use model {name}",
                    path.display()
                ))));
            }
            Some(_) => {}
            None => return Err(corrupt(&path, &"no format_version")),
        }
        let description: ModelDescription =
            serde_json::from_value(probe).map_err(|e| corrupt(&path, &e))?;
        Ok(Some(StoredModel { description, dir }))
    }
}

impl ModelResolver for ModelStore {
    fn resolve(&self, name: &str) -> Result<ResolvedModel> {
        let stored = self.load(name)?;
        let d = stored.description.clone();
        let model = model::from_json(d.parameters, &|array| stored.array(array))?;
        Ok(ResolvedModel {
            name: d.name,
            version: d.version,
            model,
        })
    }
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

/// Model names are directory names: keep them plain.
fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "model name {name:?} can hold only letters, digits, '_', '-' and '.', and may not \
             start with '.'"
        ))
        .into())
    }
}

fn version_dir(version: u64) -> String {
    format!("v{version:06}")
}

/// Temporary directories left by writers that died, older than a minute.
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
        if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) && stale {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

fn unique() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// Creates the directory `path` (and with `parents` its missing parents) readable by its
/// owner only: models hold customers' data.
fn create_private_dir(path: &Path, parents: bool) -> Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(parents);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(path).map_err(|e| io_error(path, e))
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

fn write_array(path: &Path, batches: &[RecordBatch]) -> Result<()> {
    let Some(first) = batches.first() else {
        return Err(DataFusionError::Internal(format!(
            "no batches for model array {}",
            path.display()
        )));
    };
    let file = create_private_file(path)?;
    let mut writer = FileWriter::try_new(file, &first.schema())?;
    for batch in batches {
        writer.write(batch)?;
    }
    writer.finish()?;
    writer
        .into_inner()?
        .sync_all()
        .map_err(|e| io_error(path, e))
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error(dir, e))
}

fn io_error(path: &Path, e: io::Error) -> DataFusionError {
    Error::Store(format!("model store: {}: {e}", path.display())).into()
}

fn corrupt(path: &Path, e: &dyn std::fmt::Display) -> DataFusionError {
    Error::Store(format!(
        "model store: {} is damaged ({e}); drop the model with DROP MODEL and create it again",
        path.display()
    ))
    .into()
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
            .save(description("m"), &[("weights", vec![batch()])])
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
        assert_eq!(store.save(description("m"), &[]).unwrap(), 1);
        assert_eq!(
            store
                .save(description("m"), &[("weights", vec![batch()])])
                .unwrap(),
            2
        );
        store.save(description("other"), &[]).unwrap();
        let listed = store.list().unwrap();
        assert_eq!(
            listed
                .iter()
                .map(|d| (d.name.as_str(), d.version))
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
        store.save(description("m"), &[]).unwrap();
        // A writer that died before its rename leaves only a temporary directory, and a
        // version directory without its description does not count.
        fs::create_dir_all(dir.path().join("m/.tmp-123-456")).unwrap();
        fs::write(dir.path().join("m/.tmp-123-456/model.json"), b"{\"trunc").unwrap();
        fs::create_dir_all(dir.path().join("m/v000002")).unwrap();
        let m = store.load("m").unwrap();
        assert_eq!(m.description.version, 1);
        assert_eq!(store.list().unwrap().len(), 1);
        // A failed save (an empty array) leaves nothing new behind.
        assert!(store.save(description("m"), &[("w", vec![])]).is_err());
        assert_eq!(store.load("m").unwrap().description.version, 1);
    }

    #[test]
    fn damaged_and_newer_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let store = ModelStore::open(dir.path()).unwrap();
        store.save(description("m"), &[]).unwrap();
        let path = dir.path().join("m/v000001/model.json");
        fs::write(&path, b"not json").unwrap();
        let e = store.load("m").unwrap_err().to_string();
        assert!(e.contains("model.json is damaged"), "{e}");
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
        assert!(store.save(description("../escape"), &[]).is_err());
        assert!(store.save(description(".hidden"), &[]).is_err());
        assert!(!store.exists("../escape").unwrap());
    }
}
