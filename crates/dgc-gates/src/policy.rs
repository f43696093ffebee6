//! Gate policy: `gates.toml` (global) plus per-agent overrides, parsed into validated, compiled
//! gates with a mode each, an autonomy level and limits. Loading checks every gate's embedded
//! examples and the operator's own examples; a reload builds a complete new policy and keeps the
//! old one when anything fails.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::SystemTime;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::decision::{ApprovalClass, Mode};
use crate::gates::{self, GateId, Gates};

/// Largest `gates.toml` or `.rego` file accepted.
pub const MAX_POLICY_FILE_BYTES: u64 = 4 << 20;

/// Which `needs_approval` verdicts a human must answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Autonomy {
    /// Every consent-class action asks (including any action with side effects).
    Supervised,
    /// Only destructive, irreversible, trifecta, over-budget and operator-policy approvals ask.
    #[default]
    Guarded,
    /// Nothing asks; approvals are waived and the decision records it. Denies still deny.
    Autonomous,
}

impl Autonomy {
    pub fn as_str(self) -> &'static str {
        match self {
            Autonomy::Supervised => "supervised",
            Autonomy::Guarded => "guarded",
            Autonomy::Autonomous => "autonomous",
        }
    }

    /// Does an approval of this class need a human under this autonomy level?
    pub fn asks(self, class: ApprovalClass) -> bool {
        match self {
            Autonomy::Supervised => true,
            Autonomy::Guarded => class != ApprovalClass::Consent,
            Autonomy::Autonomous => false,
        }
    }
}

/// Structural limits on what the pipeline will analyse (fail closed beyond them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Deepest JSON nesting in arguments. Default 32.
    pub max_depth: usize,
    /// Most string values in arguments. Default 100 000.
    pub max_strings: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_depth: 32,
            max_strings: 100_000,
        }
    }
}

/// Why a policy could not be loaded. The previous policy stays active.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    #[error("{path}: invalid TOML: {message}")]
    Toml { path: String, message: String },
    #[error("invalid policy: {0}")]
    Invalid(String),
    #[error("gate `{gate}`: {message}")]
    Gate { gate: String, message: String },
    #[error("Rego policy {file} (line {}): {message}", line.map_or("?".to_string(), |l| l.to_string()))]
    Rego {
        file: String,
        line: Option<u32>,
        message: String,
    },
    #[error("examples failed:\n  {}", failures.join("\n  "))]
    Examples { failures: Vec<String> },
}

/// Per-agent overrides, embeddable (as JSON) in the agent config.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentOverrides {
    pub autonomy: Option<Autonomy>,
    /// `{"egress": {"allow": ["api.example.com"]}, "ahimsa": {"mode": "monitor"}}` — merged over
    /// the global `[gates.*]` tables (objects merge, everything else replaces).
    pub gates: Map<String, Value>,
}

/// An operator example in `gates.toml`: `[[gates.<name>.examples]]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserExample {
    pub name: String,
    /// `match` / `no_match`, or an exact decision: `allow`, `deny`, `needs_approval`, `redact`.
    pub expect: String,
    /// `{action, principal?, context?, state?, output?}` as in the embedded examples.
    pub input: Value,
}

/// A validated, compiled gate policy. Cheap to share (`Arc`), immutable.
pub struct Policy {
    doc: Value,
    rego_sources: Vec<(String, String)>,
    autonomy: Autonomy,
    approval_ttl_ms: u64,
    limits: Limits,
    modes: BTreeMap<GateId, Mode>,
    gates: Gates,
    examples: Vec<(GateId, UserExample)>,
}

impl fmt::Debug for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Policy")
            .field("autonomy", &self.autonomy)
            .field("modes", &self.modes)
            .field("rego_modules", &self.rego_sources.len())
            .finish_non_exhaustive()
    }
}

fn gate_err(id: GateId) -> impl Fn(String) -> PolicyError {
    move |message| PolicyError::Gate {
        gate: id.as_str().to_string(),
        message,
    }
}

fn section<C: DeserializeOwned>(
    sections: &Map<String, Value>,
    id: GateId,
) -> Result<C, PolicyError> {
    let v = sections
        .get(id.as_str())
        .cloned()
        .unwrap_or_else(|| json!({}));
    serde_json::from_value(v).map_err(|e| gate_err(id)(e.to_string()))
}

/// Recursively merges `over` into `base` (objects merge; other values replace).
pub fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

/// Compiles every gate from the `gates` table; returns gates, modes and operator examples.
type Compiled = (Gates, BTreeMap<GateId, Mode>, Vec<(GateId, UserExample)>);

