-- Each record's size in bytes (table, key and value, as the writer counted them) and,
-- for the write that last replaced it, the size it replaced: an upsert returns that,
-- so a namespace's total is kept exactly without reading the old record first. Rows
-- written before this are counted in characters, close enough to start from.
ALTER TABLE kv_records ADD COLUMN size BIGINT NOT NULL DEFAULT 0;
ALTER TABLE kv_records ADD COLUMN replaced_size BIGINT NOT NULL DEFAULT 0;
UPDATE kv_records SET size = LENGTH(tbl) + LENGTH(name) + LENGTH(value);
