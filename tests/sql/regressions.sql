-- Regression tests per store module ({module}), one section per defect found by review or by the
-- differential tester (tests/model/). Each section compares the store `s` with a native table `ref` holding
-- the same rows; every one of them failed on the code before its fix.

CREATE TABLE ref(id INTEGER PRIMARY KEY, label INTEGER NOT NULL, pixels BLOB);
CREATE VIRTUAL TABLE s USING {module}(path='{path}', shape='2x2x1');
INSERT INTO ref VALUES (0, 1, x'00000000'), (5, 2, x'05050505'), (9210000000000000000, 3, x'09090909'),
                       (9223372036854775807, 4, x'07070707');
INSERT INTO s SELECT * FROM ref;

-- Float bounds near 2^63 are compared exactly, as SQLite compares an integer with a REAL (they were clamped
-- at 9.2e18, and `id >= 9.21e18` found nothing).
-- expect: 2|2|1|1|3|3
SELECT (SELECT count(*) FROM s WHERE id >= 9.21e18), (SELECT count(*) FROM ref WHERE id >= 9.21e18),
       (SELECT count(*) FROM s WHERE id > 9.21e18), (SELECT count(*) FROM ref WHERE id > 9.21e18),
       (SELECT count(*) FROM s WHERE id <= 9.21e18), (SELECT count(*) FROM ref WHERE id <= 9.21e18);
-- expect: 9210000000000000000|9210000000000000000
SELECT (SELECT id FROM s WHERE id = 9.21e18), (SELECT id FROM ref WHERE id = 9.21e18);
-- expect: 4|4|0|0|2|2|0|0
SELECT (SELECT count(*) FROM s WHERE id > -0.5), (SELECT count(*) FROM ref WHERE id > -0.5),
       (SELECT count(*) FROM s WHERE id < -0.5), (SELECT count(*) FROM ref WHERE id < -0.5),
       (SELECT count(*) FROM s WHERE id < 9.21e18), (SELECT count(*) FROM ref WHERE id < 9.21e18),
       (SELECT count(*) FROM s WHERE id > 1e300), (SELECT count(*) FROM ref WHERE id > 1e300);
-- expect: 4|4|1|1
SELECT (SELECT count(*) FROM s WHERE id < 1e300), (SELECT count(*) FROM ref WHERE id < 1e300),
       (SELECT count(*) FROM s WHERE id BETWEEN 2.0 AND 5.0), (SELECT count(*) FROM ref WHERE id BETWEEN 2.0 AND 5.0);

-- A table of a persistent database whose store has gone (here: a relative path, opened from another working
-- directory) is an error naming the resolved path; it never silently creates a new, empty store.
CREATE VIRTUAL TABLE rel USING {module}(path='rel{ext}', shape='2x2x1');
INSERT INTO rel VALUES (1, 1, x'01010101');
-- shell: mkdir -p elsewhere && cd elsewhere && ! "$SQLITE3" -batch ../test.db -cmd ".load $IMGSTORE_EXTENSION" "SELECT count(*) FROM rel" >out.txt 2>&1; cat out.txt; grep -q "table rel: store 'rel.*' does not exist; the table was created over it" out.txt && grep -q "resolved against the working directory: '.*/elsewhere/rel" out.txt && test ! -e rel{ext}
-- process
-- The same database from its own directory still finds the store, with its row.
-- expect: 1
SELECT count(*) FROM rel;

