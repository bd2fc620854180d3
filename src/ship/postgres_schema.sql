-- The trust's central store, owned by Lollipop: every box creates and
-- migrates it when it first ships (issue 20). Read by the trust dashboard.
-- Each statement is safe to run again; boxes of different versions may
-- share one database, so changes are only ever additions. A box runs this
-- file only when schema_version is below the version it knows
-- (SCHEMA_VERSION in postgres.rs): a change appends statements, a new
-- schema_version row, and raises that number.
--
-- Keys: box_id is a stable id generated once per box and kept in its data
-- directory; event_id is the row's id in that box's block log. A box
-- inserts with ON CONFLICT (box_id, event_id) DO NOTHING inside the
-- transaction that records its progress, so every event lands exactly once.

CREATE TABLE IF NOT EXISTS schema_version (
    version integer PRIMARY KEY,
    applied timestamptz NOT NULL DEFAULT now()
);

-- One row per box, upserted by a heartbeat each minute.
CREATE TABLE IF NOT EXISTS boxes (
    box_id text PRIMARY KEY,
    school text NOT NULL,
    last_seen timestamptz NOT NULL,
    lists_stale boolean NOT NULL DEFAULT false,
    alerts_configured boolean NOT NULL DEFAULT false,
    version text NOT NULL DEFAULT '',
    health jsonb NOT NULL DEFAULT '{}'::jsonb
);

-- Blocked lookups. count/last_at: browser retries within a few seconds are
-- one row (the box's collapse window); a row is shipped once that window
-- has closed, so count is final.
CREATE TABLE IF NOT EXISTS blocked (
    box_id text NOT NULL,
    event_id bigint NOT NULL,
    at timestamptz NOT NULL,
    client text NOT NULL,
    device text,
    owner text,
    profile text NOT NULL,
    room text,
    name text NOT NULL,
    category text,
    rule text,
    query_type text,
    list text,
    action text,
    locked boolean NOT NULL DEFAULT false,
    count integer NOT NULL DEFAULT 1,
    last_at timestamptz,
    PRIMARY KEY (box_id, event_id)
);
CREATE INDEX IF NOT EXISTS blocked_at ON blocked (at);
CREATE INDEX IF NOT EXISTS blocked_category_at ON blocked (category, at);

-- Safeguarding alerts as delivered (or failed) per channel.
CREATE TABLE IF NOT EXISTS alerts (
    box_id text NOT NULL,
    event_id bigint NOT NULL,
    at timestamptz NOT NULL,
    category text NOT NULL,
    device text NOT NULL,
    name text,
    channel text NOT NULL,
    outcome text NOT NULL DEFAULT 'sent',
    events integer NOT NULL DEFAULT 1,
    PRIMARY KEY (box_id, event_id)
);
CREATE INDEX IF NOT EXISTS alerts_at ON alerts (at);

-- Changes made by people (and the alerter's record of deliveries).
CREATE TABLE IF NOT EXISTS audit (
    box_id text NOT NULL,
    event_id bigint NOT NULL,
    at timestamptz NOT NULL,
    who text NOT NULL,
    action text NOT NULL,
    detail text NOT NULL,
    reason text,
    PRIMARY KEY (box_id, event_id)
);
CREATE INDEX IF NOT EXISTS audit_at ON audit (at);

INSERT INTO schema_version (version) VALUES (1) ON CONFLICT (version) DO NOTHING;
