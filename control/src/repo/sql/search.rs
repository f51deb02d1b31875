//! Message search (PROTOCOL v1.1 `GET /search/messages`) on the engines'
//! full-text indexes: an SQLite FTS5 table, a MySQL/MariaDB FULLTEXT index.
//! Each text message has one document in `message_search`, written in the
//! transaction that stores, edits or recalls it; a search is a match of
//! every term, narrowed to the conversations the caller is in.
//!
//! The text is cut into terms here, not by the engine's parser, so both
//! engines find the same messages: lower-cased words and, for CJK text
//! (which has no spaces), overlapping character pairs, as MySQL's ngram
//! parser cuts them with its default size of 2; a lone CJK character is its
//! own term. MariaDB has no ngram parser, and InnoDB's own parser would drop
//! every two-character pair (`innodb_ft_min_token_size` is 3) and English
//! stop words; so the MySQL document holds each term as a fixed-length hex
//! token (the start of its SHA-256), which that parser keeps whole. The
//! SQLite document holds the terms themselves under FTS5's `ascii`
//! tokenizer, which splits on ASCII punctuation and spaces only.

use std::collections::BTreeSet;
use std::fmt::Write;

use gochat_proto::frames::MessageType;
use sha2::{Digest, Sha256};
use sqlx::{Any, Transaction};

use super::messages::{SELECT_COLUMNS, message_from_row};
use super::{Dialect, SqlRepo, map_err, placeholders};
use crate::repo::{RepoResult, StoredMessage};

/// Documents per multi-row insert.
const ROWS_PER_INSERT: usize = 200;
/// Bytes of a term's SHA-256 in its MySQL token: 64 bits keep a false
/// match between two terms out of reach for any real vocabulary.
const TOKEN_BYTES: usize = 8;
/// The longest term kept, in characters (longer words are cut).
const MAX_TERM_CHARS: usize = 64;
/// Terms a search may hold; more are refused by the logic before this.
pub const MAX_QUERY_TERMS: usize = 16;

/// Scripts written without spaces between words.
fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF     // Hiragana, Katakana
        | 0x3400..=0x4DBF   // CJK Extension A
        | 0x4E00..=0x9FFF   // CJK Unified Ideographs
        | 0xAC00..=0xD7AF   // Hangul syllables
        | 0xF900..=0xFAFF   // CJK Compatibility Ideographs
        | 0x20000..=0x2FA1F // CJK Extensions B and later
    )
}

/// The distinct terms of a text, in order of first appearance.
pub fn terms_of(text: &str) -> Vec<String> {
    let mut seen = BTreeSet::new();
    let mut terms = Vec::new();
    let mut keep = |term: String| {
        if seen.insert(term.clone()) {
            terms.push(term);
        }
    };
    let mut word = String::new();
    let mut cjk: Vec<char> = Vec::new();
    let flush_cjk = |cjk: &mut Vec<char>, keep: &mut dyn FnMut(String)| {
        match cjk.len() {
            0 => {}
            1 => keep(cjk[0].to_string()),
            _ => cjk.windows(2).for_each(|w| keep(w.iter().collect())),
        }
        cjk.clear();
    };
    for c in text.chars() {
        if is_cjk(c) {
            if !word.is_empty() {
                keep(std::mem::take(&mut word));
            }
            cjk.push(c);
        } else if c.is_alphanumeric() {
            flush_cjk(&mut cjk, &mut keep);
            // Lower-casing may give more than one character ('İ'): the cap
            // holds on what is stored.
            for lower in c.to_lowercase() {
                if word.chars().count() < MAX_TERM_CHARS {
                    word.push(lower);
                }
            }
        } else {
            flush_cjk(&mut cjk, &mut keep);
            if !word.is_empty() {
                keep(std::mem::take(&mut word));
            }
        }
    }
    flush_cjk(&mut cjk, &mut keep);
    if !word.is_empty() {
        keep(word);
    }
    terms
}

/// A term as the engine's index holds it.
fn token(dialect: Dialect, term: &str) -> String {
    match dialect {
        Dialect::Sqlite => term.to_owned(),
        Dialect::MySql => {
            let digest = Sha256::digest(term.as_bytes());
            digest[..TOKEN_BYTES].iter().fold(
                String::with_capacity(2 * TOKEN_BYTES),
                |mut hex, b| {
                    let _ = write!(hex, "{b:02x}");
                    hex
                },
            )
        }
    }
}

