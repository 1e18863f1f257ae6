//! `passwordless`: the local server and operator commands.

use clap::{Parser, Subcommand};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use tracing::{error, info};

use passwordless::config::{Config, MailerConfig, StoreConfig, DEFAULT_OUTBOX, DEFAULT_STORE};
use passwordless::kickstart::{apply_if_pristine, KickstartEnv, KickstartOutcome};
use passwordless::App;
use passwordless_cli::{demo, server};

#[derive(Parser)]
#[command(
    name = "passwordless",
    version,
    about = "Passwordless magic-link login, FusionAuth-compatible"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct StoreArgs {
    /// The store: sqlite:PATH, dynamodb or dynamodb:TABLE_PREFIX.
    #[arg(long, env = "PASSWORDLESS_STORE", default_value = DEFAULT_STORE)]
    store: String,
    /// Where mail goes: outbox (.eml files) or ses.
    #[arg(long, env = "PASSWORDLESS_MAILER", default_value = "outbox")]
    mailer: String,
    /// Folder the outbox mailer writes .eml files to.
    #[arg(long, env = "PASSWORDLESS_OUTBOX", default_value = DEFAULT_OUTBOX)]
    outbox: PathBuf,
}

#[derive(Subcommand)]
enum Command {
    /// Serve every route on one port, on the embedded store with a file outbox.
    Serve {
        #[arg(long, default_value_t = 9011)]
        port: u16,
        /// Address to listen on; loopback unless you mean to expose it.
        #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
        bind: IpAddr,
        #[command(flatten)]
        store: StoreArgs,
        /// Base URL of links in emails and the default issuer [default: http://localhost:PORT].
        #[arg(long, env = "PASSWORDLESS_PUBLIC_URL")]
        public_url: Option<String>,
        /// Kickstart file applied once to an empty store.
        #[arg(long, env = "PASSWORDLESS_KICKSTART")]
        kickstart: Option<PathBuf>,
        /// A proxy (address or CIDR) whose X-Forwarded-For hop is believed; repeat for each.
        /// Without one, the client is the socket peer whatever the headers say.
        #[arg(long = "trusted-proxy", value_name = "CIDR", value_parser = parse_proxy)]
        trusted_proxies: Vec<ipnet::IpNet>,
        /// Connections served at once.
        #[arg(long, default_value_t = 512)]
        max_connections: usize,
        /// Connections one client address may hold at once (a trusted proxy is not held to it).
        #[arg(long, default_value_t = 64)]
        max_connections_per_source: usize,
        /// Serve the demo pages (`/demo/`, whose inbox shows every live link and short code in
        /// the outbox) on a non-loopback --bind too: anyone who reaches the address can sign in
        /// as anyone who has mail in the outbox.
        #[arg(long)]
        expose_demo_inbox: bool,
    },
    /// Create the DynamoDB tables (with TTL) on the configured endpoint, for a dev account or an emulator.
    CreateTables {
        /// dynamodb or dynamodb:TABLE_PREFIX.
        #[arg(long, env = "PASSWORDLESS_STORE", default_value = "dynamodb")]
        store: String,
        /// Issuer of the default tenant created with the tables.
        #[arg(
            long,
            env = "PASSWORDLESS_PUBLIC_URL",
            default_value = "http://localhost:9011"
        )]
        public_url: String,
    },
    /// Apply a kickstart file to an empty store and exit.
    Kickstart {
        file: PathBuf,
        #[command(flatten)]
        store: StoreArgs,
        #[arg(
            long,
            env = "PASSWORDLESS_PUBLIC_URL",
            default_value = "http://localhost:9011"
        )]
        public_url: String,
    },
}

/// `10.0.0.0/8`, or one address (`10.0.0.7`) as a /32 or /128.
fn parse_proxy(text: &str) -> Result<ipnet::IpNet, String> {
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("not an address or CIDR: {text}"))
}

/// The configuration the environment gives, with the command line's choices on top.
fn config(store: &StoreArgs, public_url: &str) -> Result<Config, String> {
    let overrides = [
        ("PASSWORDLESS_STORE", store.store.clone()),
        ("PASSWORDLESS_MAILER", store.mailer.clone()),
        ("PASSWORDLESS_OUTBOX", store.outbox.display().to_string()),
        ("PASSWORDLESS_PUBLIC_URL", public_url.to_owned()),
    ];
    Config::from_lookup(|name| {
        overrides
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
            .or_else(|| std::env::var(name).ok())
    })
    .map_err(|e| e.to_string())
}

async fn run_kickstart(app: &App, file: &PathBuf) -> Result<KickstartOutcome, String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let allowed =
        KickstartEnv::from_setting(std::env::var("PASSWORDLESS_KICKSTART_ENV").ok().as_deref());
    apply_if_pristine(app, &text, &|name| {
        allowed
            .allows(name)
            .then(|| std::env::var(name).ok())
            .flatten()
    })
    .await
    .map_err(|e| e.to_string())
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {},
            _ = terminate.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
    info!("shutting down");
}

/// Creates the DynamoDB tables that do not exist yet.
#[cfg(feature = "aws")]
async fn create_tables(tables: &passwordless::config::Tables) -> Result<(), String> {
    let aws = aws_config::load_from_env().await;
    passwordless::adapters::dynamodb::DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&aws),
        tables.clone(),
    )
    .create_tables()
    .await
    .map_err(|e| e.to_string())
}

