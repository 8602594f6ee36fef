-- WHERE id >= 9.21e18 finds nothing in the store; the native table returns the row with id 9223372036854775806 (> 9.21e18).
-- Failed before its fix on: lmdb hdf5 png_dir (tests/sqltest.py SQLITE3 EXTENSION this.sql MODULE)
-- model_test --backend lmdb --seeds 241..241 --statements 50: shrunk from 50 to 2 statements
-- Written by model_test (tests/model): the native table's results are the expectations. shape 4x4x1.
-- Failure at statement 1 [rows]: SELECT id, label, hex(pixels) FROM s WHERE id >= 9.21e18
--    native: ok: i:9223372036854775806|i:3|t:'9BE01A8F79EF6726E0520B0357EC6166' [changes 1, autocommit]
--    store:  ok: (no rows) [changes 1, autocommit]

CREATE VIRTUAL TABLE s USING {module}(path='{path}', shape='4x4x1');

INSERT INTO s VALUES (9223372036854775806, 3, substr(x'F34CB9DEE7D3C4DD5A5AC0406B177D9BE01A8F79EF6726E0520B0357EC616620', 16, 16));

-- native: ok: i:9223372036854775806|i:3|t:'9BE01A8F79EF6726E0520B0357EC6166' [changes 1, autocommit]
-- store:  ok: (no rows) [changes 1, autocommit]
-- expect: 9223372036854775806|3|9BE01A8F79EF6726E0520B0357EC6166
SELECT id, label, hex(pixels) FROM s WHERE id >= 9.21e18;