pub(crate) fn compile_gates(
    gates_doc: &Value,
    rego_sources: &[(String, String)],
) -> Result<Compiled, PolicyError> {
    let empty = Map::new();
    let table = match gates_doc {
        Value::Object(m) => m,
        Value::Null => &empty,
        _ => return Err(PolicyError::Invalid("`gates` must be a table".into())),
    };
    for k in table.keys() {
        k.parse::<GateId>().map_err(PolicyError::Invalid)?;
    }
    let mut sections = Map::new();
    let mut modes = BTreeMap::new();
    let mut examples = Vec::new();
    for id in GateId::ALL {
        let mut sec = table.get(id.as_str()).cloned().unwrap_or_else(|| json!({}));
        let Value::Object(obj) = &mut sec else {
            return Err(gate_err(id)("must be a table".into()));
        };
        let mode = match obj.remove("mode") {
            None => id.default_mode(),
            Some(m) => serde_json::from_value(m).map_err(|e| gate_err(id)(format!("mode: {e}")))?,
        };
        modes.insert(id, mode);
        if let Some(ex) = obj.remove("examples") {
            let list: Vec<UserExample> =
                serde_json::from_value(ex).map_err(|e| gate_err(id)(format!("examples: {e}")))?;
            examples.extend(list.into_iter().map(|e| (id, e)));
        }
        sections.insert(id.as_str().to_string(), sec);
    }
    let mut g = default_gates()?.clone();
    for id in GateId::ALL {
        let configured = sections
            .get(id.as_str())
            .is_some_and(|v| v.as_object().is_some_and(|o| !o.is_empty()));
        if configured || (id == GateId::Policy && !rego_sources.is_empty()) {
            rebuild(&mut g, id, &sections, rego_sources)?;
        }
    }
    Ok((g, modes, examples))
}

