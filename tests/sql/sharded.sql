-- Sharded tables (run once per backend): a folder of N complete stores plus manifest.json, routing id mod N.

-- Bad arguments are refused before any file is made.
-- error: table z: argument shards='0' is not valid; expected an integer from 1 to 4096
CREATE VIRTUAL TABLE z USING {module}(path='z', shape='4x4x3', shards=0);
-- error: table z: argument shards='two' is not valid; expected an integer from 1 to 4096
CREATE VIRTUAL TABLE z USING {module}(path='z', shape='4x4x3', shards='two');
-- shell: test ! -e z && echo absent
-- shell-expect: absent

CREATE VIRTUAL TABLE t USING {module}(path='t', shape='4x4x3', shards=4);
CREATE TABLE ref(id INTEGER PRIMARY KEY, label, pixels);
INSERT INTO ref SELECT id, label, pixels FROM synthetic(1000, '4x4x3', 5);
INSERT INTO t SELECT * FROM ref;
-- expect: 1000|4483
SELECT count(*), sum(label * 1) FROM t;

-- The folder: the manifest and four stores of the backend.
-- shell: ls t | grep -v -- -lock | sort | tr '\n' ' '
-- shell-expect: manifest.json shard-000{ext} shard-001{ext} shard-002{ext} shard-003{ext} writer.lock
-- shell: /usr/bin/python3 -c "import json; m = json.load(open('t/manifest.json')); print(m['format'], m['backend'], m['shape'], m['routing'], [s['rows'] for s in m['shards']], 'pending' in m)"
-- shell-expect: imgstore-sharded 1 {module} 4x4x3 id mod 4 [250, 250, 250, 250] False

-- process
-- The path alone opens it; rows come back in id order (ORDER BY id needs no sort), equal to the reference.
DROP TABLE t;
CREATE VIRTUAL TABLE t USING {module}(path='t');
-- expect: 1
SELECT (SELECT image_digest(id, label, pixels) FROM t) = (SELECT image_digest(id, label, pixels) FROM ref);
-- shell: $SQLITE3 -batch -cmd ".load $IMGSTORE_EXTENSION" :memory: "CREATE VIRTUAL TABLE t USING {module}(path='t'); EXPLAIN QUERY PLAN SELECT id FROM t ORDER BY id;" | grep -c 'TEMP B-TREE' || true
-- shell-expect: 0
-- expect: 0|1|998|999
SELECT min(id), (SELECT id FROM t LIMIT 1 OFFSET 1), (SELECT id FROM t ORDER BY id DESC LIMIT 1 OFFSET 1), max(id) FROM t;
-- Point reads and IN lists, each id from its own shard.
-- expect: 1
SELECT (SELECT group_concat(id || ':' || label || ':' || hex(pixels)) FROM t WHERE id IN (7, 0, 513, 998, 5000))
     = (SELECT group_concat(id || ':' || label || ':' || hex(pixels)) FROM ref WHERE id IN (7, 0, 513, 998, 5000));
-- expect: 1
SELECT (SELECT pixels FROM t WHERE id = 333) = (SELECT pixels FROM ref WHERE id = 333);
-- Label queries as on one store.
-- expect: 1
SELECT (SELECT group_concat(label || '=' || n) FROM (SELECT label, count(*) n FROM t GROUP BY label))
     = (SELECT group_concat(label || '=' || n) FROM (SELECT label, count(*) n FROM ref GROUP BY label));
-- expect: 93
SELECT count(*) FROM t WHERE label = 3;
-- Ranges.
-- expect: 11|100|110
SELECT count(*), min(id), max(id) FROM t WHERE id BETWEEN 100 AND 110;
-- Plans as on one store: the constraints the shards apply, named; the rows in id order.
-- expect: QUERY PLAN
-- expect: `--SCAN t VIRTUAL TABLE INDEX 2:id IN (...)
EXPLAIN QUERY PLAN SELECT * FROM t WHERE id IN (7, 0, 513);
-- expect: QUERY PLAN
-- expect: `--SCAN t VIRTUAL TABLE INDEX 28:id>? AND id<=? ORDER BY id
EXPLAIN QUERY PLAN SELECT id FROM t WHERE id > 100 AND id <= 110 ORDER BY id;
-- A native table without statistics (SQLite guesses a million rows) joined with a sharded table of 49 MB of
-- pixels goes outside, each of its ids looked up in its shard; the 1,000 images of 48 bytes in t cost less to
-- scan, so t goes outside.
CREATE VIRTUAL TABLE big USING {module}(path='big', shape='128x128x3', shards=4);
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 999)
INSERT INTO big SELECT i, i % 10, zeroblob(49152) FROM n;
-- expect: QUERY PLAN
-- expect: |--SCAN ref
-- expect: `--SCAN big VIRTUAL TABLE INDEX 1:id=?
EXPLAIN QUERY PLAN SELECT sum(length(big.pixels)) FROM ref JOIN big USING(id);
-- expect: QUERY PLAN
-- expect: |--SCAN big VIRTUAL TABLE INDEX 2:id IN (...)
-- expect: `--LIST SUBQUERY 1
-- expect:    `--SCAN ref
EXPLAIN QUERY PLAN SELECT sum(length(pixels)) FROM big WHERE id IN (SELECT id FROM ref);
-- expect: 49152000|49152000
SELECT (SELECT sum(length(big.pixels)) FROM ref JOIN big USING(id)),
       (SELECT sum(length(pixels)) FROM big WHERE id IN (SELECT id FROM ref));
-- expect: QUERY PLAN
-- expect: |--SCAN t VIRTUAL TABLE INDEX 0:
-- expect: `--SEARCH ref USING INTEGER PRIMARY KEY (rowid=?)
EXPLAIN QUERY PLAN SELECT t.label FROM ref JOIN t USING(id);
DROP TABLE big;

