-- A service identity names the one service it belongs to.
ALTER TABLE accounts ADD COLUMN service TEXT;
