-- The ledger of webhook events emitted once (a release the catalog learned,
-- an exception about to expire), kept until keep_until.
CREATE TABLE IF NOT EXISTS webhook_once (
    event_id   text        PRIMARY KEY,
    keep_until timestamptz NOT NULL
);
