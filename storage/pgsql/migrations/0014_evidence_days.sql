-- Daily compliance evidence: one row per UTC day, the fleet's and each
-- group's figures and the exceptions in force in the JSON record.
CREATE TABLE evidence_days (
    day    date PRIMARY KEY,
    record json NOT NULL -- storage.EvidenceDay
);
