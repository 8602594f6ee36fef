-- png_dir: a scan in ANOTHER process that is open while this process deletes rows and commits fails with
-- "'<id>.png' is missing; labels.csv lists id <id>" instead of giving the rows committed when it started (native: 299 rows).
-- Not expressible in sqltest.py (one sqlite3 process at a time): this file passes; reproduce with
--   build/tests/model/model_test --backend png_dir --extension build/imgstore.so --seeds 39..39 --avoid float_limit,null_id,savepoint_txn,huge_float
-- model_test --backend png_dir --seeds 39..39 --statements 50: shrunk from 50 to 9 statements
-- Written by model_test (tests/model): the native table's results are the expectations. shape 4x4x1.
-- Failure at statement 9 [reader_scan]: a scan of the store in another process, open across writer statements (started at the matching reader_scan start)
--    native: 299:61fd9af1ce183569
--    store:  error: table s: '/tmp/imgstore-model-3fQOVr/store_png/103.png' is missing; labels.csv lists id 103; native has 103|i:3|x:0495EC2D7F70807758DBD4FA9840E6D8, store has no such id; native has 104|i:4|x:95EC2D7F70807758DBD4FA9840E6D8D8, store has no such id; native has 105|i:5|x:EC2D7F70807758DBD4FA9840E6D8D88B, store has no such id;

CREATE VIRTUAL TABLE s USING {module}(path='{path}', shape='4x4x1');

WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i < 299) INSERT OR IGNORE INTO s SELECT CASE WHEN i = 200 THEN 100 ELSE i * 1 + 100 END, i % 10, substr(x'2AE6570495EC2D7F70807758DBD4FA9840E6D8D88B0358D393857209A225C4A5', 1 + i % 16, 16) FROM c;

BEGIN;

-- error: 
BEGIN;

DELETE FROM s WHERE 1;

-- error: 
BEGIN;

-- (model_test: another process starts a scan: start 3)

COMMIT;

BEGIN;

-- error: 
BEGIN;

