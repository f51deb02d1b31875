-- Search moves onto FTS5; mirrors migrations/mysql. The table keeps only
-- the index (content=''), keyed by message id (rowid); deletes are allowed
-- (contentless_delete, SQLite 3.43). The repo cuts the terms, so the
-- `ascii` tokenizer only splits them on the spaces between.
DROP TABLE message_terms;
CREATE VIRTUAL TABLE message_search USING fts5(terms, content='', contentless_delete=1, tokenize='ascii');
UPDATE search_backfill SET next_below = COALESCE((SELECT MAX(id) + 1 FROM messages), 0) WHERE id = 1;
