//! Turning a user's search text into terms. The user's `q` is text, never query syntax: it is split
//! into words (Unicode letters and digits) and each backend builds its own safe query from them,
//! so `"foo OR`, `NEAR(`, `*`, `-` or SQL quotes can never change the query's structure.

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

/// Lowercased, de-duplicated words of a query, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchTerms(Vec<String>);

impl SearchTerms {
    pub fn parse(q: &str) -> Result<Self, QueryError> {
        if q.len() > MAX_QUERY_BYTES {
            return Err(QueryError::TooLong);
        }
        let mut terms: Vec<String> = Vec::new();
        for word in q.split(|c: char| !c.is_alphanumeric()) {
            if word.is_empty() {
                continue;
            }
            let w: String = word
                .chars()
                .take(MAX_TERM_CHARS)
                .collect::<String>()
                .to_lowercase();
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

    /// FTS5 expression: each term a quoted string (terms hold only letters and digits, so no
    /// escaping can be needed), alternatives joined with OR.
    pub fn fts5_expr(&self) -> String {
        self.0
            .iter()
            .map(|t| format!("\"{t}\""))
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
        assert_eq!(
            SearchTerms::parse("Ünïcode ÜNÏCODE").unwrap().terms(),
            ["ünïcode"]
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
}
