//! Ballista's plan codecs with cohort's functions: everything is Ballista's, except that the
//! functions carrying a model travel with it ([`FunctionCodec`]). The client, the scheduler
//! and every executor use the same pair.

use std::sync::Arc;

use ballista_core::serde::{BallistaLogicalExtensionCodec, BallistaPhysicalExtensionCodec};
use cohort_udfs::codec::FunctionCodec;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::common::{DataFusionError, Result, TableReference};
use datafusion::datasource::file_format::FileFormatFactory;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{
    AggregateUDF, Extension, HigherOrderUDF, LogicalPlan, ScalarUDF, WindowUDF,
};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::logical_plan::LogicalExtensionCodec;

use super::tables;
use datafusion::physical_expr_common::physical_expr::proto_decode::PhysicalExprDecodeCtx;
use datafusion::physical_expr_common::physical_expr::proto_encode::PhysicalExprEncodeCtx;
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};

/// Ballista's logical codec, with cohort's functions.
#[derive(Debug)]
pub struct LogicalCodec {
    inner: BallistaLogicalExtensionCodec,
    functions: FunctionCodec,
}

impl LogicalCodec {
    pub fn new(functions: FunctionCodec) -> Self {
        Self {
            inner: BallistaLogicalExtensionCodec::default(),
            functions,
        }
    }
}

/// Ballista's physical codec, with cohort's functions.
#[derive(Debug)]
pub struct PhysicalCodec {
    inner: BallistaPhysicalExtensionCodec,
    functions: FunctionCodec,
}

impl PhysicalCodec {
    pub fn new(functions: FunctionCodec) -> Self {
        Self {
            inner: BallistaPhysicalExtensionCodec::default(),
            functions,
        }
    }
}

/// The codec pair over `functions`.
pub fn codecs(functions: FunctionCodec) -> (Arc<LogicalCodec>, Arc<PhysicalCodec>) {
    (
        Arc::new(LogicalCodec::new(functions.clone())),
        Arc::new(PhysicalCodec::new(functions)),
    )
}

/// Whether `buf` holds a function cohort wrote (functions without a model travel by name,
/// and a name the registry lacks reaches the codec with no bytes).
fn ours(buf: &[u8]) -> bool {
    !buf.is_empty()
}

/// The function methods, the same in both codecs: cohort's functions through
/// [`FunctionCodec`], the others through Ballista's codec.
macro_rules! functions {
    () => {
        fn try_decode_udf(&self, name: &str, buf: &[u8]) -> Result<Arc<ScalarUDF>> {
            if ours(buf) {
                self.functions.decode_udf(name, buf)
            } else {
                self.inner.try_decode_udf(name, buf)
            }
        }

        fn try_encode_udf(&self, node: &ScalarUDF, buf: &mut Vec<u8>) -> Result<()> {
            self.functions.encode_udf(node, buf)
        }

        fn try_decode_higher_order_function(
            &self,
            name: &str,
            buf: &[u8],
        ) -> Result<Arc<HigherOrderUDF>> {
            self.inner.try_decode_higher_order_function(name, buf)
        }

        fn try_encode_higher_order_function(
            &self,
            node: &HigherOrderUDF,
            buf: &mut Vec<u8>,
        ) -> Result<()> {
            self.inner.try_encode_higher_order_function(node, buf)
        }

        fn try_decode_udaf(&self, name: &str, buf: &[u8]) -> Result<Arc<AggregateUDF>> {
            if ours(buf) {
                self.functions.decode_udaf(name, buf)
            } else {
                self.inner.try_decode_udaf(name, buf)
            }
        }

        fn try_encode_udaf(&self, node: &AggregateUDF, buf: &mut Vec<u8>) -> Result<()> {
            self.functions.encode_udaf(node, buf)
        }

        fn try_decode_udwf(&self, name: &str, buf: &[u8]) -> Result<Arc<WindowUDF>> {
            self.inner.try_decode_udwf(name, buf)
        }

        fn try_encode_udwf(&self, node: &WindowUDF, buf: &mut Vec<u8>) -> Result<()> {
            self.inner.try_encode_udwf(node, buf)
        }
    };
}

impl LogicalExtensionCodec for LogicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[LogicalPlan],
        ctx: &TaskContext,
    ) -> Result<Extension> {
        match self.functions.decode_node(buf, inputs)? {
            Some(node) => Ok(Extension { node }),
            None => self.inner.try_decode(buf, inputs, ctx),
        }
    }

    fn try_encode(&self, node: &Extension, buf: &mut Vec<u8>) -> Result<()> {
        if self.functions.encode_node(node.node.as_ref(), buf)? {
            return Ok(());
        }
        self.inner.try_encode(node, buf)
    }

    fn try_decode_table_provider(
        &self,
        buf: &[u8],
        table_ref: &TableReference,
        schema: SchemaRef,
        ctx: &TaskContext,
    ) -> Result<Arc<dyn TableProvider>> {
        match tables::decode(buf, schema.clone())? {
            Some(table) => Ok(table),
            None => self
                .inner
                .try_decode_table_provider(buf, table_ref, schema, ctx),
        }
    }

    fn try_encode_table_provider(
        &self,
        table_ref: &TableReference,
        node: Arc<dyn TableProvider>,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        if tables::encode(table_ref, node.as_ref(), buf)? {
            return Ok(());
        }
        self.inner
            .try_encode_table_provider(table_ref, node, buf)
            .map_err(|_| {
                DataFusionError::Plan(format!(
                    "table {table_ref} cannot be sent to the cluster's executors (only files, \
                     views of them and in-memory tables can); query it without --ballista"
                ))
            })
    }

    fn try_decode_file_format(
        &self,
        buf: &[u8],
        ctx: &TaskContext,
    ) -> Result<Arc<dyn FileFormatFactory>> {
        self.inner.try_decode_file_format(buf, ctx)
    }

    fn try_encode_file_format(
        &self,
        buf: &mut Vec<u8>,
        node: Arc<dyn FileFormatFactory>,
    ) -> Result<()> {
        self.inner.try_encode_file_format(buf, node)
    }

    functions!();
}

impl PhysicalExtensionCodec for PhysicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        match self.functions.decode_exec(buf, inputs)? {
            Some(plan) => Ok(plan),
            None => self.inner.try_decode(buf, inputs, ctx, proto_converter),
        }
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        if self.functions.encode_exec(node.as_ref(), buf)? {
            return Ok(());
        }
        self.inner.try_encode(node, buf, proto_converter)
    }

    fn try_decode_expr(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn PhysicalExpr>],
        ctx: &PhysicalExprDecodeCtx<'_>,
    ) -> Result<Arc<dyn PhysicalExpr>> {
        self.inner.try_decode_expr(buf, inputs, ctx)
    }

    fn try_encode_expr(
        &self,
        node: &Arc<dyn PhysicalExpr>,
        buf: &mut Vec<u8>,
        ctx: &PhysicalExprEncodeCtx<'_>,
    ) -> Result<()> {
        self.inner.try_encode_expr(node, buf, ctx)
    }

    functions!();
}
