-- A command queued for several Macs in one statement (an admin's bulk
-- enqueue) keeps one copy of its body here, and each of its commands rows
-- refers to it instead of holding raw.
CREATE TABLE IF NOT EXISTS command_bodies (
    id  bigserial PRIMARY KEY,
    raw bytea NOT NULL
);
ALTER TABLE commands ALTER COLUMN raw DROP NOT NULL;
ALTER TABLE commands ADD COLUMN IF NOT EXISTS body_id bigint REFERENCES command_bodies (id);
ALTER TABLE commands DROP CONSTRAINT IF EXISTS commands_raw_or_body;
ALTER TABLE commands ADD CONSTRAINT commands_raw_or_body CHECK ((raw IS NULL) <> (body_id IS NULL));
CREATE INDEX IF NOT EXISTS commands_body_id ON commands (body_id) WHERE body_id IS NOT NULL;