#[cfg(not(feature = "aws"))]
async fn create_tables(_: &passwordless::config::Tables) -> Result<(), String> {
    Err("this build has no AWS support: run it with `cargo run -p passwordless-cli --features aws -- create-tables …`".into())
}

async fn serve(
    port: u16,
    bind: IpAddr,
    store: StoreArgs,
    public_url: Option<String>,
    kickstart: Option<PathBuf>,
    options: server::ServerOptions,
    expose_demo_inbox: bool,
) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(SocketAddr::new(bind, port))
        .await
        .map_err(|e| format!("cannot listen on {bind}:{port}: {e}"))?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let public_url = public_url.unwrap_or_else(|| format!("http://localhost:{port}"));
    let config = config(&store, &public_url)?;
    let app = App::from_config(&config).await.map_err(|e| e.to_string())?;
    match &kickstart {
        Some(file) => match run_kickstart(&app, file).await? {
            KickstartOutcome::Applied { api_keys, requests } => {
                info!(api_keys, requests, "kickstart applied")
            }
            KickstartOutcome::Skipped => info!("kickstart skipped: the store already holds data"),
        },
        None if app.store.is_pristine().await.map_err(|e| e.to_string())? => {
            let demo = demo::seed(&app).await.map_err(|e| e.to_string())?;
            let env_file = match &config.store {
                StoreConfig::Sqlite(db) => db.with_file_name("demo.env"),
                StoreConfig::DynamoDb(_) => PathBuf::from(".passwordless/demo.env"),
            };
            demo::write_env_file(&env_file, &demo, &public_url).map_err(|e| e.to_string())?;
            println!(
                "Seeded a demo (shown once; also in {env}):\n  application id: {app_id}\n  login id:       {login}\n  API key:        {key}\n\nStart a login:\n  curl -s -X POST {url}/api/passwordless/start -H 'Authorization: {key}' -H 'Content-Type: application/json' \\\n    -d '{{\"applicationId\":\"{app_id}\",\"loginId\":\"{login}\"}}'\n",
                env = env_file.display(),
                app_id = demo.application_id,
                login = demo.login_id,
                key = demo.api_key.expose(),
                url = public_url,
            );
        }
        None => {}
    }
    let mut options = options;
    if let (StoreConfig::Sqlite(_), MailerConfig::Outbox(outbox)) = (&config.store, &config.mailer)
    {
        let demo = passwordless_cli::demo_pages::DemoPages {
            outbox: outbox.clone(),
            client_id: demo::DEMO_APPLICATION_ID,
            public_url: public_url.clone(),
            login_hint: demo::DEMO_LOGIN_ID.to_owned(),
        };
        if passwordless_cli::demo_pages::served_on(bind, expose_demo_inbox) {
            println!(
                "Try the hosted login in a browser: {public_url}/demo/ (the demo application's relying party; mail at {public_url}/demo/inbox)"
            );
            options.demo = Some(demo);
        } else {
            println!("The demo pages (/demo/) are not served on {bind}: their inbox shows every live link; --expose-demo-inbox serves them anyway.");
        }
    }
    let mail = match &config.mailer {
        MailerConfig::Outbox(dir) => format!("outbox: {}", dir.display()),
        MailerConfig::Ses { .. } => "mail through SES".to_owned(),
    };
    info!(address = %SocketAddr::new(bind, port), mail = %mail, "serving");
    println!("Listening on http://{bind}:{port} ({mail})");
    server::serve(Arc::new(app), listener, options, shutdown_signal())
        .await
        .map_err(|e| e.to_string())
}

#[tokio::main]
async fn main() -> ExitCode {
    passwordless::telemetry::init(false);
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve { port, bind, store, public_url, kickstart, trusted_proxies, max_connections, max_connections_per_source, expose_demo_inbox } => {
            let options = server::ServerOptions { trusted_proxies, max_connections, max_connections_per_source, ..Default::default() };
            serve(port, bind, store, public_url, kickstart, options, expose_demo_inbox).await
        }
        Command::CreateTables { store, public_url } => async {
            let args = StoreArgs { store, mailer: "outbox".into(), outbox: PathBuf::from(DEFAULT_OUTBOX) };
            let config = config(&args, &public_url)?;
            let StoreConfig::DynamoDb(tables) = &config.store else {
                return Err("create-tables needs --store dynamodb or dynamodb:PREFIX".to_owned());
            };
            create_tables(tables).await?;
            // Opening the store creates the default tenant, its signing key and the built-in template,
            // so the functions (which may only read configuration) find them.
            App::from_config(&config).await.map_err(|e| e.to_string())?;
            println!("Tables ready: {}, {}, {} (TTL on {}.expiresAt)", tables.config, tables.users, tables.codes, tables.codes);
            Ok(())
        }
        .await,
        Command::Kickstart { file, store, public_url } => async {
            let app = App::from_config(&config(&store, &public_url)?).await.map_err(|e| e.to_string())?;
            match run_kickstart(&app, &file).await? {
                KickstartOutcome::Applied { api_keys, requests } => println!("Applied: {api_keys} API keys, {requests} requests."),
                KickstartOutcome::Skipped => println!("Skipped: the store already holds data; kickstart applies only to an empty store."),
            }
            Ok(())
        }
        .await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            error!("{message}");
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}
