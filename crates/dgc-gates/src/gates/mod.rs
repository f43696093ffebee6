//! The 22 gates: their identities, run order, shared evaluation context and the compiled set a
//! policy holds. Each gate lives in its own module with its `Config` (documented defaults), its
//! default mode and its embedded match/not-match examples.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::decision::{Mode, StateUpdate, Verdict};
use crate::model::{Action, GateRequest, Taint};
use crate::text::Leaf;

pub mod ahimsa;
pub mod budget;
pub mod capability;
pub mod consent;
pub mod content_safety;
pub mod delegation;
pub mod egress;
pub mod filesystem;
pub mod isolation;
pub mod output_limit;
pub mod pii;
pub mod policy;
pub mod prompt_injection;
pub mod rate_limit;
pub mod reversibility;
pub mod satya;
pub mod schema;
pub mod secrets_dlp;
pub mod sql;
pub mod tool_poisoning;
pub mod tool_policy;
pub mod trifecta;
pub mod vyavasthit;

/// The 22 gates, in DESIGN.md §5 order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GateId {
    Ahimsa,
    Vyavasthit,
    Satya,
    Consent,
    Reversibility,
    Capability,
    ToolPolicy,
    Schema,
    Egress,
    Filesystem,
    SecretsDlp,
    Pii,
    PromptInjection,
    Trifecta,
    ToolPoisoning,
    RateLimit,
    Budget,
    OutputLimit,
    Isolation,
    Delegation,
    ContentSafety,
    Policy,
}

impl GateId {
    /// DESIGN.md §5 order.
    pub const ALL: [GateId; 22] = [
        GateId::Ahimsa,
        GateId::Vyavasthit,
        GateId::Satya,
        GateId::Consent,
        GateId::Reversibility,
        GateId::Capability,
        GateId::ToolPolicy,
        GateId::Schema,
        GateId::Egress,
        GateId::Filesystem,
        GateId::SecretsDlp,
        GateId::Pii,
        GateId::PromptInjection,
        GateId::Trifecta,
        GateId::ToolPoisoning,
        GateId::RateLimit,
        GateId::Budget,
        GateId::OutputLimit,
        GateId::Isolation,
        GateId::Delegation,
        GateId::ContentSafety,
        GateId::Policy,
    ];

    /// Run order before execution: cheap deterministic checks first, text scans next, gates that
    /// read other gates' taint after them, stateful counters late (so a denied call does not use
    /// quota), Rego last.
    pub const ACTION_ORDER: [GateId; 22] = [
        GateId::Satya,
        GateId::Capability,
        GateId::ToolPolicy,
        GateId::Vyavasthit,
        GateId::Isolation,
        GateId::Delegation,
        GateId::Schema,
        GateId::OutputLimit,
        GateId::Egress,
        GateId::Filesystem,
        GateId::ToolPoisoning,
        GateId::Ahimsa,
        GateId::Reversibility,
        GateId::SecretsDlp,
        GateId::Pii,
        GateId::PromptInjection,
        GateId::ContentSafety,
        GateId::Trifecta,
        GateId::Consent,
        GateId::Budget,
        GateId::RateLimit,
        GateId::Policy,
    ];

    /// Gates that judge a tool's or model's output after execution (output_limit first so the
    /// scans are bounded).
    pub const OUTPUT_ORDER: [GateId; 5] = [
        GateId::OutputLimit,
        GateId::SecretsDlp,
        GateId::Pii,
        GateId::PromptInjection,
        GateId::ContentSafety,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            GateId::Ahimsa => "ahimsa",
            GateId::Vyavasthit => "vyavasthit",
            GateId::Satya => "satya",
            GateId::Consent => "consent",
            GateId::Reversibility => "reversibility",
            GateId::Capability => "capability",
            GateId::ToolPolicy => "tool_policy",
            GateId::Schema => "schema",
            GateId::Egress => "egress",
            GateId::Filesystem => "filesystem",
            GateId::SecretsDlp => "secrets_dlp",
            GateId::Pii => "pii",
            GateId::PromptInjection => "prompt_injection",
            GateId::Trifecta => "trifecta",
            GateId::ToolPoisoning => "tool_poisoning",
            GateId::RateLimit => "rate_limit",
            GateId::Budget => "budget",
            GateId::OutputLimit => "output_limit",
            GateId::Isolation => "isolation",
            GateId::Delegation => "delegation",
            GateId::ContentSafety => "content_safety",
            GateId::Policy => "policy",
        }
    }

    /// The mode a gate runs in when `gates.toml` says nothing.
    pub fn default_mode(self) -> Mode {
        match self {
            // A heuristic that blocks model output on false positives would hurt more than it
            // protects until an operator has tuned it; it starts by recording.
            GateId::ContentSafety => Mode::Monitor,
            _ => Mode::Enforce,
        }
    }

    pub fn examples(self) -> &'static [Example] {
        match self {
            GateId::Ahimsa => ahimsa::EXAMPLES,
            GateId::Vyavasthit => vyavasthit::EXAMPLES,
            GateId::Satya => satya::EXAMPLES,
            GateId::Consent => consent::EXAMPLES,
            GateId::Reversibility => reversibility::EXAMPLES,
            GateId::Capability => capability::EXAMPLES,
            GateId::ToolPolicy => tool_policy::EXAMPLES,
            GateId::Schema => schema::EXAMPLES,
            GateId::Egress => egress::EXAMPLES,
            GateId::Filesystem => filesystem::EXAMPLES,
            GateId::SecretsDlp => secrets_dlp::EXAMPLES,
            GateId::Pii => pii::EXAMPLES,
            GateId::PromptInjection => prompt_injection::EXAMPLES,
            GateId::Trifecta => trifecta::EXAMPLES,
            GateId::ToolPoisoning => tool_poisoning::EXAMPLES,
            GateId::RateLimit => rate_limit::EXAMPLES,
            GateId::Budget => budget::EXAMPLES,
            GateId::OutputLimit => output_limit::EXAMPLES,
            GateId::Isolation => isolation::EXAMPLES,
            GateId::Delegation => delegation::EXAMPLES,
            GateId::ContentSafety => content_safety::EXAMPLES,
            GateId::Policy => policy::EXAMPLES,
        }
    }
}

