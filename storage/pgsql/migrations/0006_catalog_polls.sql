-- The poll state of each release feed the catalog fetches by itself:
-- its HTTP validators and when it was last checked (JSON).
CREATE TABLE catalog_polls (
    kind  text PRIMARY KEY,
    state bytea NOT NULL
);
