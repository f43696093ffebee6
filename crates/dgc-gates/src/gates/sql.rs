//! A small SQL statement scanner for `ahimsa`: strips comments and literals, splits statements,
//! and flags `DROP`, `TRUNCATE`, and `DELETE`/`UPDATE` without a `WHERE`.

/// Largest SQL text analysed; longer text is refused by the caller.
pub const MAX_SQL_BYTES: usize = 256 * 1024;

/// Rule ids found in `sql`, at most one of each.
pub fn destructive_statements(sql: &str) -> Vec<&'static str> {
    let cleaned = strip(sql);
    let mut found: Vec<&'static str> = Vec::new();
    for stmt in cleaned.split(';') {
        let words: Vec<&str> = stmt
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| !w.is_empty())
            .collect();
        let has = |w: &str| words.iter().any(|x| x.eq_ignore_ascii_case(w));
        let pos = |w: &str| words.iter().position(|x| x.eq_ignore_ascii_case(w));
        let Some(first) = words.first() else { continue };
        let rule = if first.eq_ignore_ascii_case("drop")
            || (first.eq_ignore_ascii_case("alter") && has("drop"))
        {
            Some("sql_drop")
        } else if first.eq_ignore_ascii_case("truncate") {
            Some("sql_truncate")
        } else if let Some(d) = pos("delete") {
            // `DELETE FROM t` (possibly after a WITH clause) without a WHERE after it.
            let after = &words[d..];
            let is_delete = d == 0 || first.eq_ignore_ascii_case("with");
            (is_delete
                && after.get(1).is_some_and(|w| w.eq_ignore_ascii_case("from"))
                && !after.iter().any(|w| w.eq_ignore_ascii_case("where")))
            .then_some("sql_delete_all")
        } else if first.eq_ignore_ascii_case("update") && has("set") && !has("where") {
            Some("sql_update_all")
        } else {
            None
        };
        if let Some(r) = rule
            && !found.contains(&r)
        {
            found.push(r);
        }
    }
    found
}

/// Replaces comments and string literals with spaces so keywords inside them do not count.
fn strip(sql: &str) -> String {
    let b = sql.as_bytes();
    let mut out = String::with_capacity(sql.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                out.push(' ');
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i < b.len() && !(b[i] == b'*' && b.get(i + 1) == Some(&b'/')) {
                    i += 1;
                }
                i += 2;
                out.push(' ');
            }
            q @ (b'\'' | b'"' | b'`') => {
                i += 1;
                while i < b.len() {
                    if b[i] == q {
                        if b.get(i + 1) == Some(&q) {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
                // Quoted identifiers still separate words; literal content is dropped.
                out.push_str(if q == b'\'' { " '' " } else { " ident " });
            }
            c => {
                if c.is_ascii() {
                    out.push(c as char);
                } else {
                    out.push(' ');
                }
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::destructive_statements as d;

    #[test]
    fn flags_and_spares() {
        assert_eq!(d("DROP TABLE users"), vec!["sql_drop"]);
        assert_eq!(d("truncate logs;"), vec!["sql_truncate"]);
        assert_eq!(d("DELETE FROM users"), vec!["sql_delete_all"]);
        assert_eq!(
            d("delete from users -- where id = 1"),
            vec!["sql_delete_all"]
        );
        assert!(d("DELETE FROM users WHERE id = 1").is_empty());
        assert!(d("SELECT * FROM deleted_items WHERE note = 'DROP TABLE x'").is_empty());
        assert_eq!(d("UPDATE accounts SET balance = 0"), vec!["sql_update_all"]);
        assert!(d("UPDATE accounts SET balance = 0 WHERE id = 7").is_empty());
        assert_eq!(d("select 1; drop database prod"), vec!["sql_drop"]);
    }
}