-- A transaction over several shards: rolled back, nothing; committed, everything.
BEGIN;
DELETE FROM t WHERE id < 10;
UPDATE t SET label = 9 WHERE id BETWEEN 10 AND 13;
INSERT INTO t SELECT id + 1000, label, pixels FROM ref WHERE id < 6;
ROLLBACK;
-- expect: 1000|1
SELECT count(*), (SELECT image_digest(id, label, pixels) FROM t) = (SELECT image_digest(id, label, pixels) FROM ref) FROM t;
BEGIN;
DELETE FROM t WHERE id < 10;
UPDATE t SET label = 9 WHERE id BETWEEN 10 AND 13;
INSERT INTO t SELECT id + 1000, label, pixels FROM ref WHERE id < 6;
COMMIT;
DELETE FROM ref WHERE id < 10;
UPDATE ref SET label = 9 WHERE id BETWEEN 10 AND 13;
INSERT INTO ref SELECT id + 1000, label, pixels FROM synthetic(6, '4x4x3', 5);
-- expect: 996|1
SELECT count(*), (SELECT image_digest(id, label, pixels) FROM t) = (SELECT image_digest(id, label, pixels) FROM ref) FROM t;
-- A duplicate id fails the statement and leaves the table as it was.
-- error: 1000 already exists
INSERT INTO t SELECT id + 2000, label, pixels FROM ref WHERE id < 50 UNION ALL SELECT 1000, 0, pixels FROM ref WHERE id = 20;
-- expect: 996
SELECT count(*) FROM t;

-- process
-- Each shard is a complete store of the backend, readable alone: shard k holds the ids k mod 4.
CREATE VIRTUAL TABLE s1 USING {module}(path='t/shard-001{ext}');
-- expect: 249|1
SELECT count(*), min(id % 4 = 1) FROM s1;
-- shards=1 (or no shards) is one store as before: no folder of shards.
CREATE VIRTUAL TABLE one USING {module}(path='one{ext}', shape='4x4x3', shards=1);
INSERT INTO one SELECT * FROM synthetic(10, '4x4x3', 1);
-- shell: test ! -e one{ext}/manifest.json && echo single
-- shell-expect: single
-- A different shard count than the folder's is an error.
-- error: 't' has 4 shards; shards=8 was asked for
CREATE VIRTUAL TABLE w USING {module}(path='t', shards=8);
-- Threads: a bulk load written on worker threads gives the same table.
CREATE VIRTUAL TABLE p USING {module}(path='p', shape='4x4x3', shards=3, threads=2);
INSERT INTO p SELECT * FROM synthetic(2000, '4x4x3', 5);
DELETE FROM ref;
INSERT INTO ref SELECT id, label, pixels FROM synthetic(2000, '4x4x3', 5);
-- expect: 2000|1
SELECT count(*), (SELECT image_digest(id, label, pixels) FROM p) = (SELECT image_digest(id, label, pixels) FROM ref) FROM p;
-- error: 1999 already exists
INSERT INTO p SELECT id + 5000, label, pixels FROM ref UNION ALL SELECT 1999, 0, pixels FROM ref WHERE id = 1;
-- expect: 2000
SELECT count(*) FROM p;
-- A statement rolled back brings back a shard's largest id: an insert of that id is still a duplicate, reported
-- at its own statement (a queued write took it as new and failed later, on another statement).
BEGIN;
DELETE FROM p WHERE id = 0;
-- error: 1998 already exists
UPDATE p SET id = CASE id WHEN 1995 THEN 0 ELSE 1998 END WHERE id IN (1995, 1996);
-- error: 1995 already exists
INSERT INTO p SELECT 1995, 5, pixels FROM synthetic(1, '4x4x3', 1);
INSERT INTO p SELECT 5000, 5, pixels FROM synthetic(1, '4x4x3', 1);
ROLLBACK;
-- expect: 2000|1|0
SELECT count(*), sum(id = 0), sum(id = 5000) FROM p;
-- shards=1 on a sharded table's folder names what is there.
-- error: 't' has 4 shards; shards=1 was asked for
CREATE VIRTUAL TABLE w1 USING {module}(path='t', shards=1);

-- A manifest that disagrees with its shards: an error naming the shard.
-- shell: cp -r t bad1 && rm -rf bad1/shard-002{ext}
-- error: shard 'bad1/shard-002{ext}' is missing
CREATE VIRTUAL TABLE b1 USING {module}(path='bad1');
-- shell: cp -r t bad2 && sed -i 's/"rows": 249}/"rows": 248}/' bad2/manifest.json
-- error: has 249 rows; the manifest says 248
CREATE VIRTUAL TABLE b2 USING {module}(path='bad2');
-- shell: cp -r t bad3 && sed -i 's/4x4x3/4x4x1/' bad3/manifest.json
-- error: shard 'bad3/shard-000{ext}'
CREATE VIRTUAL TABLE b3 USING {module}(path='bad3');
-- shell: cp -r t bad4 && echo '{"format": "nope"}' > bad4/manifest.json
-- error: sharded table manifest 'bad4/manifest.json' is not valid
CREATE VIRTUAL TABLE b4 USING {module}(path='bad4');