impl fmt::Display for GateId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for GateId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        GateId::ALL
            .into_iter()
            .find(|g| g.as_str() == s)
            .ok_or_else(|| format!("unknown gate `{s}`"))
    }
}

/// Which side of execution a check runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase<'a> {
    /// Before execution, judging the action.
    Action,
    /// After execution, judging its output text.
    Output(&'a str),
}

/// A parsed shell command line, shared between gates.
pub type ShellAnalysis =
    std::rc::Rc<Result<Vec<crate::shell::Effective>, crate::shell::ShellError>>;

/// Work shared between gates within one evaluation (computed at most once).
#[derive(Debug, Default)]
pub struct GateCache {
    ahimsa_hits: std::cell::OnceCell<Vec<ahimsa::Hit>>,
    shell: std::cell::RefCell<Vec<(String, ShellAnalysis)>>,
}

impl GateCache {
    /// [`crate::shell::analyse`], memoised per command line (ahimsa and filesystem both need it).
    pub fn shell(&self, cmd: &str) -> ShellAnalysis {
        if let Some((_, a)) = self.shell.borrow().iter().find(|(c, _)| c == cmd) {
            return a.clone();
        }
        let a = std::rc::Rc::new(crate::shell::analyse(cmd));
        self.shell.borrow_mut().push((cmd.to_string(), a.clone()));
        a
    }
}

/// What a gate sees.
#[derive(Debug)]
pub struct Cx<'a> {
    pub req: GateRequest<'a>,
    /// Taint so far, including labels added by earlier gates in this run.
    pub taint: &'a BTreeSet<Taint>,
    /// The action's string leaves (tool arguments, prompt, content, body), or the output.
    pub leaves: &'a [Leaf<'a>],
    pub phase: Phase<'a>,
    pub autonomy: crate::policy::Autonomy,
    pub cache: &'a GateCache,
}

impl<'a> Cx<'a> {
    pub fn action(&self) -> &'a Action {
        self.req.action
    }

    pub fn is_output(&self) -> bool {
        matches!(self.phase, Phase::Output(_))
    }
}

/// A byte span to redact inside one leaf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    pub leaf: usize,
    pub start: usize,
    pub end: usize,
    pub kind: &'static str,
}

/// What a gate returns.
#[derive(Debug, Clone, PartialEq)]
pub struct GateOut {
    pub verdict: Verdict,
    pub taint: Vec<Taint>,
    pub spans: Vec<Span>,
    pub updates: Vec<StateUpdate>,
    /// `output_limit` on outputs: the truncated text to continue with.
    pub replace_output: Option<String>,
    /// A note recorded as the reason of an `allow` (undo information, pins).
    pub note: Option<String>,
}

impl GateOut {
    pub fn allow() -> Self {
        Self::from(Verdict::Allow)
    }

    pub fn deny(reason: impl Into<String>) -> Self {
        Self::from(Verdict::Deny(reason.into()))
    }

    pub fn approve(class: crate::decision::ApprovalClass, reason: impl Into<String>) -> Self {
        Self::from(Verdict::NeedsApproval(class, reason.into()))
    }

    pub fn with_taint(mut self, t: Taint) -> Self {
        if !self.taint.contains(&t) {
            self.taint.push(t);
        }
        self
    }

    /// Did the gate fire (anything but a plain allow)? Used by examples and the corpus.
    pub fn fired(&self) -> bool {
        self.verdict != Verdict::Allow || !self.taint.is_empty()
    }
}

impl From<Verdict> for GateOut {
    fn from(verdict: Verdict) -> Self {
        Self {
            verdict,
            taint: Vec::new(),
            spans: Vec::new(),
            updates: Vec::new(),
            replace_output: None,
            note: None,
        }
    }
}

