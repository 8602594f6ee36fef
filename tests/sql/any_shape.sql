-- Stores of shape 'any' (run once per backend): images of many sizes and channel counts, each row with its own
-- height, width and channels (hidden columns), held byte for byte; a native table with the same rows is the
-- reference.

CREATE TABLE ref(id INTEGER PRIMARY KEY, label INTEGER, pixels BLOB, h INTEGER, w INTEGER, c INTEGER);
INSERT INTO ref SELECT id, label, pixels, 4, 4, 3 FROM synthetic(10, '4x4x3', 1);
INSERT INTO ref SELECT id + 100, label, pixels, 7, 5, 1 FROM synthetic(10, '7x5x1', 2);
INSERT INTO ref SELECT id + 200, label, pixels, 3, 9, 2 FROM synthetic(5, '3x9x2', 3);
INSERT INTO ref SELECT id + 300, label, pixels, 6, 2, 4 FROM synthetic(5, '6x2x4', 4);
INSERT INTO ref SELECT id + 400, label, pixels, 1, 1, 1 FROM synthetic(3, '1x1x1', 5);
INSERT INTO ref SELECT id + 500, label, pixels, 300, 200, 3 FROM synthetic(2, '300x200x3', 6, 'smooth');

CREATE VIRTUAL TABLE v USING {module}(path='{path}', shape='any');
INSERT INTO v(id, label, pixels, height, width, channels) SELECT id, label, pixels, h, w, c FROM ref;
-- expect: 35|35
SELECT count(*), sum(v.pixels = ref.pixels AND v.height = ref.h AND v.width = ref.w AND v.channels = ref.c
                     AND v.label = ref.label) FROM v JOIN ref USING (id);
-- SELECT * stays id, label, pixels.
-- expect: 3
SELECT count(*) FROM (SELECT * FROM v LIMIT 1) JOIN pragma_table_info('v');
-- expect: 203|1|3|9|2|54
SELECT id, label > -1, height, width, channels, length(pixels) FROM v WHERE id = 203;
-- expect: 1
SELECT (SELECT image_digest(id, label, pixels) FROM v) = (SELECT image_digest(id, label, pixels) FROM ref);
-- expect: v|any|||
SELECT name, shape, height, width, channels FROM imgstore_info('v');

-- Pixels need their shape, and it must match their length.
-- error: table v: pixels of id 900 (6 bytes) come without their shape; a store of shape 'any' needs height, width and channels
INSERT INTO v VALUES (900, 1, zeroblob(6));
-- error: table v: pixels of id 900 are 6 bytes; expected 12 (shape 2x2x3, HWC uint8)
INSERT INTO v(id, label, pixels, height, width, channels) VALUES (900, 1, zeroblob(6), 2, 2, 3);
-- error: table v: width NULL of id 900 is not a positive integer; expected height, width and channels all three as positive integers
INSERT INTO v(id, label, pixels, height, width, channels) VALUES (900, 1, zeroblob(6), 2, NULL, 3);
-- error: table v: id 900: shape '1x1x5' has 5 channels; expected 1 (gray), 2 (gray+alpha), 3 (RGB) or 4 (RGBA)
INSERT INTO v(id, label, pixels, height, width, channels) VALUES (900, 1, zeroblob(5), 1, 1, 5);
-- error: table v: height 0 of id 900 is not a positive integer
INSERT INTO v(id, label, pixels, height, width, channels) VALUES (900, 1, x'', 0, 1, 1);
-- A failed row leaves the store as it was, inside a multi-row statement too.
-- error: table v: pixels of id 901 are 3 bytes; expected 4
INSERT INTO v(id, label, pixels, height, width, channels) VALUES (900, 1, x'00', 1, 1, 1), (901, 1, x'000000', 2, 2, 1);
-- expect: 35
SELECT count(*) FROM v;

-- Changes: a new label, new pixels of another size, a new id, a replacement of another size, a delete.
UPDATE v SET label = 7 WHERE id = 3;
UPDATE ref SET label = 7 WHERE id = 3;
-- New pixels of the row's own size keep its shape; of another size they need it.
UPDATE v SET pixels = zeroblob(35) WHERE id = 101;
UPDATE ref SET pixels = zeroblob(35) WHERE id = 101;
-- error: table v: pixels of id 101 are 12 bytes; expected 35 (shape 7x5x1, HWC uint8)
UPDATE v SET pixels = zeroblob(12) WHERE id = 101;
UPDATE v SET pixels = zeroblob(12), height = 1, width = 3, channels = 4 WHERE id = 102;
UPDATE ref SET pixels = zeroblob(12), h = 1, w = 3, c = 4 WHERE id = 102;
-- error: table v: an UPDATE of height, width or channels of id 104 without its pixels
UPDATE v SET height = 5, width = 7 WHERE id = 104;
UPDATE v SET id = 1000 WHERE id = 203;
UPDATE ref SET id = 1000 WHERE id = 203;
INSERT OR REPLACE INTO v(id, label, pixels, height, width, channels) SELECT 4, 1, pixels, 3, 9, 2 FROM ref WHERE id = 202;
INSERT OR REPLACE INTO ref SELECT 4, 1, pixels, 3, 9, 2 FROM ref WHERE id = 202;
DELETE FROM v WHERE id IN (0, 401);
DELETE FROM ref WHERE id IN (0, 401);
-- expect: 33|33
SELECT count(*), sum(v.pixels = ref.pixels AND v.height = ref.h AND v.width = ref.w AND v.channels = ref.c
                     AND v.label = ref.label) FROM v JOIN ref USING (id);
