-- 004_node_log.sql — node log lines, so that `guardctl log` reaches past the
-- in-memory ring (its last 128 lines) and across restarts of the daemon.
--
-- One row per line, the line as the node's log made it (stamp, node name,
-- message: node/log.c), so that what is read back is byte for byte what the
-- ring and stdout showed; time is that stamp as a number, for --since and for
-- pruning. Pruned by log_retention_days (by time), separately from the other
-- history: there are many more log lines than transitions.
--
-- Like transitions (001_initial.sql), the table is append-only and has no
-- index on (node, ...): with hundreds of nodes interleaving, each insert
-- would land on a different page of such an index. Each row points to the
-- node's previous line (prev_id) and node_log_heads to its newest, so the last
-- N lines of a node, or its lines since T, are read newest first along the
-- chain in O(lines read), and a flush touches the table's end and a few pages
-- of node_log_heads. The heads are not tied to the registry: the log of a
-- stopped, removed or destroyed node stays readable until it is pruned.
-- There is no time index either: rows are appended in time order (the wall
-- clock's), so pruning deletes from the low end of the rowid.
--
-- Applied by store/ in one transaction, which then sets PRAGMA user_version = 4.

CREATE TABLE node_log (
    id INTEGER PRIMARY KEY,
    node TEXT NOT NULL,
    time REAL NOT NULL,
    line TEXT NOT NULL,
    prev_id INTEGER                     -- the node's previous line, NULL for its first
);

-- A node's newest line; a node whose lines have all been pruned has no row.
-- Written by store/ once per node per flush (not by a trigger per line: a
-- busy site writes thousands of lines a second).
CREATE TABLE node_log_heads (
    node TEXT PRIMARY KEY NOT NULL,
    last_id INTEGER NOT NULL
) WITHOUT ROWID;
