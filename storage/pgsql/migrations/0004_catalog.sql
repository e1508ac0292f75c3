-- Release feeds an admin synced (raw, re-parsed at start) and releases added by hand.
CREATE TABLE catalog_feeds (
    kind       text PRIMARY KEY,
    body       bytea NOT NULL,
    updated_at timestamptz NOT NULL
);

CREATE TABLE catalog_manual (
    version text PRIMARY KEY,
    release bytea NOT NULL
);