/// An embedded example: a request that must (or must not) make the gate fire under its defaults.
#[derive(Debug, Clone, Copy)]
pub struct Example {
    pub name: &'static str,
    /// `true`: the gate must fire (non-allow or taint); `false`: it must allow without taint.
    pub fires: bool,
    /// Optional exact verdict (`deny`, `needs_approval`, `redact`, `allow`).
    pub decision: Option<&'static str>,
    /// JSON: `{"action": …, "principal"?, "context"?, "state"?, "output"?: "…", "config"?: {…}}`;
    /// `config` is merged over the gate's defaults for this example only.
    pub input: &'static str,
}

/// Shorthand for example tables.
pub const fn ex(
    name: &'static str,
    fires: bool,
    decision: Option<&'static str>,
    input: &'static str,
) -> Example {
    Example {
        name,
        fires,
        decision,
        input,
    }
}

/// Every gate compiled from validated configuration.
#[derive(Debug, Clone)]
pub struct Gates {
    pub ahimsa: ahimsa::Gate,
    pub vyavasthit: vyavasthit::Gate,
    pub satya: satya::Gate,
    pub consent: consent::Gate,
    pub reversibility: reversibility::Gate,
    pub capability: capability::Gate,
    pub tool_policy: tool_policy::Gate,
    pub schema: schema::Gate,
    pub egress: egress::Gate,
    pub filesystem: filesystem::Gate,
    pub secrets_dlp: secrets_dlp::Gate,
    pub pii: pii::Gate,
    pub prompt_injection: prompt_injection::Gate,
    pub trifecta: trifecta::Gate,
    pub tool_poisoning: tool_poisoning::Gate,
    pub rate_limit: rate_limit::Gate,
    pub budget: budget::Gate,
    pub output_limit: output_limit::Gate,
    pub isolation: isolation::Gate,
    pub delegation: delegation::Gate,
    pub content_safety: content_safety::Gate,
    pub policy: policy::Gate,
}

impl Gates {
    pub fn check(&self, id: GateId, cx: &Cx<'_>) -> GateOut {
        match id {
            GateId::Ahimsa => self.ahimsa.check(cx),
            GateId::Vyavasthit => self.vyavasthit.check(cx),
            GateId::Satya => self.satya.check(cx),
            GateId::Consent => self.consent.check(cx, &self.filesystem),
            GateId::Reversibility => self.reversibility.check(cx, &self.ahimsa),
            GateId::Capability => self.capability.check(cx),
            GateId::ToolPolicy => self.tool_policy.check(cx),
            GateId::Schema => self.schema.check(cx),
            GateId::Egress => self.egress.check(cx),
            GateId::Filesystem => self.filesystem.check(cx),
            GateId::SecretsDlp => self.secrets_dlp.check(cx),
            GateId::Pii => self.pii.check(cx),
            GateId::PromptInjection => self.prompt_injection.check(cx),
            GateId::Trifecta => self.trifecta.check(cx),
            GateId::ToolPoisoning => self.tool_poisoning.check(cx, &self.prompt_injection),
            GateId::RateLimit => self.rate_limit.check(cx),
            GateId::Budget => self.budget.check(cx),
            GateId::OutputLimit => self.output_limit.check(cx),
            GateId::Isolation => self.isolation.check(cx),
            GateId::Delegation => self.delegation.check(cx),
            GateId::ContentSafety => self.content_safety.check(cx),
            GateId::Policy => self.policy.check(cx),
        }
    }
}

/// Tool-name glob matching shared by several gates (`fs.*`, `mcp.*.delete*`).
pub(crate) fn glob_set(patterns: &[String], what: &str) -> Result<globset::GlobSet, String> {
    let mut b = globset::GlobSetBuilder::new();
    for p in patterns {
        let g = globset::GlobBuilder::new(p)
            .literal_separator(false)
            .build()
            .map_err(|e| format!("{what}: bad glob `{p}`: {e}"))?;
        b.add(g);
    }
    b.build().map_err(|e| format!("{what}: {e}"))
}

/// The text-bearing fields of non-tool actions, as leaves with pseudo-pointers.
pub(crate) fn action_leaves(action: &Action) -> Vec<Leaf<'_>> {
    match action {
        Action::ToolCall(_) => Vec::new(),
        Action::ModelCall(m) => vec![Leaf {
            pointer: "/prompt".into(),
            key: "prompt",
            text: &m.prompt,
        }],
        Action::MemoryWrite(m) => vec![Leaf {
            pointer: "/content".into(),
            key: "content",
            text: &m.content,
        }],
        Action::Delegation(d) => vec![Leaf {
            pointer: "/input".into(),
            key: "input",
            text: &d.input,
        }],
        Action::OutboundMessage(o) => vec![
            Leaf {
                pointer: "/body".into(),
                key: "body",
                text: &o.body,
            },
            Leaf {
                pointer: "/destination".into(),
                key: "url",
                text: &o.destination,
            },
        ],
    }
}
