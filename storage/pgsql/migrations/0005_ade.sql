-- Automated Device Enrollment: the Macs Apple Business Manager assigned to
-- Sundial's MDM servers (one JSON record per serial) and the DEP sync cursor
-- of each server.
CREATE TABLE ade_devices (
    serial     text PRIMARY KEY,
    server     text NOT NULL,
    record     bytea NOT NULL
);

CREATE TABLE ade_cursors (
    server text PRIMARY KEY,
    cursor text NOT NULL
);

-- Sundial's MDM servers in Apple Business Manager (JSON; secrets sealed).
CREATE TABLE dep_servers (
    name   text PRIMARY KEY,
    record bytea NOT NULL
);
