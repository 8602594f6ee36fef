-- An integral float label 9.21e18 becomes the integer 9210000000000000000 in a native INTEGER column; the store rejects it (same clamp).
-- Failed before its fix on: lmdb hdf5 png_dir (tests/sqltest.py SQLITE3 EXTENSION this.sql MODULE)
-- model_test --backend lmdb --seeds 10..10 --statements 50: shrunk from 50 to 2 statements
-- Written by model_test (tests/model): the native table's results are the expectations. shape 4x4x1.
-- Failure at statement 1 [class]: UPDATE s SET label = 9.21e18 WHERE id > 0
--    native: ok: (no rows) [changes 1, autocommit]
--    store:  error MISMATCH (20): table s: label 9210000000000000000.000000 of id 37 is not an integer; expected an integer label (NOT NULL)

CREATE VIRTUAL TABLE s USING {module}(path='{path}', shape='4x4x1');

REPLACE INTO s VALUES (37, 7, x'CBBA64D897BC70E96A915E02B06D1986');

-- native: ok: (no rows) [changes 1, autocommit]
-- store:  error MISMATCH (20): table s: label 9210000000000000000.000000 of id 37 is not an integer; expected an integer label (NOT NULL)
UPDATE s SET label = 9.21e18 WHERE id > 0;
