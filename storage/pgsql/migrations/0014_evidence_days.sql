-- Daily compliance evidence: one row per UTC day, the fleet's and each
-- group's figures and the exceptions in force in the JSON record.
-- IF NOT EXISTS: tests that rewind the schema to an earlier version re-run it.
CREATE TABLE IF NOT EXISTS evidence_days (
    day    date PRIMARY KEY,
    record json NOT NULL -- storage.EvidenceDay
);
