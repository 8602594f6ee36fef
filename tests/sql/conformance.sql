-- The backend conformance suite: one script, run once per module ({module}) by ctest. Every store module
-- must pass it unchanged. A native SQLite table `ref` holds the same rows and is the oracle.

CREATE TABLE ref(id INTEGER PRIMARY KEY, label INTEGER NOT NULL, pixels BLOB NOT NULL);
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 9999)
INSERT INTO ref SELECT i * 3, abs(random()) % 10, randomblob(3072) FROM n;
CREATE VIRTUAL TABLE s USING {module}(path='{path}', shape='32x32x3');

-- 10,000 random images round-trip byte-exact.
INSERT INTO s SELECT * FROM ref;
-- expect: 10000
SELECT count(*) FROM s;
-- expect: 10000
SELECT count(*) FROM ref CROSS JOIN s ON s.id = ref.id WHERE s.label = ref.label AND s.pixels = ref.pixels;
-- expect: 10000
SELECT count(*) FROM s CROSS JOIN ref ON ref.id = s.id WHERE s.label = ref.label AND s.pixels = ref.pixels;
-- expect: 1
SELECT (SELECT group_concat(id) FROM s) = (SELECT group_concat(id) FROM ref);

-- process
-- The same again in a new sqlite3 process, after closing: the table is in test.db's schema.
-- expect: 10000
SELECT count(*) FROM s CROSS JOIN ref ON ref.id = s.id WHERE s.label = ref.label AND s.pixels = ref.pixels;
-- Every image is 32 x 32 x 3 bytes long.
-- expect: 10000|3072|3072
SELECT count(*), min(length(pixels)), max(length(pixels)) FROM s;

-- Point reads, IN lists, ranges, a missing id, order.
-- expect: 1
SELECT (SELECT pixels FROM s WHERE id = 2997) = (SELECT pixels FROM ref WHERE id = 2997);
-- expect: (none)
SELECT id FROM s WHERE id = 2998;
-- expect: (none)
SELECT id FROM s WHERE id = -3;
-- expect: 0,3,29997
SELECT group_concat(id) FROM (SELECT id FROM s WHERE id IN (29997, 3, 0, 1, 3, 'x', 40000, -1) ORDER BY id);
-- expect: 3
SELECT id FROM s WHERE id IN ('3', 3.0, 3.5);
-- expect: 1
SELECT (SELECT group_concat(id || ':' || label) FROM s WHERE id BETWEEN 100 AND 200)
     = (SELECT group_concat(id || ':' || label) FROM ref WHERE id BETWEEN 100 AND 200);
-- expect: 1
SELECT (SELECT group_concat(id) FROM s WHERE id > 29990) = (SELECT group_concat(id) FROM ref WHERE id > 29990);
-- expect: 1
SELECT (SELECT group_concat(id) FROM s WHERE id < 10.5 AND id >= 2.5) = '3,6,9';
-- expect: 1
SELECT (SELECT count(*) FROM s WHERE id > 'text') = 0 AND (SELECT count(*) FROM s WHERE id < 'text') = 10000;
-- expect: 1
SELECT (SELECT count(*) FROM s WHERE id > 9223372036854775807) = 0 AND (SELECT count(*) FROM s WHERE id < NULL) = 0;
-- expect: 1
SELECT (SELECT group_concat(id) FROM (SELECT id FROM s ORDER BY id DESC))
     = (SELECT group_concat(id) FROM (SELECT id FROM ref ORDER BY id DESC));
-- expect: 1
SELECT (SELECT group_concat(id) FROM (SELECT id FROM s WHERE id < 100 ORDER BY id))
     = (SELECT group_concat(id) FROM (SELECT id FROM ref WHERE id < 100 ORDER BY id));
-- expect: 1
SELECT (SELECT group_concat(label || ':' || n) FROM (SELECT label, count(*) AS n FROM s GROUP BY label))
     = (SELECT group_concat(label || ':' || n) FROM (SELECT label, count(*) AS n FROM ref GROUP BY label));
