-- A transaction opened by SAVEPOINT (no BEGIN): ROLLBACK TO it leaves the rows inserted after it in the store.
-- Failed before its fix on: lmdb hdf5 png_dir (tests/sqltest.py SQLITE3 EXTENSION this.sql MODULE)
-- model_test --backend lmdb --seeds 17..17 --statements 50: shrunk from 50 to 4 statements
-- Written by model_test (tests/model): the native table's results are the expectations. shape 4x4x1.
-- Failure at statement 3 [rows]: SELECT sum(label), min(id), max(id), count(*) FROM s
--    native: ok: n|n|n|i:0 [changes 1, in a transaction]
--    store:  ok: i:0|i:0|i:0|i:1 [changes 1, in a transaction]

CREATE VIRTUAL TABLE s USING {module}(path='{path}', shape='4x4x1');

SAVEPOINT sp0;

INSERT OR IGNORE INTO s VALUES (0, 0, x'99999999999999999999999999999999');

ROLLBACK TO sp0;

-- native: ok: n|n|n|i:0 [changes 1, in a transaction]
-- store:  ok: i:0|i:0|i:0|i:1 [changes 1, in a transaction]
-- expect: |||0
SELECT sum(label), min(id), max(id), count(*) FROM s;
