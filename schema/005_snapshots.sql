-- 005_snapshots.sql — site snapshots: where every node was, to put it back.
--
-- Before maintenance an operator saves a snapshot (guardctl snapshot save
-- NAME): for every node the daemon knows (running or not) its system, whether
-- it ran and was enabled, and its REQUEST, MODE and OP; afterwards `snapshot
-- restore` writes them back through the operators' own path. Snapshots are
-- kept until deleted: retention never prunes them (they are not history, and
-- a snapshot taken before a long shutdown is needed after it).
--
-- Applied by store/ in one transaction, which then sets PRAGMA user_version = 5.

CREATE TABLE snapshots (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,          -- 1..64 of A-Z a-z 0-9 _ . - (store.h)
    time REAL NOT NULL,                 -- when it was saved
    user TEXT,                          -- who saved it (the control socket's Unix user)
    nodes INTEGER NOT NULL              -- rows in snapshot_nodes
);

CREATE TABLE snapshot_nodes (
    snapshot INTEGER NOT NULL REFERENCES snapshots (id) ON DELETE CASCADE,
    node TEXT NOT NULL,
    system TEXT NOT NULL,
    enabled INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    running INTEGER NOT NULL CHECK (running IN (0, 1)),
    request TEXT,                       -- NULL: not known (never saved)
    mode TEXT,
    op TEXT,
    PRIMARY KEY (snapshot, node)
) WITHOUT ROWID;
