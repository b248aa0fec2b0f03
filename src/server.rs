//! Putting the parts together: the hub, its sweeper, the router, the accept loop and
//! graceful shutdown.

mod accept;
mod announce;
mod head;
mod http1;
mod idle;
mod rewind;
pub mod tls;
mod write_deadline;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::auth::Auth;
use crate::bus::redis::RedisBus;
use crate::bus::store::Store;
use crate::catalog::Catalog;
use crate::config::Config;
use crate::http::limits::{self, PublishRate};
use crate::http::mercure::MercureKeys;
use crate::http::{AppState, connections, router};
use crate::hub::{HistoryLimits, Hub, cursor};
use crate::metrics::Metrics;
use crate::outlet::registry::{Connections, KEEP_EVERY};
use crate::sources::poller::Pollers;
use crate::sources::relay::Relays;
use crate::sources::target::TargetPolicy;
use crate::sources::upstream::Upstream;

/// How long open connections get to flush after shutdown starts.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Serves until `stop` resolves (over TLS with `tls`), then ends every stream with a
/// `retry:` hint and returns once the connections have closed (or the grace period ran
/// out).
pub async fn run(
    config: Config,
    listener: TcpListener,
    tls: Option<Arc<tls::Certs>>,
    demo: bool,
    store: Option<PathBuf>,
    stop: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (metrics, prometheus) = Metrics::install();
    let limits = HistoryLimits {
        size: config.channels.history_size,
        ttl_ms: config.channels.history_ttl_s.saturating_mul(1000),
        state_bytes: config.channels.state_history_bytes,
    };
    let journal_entries = config.stream.journal_entries;
    let mut notices = None;
    let mut shared_bus = None;
    let (hub, connections) = match (&config.bus.data_dir, &config.bus.redis_url) {
        (Some(dir), _) => {
            let (store, mut restored) =
                Store::open(dir, cursor::new_epoch).map_err(std::io::Error::other)?;
            let store = Arc::new(store);
            let journals = std::mem::take(&mut restored.journals);
            let connections = Connections::new(Arc::clone(&store), journals, journal_entries)
                .map_err(std::io::Error::other)?;
            let hub =
                Hub::durable(limits, metrics, store, restored).map_err(std::io::Error::other)?;
            (hub, connections)
        }
        (None, Some(_)) => {
            let (redis, heard, catalog_changes, asked) = RedisBus::connect(&config.bus)
                .await
                .map_err(std::io::Error::other)?;
            notices = Some(heard);
            tracing::info!(
                "channels are shared with other nodes through redis at {}",
                redis.shown()
            );
            let secret = cluster_secret(&redis).await;
            let connections = Connections::shared(Arc::new(Arc::clone(&redis)));
            shared_bus = Some((Arc::clone(&redis), catalog_changes, asked));
            let hub = Hub::shared(limits, metrics, redis, secret);
            (hub, connections)
        }
        (None, None) => (Hub::new(limits, metrics), Connections::default()),
    };
    let hub = Arc::new(hub);
    if let Some(notices) = notices {
        tokio::spawn(Arc::clone(&hub).hear(notices));
        tokio::spawn(Arc::clone(&hub).keep_presence(config.bus.node_timeout()));
    }
    let mut config = config;
    // The demo's entries point at this process: they are not for the admin store.
    let store = if demo { None } else { store };
    if demo {
        crate::demo::register(&mut config, listener.local_addr()?);
    }
    // The config file's policy: the admin API's changes are held to it, never widen it.
    let targets = Arc::new(TargetPolicy::new(&config.target_patterns()));
    let catalog = match &shared_bus {
        Some((bus, _, _)) => Catalog::open_shared(config, Arc::clone(bus), &targets).await,
        None => Catalog::open(config, store, &targets),
    };
    let catalog = Arc::new(catalog.map_err(std::io::Error::other)?);
    let config = catalog.config();
    let upstream =
        Upstream::new(Arc::clone(&targets), &config.poll).map_err(std::io::Error::other)?;
    let pollers = Arc::new(Pollers::new(
        Arc::clone(&hub),
        upstream.clone(),
        config.poll.clone(),
    ));
    let relays = Arc::new(Relays::new(Arc::clone(&hub), upstream.clone()));
    let figures = tokio::spawn(crate::sources::figures::publish(
        Arc::clone(&hub),
        Arc::clone(&pollers),
        Arc::clone(&relays),
    ));
    let auth = Arc::new(Auth::new(&config).map_err(std::io::Error::other)?);
    if !config.auth.enabled(&config.keys) {
        tracing::info!(
            "no [[key]] and no token key configured: every request is allowed and the admin \
             API is off; add a [[key]] to require credentials"
        );
    }
    let mut questions = None;
    if let Some((bus, mut changes, asked)) = shared_bus {
        let (catalog, auth, targets) = (
            Arc::clone(&catalog),
            Arc::clone(&auth),
            Arc::clone(&targets),
        );
        tokio::spawn(async move { follow_catalog(&catalog, &auth, &targets, &mut changes).await });
        questions = Some((bus, asked));
    }
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let connections = Arc::new(connections);
    let keep = Duration::from_secs(config.channels.history_ttl_s);
    let sweeper = tokio::spawn(sweep(Arc::clone(&hub), Arc::clone(&connections), keep));
    // How busy the runtime is: streams hold writes only on a busy server.
    let load = tokio::spawn(crate::outlet::window::watch_load());
    let publish_rate = Arc::new(PublishRate::new(&config));
    let mercure = match &config.mercure {
        Some(mercure) => {
            let keys = MercureKeys::load(mercure).map_err(std::io::Error::other)?;
            tokio::spawn(crate::http::mercure::topics::copy(Arc::clone(&hub)));
            if mercure.subscriptions {
                crate::http::mercure::announce_subscriptions(&hub);
            }
            Some(Arc::new(keys))
        }
        None => None,
    };
    let state = AppState {
        hub: Arc::clone(&hub),
        config,
        catalog,
        auth,
        prometheus,
        shutdown: shutdown_rx,
        pollers,
        relays,
        upstream,
        connections: Arc::clone(&connections),
        publish_rate,
        mercure,
    };
    if let Some((bus, asked)) = questions {
        // Other nodes' changes of the dynamic connections this node holds.
        tokio::spawn(connections::answer(state.clone(), bus, asked));
    }
    let config = Arc::clone(&state.config);
    let mut app: Router = router(state);
    if demo {
        app = app.merge(crate::demo::start(Arc::clone(&hub)));
    }
    // The access log and the request counts are outermost: they see what the limits
    // refuse too.
    let app = limits::apply(app, &config);
    let app = crate::http::requests::apply(app, hub.metrics().clone());
    let app = crate::http::access::apply(app, config.log.access);
    let (stopped_tx, mut stopped_rx) = watch::channel(false);
    announce::announce(&config, listener.local_addr()?, tls.is_some(), demo);
    let watch = tls
        .as_ref()
        .map(|certs| tokio::spawn(Arc::clone(certs).watch()));
    let tls = tls.map(|certs| certs.acceptor());
    let serve = accept::serve(listener, tls, app, &config.limits, async move {
        stop.await;
        tracing::info!("shutting down: telling clients to reconnect");
        let _ = shutdown_tx.send(true);
        let _ = stopped_tx.send(true);
    });
    let grace = async move {
        let _ = stopped_rx.wait_for(|stopped| *stopped).await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        () = serve => {}
        () = grace => {
            tracing::warn!("connections still open after the grace period; closing them");
        }
    }
    sweeper.abort();
    load.abort();
    figures.abort();
    if let Some(watch) = watch {
        watch.abort();
    }
    // The journals' last entries name the ids clients reconnect with: kept before exiting
    // (with a store, all it was asked to keep).
    if let Err(e) = connections.flush().await {
        tracing::warn!("what was to be kept was not all kept at shutdown: {e}");
    }
    Ok(())
}

