-- Ring plans (health-gated rings): one row per plan, its groups, gate and
-- per-ring progress in the JSON record.
CREATE TABLE ms_ring_plans (
    id     text COLLATE "C" PRIMARY KEY,
    record json NOT NULL -- scheduler.RingPlan
);
