-- 002_quarantine.sql — what the quarantine rule needs.
--
-- A node that was executing in K crashes within T starts quarantined; an
-- operator lifts that by setting nodes.quarantine_cleared, after which only
-- crashes later than it count (store_crash_count). crashes_node serves the
-- per-node counts (and the CRASHES channel) without scanning every crash.
--
-- Applied by store/ in one transaction, which then sets PRAGMA user_version = 2.

ALTER TABLE nodes ADD COLUMN quarantine_cleared REAL; -- time of the last release, NULL if never
CREATE INDEX crashes_node ON crashes (node, time);
