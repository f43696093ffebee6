//! Command-line interface definitions (clap). `serve` runs the server; the other commands are
//! clients of its HTTP API.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "dgc",
    version,
    about = "DGC: a runtime for AI agents in which every action is gated, sandboxed and attested."
)]
pub struct Cli {
    #[command(flatten)]
    pub client: ClientOpts,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once at startup
pub enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Run a command in the sandbox (operator tool; agents' calls go through the gates).
    #[command(subcommand)]
    Sandbox(SandboxCmd),
    /// Probe what this host supports for sandboxing, with remediation for what is missing.
    Doctor(dgc_sandbox::cli::DoctorArgs),
    /// Evaluate actions against the gates and test gate policies (operator tools, no server).
    #[command(subcommand)]
    Gates(dgc_gates::cli::GatesCmd),
    /// Issue, list and revoke API keys.
    #[command(subcommand)]
    Auth(AuthCmd),
    /// Create, list, show and delete agents.
    #[command(subcommand)]
    Agent(AgentCmd),
    /// Add, search, show and delete an agent's memories.
    #[command(subcommand)]
    Memory(MemoryCmd),
    /// Verify the signed audit log; print the current checkpoint.
    #[command(subcommand)]
    Audit(AuditCmd),
}

/// How API client commands reach the server.
#[derive(Debug, Args)]
pub struct ClientOpts {
    /// Server URL.
    #[arg(
        long,
        global = true,
        env = "DGC_URL",
        default_value = "http://127.0.0.1:7070"
    )]
    pub url: String,
    /// File holding the API key [default: ./dgc-data/admin.key]. The key itself can be given in
    /// DGC_API_KEY (never on the command line, where other users could see it).
    #[arg(long, global = true, env = "DGC_API_KEY_FILE")]
    pub api_key_file: Option<PathBuf>,
    /// Print raw JSON responses.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Configuration file (TOML); flags and DGC_* variables override it.
    #[arg(long, env = "DGC_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:7070].
    #[arg(long, env = "DGC_LISTEN")]
    pub listen: Option<String>,
    /// Data directory [default: ./dgc-data].
    #[arg(long, env = "DGC_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// `text` (default) or `json`.
    #[arg(long, env = "DGC_LOG_FORMAT")]
    pub log_format: Option<String>,
    /// Log level or filter directives, e.g. `info`, `dgc_server=debug` [default: info].
    #[arg(long, env = "DGC_LOG_LEVEL")]
    pub log_level: Option<String>,
    /// Log every request (`true`, default) or only failures (`false`).
    #[arg(long, env = "DGC_ACCESS_LOG")]
    pub access_log: Option<bool>,
    /// Largest request body [default: 2M].
    #[arg(long, env = "DGC_BODY_LIMIT")]
    pub body_limit: Option<String>,
    /// Per-request deadline [default: 30s].
    #[arg(long, env = "DGC_REQUEST_TIMEOUT")]
    pub request_timeout: Option<String>,
    /// Largest memory content [default: 1M].
    #[arg(long, env = "DGC_MEMORY_CONTENT_LIMIT")]
    pub memory_content_limit: Option<String>,
    /// Largest memory metadata, as JSON [default: 64K].
    #[arg(long, env = "DGC_MEMORY_METADATA_LIMIT")]
    pub memory_metadata_limit: Option<String>,
    /// Publish every signed audit checkpoint to this directory (a witness outside the database).
    #[arg(long, env = "DGC_WITNESS_DIR")]
    pub witness_dir: Option<PathBuf>,
    /// How often to sign an audit checkpoint when the log has grown [default: 60s].
    #[arg(long, env = "DGC_CHECKPOINT_INTERVAL")]
    pub checkpoint_interval: Option<String>,
    /// How long to wait for in-flight requests on shutdown [default: 30s].
    #[arg(long, env = "DGC_SHUTDOWN_GRACE")]
    pub shutdown_grace: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum SandboxCmd {
    /// Run CMD under a sandbox profile; exits with its code (128+signal when killed).
    Run(dgc_sandbox::cli::RunArgs),
}

#[derive(Debug, Subcommand)]
pub enum AuditCmd {
    /// Replay the whole log, recompute the root, check every record's signatures and every stored
    /// checkpoint; name the first bad record. Offline with --data-dir, else from the server at --url.
    Verify {
        /// Verify this data directory's database directly (no server needed).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Trust only this instance key (signed-note verifier key) instead of the one in the data
        /// directory or the one the server reports.
        #[arg(long)]
        vkey: Option<String>,
        /// Also check the log against the checkpoints witnessed in this directory.
        #[arg(long)]
        witness: Option<PathBuf>,
    },
    /// Print the current signed checkpoint (C2SP signed note).
    Checkpoint,
    /// Verify a self-contained attestation bundle offline (no server, no database): checkpoint
    /// signature, inclusion of the record, the record's signature, the envelope's signatures.
    VerifyBundle {
        /// The bundle (JSON), or `-` for standard input.
        bundle: PathBuf,
        /// The instance's signed-note verifier key (repeatable: any of them may have signed).
        #[arg(long, required = true)]
        vkey: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuthCmd {
    /// Issue a key; prints the secret (shown only once).
    Issue {
        /// Comma-separated capabilities, e.g. `memory.*,agents.read`.
        #[arg(long, value_name = "CAPS")]
        capabilities: String,
        /// Lifetime, e.g. `24h`, `7d` [default: the calling key's expiry].
        #[arg(long)]
        expires: Option<String>,
        #[arg(long)]
        name: Option<String>,
        /// Limit the key to this agent (repeatable).
        #[arg(long = "agent", value_name = "AGENT_ID")]
        agents: Vec<String>,
    },
    /// List keys (never their secrets).
    List,
    /// Revoke a key and every key minted from it.
    Revoke { key_id: String },
}

#[derive(Debug, Subcommand)]
pub enum AgentCmd {
    /// Create an agent; prints its id.
    Create {
        name: String,
        #[arg(long)]
        description: Option<String>,
        /// Agent config as JSON, or `@FILE` to read it from a file.
        #[arg(long)]
        config: Option<String>,
    },
    /// List agents.
    List {
        #[arg(long)]
        skill: Option<String>,
    },
    /// Show one agent.
    Show { agent_id: String },
    /// Delete an agent and all its memories.
    Delete { agent_id: String },
}

#[derive(Debug, Subcommand)]
pub enum MemoryCmd {
    /// Store a memory; prints its id. CONTENT `-` reads standard input.
    Add {
        agent_id: String,
        content: String,
        /// episodic (default), semantic, procedural or reflection.
        #[arg(long)]
        kind: Option<String>,
        #[arg(long = "tag")]
        tags: Vec<String>,
        /// Id of a memory this one refers to (repeatable; a reflection needs at least one).
        #[arg(long = "link")]
        links: Vec<String>,
        /// Metadata as a JSON object.
        #[arg(long)]
        metadata: Option<String>,
    },
    /// Full-text search (BM25) within one agent's memories.
    Search {
        agent_id: String,
        query: String,
        #[arg(long, default_value_t = 10)]
        limit: u32,
        #[arg(long)]
        kind: Option<String>,
        #[arg(long)]
        tag: Option<String>,
    },
    /// List an agent's memories, newest first.
    List {
        agent_id: String,
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Show one memory.
    Show { agent_id: String, memory_id: String },
    /// Delete one memory.
    Delete { agent_id: String, memory_id: String },
}
