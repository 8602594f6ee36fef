-- INSERT with a NULL id into an empty table: native rowid 1, the store picks 0 (docs/sql.md: max(id)+1; undefined for no rows). Decide whether this is intended.
-- Failed before its fix on: lmdb hdf5 png_dir (tests/sqltest.py SQLITE3 EXTENSION this.sql MODULE)
-- model_test --backend lmdb --seeds 19..19 --statements 50: shrunk from 50 to 2 statements
-- Written by model_test (tests/model): the native table's results are the expectations. shape 4x4x1.
-- Failure at statement 1 [rows]: SELECT id, hex(pixels) FROM s ORDER BY id DESC LIMIT 3 OFFSET 0
--    native: ok: i:1|t:'A50F4ABE6A6925D20717F8CBE2353BE4' [changes 1, autocommit]
--    store:  ok: i:0|t:'A50F4ABE6A6925D20717F8CBE2353BE4' [changes 1, autocommit]

CREATE VIRTUAL TABLE s USING {module}(path='{path}', shape='4x4x1');

INSERT INTO s(label, pixels) VALUES (2, substr(x'747CFC6FBA7377A50F4ABE6A6925D20717F8CBE2353BE46A5BDD0CD28E004527', 8, 16));

-- native: ok: i:1|t:'A50F4ABE6A6925D20717F8CBE2353BE4' [changes 1, autocommit]
-- store:  ok: i:0|t:'A50F4ABE6A6925D20717F8CBE2353BE4' [changes 1, autocommit]
-- expect: 1|A50F4ABE6A6925D20717F8CBE2353BE4
SELECT id, hex(pixels) FROM s ORDER BY id DESC LIMIT 3 OFFSET 0;
