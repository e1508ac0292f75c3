-- Declarative status items one row each (issue 21): a status report then
-- writes only the items it changed, not the whole merged record (up to 512
-- items and 128 KiB). ddm_records.record keeps the rest, without items.
-- json, not jsonb, keeps each item's text as stored; the name is bytea
-- because a name may hold a NUL (JSON "\u0000"), which text cannot.
CREATE TABLE ddm_items (
    id    text COLLATE "C" NOT NULL REFERENCES ddm_records (id) ON DELETE CASCADE,
    name  bytea NOT NULL,
    value json NOT NULL,
    PRIMARY KEY (id, name)
);

INSERT INTO ddm_items (id, name, value)
SELECT r.id, convert_to(i.key, 'UTF8'), i.value
FROM ddm_records r, json_each(r.record -> 'status' -> 'items') i
WHERE json_typeof(r.record -> 'status' -> 'items') = 'object';

UPDATE ddm_records SET record = (record::jsonb #- '{status,items}')::json
WHERE record -> 'status' -> 'items' IS NOT NULL;
