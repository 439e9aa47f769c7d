//! Views, and for most roles tables, that belong to one session.
//!
//! A Flight SQL client's session shares tables, functions and models with every other
//! client, but a view it creates is its own: psql and DuckDB users expect their temporary
//! views not to appear in (or collide with) a colleague's session. The session's catalog
//! list wraps the shared one and keeps views in a map of its own. Tables go to the shared
//! catalog as before, except in sessions that keep their tables too (users who may not
//! change shared tables): there every table created is the session's own, and the shared
//! tables can be neither dropped nor replaced.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use datafusion::catalog::{CatalogProvider, CatalogProviderList, SchemaProvider, TableProvider};
use datafusion::common::{Result, exec_err};
use datafusion::datasource::TableType;

/// The session's own views and tables by (catalog, schema, name).
type Own = Arc<RwLock<HashMap<(String, String, String), Arc<dyn TableProvider>>>>;

/// The session's own objects and whether its new tables are its own too.
#[derive(Debug, Clone, Default)]
struct Private {
    own: Own,
    keeps_tables: bool,
}

/// The shared catalog list as one session sees it.
#[derive(Debug)]
pub(super) struct SessionCatalogs {
    shared: Arc<dyn CatalogProviderList>,
    private: Private,
}

impl SessionCatalogs {
    /// `keeps_tables`: tables created in the session are its own, and shared tables cannot
    /// be dropped or replaced from it.
    pub(super) fn new(shared: Arc<dyn CatalogProviderList>, keeps_tables: bool) -> Self {
        Self {
            shared,
            private: Private {
                own: Own::default(),
                keeps_tables,
            },
        }
    }

    /// Whether the session itself made the view or table `catalog.schema.name`.
    pub(super) fn owns(&self, catalog: &str, schema: &str, name: &str) -> bool {
        let own = self.private.own.read().unwrap_or_else(|e| e.into_inner());
        own.contains_key(&(catalog.to_string(), schema.to_string(), name.to_string()))
    }
}

impl CatalogProviderList for SessionCatalogs {
    fn register_catalog(
        &self,
        name: String,
        catalog: Arc<dyn CatalogProvider>,
    ) -> Option<Arc<dyn CatalogProvider>> {
        self.shared.register_catalog(name, catalog)
    }

    fn catalog_names(&self) -> Vec<String> {
        self.shared.catalog_names()
    }

    fn catalog(&self, name: &str) -> Option<Arc<dyn CatalogProvider>> {
        let shared = self.shared.catalog(name)?;
        Some(Arc::new(SessionCatalog {
            name: name.to_string(),
            shared,
            private: self.private.clone(),
        }))
    }
}

#[derive(Debug)]
struct SessionCatalog {
    name: String,
    shared: Arc<dyn CatalogProvider>,
    private: Private,
}

impl CatalogProvider for SessionCatalog {
    fn schema_names(&self) -> Vec<String> {
        self.shared.schema_names()
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        let shared = self.shared.schema(name)?;
        Some(Arc::new(SessionSchema {
            catalog: self.name.clone(),
            name: name.to_string(),
            shared,
            private: self.private.clone(),
        }))
    }

    fn register_schema(
        &self,
        name: &str,
        schema: Arc<dyn SchemaProvider>,
    ) -> Result<Option<Arc<dyn SchemaProvider>>> {
        self.shared.register_schema(name, schema)
    }

    fn deregister_schema(
        &self,
        name: &str,
        cascade: bool,
    ) -> Result<Option<Arc<dyn SchemaProvider>>> {
        self.shared.deregister_schema(name, cascade)
    }
}

#[derive(Debug)]
struct SessionSchema {
    catalog: String,
    name: String,
    shared: Arc<dyn SchemaProvider>,
    private: Private,
}

impl SessionSchema {
    fn key(&self, table: &str) -> (String, String, String) {
        (self.catalog.clone(), self.name.clone(), table.to_string())
    }

    fn own(&self, table: &str) -> Option<Arc<dyn TableProvider>> {
        let own = self.private.own.read().unwrap_or_else(|e| e.into_inner());
        own.get(&self.key(table)).cloned()
    }
}

#[async_trait]
impl SchemaProvider for SessionSchema {
    fn owner_name(&self) -> Option<&str> {
        self.shared.owner_name()
    }

    fn table_names(&self) -> Vec<String> {
        let mut names = self.shared.table_names();
        let own = self.private.own.read().unwrap_or_else(|e| e.into_inner());
        names.extend(
            own.keys()
                .filter(|(c, s, _)| *c == self.catalog && *s == self.name)
                .map(|(_, _, t)| t.clone()),
        );
        names
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        match self.own(name) {
            Some(own) => Ok(Some(own)),
            None => self.shared.table(name).await,
        }
    }

    fn register_table(
        &self,
        name: String,
        table: Arc<dyn TableProvider>,
    ) -> Result<Option<Arc<dyn TableProvider>>> {
        if table.table_type() != TableType::View && !self.private.keeps_tables {
            return self.shared.register_table(name, table);
        }
        if self.table_exist(&name) {
            return exec_err!("The table {name} already exists");
        }
        let mut own = self.private.own.write().unwrap_or_else(|e| e.into_inner());
        Ok(own.insert(self.key(&name), table))
    }

    fn deregister_table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let mut own = self.private.own.write().unwrap_or_else(|e| e.into_inner());
        match own.remove(&self.key(name)) {
            Some(removed) => Ok(Some(removed)),
            None if self.private.keeps_tables && self.shared.table_exist(name) => {
                exec_err!("{name} is shared with every session: only admins may drop or replace it")
            }
            None => self.shared.deregister_table(name),
        }
    }

    fn table_exist(&self, name: &str) -> bool {
        self.own(name).is_some() || self.shared.table_exist(name)
    }
}
