-- As rollback_to_in_savepoint_opened_transaction_keeps_rows, with committed rows already in the store.
-- Failed before its fix on: lmdb hdf5 png_dir (tests/sqltest.py SQLITE3 EXTENSION this.sql MODULE)
-- model_test --backend lmdb --seeds 18..18 --statements 50: shrunk from 50 to 5 statements
-- Written by model_test (tests/model): the native table's results are the expectations. shape 4x4x1.
-- Failure at statement 4 [rows]: SELECT id, hex(pixels) FROM s ORDER BY id DESC LIMIT 1 OFFSET 1
--    native: ok: i:13|t:'A4122529E6D43B89DB3D66A3FFD68D83' [changes 1, in a transaction]
--    store:  ok: i:36|t:'99999999999999999999999999999999' [changes 1, in a transaction]

CREATE VIRTUAL TABLE s USING {module}(path='{path}', shape='4x4x1');

INSERT INTO s VALUES (36, 0, x'99999999999999999999999999999999'), (13, 0, substr(x'6D5A87117D888233BBA4122529E6D43B89DB3D66A3FFD68D83B9ED6E709BDE63', 10, 16)), (4, 0, x'99999999999999999999999999999999');

SAVEPOINT sp3;

INSERT INTO s VALUES (39, 2, x'DDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDD');

ROLLBACK TO sp3;

-- native: ok: i:13|t:'A4122529E6D43B89DB3D66A3FFD68D83' [changes 1, in a transaction]
-- store:  ok: i:36|t:'99999999999999999999999999999999' [changes 1, in a transaction]
-- expect: 13|A4122529E6D43B89DB3D66A3FFD68D83
SELECT id, hex(pixels) FROM s ORDER BY id DESC LIMIT 1 OFFSET 1;
