-- Declarative status items one row each (issue 21): a status report then
-- writes only the items it changed, not the whole merged record (up to 512
-- items and 128 KiB). json, not jsonb, keeps each item's text as stored;
-- the name is bytea because a name may hold a NUL (JSON "\u0000"), which
-- text cannot.
CREATE TABLE ddm_items (
    id    text COLLATE "C" NOT NULL REFERENCES ddm_records (id) ON DELETE CASCADE,
    name  bytea NOT NULL,
    value json NOT NULL,
    PRIMARY KEY (id, name)
);

-- Copy the items of existing records. The record keeps its copy until its
-- next update rewrites it without items (reads let the rows win), so no
-- record is cast to jsonb, which refuses some JSON a device may send. A
-- record whose text holds a \u0000 escape (a name json_each cannot turn
-- into text) is left whole: its items move at its next update.
-- (MATERIALIZED: the filter runs before json_each sees any record.)
WITH movable AS MATERIALIZED (
    SELECT id, record -> 'status' -> 'items' AS items FROM ddm_records
    WHERE strpos(record::text, '\u0000') = 0
      AND json_typeof(record -> 'status' -> 'items') = 'object'
)
INSERT INTO ddm_items (id, name, value)
SELECT m.id, convert_to(i.key, 'UTF8'), i.value
FROM movable m, json_each(m.items) i;
