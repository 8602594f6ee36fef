-- lmdb: after these commits (the file grown by bulk inserts, then every row deleted) a new process cannot open the
-- store: SQLITE_CORRUPT 'is not a usable LMDB file: it is 61440 bytes but its meta page says it has 22 pages of 4096
-- (truncated)'. Found by model_test's reader process (--seeds 2..2 --avoid float_limit,null_id,savepoint_txn,huge_float).
-- Failed before its fix on: lmdb (tests/sqltest.py SQLITE3 EXTENSION this.sql lmdb)
-- model_test --backend lmdb --seeds 2..2 --statements 50: shrunk from 50 to 11 statements
-- Written by model_test (tests/model): the native table's results are the expectations. shape 4x4x1.
-- Failure at statement 10 [reader]: another process starts a scan of the store
--    native: ok
--    store:  err	error (11): table s: '/tmp/imgstore-model-bbteR7/store.lmdb' is not a usable LMDB file: it is 61440 bytes but its meta page says it has 22 pages of 4096 (truncated)

CREATE VIRTUAL TABLE s USING {module}(path='{path}', shape='4x4x1');

BEGIN;

INSERT INTO s VALUES (2, 9, substr(x'20367F976CBD02EA565C658825BD34E3952C170024E63395E87F22AE5C27AFB1', 4, 16));

COMMIT;

INSERT OR ABORT INTO s VALUES (18, 4, zeroblob(16)), (9.0e18, 1, substr(x'35CC2DBAF37ABC49033227B0F23E68CDEC51795220FC6B5CF5E4B4FD84293298', 3, 16)), (20, 3, zeroblob(16));

BEGIN;

WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i < 303) INSERT OR IGNORE INTO s SELECT i * 2 + 9223372036854770000, i % 10, substr(x'12229BDFC04ED3BB88D5F0E93CB09BBB238EC1A7155BD80EA7418364DAA77912', 1 + i % 16, 16) FROM c;

WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i < 318) INSERT INTO s SELECT i * 2 + 100000, i % 10, substr(x'E50A4A2F3526C0406FF1680C68B093B54ACFBB1E56E194E072F286EFFA4C3338', 1 + i % 16, 16) FROM c;

DELETE FROM s WHERE length(pixels) = 16;

COMMIT;

-- A new sqlite3 process opens the store (model_test's reader process opened it while the writer was still
-- open, inside BEGIN IMMEDIATE, and got SQLITE_CORRUPT: "is not a usable LMDB file: it is 61440 bytes but its
-- meta page says it has 22 pages of 4096 (truncated)").
-- process
-- expect: 0
SELECT count(*) FROM s;
