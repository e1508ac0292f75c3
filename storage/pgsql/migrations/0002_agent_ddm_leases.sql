-- 0002: the companion agent, declarative management state and leases.

-- One row per device whose agent has a secret. event_seq counts the agent
-- events ever appended; agent_events keeps the newest MaxAgentEvents.
CREATE TABLE agents (
    id             text COLLATE "C" PRIMARY KEY REFERENCES devices (id) ON DELETE CASCADE,
    secret_hash    text NOT NULL,
    secret_set_at  timestamptz,
    time_zone      text NOT NULL DEFAULT '',
    last_report_at timestamptz,
    event_seq      bigint NOT NULL DEFAULT 0
);

CREATE TABLE agent_events (
    id    text COLLATE "C" NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    seq   bigint NOT NULL,
    event jsonb NOT NULL,
    PRIMARY KEY (id, seq)
);

-- The declarative state per enrollment (ddm.Record as JSON; json, not
-- jsonb, keeps the device's raw status items byte for byte). A row without
-- a record (NULL) is one being created by an update in progress. due_at is
-- the deadline of an unconfirmed enforcement, NULL otherwise. hist_seq
-- counts the status events ever appended; ddm_history keeps the newest
-- ddm.HistoryLimit. Not tied to devices: the declarative store is keyed by
-- enrollment ID alone.
CREATE TABLE ddm_records (
    id       text COLLATE "C" PRIMARY KEY,
    record   json,
    due_at   timestamptz,
    hist_seq bigint NOT NULL DEFAULT 0
);
CREATE INDEX ddm_records_due ON ddm_records (due_at, id) WHERE due_at IS NOT NULL;

CREATE TABLE ddm_history (
    id    text COLLATE "C" NOT NULL REFERENCES ddm_records (id) ON DELETE CASCADE,
    seq   bigint NOT NULL,
    event json NOT NULL,
    PRIMARY KEY (id, seq)
);

-- Named leases (the scheduler leader): a row with a holder and an expiry,
-- judged by the callers' clocks.
CREATE TABLE leases (
    name       text PRIMARY KEY,
    holder     text NOT NULL,
    expires_at timestamptz NOT NULL
);
