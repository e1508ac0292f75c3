-- The webhook outbox: one row per (event, endpoint) until delivered or pruned.
CREATE TABLE webhook_outbox (
    event_id   text        NOT NULL,
    endpoint   text        NOT NULL,
    type       text        NOT NULL,
    created    timestamptz NOT NULL,
    body       text        NOT NULL,
    attempts   integer     NOT NULL DEFAULT 0,
    next_at    timestamptz NOT NULL,
    last_error text        NOT NULL DEFAULT '',
    PRIMARY KEY (event_id, endpoint)
);
CREATE INDEX webhook_outbox_next ON webhook_outbox (next_at, event_id);
CREATE INDEX webhook_outbox_endpoint ON webhook_outbox (endpoint, created);

-- The endpoints; secret is sealed by the server before it is stored.
CREATE TABLE webhook_endpoints (
    id      text        PRIMARY KEY,
    url     text        NOT NULL,
    events  text[]      NOT NULL DEFAULT '{}',
    secret  bytea       NOT NULL,
    created timestamptz NOT NULL
);