/// The indexed document of a text: its terms' tokens, space-separated.
fn document(dialect: Dialect, text: &str) -> String {
    let tokens: Vec<String> = terms_of(text).iter().map(|t| token(dialect, t)).collect();
    tokens.join(" ")
}

/// The engine's match expression for every term of `terms`. Terms hold
/// letters and digits only, so nothing in them is an operator; FTS5 still
/// gets each as a quoted string, which its query syntax reads literally.
fn match_expression(dialect: Dialect, terms: &[String]) -> String {
    let parts: Vec<String> = terms
        .iter()
        .map(|t| match dialect {
            Dialect::Sqlite => format!("\"{}\"", t.replace('"', "\"\"")),
            Dialect::MySql => format!("+{}", token(dialect, t)),
        })
        .collect();
    parts.join(" ")
}

/// The `INSERT` of `rows` documents into the engine's table.
fn insert_sql(dialect: Dialect, rows: usize) -> String {
    match dialect {
        Dialect::Sqlite => format!(
            "INSERT INTO message_search (rowid, terms) VALUES {}",
            vec!["(?, ?)"; rows].join(", ")
        ),
        Dialect::MySql => format!(
            "INSERT INTO message_search (message_id, conversation_id, terms) VALUES {}",
            vec!["(?, ?, ?)"; rows].join(", ")
        ),
    }
}

/// Indexes the text messages among `stored`. With `replace`, documents the
/// messages may have already are dropped first (the backfill, which may
/// meet a message that was edited since it was stored).
pub(super) async fn index_messages(
    tx: &mut Transaction<'static, Any>,
    dialect: Dialect,
    stored: &[StoredMessage],
    replace: bool,
) -> RepoResult<()> {
    let docs: Vec<(&StoredMessage, String)> = stored
        .iter()
        .filter(|m| m.message_type == MessageType::Text.as_str())
        .map(|m| (m, document(dialect, &m.content)))
        .filter(|(_, doc)| !doc.is_empty())
        .collect();
    for chunk in docs.chunks(ROWS_PER_INSERT) {
        if replace {
            let sql = format!(
                "DELETE FROM message_search WHERE {} IN ({})",
                key_column(dialect),
                placeholders(chunk.len())
            );
            let mut query = sqlx::query(&sql);
            for (m, _) in chunk {
                query = query.bind(m.message_id);
            }
            query.execute(&mut **tx).await.map_err(map_err)?;
        }
        let sql = insert_sql(dialect, chunk.len());
        let mut query = sqlx::query(&sql);
        for (m, doc) in chunk {
            query = query.bind(m.message_id);
            if dialect == Dialect::MySql {
                query = query.bind(m.conversation_id.clone());
            }
            query = query.bind(doc.clone());
        }
        query.execute(&mut **tx).await.map_err(map_err)?;
    }
    Ok(())
}

/// The column holding a document's message id.
fn key_column(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => "rowid",
        Dialect::MySql => "message_id",
    }
}

/// Re-indexes a message after an edit (`Some(new text)`) or drops it from
/// the index after a recall (`None`). An edit of a message recalled
/// meanwhile indexes nothing.
pub(super) async fn reindex(
    tx: &mut Transaction<'static, Any>,
    dialect: Dialect,
    message_id: i64,
    conversation_id: &str,
    text: Option<&str>,
) -> RepoResult<()> {
    let key = key_column(dialect);
    sqlx::query(&format!("DELETE FROM message_search WHERE {key} = ?"))
        .bind(message_id)
        .execute(&mut **tx)
        .await
        .map_err(map_err)?;
    let doc = text.map(|t| document(dialect, t)).unwrap_or_default();
    if doc.is_empty() {
        return Ok(());
    }
    let columns = match dialect {
        Dialect::Sqlite => "rowid, terms",
        Dialect::MySql => "message_id, conversation_id, terms",
    };
    let values = match dialect {
        Dialect::Sqlite => "id, ?",
        Dialect::MySql => "id, conversation_id, ?",
    };
    sqlx::query(&format!(
        "INSERT INTO message_search ({columns}) SELECT {values} FROM messages \
         WHERE id = ? AND conversation_id = ? AND recalled = 0"
    ))
    .bind(doc)
    .bind(message_id)
    .bind(conversation_id.to_owned())
    .execute(&mut **tx)
    .await
    .map_err(map_err)?;
    Ok(())
}

