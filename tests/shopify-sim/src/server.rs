//! Starting and stopping a simulator on a loopback port.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::routing::post;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::app::AppState;
use crate::bulk::BulkHub;
use crate::config::SimConfig;
use crate::error::SimError;
use crate::graphql::{self, API_VERSION};
use crate::webhooks::WebhookHub;
use crate::{bulk, control, schema};

/// A simulator serving in a tokio task until shut down.
pub struct RunningSimulator {
    addr: SocketAddr,
    state: Arc<AppState>,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
    /// The webhook delivery task.
    deliveries: Option<JoinHandle<()>>,
    /// The bulk operation runner.
    bulk_runner: Option<JoinHandle<()>>,
}

/// The HTTP routes of a simulator.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/admin/api/{version}/graphql.json", post(graphql::handle))
        .merge(control::routes())
        .merge(bulk::storage::routes())
        .with_state(state)
}

impl RunningSimulator {
    /// Loads the schema and serves on `127.0.0.1:0` (a free port).
    pub async fn start(config: SimConfig) -> Result<RunningSimulator, SimError> {
        RunningSimulator::start_on(config, 0).await
    }

    /// Serves on a given loopback port (`0` for any free one).
    pub async fn start_on(config: SimConfig, port: u16) -> Result<RunningSimulator, SimError> {
        let schema_path = config.schema_path.clone();
        let schema = tokio::task::spawn_blocking(move || schema::load(&schema_path))
            .await
            .map_err(|error| SimError::Bind(std::io::Error::other(error)))??;
        let state = Arc::new(AppState::new(&config, schema));
        let deliveries = WebhookHub::spawn(&state);
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))
            .await
            .map_err(SimError::Bind)?;
        let addr = listener.local_addr().map_err(SimError::Bind)?;
        state.bulk.set_base_url(format!("http://{addr}"));
        let bulk_runner = BulkHub::spawn(&state);
        let (shutdown, signal) = oneshot::channel::<()>();
        let app = router(Arc::clone(&state));
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = signal.await;
                })
                .await;
            if let Err(error) = served {
                tracing::error!(%error, "simulator stopped with an error");
            }
        });
        tracing::info!(%addr, "shopify simulator listening");
        Ok(RunningSimulator {
            addr,
            state,
            shutdown: Some(shutdown),
            task,
            deliveries,
            bulk_runner,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:PORT/admin/api/2026-07/graphql.json`
    pub fn graphql_url(&self) -> String {
        format!("{}/admin/api/{API_VERSION}/graphql.json", self.base_url())
    }

    /// The shared state, for in-process inspection.
    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    /// Stops accepting, lets open requests finish, and waits for the task.
    pub async fn shutdown(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        let _ = (&mut self.task).await;
        self.stop_tasks();
    }

    fn stop_tasks(&mut self) {
        if let Some(deliveries) = self.deliveries.take() {
            deliveries.abort();
        }
        if let Some(runner) = self.bulk_runner.take() {
            runner.abort();
        }
    }

    /// Waits until the server task ends (for the binary).
    pub async fn wait(mut self) {
        let _ = (&mut self.task).await;
    }
}

impl Drop for RunningSimulator {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        self.stop_tasks();
    }
}