-- expect: 1
SELECT (SELECT count(*) FROM s WHERE label = 3) = (SELECT count(*) FROM ref WHERE label = 3);
-- The plans, as SQLite reports them: idxNum says what xFilter receives (1 a point lookup, 2 an IN list all at
-- once, 4|8|16|32 a range, 0 a full scan) and idxStr names it in the words of SQLite's own plans. ORDER BY id
-- needs no sort, ORDER BY id DESC does.
-- expect: QUERY PLAN
-- expect: `--SCAN s VIRTUAL TABLE INDEX 1:id=?
EXPLAIN QUERY PLAN SELECT * FROM s WHERE id = 5;
-- expect: QUERY PLAN
-- expect: `--SCAN s VIRTUAL TABLE INDEX 2:id IN (...)
EXPLAIN QUERY PLAN SELECT * FROM s WHERE id IN (1, 2, 3);
-- expect: QUERY PLAN
-- expect: `--SCAN s VIRTUAL TABLE INDEX 60:id>? AND id<?
EXPLAIN QUERY PLAN SELECT * FROM s WHERE id > 5 AND id < 9;
-- expect: QUERY PLAN
-- expect: `--SCAN s VIRTUAL TABLE INDEX 20:id>=? AND id<=?
EXPLAIN QUERY PLAN SELECT * FROM s WHERE id BETWEEN 5 AND 9;
-- expect: QUERY PLAN
-- expect: `--SCAN s VIRTUAL TABLE INDEX 16:id<=? ORDER BY id
EXPLAIN QUERY PLAN SELECT * FROM s WHERE id <= 9 ORDER BY id;
-- expect: QUERY PLAN
-- expect: `--SCAN s VIRTUAL TABLE INDEX 0:ORDER BY id
EXPLAIN QUERY PLAN SELECT * FROM s ORDER BY id;
-- expect: QUERY PLAN
-- expect: |--SCAN s VIRTUAL TABLE INDEX 0:
-- expect: `--USE TEMP B-TREE FOR ORDER BY
EXPLAIN QUERY PLAN SELECT * FROM s ORDER BY id DESC;
-- expect: QUERY PLAN
-- expect: `--SCAN s VIRTUAL TABLE INDEX 0:
EXPLAIN QUERY PLAN SELECT * FROM s WHERE label = 3;

