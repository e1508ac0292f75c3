-- Daily compliance per group, for the web console's chart over time.
CREATE TABLE compliance_days (
    day       date   NOT NULL,
    group_id  text   NOT NULL,
    devices   bigint NOT NULL,
    managed   bigint NOT NULL,
    compliant bigint NOT NULL,
    PRIMARY KEY (day, group_id)
);