impl SqlRepo {
    /// The newest messages holding every term of `query`, among the
    /// conversations `user_id` is in (or the one given), less those the
    /// user deleted for themself and recalled ones.
    pub(super) async fn find_by_terms(
        &self,
        user_id: i64,
        query: &str,
        conversation_id: Option<&str>,
        limit: u32,
    ) -> RepoResult<Vec<StoredMessage>> {
        let mut terms = terms_of(query);
        terms.truncate(MAX_QUERY_TERMS);
        if terms.is_empty() {
            return Ok(Vec::new());
        }
        // The index finds the documents; the caller's membership narrows
        // them (a match cannot be narrowed inside either engine's index).
        // FTS5 documents carry no conversation: the message row gives it.
        let (from, matched, conversation) = match self.dialect {
            Dialect::Sqlite => (
                "message_search s JOIN messages m ON m.id = s.rowid",
                "s.terms MATCH ?",
                "m.conversation_id",
            ),
            Dialect::MySql => (
                "message_search s",
                "MATCH (s.terms) AGAINST (? IN BOOLEAN MODE)",
                "s.conversation_id",
            ),
        };
        let key = key_column(self.dialect);
        let one = if conversation_id.is_some() {
            format!(" AND {conversation} = ?")
        } else {
            String::new()
        };
        // Message ids grow with time: newest first is highest id first.
        let sql = format!(
            "SELECT {SELECT_COLUMNS} FROM messages JOIN ( \
               SELECT s.{key} AS message_id FROM {from} \
               JOIN user_conversations uc ON uc.conversation_id = {conversation} AND uc.user_id = ? \
               WHERE {matched}{one} \
               AND NOT EXISTS (SELECT 1 FROM hidden_messages h WHERE h.user_id = ? AND h.message_id = s.{key}) \
               ORDER BY s.{key} DESC LIMIT ?) hits ON messages.id = hits.message_id \
             WHERE messages.recalled = 0 \
             ORDER BY messages.id DESC"
        );
        let mut q = sqlx::query(&sql)
            .bind(user_id)
            .bind(match_expression(self.dialect, &terms));
        if let Some(cid) = conversation_id {
            q = q.bind(cid.to_owned());
        }
        q.bind(user_id)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?
            .iter()
            .map(message_from_row)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::{Dialect, document, match_expression, terms_of};

    #[test]
    fn words_are_lower_cased_and_cjk_is_cut_in_pairs() {
        assert_eq!(terms_of("Hello, hello WORLD!"), ["hello", "world"]);
        assert_eq!(terms_of("明天见"), ["明天", "天见"]);
        assert_eq!(terms_of("去 北京 吧"), ["去", "北京", "吧"]);
        assert_eq!(
            terms_of("GoChat支持中文search"),
            ["gochat", "支持", "持中", "中文", "search"]
        );
        assert_eq!(terms_of("カタカナ"), ["カタ", "タカ", "カナ"]);
        assert_eq!(terms_of("... !!"), Vec::<String>::new());
        assert_eq!(terms_of(&"a".repeat(100))[0].len(), 64);
        let dotted = format!("{}İ", "a".repeat(63));
        assert_eq!(terms_of(&dotted)[0].chars().count(), 64);
    }

    #[test]
    fn mysql_tokens_are_fixed_hex_words_and_sqlite_keeps_the_terms() {
        let doc = document(Dialect::MySql, "Hello 明天");
        let tokens: Vec<&str> = doc.split(' ').collect();
        assert_eq!(tokens.len(), 2);
        assert!(
            tokens
                .iter()
                .all(|t| t.len() == 16 && t.bytes().all(|b| b.is_ascii_hexdigit()))
        );
        assert_eq!(document(Dialect::MySql, "HELLO"), tokens[0]);
        assert_eq!(document(Dialect::Sqlite, "Hello 明天"), "hello 明天");
        assert_eq!(
            match_expression(Dialect::MySql, &terms_of("hello")),
            format!("+{}", tokens[0])
        );
        assert_eq!(
            match_expression(Dialect::Sqlite, &terms_of("明天 Hi")),
            "\"明天\" \"hi\""
        );
    }
}
