//! Gate 10 `filesystem`: paths an action names stay inside the agent's roots after lexical
//! normalisation (`..`, `.`, `//`, `~`), and sensitive paths (`.ssh`, `.env`, `.git/hooks`,
//! `/proc`, private keys, cloud credentials) are denied even inside the roots. Shell commands are
//! checked for sensitive paths in their words and redirections.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Cx, Example, GateOut, ex, glob_set};
use crate::model::Action;

/// Configuration (`[gates.filesystem]`, roots usually per agent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Writable roots; the first is the working directory relative paths resolve against.
    /// Default `["/workspace"]`.
    pub roots: Vec<String>,
    /// Additional read-only roots (writes there need consent). Default empty.
    pub read_only_roots: Vec<String>,
    /// Sensitive path globs, matched against the normalised absolute path.
    pub sensitive: Vec<String>,
    /// Exceptions to `sensitive` (templates such as `.env.example`).
    pub sensitive_exceptions: Vec<String>,
    /// Tools whose names mean they write (for `consent`'s "writes outside the workspace").
    pub write_tools: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        let sensitive = [
            "**/.ssh",
            "**/.ssh/**",
            "**/.env",
            "**/.env.*",
            "**/.git/hooks/**",
            "**/.git/config",
            "/proc/**",
            "/proc",
            "/sys/**",
            "/dev/**",
            "**/*.pem",
            "**/*.key",
            "**/*.p12",
            "**/*.pfx",
            "**/id_rsa*",
            "**/id_dsa*",
            "**/id_ecdsa*",
            "**/id_ed25519*",
            "**/.aws/**",
            "**/.gcloud/**",
            "**/.config/gcloud/**",
            "**/.azure/**",
            "**/.kube/**",
            "**/.docker/config.json",
            "**/.netrc",
            "**/.pgpass",
            "**/.npmrc",
            "**/.pypirc",
            "**/.git-credentials",
            "**/.gnupg/**",
            "/etc/shadow",
            "/etc/gshadow",
            "/etc/sudoers",
            "/etc/sudoers.d/**",
            "**/.bash_history",
            "**/.zsh_history",
            "**/.vault-token",
            "**/credentials.json",
            "**/secrets.y*ml",
        ];
        Self {
            roots: vec!["/workspace".into()],
            read_only_roots: Vec::new(),
            sensitive: sensitive.map(String::from).to_vec(),
            sensitive_exceptions: [
                "**/.env.example",
                "**/.env.sample",
                "**/.env.template",
                "**/*.pub",
            ]
            .map(String::from)
            .to_vec(),
            write_tools: [
                "*write*", "*edit*", "*create*", "*delete*", "*remove*", "*move*", "*rename*",
                "*mkdir*", "*append*", "*patch*", "*upload*",
            ]
            .map(String::from)
            .to_vec(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Gate {
    roots: Vec<String>,
    read_only_roots: Vec<String>,
    sensitive: globset::GlobSet,
    exceptions: globset::GlobSet,
    write_tools: globset::GlobSet,
}

/// Argument keys that hold paths.
const PATH_KEYS: [&str; 22] = [
    "path",
    "paths",
    "file",
    "files",
    "filename",
    "file_path",
    "filepath",
    "dir",
    "directory",
    "cwd",
    "workdir",
    "working_directory",
    "source",
    "src",
    "destination",
    "dest",
    "target",
    "root",
    "output_path",
    "input_path",
    "old_path",
    "new_path",
];

/// Lexically normalises `p` against `cwd`: no filesystem access, `..` never climbs above `/`.
pub fn normalize(p: &str, cwd: &str) -> Option<String> {
    if p.contains('\0') {
        return None;
    }
    let joined = if let Some(rest) = p.strip_prefix("~") {
        // The home directory is never inside an agent's roots; give it a recognisable prefix.
        format!("/~home{rest}")
    } else if p.starts_with('/') {
        p.to_string()
    } else if let Some(rest) = p.strip_prefix("file://") {
        rest.to_string()
    } else {
        format!("{cwd}/{p}")
    };
    let mut parts: Vec<&str> = Vec::new();
    for seg in joined.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    Some(format!("/{}", parts.join("/")))
}

fn under(path: &str, root: &str) -> bool {
    let root = root.trim_end_matches('/');
    root.is_empty() || path == root || path.strip_prefix(root).is_some_and(|r| r.starts_with('/'))
}

impl Gate {
    pub fn new(cfg: &Config) -> Result<Self, String> {
        let norm_root = |r: &String| -> Result<String, String> {
            if !r.starts_with('/') {
                return Err(format!("root `{r}` must be absolute"));
            }
            normalize(r, "/").ok_or_else(|| format!("root `{r}` is invalid"))
        };
        if cfg.roots.is_empty() {
            return Err("roots: at least one root is required".into());
        }
        Ok(Self {
            roots: cfg.roots.iter().map(norm_root).collect::<Result<_, _>>()?,
            read_only_roots: cfg
                .read_only_roots
                .iter()
                .map(norm_root)
                .collect::<Result<_, _>>()?,
            sensitive: glob_set(&cfg.sensitive, "sensitive")?,
            exceptions: glob_set(&cfg.sensitive_exceptions, "sensitive_exceptions")?,
            write_tools: glob_set(&cfg.write_tools, "write_tools")?,
        })
    }

    fn cwd(&self) -> &str {
        self.roots.first().map_or("/workspace", String::as_str)
    }

    fn is_sensitive(&self, abs: &str) -> bool {
        self.sensitive.is_match(abs) && !self.exceptions.is_match(abs)
    }

    /// Paths named by a tool call's path arguments, normalised.
    pub fn tool_paths(&self, action: &Action) -> Vec<(String, String)> {
        let Action::ToolCall(t) = action else {
            return Vec::new();
        };
        let Value::Object(map) = &t.arguments else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (k, v) in map {
            if !PATH_KEYS.contains(&k.to_ascii_lowercase().as_str()) {
                continue;
            }
            let items: Vec<&str> = match v {
                Value::String(s) => vec![s.as_str()],
                Value::Array(a) => a.iter().filter_map(Value::as_str).take(1000).collect(),
                _ => Vec::new(),
            };
            for raw in items {
                if raw.contains("://") && !raw.starts_with("file://") {
                    continue; // a URL, egress's business
                }
                match normalize(raw, self.cwd()) {
                    Some(n) => out.push((raw.to_string(), n)),
                    None => out.push((raw.to_string(), String::new())),
                }
            }
        }
        out
    }

    /// Is this a write by a tool to a path outside the writable roots (but allowed to read)?
    pub fn writes_outside_workspace(&self, action: &Action) -> Option<String> {
        let t = action.tool()?;
        if !self.write_tools.is_match(&t.tool)
            || t.annotations.read_only_hint == Some(true) && t.trusted
        {
            return None;
        }
        self.tool_paths(action)
            .into_iter()
            .find(|(_, n)| !n.is_empty() && !self.roots.iter().any(|r| under(n, r)))
            .map(|(raw, _)| raw)
    }

    pub fn check(&self, cx: &Cx<'_>) -> GateOut {
        let Action::ToolCall(t) = cx.action() else {
            return GateOut::allow();
        };
        for (raw, abs) in self.tool_paths(cx.action()) {
            if abs.is_empty() {
                return GateOut::deny(format!(
                    "path `{}` is invalid (NUL byte)",
                    crate::text::excerpt(&raw, 60)
                ));
            }
            if self.is_sensitive(&abs) {
                return GateOut::deny(format!(
                    "`{}` is a sensitive path",
                    crate::text::excerpt(&raw, 120)
                ));
            }
            let inside = self
                .roots
                .iter()
                .chain(&self.read_only_roots)
                .any(|r| under(&abs, r));
            if !inside {
                return GateOut::deny(format!(
                    "`{}` resolves to {} outside the agent's roots",
                    crate::text::excerpt(&raw, 120),
                    crate::text::excerpt(&abs, 120)
                ));
            }
        }
        // Shell commands: look for sensitive paths in words and redirections.
        if (t.tool.starts_with("shell.") || t.tool.ends_with(".exec"))
            && let Value::Object(map) = &t.arguments
        {
            for key in ["command", "cmd", "script"] {
                let Some(Value::String(cmd)) = map.get(key) else {
                    continue;
                };
                let analysis = cx.cache.shell(cmd);
                let Ok(cmds) = &*analysis else {
                    continue;
                }; // ahimsa refuses these
                for c in cmds {
                    let words = c
                        .argv
                        .iter()
                        .skip(1)
                        .chain(c.redirects.iter().map(|(_, t)| t));
                    for w in words {
                        let w = w.split_once('=').map_or(w.as_str(), |(_, v)| v);
                        if !(w.contains('/') || w.starts_with('.') || w.starts_with('~'))
                            || w.contains("://")
                        {
                            continue;
                        }
                        if let Some(abs) = normalize(w, self.cwd())
                            && self.is_sensitive(&abs)
                        {
                            return GateOut::deny(format!(
                                "command touches sensitive path `{}`",
                                crate::text::excerpt(w, 120)
                            ));
                        }
                    }
                }
            }
        }
        GateOut::allow()
    }
}

pub const EXAMPLES: &[Example] = &[
    ex(
        "dotdot escape",
        true,
        Some("deny"),
        r#"{"action":{"type":"tool_call","tool":"fs.read","arguments":{"path":"../../etc/passwd"}}}"#,
    ),
    ex(
        "ssh key",
        true,
        Some("deny"),
        r#"{"action":{"type":"tool_call","tool":"fs.read","arguments":{"path":"~/.ssh/id_rsa"}}}"#,
    ),
    ex(
        "dotenv in workspace",
        true,
        Some("deny"),
        r#"{"action":{"type":"tool_call","tool":"fs.read","arguments":{"path":"app/.env"}}}"#,
    ),
    ex(
        "git hook write",
        true,
        Some("deny"),
        r#"{"action":{"type":"tool_call","tool":"fs.write","arguments":{"path":"/workspace/.git/hooks/pre-commit","content":"x"}}}"#,
    ),
    ex(
        "cat ssh key in shell",
        true,
        Some("deny"),
        r#"{"action":{"type":"tool_call","tool":"shell.exec","arguments":{"command":"cat ~/.ssh/id_ed25519 | base64"}}}"#,
    ),
    ex(
        "proc environ",
        true,
        Some("deny"),
        r#"{"action":{"type":"tool_call","tool":"fs.read","arguments":{"path":"/proc/self/environ"}}}"#,
    ),
    ex(
        "workspace file",
        false,
        None,
        r#"{"action":{"type":"tool_call","tool":"fs.read","arguments":{"path":"src/main.rs"}}}"#,
    ),
    ex(
        "env example template",
        false,
        None,
        r#"{"action":{"type":"tool_call","tool":"fs.read","arguments":{"path":"/workspace/.env.example"}}}"#,
    ),
    ex(
        "dotdot staying inside",
        false,
        None,
        r#"{"action":{"type":"tool_call","tool":"fs.read","arguments":{"path":"/workspace/a/../b.txt"}}}"#,
    ),
];
