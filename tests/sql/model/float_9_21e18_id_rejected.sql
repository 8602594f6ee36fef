-- An integral float id above 9.2e18 (9.21e18 = 9210000000000000000, exactly an int64) is stored by a native INTEGER PRIMARY KEY; the store rejects it as 'not an integer' (vtab.cpp integer_value clamps at +-9.2e18).
-- Failed before its fix on: lmdb hdf5 png_dir (tests/sqltest.py SQLITE3 EXTENSION this.sql MODULE)
-- model_test --backend lmdb --seeds 2..2 --statements 50: shrunk from 50 to 1 statements
-- Written by model_test (tests/model): the native table's results are the expectations. shape 4x4x1.
-- Failure at statement 0 [class]: INSERT OR ABORT INTO s VALUES (18, 4, zeroblob(16)), (9.21e18, 1, substr(x'CC2DBAF37ABC49033227B0F23E68CDEC51795220FC6B5CF5E4B4FD84293298B2', 6, 16)), (20, 3, zeroblob(16))
--    native: ok: (no rows) [changes 3, autocommit]
--    store:  error MISMATCH (20): table s: id 9210000000000000000.000000 is not an integer; expected an integer >= 0

CREATE VIRTUAL TABLE s USING {module}(path='{path}', shape='4x4x1');

-- native: ok: (no rows) [changes 3, autocommit]
-- store:  error MISMATCH (20): table s: id 9210000000000000000.000000 is not an integer; expected an integer >= 0
INSERT OR ABORT INTO s VALUES (18, 4, zeroblob(16)), (9.21e18, 1, substr(x'CC2DBAF37ABC49033227B0F23E68CDEC51795220FC6B5CF5E4B4FD84293298B2', 6, 16)), (20, 3, zeroblob(16));