/// Every gate at its defaults, compiled once per process (regex sets are the expensive part);
/// policies clone it and rebuild only the gates they configure.
fn default_gates() -> Result<&'static Gates, PolicyError> {
    static DEFAULTS: OnceLock<Result<Gates, PolicyError>> = OnceLock::new();
    DEFAULTS
        .get_or_init(|| {
            use gates::*;
            Ok(Gates {
                ahimsa: ahimsa::Gate::new(&Default::default()).map_err(gate_err(GateId::Ahimsa))?,
                vyavasthit: vyavasthit::Gate::new(&Default::default())
                    .map_err(gate_err(GateId::Vyavasthit))?,
                satya: satya::Gate::new(&Default::default()).map_err(gate_err(GateId::Satya))?,
                consent: consent::Gate::new(&Default::default())
                    .map_err(gate_err(GateId::Consent))?,
                reversibility: reversibility::Gate::new(&Default::default())
                    .map_err(gate_err(GateId::Reversibility))?,
                capability: capability::Gate::new(&Default::default())
                    .map_err(gate_err(GateId::Capability))?,
                tool_policy: tool_policy::Gate::new(&Default::default())
                    .map_err(gate_err(GateId::ToolPolicy))?,
                schema: schema::Gate::new(&Default::default()).map_err(gate_err(GateId::Schema))?,
                egress: egress::Gate::new(&Default::default()).map_err(gate_err(GateId::Egress))?,
                filesystem: filesystem::Gate::new(&Default::default())
                    .map_err(gate_err(GateId::Filesystem))?,
                secrets_dlp: secrets_dlp::Gate::new(&Default::default())
                    .map_err(gate_err(GateId::SecretsDlp))?,
                pii: pii::Gate::new(&Default::default()).map_err(gate_err(GateId::Pii))?,
                prompt_injection: prompt_injection::Gate::new(&Default::default())
                    .map_err(gate_err(GateId::PromptInjection))?,
                trifecta: trifecta::Gate::new(&Default::default())
                    .map_err(gate_err(GateId::Trifecta))?,
                tool_poisoning: tool_poisoning::Gate::new(&Default::default())
                    .map_err(gate_err(GateId::ToolPoisoning))?,
                rate_limit: rate_limit::Gate::new(&Default::default())
                    .map_err(gate_err(GateId::RateLimit))?,
                budget: budget::Gate::new(&Default::default()).map_err(gate_err(GateId::Budget))?,
                output_limit: output_limit::Gate::new(&Default::default())
                    .map_err(gate_err(GateId::OutputLimit))?,
                isolation: isolation::Gate::new(&Default::default())
                    .map_err(gate_err(GateId::Isolation))?,
                delegation: delegation::Gate::new(&Default::default())
                    .map_err(gate_err(GateId::Delegation))?,
                content_safety: content_safety::Gate::new(&Default::default())
                    .map_err(gate_err(GateId::ContentSafety))?,
                policy: policy::Gate::new(&Default::default()).map_err(gate_err(GateId::Policy))?,
            })
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Rebuilds one gate from its section (mode and examples already removed).
fn rebuild(
    g: &mut Gates,
    id: GateId,
    sections: &Map<String, Value>,
    rego: &[(String, String)],
) -> Result<(), PolicyError> {
    use gates::*;
    let e = gate_err(id);
    match id {
        GateId::Ahimsa => g.ahimsa = ahimsa::Gate::new(&section(sections, id)?).map_err(e)?,
        GateId::Vyavasthit => {
            g.vyavasthit = vyavasthit::Gate::new(&section(sections, id)?).map_err(e)?;
        }
        GateId::Satya => g.satya = satya::Gate::new(&section(sections, id)?).map_err(e)?,
        GateId::Consent => g.consent = consent::Gate::new(&section(sections, id)?).map_err(e)?,
        GateId::Reversibility => {
            g.reversibility = reversibility::Gate::new(&section(sections, id)?).map_err(e)?;
        }
        GateId::Capability => {
            g.capability = capability::Gate::new(&section(sections, id)?).map_err(e)?;
        }
        GateId::ToolPolicy => {
            g.tool_policy = tool_policy::Gate::new(&section(sections, id)?).map_err(e)?;
        }
        GateId::Schema => g.schema = schema::Gate::new(&section(sections, id)?).map_err(e)?,
        GateId::Egress => g.egress = egress::Gate::new(&section(sections, id)?).map_err(e)?,
        GateId::Filesystem => {
            g.filesystem = filesystem::Gate::new(&section(sections, id)?).map_err(e)?;
        }
        GateId::SecretsDlp => {
            g.secrets_dlp = secrets_dlp::Gate::new(&section(sections, id)?).map_err(e)?;
        }
        GateId::Pii => g.pii = pii::Gate::new(&section(sections, id)?).map_err(e)?,
        GateId::PromptInjection => {
            g.prompt_injection = prompt_injection::Gate::new(&section(sections, id)?).map_err(e)?;
        }
        GateId::Trifecta => g.trifecta = trifecta::Gate::new(&section(sections, id)?).map_err(e)?,
        GateId::ToolPoisoning => {
            g.tool_poisoning = tool_poisoning::Gate::new(&section(sections, id)?).map_err(e)?;
        }
        GateId::RateLimit => {
            g.rate_limit = rate_limit::Gate::new(&section(sections, id)?).map_err(e)?;
        }
        GateId::Budget => g.budget = budget::Gate::new(&section(sections, id)?).map_err(e)?,
        GateId::OutputLimit => {
            g.output_limit = output_limit::Gate::new(&section(sections, id)?).map_err(e)?;
        }
        GateId::Isolation => {
            g.isolation = isolation::Gate::new(&section(sections, id)?).map_err(e)?;
        }
        GateId::Delegation => {
            g.delegation = delegation::Gate::new(&section(sections, id)?).map_err(e)?;
        }
        GateId::ContentSafety => {
            g.content_safety = content_safety::Gate::new(&section(sections, id)?).map_err(e)?;
        }
        GateId::Policy => {
            let cfg: policy::Config = section(sections, id)?;
            g.policy = policy::Gate::with_sources(&cfg, rego).map_err(|e| PolicyError::Rego {
                file: e.file,
                line: e.line,
                message: e.message,
            })?;
        }
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TopLevel {
    #[serde(default)]
    autonomy: Autonomy,
    #[serde(default = "default_ttl")]
    approval_ttl_secs: u64,
    #[serde(default)]
    limits: Limits,
    #[serde(default)]
    gates: Value,
}

fn default_ttl() -> u64 {
    3600
}

/// Embedded examples never change for a build, so they are checked once per process.
fn embedded_failures() -> &'static Vec<String> {
    static CHECKED: OnceLock<Vec<String>> = OnceLock::new();
    CHECKED.get_or_init(|| {
        crate::examples::run_embedded()
            .into_iter()
            .filter(|r| !r.passed)
            .map(|r| r.describe())
            .collect()
    })
}

impl Policy {
    /// The built-in defaults (every gate at its default config and mode).
    pub fn builtin() -> Result<Self, PolicyError> {
        Self::from_value(json!({}), Vec::new())
    }

    /// Parses `gates.toml` text. `rego_sources` are `(file name, source)` pairs loaded by the caller.
    pub fn from_toml_str(
        text: &str,
        rego_sources: Vec<(String, String)>,
    ) -> Result<Self, PolicyError> {
        let doc: toml::Table = toml::from_str(text).map_err(|e| PolicyError::Toml {
            path: "gates.toml".into(),
            message: e.to_string(),
        })?;
        let doc = serde_json::to_value(doc).map_err(|e| PolicyError::Invalid(e.to_string()))?;
        Self::from_value(doc, rego_sources)
    }

    /// Reads `gates.toml` and the Rego modules (`rego_dir` argument, else `gates.policy.rego_dir`
    /// relative to the file).
    pub fn load(path: &Path, rego_dir: Option<&Path>) -> Result<Self, PolicyError> {
        let text = read_limited(path)?;
        let doc: toml::Table = toml::from_str(&text).map_err(|e| PolicyError::Toml {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        let doc = serde_json::to_value(doc).map_err(|e| PolicyError::Invalid(e.to_string()))?;
        let configured = doc
            .pointer("/gates/policy/rego_dir")
            .and_then(Value::as_str)
            .map(PathBuf::from);
        let dir = match (rego_dir, configured) {
            (Some(d), _) => Some(d.to_path_buf()),
            (None, Some(d)) if d.is_relative() => {
                Some(path.parent().unwrap_or(Path::new(".")).join(d))
            }
            (None, d) => d,
        };
        let sources = match dir {
            Some(d) => read_rego_dir(&d)?,
            None => Vec::new(),
        };
        Self::from_value(doc, sources)
    }

    /// Builds and validates from a JSON document with the `gates.toml` structure.
    pub fn from_value(
        doc: Value,
        rego_sources: Vec<(String, String)>,
    ) -> Result<Self, PolicyError> {
        let p = Self::from_value_unchecked(doc, rego_sources)?;
        let mut failures: Vec<String> = embedded_failures().clone();
        failures.extend(
            crate::examples::run_user(&p)
                .into_iter()
                .filter(|r| !r.passed)
                .map(|r| r.describe()),
        );
        if !failures.is_empty() {
            return Err(PolicyError::Examples { failures });
        }
        Ok(p)
    }

    /// Builds without running examples (for `dgc gates test`, which reports them itself).
    pub fn from_value_unchecked(
        doc: Value,
        rego_sources: Vec<(String, String)>,
    ) -> Result<Self, PolicyError> {
        let top: TopLevel =
            serde_json::from_value(doc.clone()).map_err(|e| PolicyError::Invalid(e.to_string()))?;
        if top.approval_ttl_secs == 0 || top.approval_ttl_secs > 30 * 86_400 {
            return Err(PolicyError::Invalid(
                "approval_ttl_secs must be between 1 and 2592000".into(),
            ));
        }
        if top.limits.max_depth == 0 || top.limits.max_depth > 128 {
            return Err(PolicyError::Invalid(
                "limits.max_depth must be between 1 and 128".into(),
            ));
        }
        let (gates, modes, examples) = compile_gates(&top.gates, &rego_sources)?;
        Ok(Self {
            doc,
            rego_sources,
            autonomy: top.autonomy,
            approval_ttl_ms: top.approval_ttl_secs * 1000,
            limits: top.limits,
            modes,
            gates,
            examples,
        })
    }

    /// The effective policy for one agent: the overrides merged over this policy, validated.
    pub fn with_overrides(&self, o: &AgentOverrides) -> Result<Self, PolicyError> {
        let mut doc = self.doc.clone();
        if !doc.is_object() {
            doc = json!({});
        }
        if let Some(a) = o.autonomy {
            doc["autonomy"] =
                serde_json::to_value(a).map_err(|e| PolicyError::Invalid(e.to_string()))?;
        }
        if !o.gates.is_empty() {
            if !doc.get("gates").is_some_and(Value::is_object) {
                doc["gates"] = json!({});
            }
            merge(&mut doc["gates"], &Value::Object(o.gates.clone()));
        }
        Self::from_value(doc, self.rego_sources.clone())
    }

    pub fn autonomy(&self) -> Autonomy {
        self.autonomy
    }

    pub fn approval_ttl_ms(&self) -> u64 {
        self.approval_ttl_ms
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    pub fn mode(&self, id: GateId) -> Mode {
        self.modes.get(&id).copied().unwrap_or(Mode::Enforce)
    }

    pub fn gates(&self) -> &Gates {
        &self.gates
    }

    pub fn user_examples(&self) -> &[(GateId, UserExample)] {
        &self.examples
    }

    /// The merged configuration document (for display and further overrides).
    pub fn document(&self) -> &Value {
        &self.doc
    }
}

fn read_limited(path: &Path) -> Result<String, PolicyError> {
    let io = |e: std::io::Error| PolicyError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if meta.len() > MAX_POLICY_FILE_BYTES {
        return Err(PolicyError::Io {
            path: path.display().to_string(),
            message: format!("larger than {MAX_POLICY_FILE_BYTES} bytes"),
        });
    }
    std::fs::read_to_string(path).map_err(io)
}

/// Every `*.rego` file in `dir` (not recursive), sorted by name.
pub fn read_rego_dir(dir: &Path) -> Result<Vec<(String, String)>, PolicyError> {
    let io = |e: std::io::Error| PolicyError::Io {
        path: dir.display().to_string(),
        message: e.to_string(),
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "rego") && p.is_file())
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| Ok((p.display().to_string(), read_limited(p)?)))
        .collect()
}

/// Where a reloadable policy comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicySource {
    pub gates_toml: PathBuf,
    pub rego_dir: Option<PathBuf>,
}

impl PolicySource {
    pub fn load(&self) -> Result<Policy, PolicyError> {
        Policy::load(&self.gates_toml, self.rego_dir.as_deref())
    }

    /// Latest modification time and count of the source files, to detect changes by polling.
    fn stamp(&self) -> Option<(SystemTime, usize)> {
        let mut latest = std::fs::metadata(&self.gates_toml)
            .and_then(|m| m.modified())
            .ok()?;
        let mut n = 1;
        let dir = self.rego_dir.clone().or_else(|| {
            let text = std::fs::read_to_string(&self.gates_toml).ok()?;
            let t: toml::Table = toml::from_str(&text).ok()?;
            let d = t
                .get("gates")?
                .get("policy")?
                .get("rego_dir")?
                .as_str()?
                .to_string();
            Some(self.gates_toml.parent().unwrap_or(Path::new(".")).join(d))
        });
        if let Some(d) = dir
            && let Ok(rd) = std::fs::read_dir(d)
        {
            for e in rd.filter_map(Result::ok) {
                if e.path().extension().is_some_and(|x| x == "rego") {
                    n += 1;
                    if let Ok(m) = e.metadata().and_then(|m| m.modified()) {
                        latest = latest.max(m);
                    }
                }
            }
        }
        Some((latest, n))
    }
}

/// The live policy: readers take an `Arc` snapshot; reloads swap it only after validation.
#[derive(Debug)]
pub struct PolicyHandle {
    current: RwLock<Arc<Policy>>,
    source: Option<PolicySource>,
    stamp: Mutex<Option<(SystemTime, usize)>>,
}

impl PolicyHandle {
    pub fn new(policy: Policy) -> Self {
        Self {
            current: RwLock::new(Arc::new(policy)),
            source: None,
            stamp: Mutex::new(None),
        }
    }

    /// Loads from files; fails if the first load fails.
    pub fn from_source(source: PolicySource) -> Result<Self, PolicyError> {
        let stamp = source.stamp();
        let p = source.load()?;
        Ok(Self {
            current: RwLock::new(Arc::new(p)),
            source: Some(source),
            stamp: Mutex::new(stamp),
        })
    }

    pub fn current(&self) -> Arc<Policy> {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Installs an already validated policy (e.g. from an API call).
    pub fn replace(&self, p: Policy) {
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(p);
    }

    /// Re-reads the source. On error the current policy stays active and the error is returned.
    pub fn reload(&self) -> Result<(), PolicyError> {
        let Some(src) = &self.source else {
            return Err(PolicyError::Invalid(
                "this policy was not loaded from files".into(),
            ));
        };
        let stamp = src.stamp();
        let p = src.load()?;
        self.replace(p);
        *self
            .stamp
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = stamp;
        Ok(())
    }

    /// The file-watch primitive: reloads when a source file's mtime or the set of `.rego` files
    /// changed since the last (attempted) load. `Ok(true)` when a new policy was installed.
    pub fn reload_if_changed(&self) -> Result<bool, PolicyError> {
        let Some(src) = &self.source else {
            return Ok(false);
        };
        let now = src.stamp();
        {
            let mut last = self
                .stamp
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if *last == now {
                return Ok(false);
            }
            // Remember the attempt so a broken file is reported once, not on every poll.
            *last = now;
        }
        let p = src.load()?;
        self.replace(p);
        Ok(true)
    }
}
