//! DataFusion's Arrow IPC format with [`ipc_check`] run on every file before it is read.
//!
//! Every SQL route to an Arrow file goes through the session's format for the `arrow`
//! extension: a file queried by path (`SELECT * FROM 'x.arrow'`), `CREATE EXTERNAL TABLE ...
//! STORED AS ARROW` over a file or a folder, and the data files given on the command line.
//! Registering this format in its place checks them all, both when the schema is inferred
//! and when a query scans the files (a folder may have gained files since).

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::Session;
use datafusion::common::{GetExt, Result, Statistics};
use datafusion::datasource::file_format::arrow::{ArrowFormat, ArrowFormatFactory};
use datafusion::datasource::file_format::file_compression_type::FileCompressionType;
use datafusion::datasource::file_format::{FileFormat, FileFormatFactory};
use datafusion::datasource::physical_plan::{FileScanConfig, FileSinkConfig, FileSource};
use datafusion::datasource::table_schema::TableSchema;
use datafusion::object_store::{GetResultPayload, ObjectMeta, ObjectStore, ObjectStoreExt};
use datafusion::physical_expr::LexRequirement;
use datafusion::physical_plan::ExecutionPlan;

use super::ipc_check;

/// Makes [`CheckedArrowFormat`]; registered for the `arrow` extension in place of
/// DataFusion's own factory.
#[derive(Debug, Default)]
pub(crate) struct CheckedArrowFormatFactory;

impl FileFormatFactory for CheckedArrowFormatFactory {
    fn create(
        &self,
        _state: &dyn Session,
        _options: &HashMap<String, String>,
    ) -> Result<Arc<dyn FileFormat>> {
        Ok(Arc::new(CheckedArrowFormat::default()))
    }

    fn default(&self) -> Arc<dyn FileFormat> {
        Arc::new(CheckedArrowFormat::default())
    }
}

impl GetExt for CheckedArrowFormatFactory {
    fn get_ext(&self) -> String {
        ArrowFormatFactory.get_ext()
    }
}

/// [`ArrowFormat`], refusing a file whose declared lengths run past its end.
#[derive(Debug, Default)]
pub(crate) struct CheckedArrowFormat {
    inner: ArrowFormat,
}

/// Refuses the object at `location` if it is a local file that fails [`ipc_check`]. Other
/// stores hand out no file to check; cohort reads only local ones.
async fn check_object(store: &Arc<dyn ObjectStore>, location: &ObjectMeta) -> Result<()> {
    match store.get(&location.location).await?.payload {
        GetResultPayload::File(_, path) => ipc_check::refuse_unreadable(&path),
        GetResultPayload::Stream(_) => Ok(()),
    }
}

#[async_trait]
impl FileFormat for CheckedArrowFormat {
    fn get_ext(&self) -> String {
        self.inner.get_ext()
    }

    fn get_ext_with_compression(&self, compression: &FileCompressionType) -> Result<String> {
        self.inner.get_ext_with_compression(compression)
    }

    fn compression_type(&self) -> Option<FileCompressionType> {
        self.inner.compression_type()
    }

    async fn infer_schema(
        &self,
        state: &dyn Session,
        store: &Arc<dyn ObjectStore>,
        objects: &[ObjectMeta],
    ) -> Result<SchemaRef> {
        for object in objects {
            check_object(store, object).await?;
        }
        self.inner.infer_schema(state, store, objects).await
    }

    async fn infer_stats(
        &self,
        state: &dyn Session,
        store: &Arc<dyn ObjectStore>,
        table_schema: SchemaRef,
        object: &ObjectMeta,
    ) -> Result<Statistics> {
        self.inner
            .infer_stats(state, store, table_schema, object)
            .await
    }

    async fn create_physical_plan(
        &self,
        state: &dyn Session,
        conf: FileScanConfig,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let store = state.runtime_env().object_store(&conf.object_store_url)?;
        for file in conf.file_groups.iter().flat_map(|group| group.files()) {
            check_object(&store, &file.object_meta).await?;
        }
        self.inner.create_physical_plan(state, conf).await
    }

    async fn create_writer_physical_plan(
        &self,
        input: Arc<dyn ExecutionPlan>,
        state: &dyn Session,
        conf: FileSinkConfig,
        order_requirements: Option<LexRequirement>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.inner
            .create_writer_physical_plan(input, state, conf, order_requirements)
            .await
    }

    fn file_source(&self, table_schema: TableSchema) -> Arc<dyn FileSource> {
        self.inner.file_source(table_schema)
    }
}