/// The cluster's secret, waiting for Redis to answer: a node cannot name its relays'
/// channels as the others do without it.
async fn cluster_secret(redis: &RedisBus) -> Vec<u8> {
    let mut told = false;
    loop {
        match redis.secret().await {
            Ok(secret) => return secret.to_vec(),
            Err(e) if !told => {
                tracing::warn!("waiting for redis to start serving: {e}");
                told = true;
            }
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Ages history, drops idle channels, and forgets connections closed longer than `keep`,
/// every second; hands connections' journals to the bus more often (`KEEP_EVERY`).
/// How often a node compares its admin catalog with the shared one, announced or not.
const CATALOG_CHECK: Duration = Duration::from_secs(5);
/// How soon a node tries again to take up a catalog it could not.
const CATALOG_RETRY: Duration = Duration::from_secs(1);

/// Takes up other nodes' changes of the admin catalog: at once when one is announced, and
/// at the latest within `CATALOG_CHECK` otherwise, so a lost announcement or a failed
/// reload (Redis slow, say) never leaves a revoked key valid on this node for long.
async fn follow_catalog(
    catalog: &Catalog,
    auth: &Auth,
    targets: &TargetPolicy,
    changes: &mut watch::Receiver<u64>,
) {
    let mut wait = CATALOG_CHECK;
    let mut failing = false;
    loop {
        tokio::select! {
            changed = changes.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            () = tokio::time::sleep(wait) => {}
        }
        match catalog.reload(auth, targets).await {
            Ok(()) => {
                if std::mem::take(&mut failing) {
                    tracing::info!("the admin catalog is taken up from redis again");
                }
                wait = CATALOG_CHECK;
            }
            Err(e) => {
                if !std::mem::replace(&mut failing, true) {
                    tracing::warn!("the admin catalog was not reloaded (retrying): {e}");
                }
                wait = CATALOG_RETRY;
            }
        }
    }
}

async fn sweep(hub: Arc<Hub>, connections: Arc<Connections>, keep: Duration) {
    let mut tick = tokio::time::interval(KEEP_EVERY);
    let sweep_every = (Duration::from_secs(1).as_millis() / KEEP_EVERY.as_millis()) as u64;
    for n in 0u64.. {
        tick.tick().await;
        connections.keep_all();
        if n % sweep_every != 0 {
            continue;
        }
        hub.sweep();
        connections.sweep(keep);
    }
}
