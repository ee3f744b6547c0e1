-- 001_initial.sql — guardiand's first schema: the node registry, each node's
-- saved controls, history, boots and crashes.
--
-- Words used here:
--   time      REAL seconds since 1970-01-01 00:00:00 UTC (the wall clock).
--   node      a node name (1..63 characters of A-Z a-z 0-9 _).
--   state     a state name of the node's system.
--
-- History (transitions, faults, audit, crashes) refers to nodes by name, as
-- text, with no foreign key: deleting a node from the registry must never
-- delete the evidence of what it did. transitions, faults and audit are
-- pruned by the retention setting (by time); crashes are never pruned.
--
-- Applied by store/ in one transaction, which then sets PRAGMA user_version = 1.

-- "GRDD": marks the file as guardiand's, so that another program's SQLite
-- database given by mistake is refused rather than written into.
PRAGMA application_id = 1196573764;

-- The node registry: which nodes run, with which system and arguments.
-- Seeded from the configuration file; the rule that decides between the file
-- and runtime changes is in store/store.h (store_seed).
CREATE TABLE nodes (
    name TEXT PRIMARY KEY NOT NULL,
    system TEXT NOT NULL,
    args TEXT NOT NULL DEFAULT '',      -- "key=value" lines, sorted by key
    enabled INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    origin TEXT NOT NULL CHECK (origin IN ('config', 'runtime')),
    config_digest TEXT,                 -- config nodes: system and args as the file last gave them
    destroyed INTEGER NOT NULL DEFAULT 0 CHECK (destroyed IN (0, 1)),
    created REAL NOT NULL,
    updated REAL NOT NULL
);

-- What an operator set, and where the node was: restored at start (the node
-- starts in INIT and heads for the saved REQUEST). One row per registered node;
-- it goes with the node's registry row.
CREATE TABLE node_state (
    name TEXT PRIMARY KEY NOT NULL REFERENCES nodes (name) ON DELETE CASCADE,
    request TEXT,
    mode TEXT,                          -- AUTO, MANAGED, MANUAL
    op TEXT,                            -- STOP, PAUSE, EXEC
    state TEXT,                         -- the last state the node was in
    updated REAL NOT NULL,
    last_transition INTEGER             -- transitions.id of its newest transition (transitions_chain)
);

-- State transitions: how a node came from one state to the next. The busiest
-- table (every node, every state change), so it is append-only: its rowid and
-- the time index only ever grow at their ends. An index on (node, time) would
-- put each insert on a different page (hundreds of nodes interleave) and
-- multiply the WAL written per flush about tenfold; instead each row points
-- to the node's previous one (prev_id), and node_state.last_transition to the
-- newest, so a node's history is read newest first by following the chain.
-- Pruning cuts the chain's old end; history of a node that has left the
-- registry is found through the time index.
CREATE TABLE transitions (
    id INTEGER PRIMARY KEY,
    node TEXT NOT NULL,
    time REAL NOT NULL,
    from_state TEXT,                    -- NULL when the node started
    to_state TEXT NOT NULL,
    request TEXT,
    how TEXT NOT NULL CHECK (how IN ('init', 'edge', 'jump', 'redirect')),
    prev_id INTEGER                     -- the node's previous transition, NULL for its first
);
CREATE INDEX transitions_time ON transitions (time);
CREATE TRIGGER transitions_chain AFTER INSERT ON transitions BEGIN
    UPDATE node_state SET last_transition = new.id WHERE name = new.node;
END;

-- One row per start of guardiand. ended and clean stay NULL while it runs; a
-- start that finds an earlier row still open marks it clean = 0 (it died).
-- last_seen is refreshed by the flushes: roughly when an unclean boot died.
CREATE TABLE boots (
    id INTEGER PRIMARY KEY,
    started REAL NOT NULL,
    ended REAL,
    clean INTEGER CHECK (clean IN (0, 1)),
    last_seen REAL,
    version TEXT NOT NULL,
    pid INTEGER NOT NULL
);

-- Crashes imported from the crash journal. Never pruned. boot_id is the boot
-- that crashed, as its journal said (no foreign key: the journal is outside
-- input); (boot_id, seq) makes the import idempotent.
CREATE TABLE crashes (
    id INTEGER PRIMARY KEY,
    boot_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    time REAL NOT NULL,
    signal INTEGER,
    code INTEGER,
    addr TEXT,                          -- fault address, "0x..." as the handler wrote it
    node TEXT,                          -- the node executing, NULL if none
    state TEXT,
    phase TEXT,                         -- e.g. main, run, check
    uptime REAL,                        -- seconds since that boot started
    since_prev_crash REAL,              -- seconds since the crash before it, NULL for the first
    backtrace TEXT NOT NULL DEFAULT '',
    complete INTEGER NOT NULL DEFAULT 1 CHECK (complete IN (0, 1)), -- 0: the record had no END
    imported REAL NOT NULL,
    UNIQUE (boot_id, seq)
);
CREATE INDEX crashes_time ON crashes (time);

-- Node faults: state-code errors, connection errors.
CREATE TABLE faults (
    id INTEGER PRIMARY KEY,
    time REAL NOT NULL,
    node TEXT NOT NULL,
    state TEXT,
    kind TEXT NOT NULL,                 -- e.g. error, connect
    message TEXT NOT NULL DEFAULT ''
);
CREATE INDEX faults_time ON faults (time);
CREATE INDEX faults_node ON faults (node, time);

-- Writes to node channels from CA clients, accepted or refused.
CREATE TABLE audit (
    id INTEGER PRIMARY KEY,
    time REAL NOT NULL,
    node TEXT NOT NULL,
    channel TEXT NOT NULL,
    old_value TEXT,
    new_value TEXT,
    host TEXT,
    user TEXT,
    accepted INTEGER NOT NULL CHECK (accepted IN (0, 1))
);
CREATE INDEX audit_time ON audit (time);
CREATE INDEX audit_node ON audit (node, channel, time);
