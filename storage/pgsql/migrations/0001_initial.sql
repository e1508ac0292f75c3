-- 0001: devices, the command queue, admin API keys and SCEP challenges.
--
-- Identifiers use the "C" collation so that ORDER BY id is byte order, the
-- order the bbolt backend lists devices in. A NULL timestamp is Go's zero
-- time.

CREATE TABLE devices (
    id                     text COLLATE "C" PRIMARY KEY,
    parent_id              text COLLATE "C" NOT NULL DEFAULT '', -- device enrollment of a user channel
    udid                   text NOT NULL DEFAULT '',
    topic                  text NOT NULL DEFAULT '',
    serial_number          text NOT NULL DEFAULT '',
    product_name           text NOT NULL DEFAULT '',
    model                  text NOT NULL DEFAULT '',
    model_name             text NOT NULL DEFAULT '',
    device_name            text NOT NULL DEFAULT '',
    os_version             text NOT NULL DEFAULT '',
    build_version          text NOT NULL DEFAULT '',
    enabled                boolean NOT NULL DEFAULT false,
    cert_hash              text, -- the identity certificate bound at Authenticate
    authenticated_at       timestamptz,
    enrolled_at            timestamptz,
    checked_out_at         timestamptz,
    last_seen              timestamptz,
    push_token             bytea,
    push_magic             text NOT NULL DEFAULT '',
    token_invalid          boolean NOT NULL DEFAULT false,
    bootstrap_token        bytea, -- sealed
    bootstrap_at           timestamptz,
    push_at                timestamptz,
    push_outcome           text NOT NULL DEFAULT '',
    push_reason            text NOT NULL DEFAULT '',
    push_attempt           integer NOT NULL DEFAULT 0,
    next_repush            timestamptz,
    inventory              jsonb NOT NULL DEFAULT '{}',
    inventory_at           timestamptz,
    inventory_requested_at timestamptz
);

-- A certificate is bound to one enrollment at most.
CREATE UNIQUE INDEX devices_cert_hash_key ON devices (cert_hash);
CREATE INDEX devices_parent_id ON devices (parent_id) WHERE parent_id <> '';
-- The re-push due index.
CREATE INDEX devices_next_repush ON devices (next_repush) WHERE next_repush IS NOT NULL;
-- Devices whose inventory is due, oldest request first.
CREATE INDEX devices_inventory_due ON devices (inventory_requested_at NULLS FIRST, id)
    WHERE enabled AND parent_id = '';

-- Every command ever queued, with its status and history. seq is the FIFO
-- order.
CREATE TABLE commands (
    seq           bigserial PRIMARY KEY,
    enrollment_id text COLLATE "C" NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    uuid          text NOT NULL,
    request_type  text NOT NULL,
    raw           bytea NOT NULL, -- the command plist as sent
    status        text NOT NULL,
    queued_at     timestamptz,
    updated_at    timestamptz,
    not_now_count integer NOT NULL DEFAULT 0,
    error_chain   jsonb,
    result        bytea, -- the body of the final report
    history       jsonb NOT NULL DEFAULT '[]',
    CONSTRAINT commands_enrollment_uuid_key UNIQUE (enrollment_id, uuid)
);
CREATE INDEX commands_enrollment_seq ON commands (enrollment_id, seq);

-- The pending commands. A row leaves when the device reports a final status
-- or re-enrolls; not_now marks a NotNow answered in the current session.
-- Connects lock the rows they work on (SKIP LOCKED when looking for the
-- next command).
CREATE TABLE command_queue (
    enrollment_id text COLLATE "C" NOT NULL,
    seq           bigint NOT NULL REFERENCES commands (seq) ON DELETE CASCADE,
    not_now       boolean NOT NULL DEFAULT false,
    PRIMARY KEY (enrollment_id, seq)
);
CREATE INDEX command_queue_seq ON command_queue (seq);

CREATE TABLE api_keys (
    id         text COLLATE "C" PRIMARY KEY,
    name       text NOT NULL DEFAULT '',
    hash       text NOT NULL,
    created_at timestamptz,
    revoked_at timestamptz,
    CONSTRAINT api_keys_hash_key UNIQUE (hash)
);

-- One-time SCEP challenges, by hash.
CREATE TABLE challenges (
    key        text PRIMARY KEY,
    expires_at timestamptz NOT NULL
);
CREATE INDEX challenges_expires_at ON challenges (expires_at);