-- expect: 1000|3|9|2
SELECT id, height, width, channels FROM v WHERE id = 1000;

-- Transactions: a rollback and a rolled-back savepoint leave the rows of every size as they were.
BEGIN;
INSERT INTO v(id, label, pixels, height, width, channels) VALUES (2000, 1, zeroblob(8), 2, 2, 2);
UPDATE v SET pixels = zeroblob(4), height = 1, width = 1, channels = 4 WHERE id = 500;
SAVEPOINT s;
DELETE FROM v WHERE id < 200;
INSERT INTO v(id, label, pixels, height, width, channels) VALUES (2001, 1, zeroblob(3), 1, 1, 3);
ROLLBACK TO s;
RELEASE s;
-- expect: 2000|2|2|2
SELECT id, height, width, channels FROM v WHERE id >= 2000;
-- expect: 1|1|4
SELECT height, width, channels FROM v WHERE id = 500;
ROLLBACK;
-- expect: 33|33
SELECT count(*), sum(v.pixels = ref.pixels AND v.height = ref.h AND v.width = ref.w AND v.channels = ref.c)
FROM v JOIN ref USING (id);

-- process
-- The path alone opens it as a store of shape 'any'; a one-shape argument is refused.
CREATE TABLE ref2(id INTEGER PRIMARY KEY, label INTEGER, pixels BLOB, h INTEGER, w INTEGER, c INTEGER);
-- error: table w: shape '4x4x3' disagrees with the store
CREATE VIRTUAL TABLE w USING {module}(path='{path}', shape='4x4x3');
CREATE VIRTUAL TABLE v USING {module}(path='{path}');
-- expect: v|any
SELECT name, shape FROM imgstore_info('v');
-- expect: 33|3|1
SELECT count(*), (SELECT height FROM v WHERE id = 1000), (SELECT sum(length(pixels) = height * width * channels) = count(*) FROM v) FROM v;
-- The integrity check reads every image of every size.
-- expect: ok
SELECT imgstore_check('{module}', '{path}', 1);

-- Conversions keep every byte and every shape: into each backend of shape 'any', single and sharded, and back.
CREATE VIRTUAL TABLE l USING lmdb(path='conv.lmdb', shape='any');
CREATE VIRTUAL TABLE h USING hdf5(path='conv.h5', shape='any');
CREATE VIRTUAL TABLE p USING png_dir(path='conv_png', shape='any');
CREATE VIRTUAL TABLE s USING {module}(path='conv_sharded', shape='any', shards=3);
INSERT INTO l(id, label, pixels, height, width, channels) SELECT id, label, pixels, height, width, channels FROM v;
INSERT INTO h(id, label, pixels, height, width, channels) SELECT id, label, pixels, height, width, channels FROM l;
INSERT INTO p(id, label, pixels, height, width, channels) SELECT id, label, pixels, height, width, channels FROM h;
INSERT INTO s(id, label, pixels, height, width, channels) SELECT id, label, pixels, height, width, channels FROM p;
-- expect: 33|33|33|33
SELECT count(*),
       sum(v.pixels = l.pixels AND v.height = l.height AND v.width = l.width AND v.channels = l.channels),
       sum(v.pixels = h.pixels AND v.height = h.height AND v.width = h.width AND v.channels = h.channels),
       sum(v.pixels = p.pixels AND v.height = p.height AND v.width = p.width AND v.channels = p.channels)
FROM v JOIN l USING (id) JOIN h USING (id) JOIN p USING (id);
-- expect: 33|33
SELECT count(*), sum(v.pixels = s.pixels AND v.height = s.height AND v.width = s.width AND v.channels = s.channels)
FROM v JOIN s USING (id);
-- A sharded table's rollback puts rows of every size back (its undo journal records each row's shape).
BEGIN;
UPDATE s SET label = label + 1;
INSERT OR REPLACE INTO s(id, label, pixels, height, width, channels) VALUES (500, 0, x'01', 1, 1, 1);
DELETE FROM s WHERE id < 100;
ROLLBACK;
-- expect: 33|33
SELECT count(*), sum(v.pixels = s.pixels AND v.label = s.label AND v.height = s.height) FROM v JOIN s USING (id);

-- A one-shape store takes rows of its shape from a store of shape 'any', and refuses the others by their shape.
CREATE VIRTUAL TABLE one USING {module}(path='one_{path}', shape='7x5x1');
INSERT INTO one SELECT * FROM v WHERE height = 7;
-- expect: 9|7|5|1
SELECT count(*), min(height), min(width), min(channels) FROM one;
-- error: table one: id 1 is a 4x4x3 image; expected 7x5x1
INSERT INTO one(id, label, pixels, height, width, channels) SELECT id, label, pixels, height, width, channels FROM v WHERE id = 1;
-- error: table one: pixels of id 1 are 48 bytes; expected 35
INSERT INTO one SELECT * FROM v WHERE id = 1;
