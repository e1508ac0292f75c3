-- 0003: the Managed OS engine: groups and membership, policies, exceptions,
-- per-device update states with their due index and history, and the
-- audit log of admin changes.
--
-- Records are kept as JSON (json, not jsonb: the text is stored as written,
-- times keep their nanoseconds) beside the columns that are searched.

CREATE TABLE ms_groups (
    id     text COLLATE "C" PRIMARY KEY,
    record json NOT NULL -- scheduler.Group
);

-- Devices outside the default group. Deleting a group returns its members
-- to the default group. Not tied to devices: a device may be assigned
-- before it enrolls.
CREATE TABLE ms_members (
    device_id text COLLATE "C" PRIMARY KEY,
    group_id  text COLLATE "C" NOT NULL REFERENCES ms_groups (id) ON DELETE CASCADE
);
CREATE INDEX ms_members_group_id ON ms_members (group_id);

-- One policy per group; the default group has no ms_groups row, so there
-- is no foreign key (DeleteGroup removes the policy).
CREATE TABLE ms_policies (
    group_id text COLLATE "C" PRIMARY KEY,
    revision bigint NOT NULL,
    record   json NOT NULL -- scheduler.PolicyRecord
);

CREATE TABLE ms_exceptions (
    scope  text COLLATE "C" NOT NULL,
    id     text COLLATE "C" NOT NULL,
    record json NOT NULL, -- scheduler.ExceptionRecord
    PRIMARY KEY (scope, id)
);

-- The scheduler's state per device. rev is the stored revision Commit
-- checks; next_due (unix nanoseconds, exactly the state's NextDue; NULL for
-- never) is the due index.
CREATE TABLE ms_states (
    device_id text COLLATE "C" PRIMARY KEY,
    rev       bigint NOT NULL,
    next_due  bigint,
    state     json NOT NULL -- scheduler.State
);
CREATE INDEX ms_states_due ON ms_states (next_due, device_id) WHERE next_due IS NOT NULL;

-- Every transition of every device, in the order written.
CREATE TABLE ms_history (
    device_id text COLLATE "C" NOT NULL,
    seq       bigserial NOT NULL,
    entry     json NOT NULL, -- scheduler.Transition
    PRIMARY KEY (device_id, seq)
);

-- Admin changes; seq is the entry's Seq.
CREATE TABLE ms_audit (
    seq   bigserial PRIMARY KEY,
    entry json NOT NULL -- scheduler.AuditEntry
);
