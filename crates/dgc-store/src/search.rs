//! Words for full-text search, on both sides: what gets indexed and what a query asks for. Text is
//! split into words of Unicode letters and digits, lowercased, with diacritics removed (NFD, combining
//! marks dropped), so `Ünïcode` finds `unicode`. The user's `q` is text, never query syntax: `"foo OR`,
//! `NEAR(`, `*`, `-` or SQL quotes become plain words and cannot change a query's structure.
//!
//! The SQLite backend indexes every word prefixed with the agent (`<agent seq>_<word>`): each term's
//! posting list then holds one agent's memories only, so matching and BM25's per-term statistics cost
//! what that agent has, never what the whole table has.

/// Most terms taken from one query; the rest are ignored (documented).
pub const MAX_TERMS: usize = 16;
/// Longest term kept (longer words are truncated to this many characters).
pub const MAX_TERM_CHARS: usize = 64;
/// Longest accepted `q`.
pub const MAX_QUERY_BYTES: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("q is longer than {MAX_QUERY_BYTES} bytes")]
    TooLong,
    #[error("q has no searchable words (letters or digits)")]
    NoTerms,
}

/// The normalised words of `text`, in order (duplicates kept), each at most [`MAX_TERM_CHARS`].
pub fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    use unicode_normalization::UnicodeNormalization;
    use unicode_normalization::char::is_combining_mark;
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .filter_map(|w| {
            let norm: String = w
                .nfd()
                .filter(|c| !is_combining_mark(*c))
                .flat_map(char::to_lowercase)
                .take(MAX_TERM_CHARS)
                .collect();
            (!norm.is_empty()).then_some(norm)
        })
}

/// The text the SQLite FTS table indexes for one memory: its words, each prefixed with the agent.
pub fn fts5_index_text(agent_token: &str, content: &str) -> String {
    let mut out = String::with_capacity(content.len() + content.len() / 4);
    for w in words(content) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(agent_token);
        out.push('_');
        out.push_str(&w);
    }
    out
}

/// Lowercased, de-duplicated words of a query, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchTerms(Vec<String>);

impl SearchTerms {
    pub fn parse(q: &str) -> Result<Self, QueryError> {
        if q.len() > MAX_QUERY_BYTES {
            return Err(QueryError::TooLong);
        }
        let mut terms: Vec<String> = Vec::new();
        for w in words(q) {
            if !terms.contains(&w) {
                terms.push(w);
            }
            if terms.len() == MAX_TERMS {
                break;
            }
        }
        if terms.is_empty() {
            return Err(QueryError::NoTerms);
        }
        Ok(Self(terms))
    }

    pub fn terms(&self) -> &[String] {
        &self.0
    }

    /// FTS5 expression over agent-prefixed terms: each term a quoted string (terms hold only letters
    /// and digits, so no escaping can be needed), alternatives joined with OR.
    pub fn fts5_expr(&self, agent_token: &str) -> String {
        self.0
            .iter()
            .map(|t| format!("\"{agent_token}_{t}\""))
            .collect::<Vec<_>>()
            .join(" OR ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_input_becomes_words() {
        assert_eq!(
            SearchTerms::parse("\"foo OR").unwrap().terms(),
            ["foo", "or"]
        );
        assert_eq!(
            SearchTerms::parse("NEAR(a b)").unwrap().terms(),
            ["near", "a", "b"]
        );
        assert_eq!(
            SearchTerms::parse("'; DROP TABLE x;--").unwrap().terms(),
            ["drop", "table", "x"]
        );
        for none in ["*", "-", "\"", "   ", "", "()", "^^"] {
            assert_eq!(
                SearchTerms::parse(none),
                Err(QueryError::NoTerms),
                "{none:?}"
            );
        }
        assert_eq!(
            SearchTerms::parse(&"a ".repeat(3000)),
            Err(QueryError::TooLong)
        );
        assert_eq!(
            SearchTerms::parse(&(0..100).map(|i| format!("w{i} ")).collect::<String>())
                .unwrap()
                .terms()
                .len(),
            MAX_TERMS
        );
    }

    #[test]
    fn normalisation_folds_case_and_diacritics() {
        assert_eq!(
            SearchTerms::parse("Ünïcode ÜNÏCODE unicode")
                .unwrap()
                .terms(),
            ["unicode"]
        );
        assert_eq!(
            SearchTerms::parse("Straße ΑΘΗΝΑ").unwrap().terms(),
            ["straße", "αθηνα"]
        );
    }

    #[test]
    fn index_text_prefixes_every_word_and_matches_queries() {
        assert_eq!(
            fts5_index_text("7", "Deploy: failed (3am)!"),
            "7_deploy 7_failed 7_3am"
        );
        assert_eq!(fts5_index_text("7", "  ...  "), "");
        assert_eq!(
            SearchTerms::parse("deploy 3AM").unwrap().fts5_expr("7"),
            "\"7_deploy\" OR \"7_3am\""
        );
        let long = "x".repeat(100);
        assert_eq!(fts5_index_text("1", &long).len(), 2 + MAX_TERM_CHARS);
    }
}
