//! Message search (PROTOCOL v1.1 `GET /search/messages`): an inverted index
//! of terms kept in the transaction that stores, edits or recalls a message,
//! and the query that finds the messages holding every term of a search
//! among the conversations a user is in.
//!
//! Terms are lower-cased words and, for CJK text (which has no spaces),
//! overlapping character pairs, as MySQL's ngram parser cuts them with its
//! default size of 2; a lone CJK character is its own term. The same table
//! and query serve MySQL, MariaDB (which has no ngram parser) and SQLite.

use std::collections::BTreeSet;

use gochat_proto::frames::MessageType;
use sqlx::{Any, Transaction};

use super::messages::{SELECT_COLUMNS, message_from_row};
use super::{SqlRepo, map_err};
use crate::repo::{RepoResult, StoredMessage};

/// Rows per multi-row insert.
const ROWS_PER_INSERT: usize = 300;
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

/// Indexes the text messages among `stored`; `insert` is `INSERT`, or the
/// dialect's insert-or-ignore where a message may be indexed already.
pub(super) async fn index_messages(
    tx: &mut Transaction<'static, Any>,
    stored: &[StoredMessage],
    insert: &str,
) -> RepoResult<()> {
    let rows: Vec<(String, &StoredMessage)> = stored
        .iter()
        .filter(|m| m.message_type == MessageType::Text.as_str())
        .flat_map(|m| terms_of(&m.content).into_iter().map(move |t| (t, m)))
        .collect();
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let values = vec!["(?, ?, ?)"; chunk.len()].join(", ");
        let sql = format!(
            "{insert} INTO message_terms (term, message_id, conversation_id) VALUES {values}"
        );
        let mut query = sqlx::query(&sql);
        for (term, m) in chunk {
            query = query
                .bind(term.clone())
                .bind(m.message_id)
                .bind(m.conversation_id.clone());
        }
        query.execute(&mut **tx).await.map_err(map_err)?;
    }
    Ok(())
}

/// Re-indexes a message after an edit (`Some(new text)`) or drops it from
/// the index after a recall (`None`). An edit of a message recalled
/// meanwhile indexes nothing.
pub(super) async fn reindex(
    tx: &mut Transaction<'static, Any>,
    message_id: i64,
    conversation_id: &str,
    text: Option<&str>,
) -> RepoResult<()> {
    sqlx::query("DELETE FROM message_terms WHERE message_id = ? AND conversation_id = ?")
        .bind(message_id)
        .bind(conversation_id)
        .execute(&mut **tx)
        .await
        .map_err(map_err)?;
    for term in text.map(terms_of).unwrap_or_default() {
        sqlx::query(
            "INSERT INTO message_terms (term, message_id, conversation_id) \
             SELECT ?, id, conversation_id FROM messages \
             WHERE id = ? AND conversation_id = ? AND recalled = 0",
        )
        .bind(term)
        .bind(message_id)
        .bind(conversation_id)
        .execute(&mut **tx)
        .await
        .map_err(map_err)?;
    }
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
        // One join per term, so every step is an index lookup: from the
        // caller's conversations to the first term's entries there
        // (conversation_id, term), then each further term by the primary
        // key (term, message_id). An `IN (terms) GROUP BY` form let MySQL
        // and MariaDB scan every entry of the terms in all conversations.
        let further: String = (1..terms.len())
            .map(|i| {
                format!(
                    " JOIN message_terms t{i} ON t{i}.term = ? AND t{i}.message_id = t0.message_id"
                )
            })
            .collect();
        let one = if conversation_id.is_some() {
            " AND uc.conversation_id = ?"
        } else {
            ""
        };
        // Message ids grow with time: newest first is highest id first.
        let sql = format!(
            "SELECT {SELECT_COLUMNS} FROM messages JOIN ( \
               SELECT t0.message_id FROM user_conversations uc \
               JOIN message_terms t0 ON t0.conversation_id = uc.conversation_id AND t0.term = ?{further} \
               WHERE uc.user_id = ?{one} \
               AND NOT EXISTS (SELECT 1 FROM hidden_messages h WHERE h.user_id = ? AND h.message_id = t0.message_id) \
               ORDER BY t0.message_id DESC LIMIT ?) hits ON messages.id = hits.message_id \
             WHERE messages.recalled = 0 \
             ORDER BY messages.id DESC"
        );
        let mut q = sqlx::query(&sql);
        for term in &terms {
            q = q.bind(term.clone());
        }
        q = q.bind(user_id);
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
    use super::terms_of;

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
}