-- A temp table's @name arguments take the shell's parameters (a value with a quote in it stays one value);
-- an unset parameter, or one in a stored table's arguments, is an error naming the table.
-- shell: printf '%s\n' ".load $IMGSTORE_EXTENSION" ".parameter set @p \"'it''s p{ext}'\"" "CREATE VIRTUAL TABLE temp.pt USING {module}(path=@p, shape='2x2x1');" "INSERT INTO pt VALUES (1, 1, x'01020304');" "SELECT count(*) FROM pt;" "CREATE VIRTUAL TABLE temp.qt USING {module}(path=@unset);" "CREATE VIRTUAL TABLE st USING {module}(path=@p);" > params.sql && "$SQLITE3" -batch :memory: < params.sql 2>&1; test -e "it's p{ext}" && echo 'store made'
-- shell-expect: 1\nRuntime error near line 6: table qt: argument path=@unset names a parameter that is not set; expected e.g. .parameter set @unset '...'\nRuntime error near line 7: table st: argument path=@p names a shell parameter, which only a temp table may use (a stored schema must mean the same store in every session); expected CREATE VIRTUAL TABLE temp.st or a literal value\nstore made

-- A committed id deleted, inserted again and then replaced in one transaction keeps the last pixels (png_dir
-- wrote the replacement straight over the committed file and went on reading, and committing, the re-insert).
BEGIN;
DELETE FROM s WHERE id = 5;
DELETE FROM ref WHERE id = 5;
INSERT INTO s VALUES (5, 6, x'0A0A0A0A');
INSERT INTO ref VALUES (5, 6, x'0A0A0A0A');
UPDATE s SET pixels = x'0B0B0B0B' WHERE id = 5;
UPDATE ref SET pixels = x'0B0B0B0B' WHERE id = 5;
-- expect: 6|0B0B0B0B|6|0B0B0B0B
SELECT (SELECT label FROM s WHERE id = 5), (SELECT hex(pixels) FROM s WHERE id = 5),
       (SELECT label FROM ref WHERE id = 5), (SELECT hex(pixels) FROM ref WHERE id = 5);
COMMIT;
-- expect: 6|0B0B0B0B
SELECT label, hex(pixels) FROM s WHERE id = 5;

-- A committed id deleted and inserted again twice in one transaction, then rolled back, keeps its committed
-- image (png_dir wrote the second re-insert straight over the committed file, and the rollback removed it:
-- "'5.png' is missing"). Found by the differential tester's churn of one id and its peer connection.
CREATE VIRTUAL TABLE temp.peer USING {module}(path='{path}');
BEGIN;
DELETE FROM s WHERE id = 5;
INSERT INTO s VALUES (5, 0, x'344fef71');
DELETE FROM s WHERE id = 5;
INSERT INTO s VALUES (5, 5, x'00000000');
-- Another table over the same store reads the committed image while the transaction is open.
-- expect: 6|0B0B0B0B
SELECT label, hex(pixels) FROM peer WHERE id = 5;
ROLLBACK;
-- expect: 6|0B0B0B0B|4
SELECT label, hex(pixels), (SELECT count(*) FROM s) FROM s WHERE id = 5;
-- The same by id-changing UPDATEs, rolled back to a savepoint, then committed.
BEGIN;
UPDATE s SET id = 6 WHERE id = 5;
UPDATE s SET id = 5 WHERE id = 6;
SAVEPOINT a;
DELETE FROM s WHERE id = 5;
INSERT INTO s VALUES (5, 1, x'01010101');
UPDATE s SET id = 6 WHERE id = 5;
INSERT INTO s VALUES (5, 2, x'02020202');
-- expect: 6|0B0B0B0B
SELECT label, hex(pixels) FROM peer WHERE id = 5;
ROLLBACK TO a;
COMMIT;
-- expect: 6|0B0B0B0B|0
SELECT label, hex(pixels), (SELECT count(*) FROM s WHERE id = 6) FROM s WHERE id = 5;
-- And committed: the last write wins.
BEGIN;
DELETE FROM s WHERE id = 5;
INSERT INTO s VALUES (5, 7, x'07070707');
DELETE FROM s WHERE id = 5;
INSERT INTO s VALUES (5, 8, x'08080808');
COMMIT;
-- expect: 8|08080808
SELECT label, hex(pixels) FROM peer WHERE id = 5;
-- expect: ok
SELECT imgstore_check('{module}', '{path}', 1);
