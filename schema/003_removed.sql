-- 003_removed.sql — a node the configuration file stops naming is kept for a while.
--
-- A config node that is no longer in the file used to be deleted from the
-- registry with its saved REQUEST/MODE/OP at once, so a mistaken edit of the
-- file (a node commented out, the wrong file given) lost what operators had
-- set. Now its row is marked with the time the file dropped it: it does not
-- run and is not listed, its saved controls stay, and when the file names it
-- again it comes back with them. Marked rows are deleted after the history
-- retention (retention_days).
--
-- Applied by store/ in one transaction, which then sets PRAGMA user_version = 3.

ALTER TABLE nodes ADD COLUMN removed REAL; -- when the file stopped naming it; NULL while it does
