//! Views that belong to one session.
//!
//! A Flight SQL client's session shares tables, functions and models with every other
//! client, but a view it creates is its own: psql and DuckDB users expect their temporary
//! views not to appear in (or collide with) a colleague's session. The session's catalog
//! list wraps the shared one and keeps views in a map of its own; every other table goes to
//! the shared catalog as before.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use datafusion::catalog::{CatalogProvider, CatalogProviderList, SchemaProvider, TableProvider};
use datafusion::common::{Result, exec_err};
use datafusion::datasource::TableType;

/// The session's views by (catalog, schema, view).
type Views = Arc<RwLock<HashMap<(String, String, String), Arc<dyn TableProvider>>>>;

/// The shared catalog list as one session sees it.
#[derive(Debug)]
pub(super) struct SessionCatalogs {
    shared: Arc<dyn CatalogProviderList>,
    views: Views,
}

impl SessionCatalogs {
    pub(super) fn new(shared: Arc<dyn CatalogProviderList>) -> Self {
        Self {
            shared,
            views: Views::default(),
        }
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
            views: self.views.clone(),
        }))
    }
}

#[derive(Debug)]
struct SessionCatalog {
    name: String,
    shared: Arc<dyn CatalogProvider>,
    views: Views,
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
            views: self.views.clone(),
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
    views: Views,
}

impl SessionSchema {
    fn key(&self, table: &str) -> (String, String, String) {
        (self.catalog.clone(), self.name.clone(), table.to_string())
    }

    fn view(&self, table: &str) -> Option<Arc<dyn TableProvider>> {
        let views = self.views.read().unwrap_or_else(|e| e.into_inner());
        views.get(&self.key(table)).cloned()
    }
}

#[async_trait]
impl SchemaProvider for SessionSchema {
    fn owner_name(&self) -> Option<&str> {
        self.shared.owner_name()
    }

    fn table_names(&self) -> Vec<String> {
        let mut names = self.shared.table_names();
        let views = self.views.read().unwrap_or_else(|e| e.into_inner());
        names.extend(
            views
                .keys()
                .filter(|(c, s, _)| *c == self.catalog && *s == self.name)
                .map(|(_, _, t)| t.clone()),
        );
        names
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        match self.view(name) {
            Some(view) => Ok(Some(view)),
            None => self.shared.table(name).await,
        }
    }

    fn register_table(
        &self,
        name: String,
        table: Arc<dyn TableProvider>,
    ) -> Result<Option<Arc<dyn TableProvider>>> {
        if table.table_type() != TableType::View {
            return self.shared.register_table(name, table);
        }
        if self.table_exist(&name) {
            return exec_err!("The table {name} already exists");
        }
        let mut views = self.views.write().unwrap_or_else(|e| e.into_inner());
        Ok(views.insert(self.key(&name), table))
    }

    fn deregister_table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let mut views = self.views.write().unwrap_or_else(|e| e.into_inner());
        match views.remove(&self.key(name)) {
            Some(view) => Ok(Some(view)),
            None => self.shared.deregister_table(name),
        }
    }

    fn table_exist(&self, name: &str) -> bool {
        self.view(name).is_some() || self.shared.table_exist(name)
    }
}