-- Joins with a native table that has no statistics (SQLite guesses 1,048,576 rows for it): against a store of
-- 49 MB of pixels the native table goes outside and each of its ids is looked up in the store, however the
-- join is written; the IN subquery's ids are handed over at once.
CREATE VIRTUAL TABLE big USING {module}(path='big{ext}', shape='128x128x3');
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000)
INSERT INTO big SELECT i, i % 10, zeroblob(49152) FROM n;
CREATE TABLE picked(id INTEGER PRIMARY KEY);
INSERT INTO picked VALUES (5), (500), (999), (4000);
-- expect: QUERY PLAN
-- expect: |--SCAN picked
-- expect: `--SCAN big VIRTUAL TABLE INDEX 1:id=?
EXPLAIN QUERY PLAN SELECT sum(length(pixels)) FROM picked JOIN big USING(id);
-- expect: QUERY PLAN
-- expect: |--SCAN picked
-- expect: `--SCAN big VIRTUAL TABLE INDEX 1:id=?
EXPLAIN QUERY PLAN SELECT sum(length(pixels)) FROM big JOIN picked USING(id);
-- expect: QUERY PLAN
-- expect: |--SCAN picked
-- expect: `--SCAN big VIRTUAL TABLE INDEX 1:id=?
EXPLAIN QUERY PLAN SELECT big.label FROM big, picked WHERE big.id = picked.id;
-- expect: QUERY PLAN
-- expect: |--SCAN big VIRTUAL TABLE INDEX 2:id IN (...)
-- expect: `--LIST SUBQUERY 1
-- expect:    `--SCAN picked
EXPLAIN QUERY PLAN SELECT sum(length(pixels)) FROM big WHERE id IN (SELECT id FROM picked);
-- expect: 147456|147456|147456
SELECT (SELECT sum(length(pixels)) FROM picked JOIN big USING(id)),
       (SELECT sum(length(pixels)) FROM big, picked WHERE big.id = picked.id),
       (SELECT sum(length(pixels)) FROM big WHERE id IN (SELECT id FROM picked));
-- A range's rows are estimated from its constant bounds. The join copies the bounds to ref.id, which SQLite
-- then takes to match 1/64 of its guessed million rows: s's 10 ids from 100 to 130 are fewer, so s goes outside;
-- its 9,997 ids from 10 up are more, so ref does.
-- expect: QUERY PLAN
-- expect: |--SCAN s VIRTUAL TABLE INDEX 20:id>=? AND id<=?
-- expect: `--SEARCH ref USING INTEGER PRIMARY KEY (rowid=?)
EXPLAIN QUERY PLAN SELECT s.id FROM ref JOIN s USING(id) WHERE s.id BETWEEN 100 AND 130;
-- expect: QUERY PLAN
-- expect: |--SEARCH ref USING INTEGER PRIMARY KEY (rowid>?)
-- expect: `--SCAN s VIRTUAL TABLE INDEX 1:id=?
EXPLAIN QUERY PLAN SELECT s.id FROM ref JOIN s USING(id) WHERE s.id > 10;
-- expect: 1
SELECT (SELECT group_concat(s.id) FROM ref JOIN s USING(id) WHERE s.id BETWEEN 100 AND 130)
     = (SELECT group_concat(id) FROM ref WHERE id BETWEEN 100 AND 130);
-- A store of 100 small images costs less to scan than a guessed million rows cost to walk: it goes outside.
CREATE VIRTUAL TABLE small USING {module}(path='small{ext}', shape='4x4x3');
INSERT INTO small SELECT id, label, pixels FROM synthetic(100, '4x4x3', 3);
-- expect: QUERY PLAN
-- expect: |--SCAN small VIRTUAL TABLE INDEX 0:
-- expect: `--SEARCH picked USING INTEGER PRIMARY KEY (rowid=?)
EXPLAIN QUERY PLAN SELECT small.label FROM picked JOIN small USING(id);
-- Two stores: the smaller is scanned, the larger looked up.
-- expect: QUERY PLAN
-- expect: |--SCAN small VIRTUAL TABLE INDEX 0:
-- expect: `--SCAN big VIRTUAL TABLE INDEX 1:id=?
EXPLAIN QUERY PLAN SELECT count(*) FROM big JOIN small USING(id);
-- expect: 99
SELECT count(*) FROM big JOIN small USING(id);

-- DELETE, UPDATE of label, INSERT with NULL id, on both tables, then compare everything.
DELETE FROM s WHERE id % 7 = 0;
DELETE FROM ref WHERE id % 7 = 0;
UPDATE s SET label = label + 100 WHERE id BETWEEN 300 AND 600;
UPDATE ref SET label = label + 100 WHERE id BETWEEN 300 AND 600;
INSERT INTO s(label, pixels) SELECT 5, pixels FROM ref WHERE id = 3;
INSERT INTO ref(id, label, pixels) SELECT 29998, 5, pixels FROM ref WHERE id = 3;
-- expect: 29998|5
SELECT id, label FROM s WHERE id = (SELECT max(id) FROM s);
-- expect: 1
SELECT (SELECT count(*) FROM s) = (SELECT count(*) FROM ref);
-- expect: 1
SELECT count(*) = (SELECT count(*) FROM ref) FROM s CROSS JOIN ref ON ref.id = s.id
 WHERE s.label = ref.label AND s.pixels = ref.pixels;

-- UPDATE of pixels and of id, when the new values are valid.
UPDATE s SET pixels = (SELECT pixels FROM ref WHERE id = 6) WHERE id = 9;
-- expect: 1
SELECT (SELECT pixels FROM s WHERE id = 9) = (SELECT pixels FROM ref WHERE id = 6);
UPDATE s SET id = 40000 WHERE id = 9;
-- expect: 40000
SELECT group_concat(id) FROM s WHERE id IN (9, 40000);
-- expect: 1
SELECT (SELECT pixels FROM s WHERE id = 40000) = (SELECT pixels FROM ref WHERE id = 6);
-- error: table s: id 3 already exists
UPDATE s SET id = 3 WHERE id = 40000;
UPDATE s SET id = 9, pixels = (SELECT pixels FROM ref WHERE id = 9) WHERE id = 40000;

-- INSERT OR IGNORE keeps the old row, OR REPLACE overwrites it, plain INSERT is a constraint error.
-- error: table s: id 3 already exists; expected a unique id
INSERT INTO s VALUES (3, 1, zeroblob(3072));
INSERT OR IGNORE INTO s VALUES (3, 1, zeroblob(3072));
-- expect: 1
SELECT (SELECT pixels FROM s WHERE id = 3) = (SELECT pixels FROM ref WHERE id = 3);
INSERT OR REPLACE INTO s VALUES (3, 1, zeroblob(3072));
-- expect: 1|1
SELECT label, pixels = zeroblob(3072) FROM s WHERE id = 3;
INSERT OR REPLACE INTO s SELECT * FROM ref WHERE id = 3;
-- expect: 1
SELECT (SELECT pixels FROM s WHERE id = 3) = (SELECT pixels FROM ref WHERE id = 3);

-- A row that breaks the store's rules is a constraint, as a native table's CHECK and NOT NULL: OR IGNORE skips
-- it (not counted by changes()) and loads the good rows; every other clause fails with nothing written.
CREATE TEMP TABLE bad(id, label, pixels);
INSERT INTO bad VALUES (50001, 1, zeroblob(3072)), (-2, 2, zeroblob(3072)), (50003, NULL, zeroblob(3072)),
                       (50004, 4, zeroblob(7)), (50005, 'x', zeroblob(3072)), (50006, 6, NULL), (50007, 7, zeroblob(3072));
-- error: table s: id -2 is negative; expected an integer >= 0 (19)
INSERT INTO s SELECT * FROM bad;
-- error: table s: pixels of id 50004 are 7 bytes; expected 3072 (shape 32x32x3, HWC uint8) (19)
INSERT OR REPLACE INTO s SELECT * FROM bad WHERE id <> -2 AND label IS NOT NULL;
-- expect: 0
SELECT count(*) FROM s WHERE id > 50000;
INSERT OR IGNORE INTO s SELECT * FROM bad;
-- expect: 2
SELECT changes();
-- expect: 50001,50007
SELECT group_concat(id) FROM s WHERE id > 50000;
UPDATE OR IGNORE s SET pixels = zeroblob(5) WHERE id > 50000;
-- expect: 0|1
SELECT changes(), (SELECT label FROM s WHERE id = 50001);
-- UPDATE OR REPLACE moving ids onto each other carries each moved row's label and pixels, as a native table's.
DELETE FROM s WHERE id > 50000;
INSERT INTO s SELECT id / 3 + 50002, id / 3 - 1, pixels FROM ref WHERE id IN (6, 9, 12);
UPDATE OR REPLACE s SET id = id + 1 WHERE id > 50000;
-- expect: 50007|1|1
SELECT id, label, pixels = (SELECT pixels FROM ref WHERE id = 6) FROM s WHERE id > 50000;
DELETE FROM s WHERE id > 50000;

-- ROLLBACK undoes a transaction; SAVEPOINT / ROLLBACK TO undo part of one.
BEGIN;
INSERT INTO s SELECT id + 100000, label, pixels FROM ref WHERE id < 3000;
-- expect: 1
SELECT (SELECT count(*) FROM s) = (SELECT count(*) FROM ref) + (SELECT count(*) FROM ref WHERE id < 3000);
ROLLBACK;
-- expect: 1
SELECT (SELECT count(*) FROM s) = (SELECT count(*) FROM ref);
BEGIN;
INSERT INTO s VALUES (50001, 1, zeroblob(3072));
SAVEPOINT sp;
INSERT INTO s VALUES (50002, 1, zeroblob(3072));
DELETE FROM s WHERE id = 3;
ROLLBACK TO sp;
INSERT INTO s VALUES (50003, 1, zeroblob(3072));
RELEASE sp;
COMMIT;
-- expect: 3|50001|50003
SELECT group_concat(id, '|') FROM s WHERE id IN (3, 50001, 50002, 50003);
DELETE FROM s WHERE id > 50000;

-- A statement whose 500th row is bad changes nothing: autocommit, and inside a transaction.
-- error: table s: pixels of id 61497 are 3071 bytes; expected 3072
INSERT INTO s SELECT id + 60000, label, CASE WHEN id = 1497 THEN substr(pixels, 2) ELSE pixels END
  FROM ref WHERE id BETWEEN 0 AND 2000 ORDER BY id;
-- expect: 1
SELECT (SELECT count(*) FROM s) = (SELECT count(*) FROM ref);
BEGIN;
INSERT INTO s VALUES (70000, 1, zeroblob(3072));
-- error: table s: label NULL of id 61500 is not an integer
INSERT INTO s SELECT id + 60000, CASE WHEN id = 1500 THEN NULL ELSE label END, pixels FROM ref WHERE id <= 2000;
INSERT INTO s VALUES (70001, 1, zeroblob(3072));
COMMIT;
-- expect: 70000,70001
SELECT group_concat(id) FROM s WHERE id >= 60000;
DELETE FROM s WHERE id >= 60000;
-- expect: 1
SELECT count(*) = (SELECT count(*) FROM ref) FROM s CROSS JOIN ref ON ref.id = s.id
 WHERE s.label = ref.label AND s.pixels = ref.pixels;

-- Bad values: each error names the table, the value and what was expected; nothing changes.
-- error: table s: pixels of id 5 are 100 bytes; expected 3072 (shape 32x32x3
INSERT INTO s VALUES (5, 1, zeroblob(100));
-- error: table s: pixels of id 5 are NULL; expected a blob of 3072 bytes
INSERT INTO s VALUES (5, 1, NULL);
-- error: table s: pixels of id 5 are 'abc'; expected a blob of 3072 bytes
INSERT INTO s VALUES (5, 1, 'abc');
-- error: table s: label NULL of id 5 is not an integer
INSERT INTO s VALUES (5, NULL, zeroblob(3072));
-- error: table s: label 'cat' of id 5 is not an integer
INSERT INTO s VALUES (5, 'cat', zeroblob(3072));
-- error: table s: label 1.500000 of id 5 is not an integer
INSERT INTO s VALUES (5, 1.5, zeroblob(3072));
-- error: table s: id -1 is negative; expected an integer >= 0
INSERT INTO s VALUES (-1, 1, zeroblob(3072));
-- error: table s: id 'x' is not an integer
INSERT INTO s VALUES ('x', 1, zeroblob(3072));
-- error: table s: label NULL of id 3 is not an integer
UPDATE s SET label = NULL WHERE id = 3;
-- error: table s: pixels of id 3 are 3 bytes
UPDATE s SET pixels = x'010203' WHERE id = 3;
-- expect: 1
SELECT count(*) = (SELECT count(*) FROM ref) FROM s CROSS JOIN ref ON ref.id = s.id
 WHERE s.label = ref.label AND s.pixels = ref.pixels;

-- Bad CREATE VIRTUAL TABLE arguments.
-- error: table b1: unknown argument 'colour'; expected one of: path, shape
CREATE VIRTUAL TABLE b1 USING {module}(path='b1{ext}', shape='32x32x3', colour='red');
-- error: table b2: argument 'path' is required
CREATE VIRTUAL TABLE b2 USING {module}(shape='32x32x3');
-- error: table b3: shape: '32x32' is not a shape; expected HxWxC
CREATE VIRTUAL TABLE b3 USING {module}(path='b3{ext}', shape='32x32');
-- error: table b4: shape: shape '0x1x1' has a zero dimension
CREATE VIRTUAL TABLE b4 USING {module}(path='b4{ext}', shape='0x1x1');
-- error: table b5: shape: 'axbxc' is not a shape
CREATE VIRTUAL TABLE b5 USING {module}(path='b5{ext}', shape='axbxc');
-- error: table b6: shape: shape '100000x100000x3' is larger than 64 MiB per image
CREATE VIRTUAL TABLE b6 USING {module}(path='b6{ext}', shape='100000x100000x3');
-- error: table b7: shape '28x28x1' disagrees with the store '{path}', which holds 32x32x3 images
CREATE VIRTUAL TABLE b7 USING {module}(path='{path}', shape='28x28x1');
-- error: table b8: store 'missing{ext}' does not exist; give shape='HxWxC' to create it
CREATE VIRTUAL TABLE b8 USING {module}(path='missing{ext}');
-- error: table b9: argument 'path' given twice
CREATE VIRTUAL TABLE b9 USING {module}(path='a', path='b', shape='1x1x1');
-- error: table b10: argument 'nonsense' is not key=value
CREATE VIRTUAL TABLE b10 USING {module}(nonsense);

-- DROP TABLE forgets the table and keeps the store; opened again with its path alone, all rows are there.
DROP TABLE s;
-- shell: test -e {path} && echo kept
-- shell-expect: kept
CREATE VIRTUAL TABLE s2 USING {module}(path='{path}');
-- expect: 1
SELECT count(*) = (SELECT count(*) FROM ref) FROM s2 CROSS JOIN ref ON ref.id = s2.id
 WHERE s2.label = ref.label AND s2.pixels = ref.pixels;
-- The same store opened twice in one connection (two tables) shows the same rows.
CREATE VIRTUAL TABLE s3 USING {module}(path='{path}');
-- expect: 1
SELECT (SELECT count(*) FROM s3) = (SELECT count(*) FROM s2);

-- A table created inside a transaction is written in it (SQLite calls no xBegin for it), and committed.
BEGIN;
CREATE VIRTUAL TABLE n USING {module}(path='new{ext}', shape='2x2x1');
INSERT INTO n VALUES (1, 1, x'01020304');
COMMIT;
-- process
CREATE VIRTUAL TABLE n2 USING {module}(path='new{ext}');
-- expect: 1|01020304
SELECT count(*), hex(pixels) FROM n2;

-- The integrity check finds nothing wrong in a store this suite has exercised, structure and every image.
-- expect: ok
SELECT imgstore_check('{module}', '{path}', 1);
-- expect: ok
SELECT imgstore_check('{module}', '{path}');
