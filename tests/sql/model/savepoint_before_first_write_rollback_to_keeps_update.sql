-- As savepoint_before_first_write_rollback_to_keeps_rows, with an UPDATE of label: ROLLBACK TO does not restore the old label.
-- Failed before its fix on: lmdb hdf5 png_dir (tests/sqltest.py SQLITE3 EXTENSION this.sql MODULE)
-- model_test --backend lmdb --seeds 159..159 --statements 50: shrunk from 50 to 6 statements
-- Written by model_test (tests/model): the native table's results are the expectations. shape 4x4x1.
-- Failure at statement 5 [digest]: checkpoint
--    native: 2:86d05f6d7c09a5e0
--    store:  2:4d3881103a8f9e2c; native has 11|i:6|x:DDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDD, store has 11|i:2|x:DDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDD;

CREATE VIRTUAL TABLE s USING {module}(path='{path}', shape='4x4x1');

INSERT OR ABORT INTO s VALUES (27, 2, x'CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC'), (11, 6, x'DDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDD');

BEGIN;

SAVEPOINT sp0;

UPDATE s SET label = 2.0 WHERE id < 17;

ROLLBACK TO sp0;

-- checkpoint, the whole table: native 2:11,6,DDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDD 27,2,CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC
--   store gives: 2:11,2,DDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDD 27,2,CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC
-- expect: 2:11,6,DDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDD 27,2,CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC
SELECT count(*) || ':' || ifnull(group_concat(id || ',' || label || ',' || hex(pixels), ' '), '') FROM (SELECT * FROM s ORDER BY id);
