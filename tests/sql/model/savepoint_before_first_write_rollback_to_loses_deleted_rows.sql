-- As savepoint_before_first_write_rollback_to_keeps_rows, with a DELETE: ROLLBACK TO does not bring the deleted committed row back.
-- Failed before its fix on: lmdb hdf5 png_dir (tests/sqltest.py SQLITE3 EXTENSION this.sql MODULE)
-- model_test --backend lmdb --seeds 310..310 --statements 50: shrunk from 50 to 6 statements
-- Written by model_test (tests/model): the native table's results are the expectations. shape 4x4x1.
-- Failure at statement 5 [digest]: checkpoint
--    native: 1:08b4ab886181df7a
--    store:  0:cbf29ce484222325; native has 22|i:2|x:BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB, store has no such id;

CREATE VIRTUAL TABLE s USING {module}(path='{path}', shape='4x4x1');

INSERT INTO s VALUES (22, 2, x'BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB');

BEGIN;

SAVEPOINT sp0;

DELETE FROM s WHERE id > '5';

ROLLBACK TO sp0;

-- checkpoint, the whole table: native 1:22,2,BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB
--   store gives: 0:
-- expect: 1:22,2,BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB
SELECT count(*) || ':' || ifnull(group_concat(id || ',' || label || ',' || hex(pixels), ' '), '') FROM (SELECT * FROM s ORDER BY id);
