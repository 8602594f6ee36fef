-- BEGIN, then SAVEPOINT before the table's first write in the transaction, inserts, ROLLBACK TO: the rows stay in the store.
-- Failed before its fix on: lmdb hdf5 png_dir (tests/sqltest.py SQLITE3 EXTENSION this.sql MODULE)
-- model_test --backend hdf5 --seeds 296..296 --statements 50: shrunk from 50 to 5 statements
-- Written by model_test (tests/model): the native table's results are the expectations. shape 4x4x1.
-- Failure at statement 4 [rows]: SELECT count(*) FROM s WHERE label = 1
--    native: ok: i:0 [changes 382, in a transaction]
--    store:  ok: i:39 [changes 382, in a transaction]

CREATE VIRTUAL TABLE s USING {module}(path='{path}', shape='4x4x1');

BEGIN;

SAVEPOINT sp0;

WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i < 381) INSERT INTO s SELECT i * 2 + 41, i % 10, substr(x'76AAE069D0E7A313EE5876BBCAAA48CA34BEF747737B5538F3330AFF1834568B', 1 + i % 16, 16) FROM c;

ROLLBACK TO sp0;

-- native: ok: i:0 [changes 382, in a transaction]
-- store:  ok: i:39 [changes 382, in a transaction]
-- expect: 0
SELECT count(*) FROM s WHERE label = 1;
