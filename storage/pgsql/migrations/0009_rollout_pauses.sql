-- Rollout pauses (the kill switch): one per group, '' for the whole fleet.
-- No foreign key: the default group and the fleet have no ms_groups row.
CREATE TABLE ms_pauses (
    group_id text COLLATE "C" PRIMARY KEY,
    record   json NOT NULL -- scheduler.Pause
);
