-- hdf5 stores of shape 'any': images that differ in height, width and channels, in the ragged layout of
-- docs/formats.md (a 1-D /images, /offsets, /shapes). Every row is compared with an lmdb store of shape 'any'
-- holding the same rows (and with the native table they came from), through every read path and after every
-- kind of change; converted lmdb -> hdf5 -> png_dir; compacted, checked, sharded.

-- The rows: twelve chosen shapes (1x1x1 up to 300x200x3, every channel count) and 88 of random sizes, cut from
-- synthetic images.
CREATE TABLE src(id INTEGER PRIMARY KEY, label INTEGER, pixels BLOB, height INTEGER, width INTEGER, channels INTEGER);
WITH shapes(k, h, w, c) AS (VALUES (0, 1, 1, 1), (1, 300, 200, 3), (2, 1, 1, 2), (3, 1, 1, 4), (4, 2, 3, 2), (5, 5, 7, 4),
                                   (6, 32, 32, 3), (7, 28, 28, 1), (8, 17, 9, 2), (9, 64, 48, 4), (10, 200, 300, 1), (11, 3, 1, 3))
INSERT INTO src SELECT k, label, substr(pixels, 1, h * w * c), h, w, c FROM shapes JOIN synthetic(12, '300x300x4', 7) ON id = k;
INSERT INTO src SELECT id + 12, label, substr(pixels, 1, h * w * c), h, w, c
FROM (SELECT id, label, pixels, 1 + (id * 37) % 61 AS h, 1 + (id * 53) % 47 AS w, 1 + id % 4 AS c FROM synthetic(88, '61x47x4', 8));
-- expect: 100|427081|4
SELECT count(*), sum(length(pixels)), count(DISTINCT channels) FROM src;

CREATE VIRTUAL TABLE a USING lmdb(path='a.lmdb', shape='any');
CREATE VIRTUAL TABLE h USING hdf5(path='h.h5', shape='any');
INSERT INTO a(id, label, pixels, height, width, channels) SELECT * FROM src;
INSERT INTO h(id, label, pixels, height, width, channels) SELECT * FROM src;
-- Every row the same in both stores and in src: by a join (point reads of h), by a scan of h, by an IN list and a range.
-- expect: 100|100|100|4|30
SELECT (SELECT count(*) FROM h),
       (SELECT count(*) FROM a JOIN h USING (id) WHERE a.label = h.label AND a.pixels = h.pixels AND a.height = h.height
                                                   AND a.width = h.width AND a.channels = h.channels),
       (SELECT count(*) FROM h JOIN src USING (id) WHERE h.label = src.label AND h.pixels = src.pixels
                                                     AND h.height = src.height AND h.width = src.width AND h.channels = src.channels),
       (SELECT count(*) FROM h JOIN src USING (id) WHERE h.id IN (0, 1, 10, 99) AND h.pixels = src.pixels AND h.height = src.height),
       (SELECT count(*) FROM h JOIN src USING (id) WHERE h.id BETWEEN 40 AND 69 AND h.pixels = src.pixels AND h.channels = src.channels);
-- The shapes as stored, and the largest image read back byte for byte.
-- expect: 0|1|1|1|1
-- expect: 1|300|200|3|180000
-- expect: 3|1|1|4|4
-- expect: 10|200|300|1|60000
SELECT id, height, width, channels, length(pixels) FROM h WHERE id IN (0, 1, 3, 10) ORDER BY id;
-- expect: 1
SELECT (SELECT pixels FROM h WHERE id = 1) = (SELECT pixels FROM src WHERE id = 1);
-- EXPLAIN QUERY PLAN: the same plans as a one-shape store.
-- expect: QUERY PLAN
-- expect: `--SCAN h VIRTUAL TABLE INDEX 1:id=?
EXPLAIN QUERY PLAN SELECT pixels FROM h WHERE id = 5;

-- The layout h5dump and h5py see: fixed-size types only; h5py reads every row with the documented recipe
-- (o = offsets[i]; h, w, c = shapes[i]; images[o:o + h*w*c].reshape(h, w, c)) equal to the table's pixels.
-- shell: h5dump -H h.h5 | sed -n '/DATASET "/,$p' | grep -E 'DATASET|DATASPACE|H5T_STD' | tr '\n' ' ' | tr -s ' '
-- shell-expect: DATASET "checksums" { DATATYPE H5T_STD_U64LE DATASPACE SIMPLE { ( 100 ) / ( H5S_UNLIMITED ) } DATASET "commit" { DATATYPE H5T_STD_U64LE DATASPACE SIMPLE { ( 2 ) / ( 2 ) } DATASET "ids" { DATATYPE H5T_STD_I64LE DATASPACE SIMPLE { ( 100 ) / ( H5S_UNLIMITED ) } DATASET "images" { DATATYPE H5T_STD_U8LE DATASPACE SIMPLE { ( 427081 ) / ( H5S_UNLIMITED ) } DATASET "labels" { DATATYPE H5T_STD_I64LE DATASPACE SIMPLE { ( 100 ) / ( H5S_UNLIMITED ) } DATASET "offsets" { DATATYPE H5T_STD_U64LE DATASPACE SIMPLE { ( 100 ) / ( H5S_UNLIMITED ) } DATASET "shapes" { DATATYPE H5T_STD_U32LE DATASPACE SIMPLE { ( 100, 3 ) / ( H5S_UNLIMITED, 3 ) } 
-- shell: h5dump -a imgstore_format -a shape h.h5 | grep '(0)' | tr '\n' ' ' | tr -s ' '
-- shell-expect: (0): "imgstore-hdf5 3" (0): "any" 
-- shell: /usr/bin/python3 -c "import h5py; f = h5py.File('h.h5', 'r', swmr=True, locking=False); n = int(f['commit'][1]); out = open('h5py.txt', 'w'); [out.write('%d,%d,%s,%s\n' % (f['ids'][i], f['labels'][i], 'x'.join(str(int(x)) for x in f['shapes'][i]), f['images'][int(f['offsets'][i]):int(f['offsets'][i]) + int(f['shapes'][i].prod())].reshape(*(int(x) for x in f['shapes'][i])).tobytes().hex().upper())) for i in range(n) if f['ids'][i] >= 0]"
-- expect: 1
SELECT CAST(readfile('h5py.txt') AS TEXT) =
       (SELECT group_concat(id || ',' || label || ',' || height || 'x' || width || 'x' || channels || ',' || hex(pixels), char(10)) || char(10)
        FROM (SELECT * FROM src ORDER BY id));

-- What an INSERT must give, and what it may not.
-- error: table h: pixels of id 500 (2 bytes) come without their shape; a store of shape 'any' needs height, width and channels: INSERT INTO h(id, label, pixels, height, width, channels) ...
INSERT INTO h VALUES (500, 0, x'0102');
-- error: table h: pixels of id 500 are 2 bytes; expected 1 (shape 1x1x1, HWC uint8)
INSERT INTO h(id, label, pixels, height, width, channels) VALUES (500, 0, x'0102', 1, 1, 1);
-- error: table h: id 500: shape '1x2x5' has 5 channels; expected 1 (gray), 2 (gray+alpha), 3 (RGB) or 4 (RGBA)
INSERT INTO h(id, label, pixels, height, width, channels) VALUES (500, 0, zeroblob(10), 1, 2, 5);
-- error: table h: height 0 of id 500 is not a positive integer; expected height, width and channels all three as positive integers (or none of them)
INSERT INTO h(id, label, pixels, height, width, channels) VALUES (500, 0, zeroblob(10), 0, 2, 1);
-- error: table h: id 5 already exists; expected a unique id (INSERT OR REPLACE overwrites)
INSERT INTO h(id, label, pixels, height, width, channels) VALUES (5, 0, x'00', 1, 1, 1);
-- A store of shape 'any' is opened with shape='any' or with its path alone; a one-shape store is not 'any'.
-- error: table h8: shape '8x8x3' disagrees with the store 'h.h5', which holds images of any size (shape 'any')
CREATE VIRTUAL TABLE h8 USING hdf5(path='h.h5', shape='8x8x3');
CREATE VIRTUAL TABLE one USING hdf5(path='one.h5', shape='2x2x1');
-- error: table one_any: shape 'any' disagrees with the store 'one.h5', which holds 2x2x1 images
CREATE VIRTUAL TABLE one_any USING hdf5(path='one.h5', shape='any');
-- The one-shape store's hidden columns are its shape.
INSERT INTO one VALUES (1, 1, x'01020304');
-- expect: 2|2|1
SELECT height, width, channels FROM one;

-- Changes, the same on h and a: a relabel, a replace by an image of another size (OR REPLACE and UPDATE of
-- pixels with their shape), an UPDATE of pixels alone (same shape), an id moved, deletes.
UPDATE h SET label = label + 100 WHERE id % 5 = 0;
UPDATE a SET label = label + 100 WHERE id % 5 = 0;
INSERT OR REPLACE INTO h(id, label, pixels, height, width, channels)
SELECT id, 7, substr((SELECT pixels FROM src WHERE id = 1), 1000 * id, 24), 2, 3, 4 FROM src WHERE id IN (1, 2, 3);
INSERT OR REPLACE INTO a(id, label, pixels, height, width, channels)
SELECT id, 7, substr((SELECT pixels FROM src WHERE id = 1), 1000 * id, 24), 2, 3, 4 FROM src WHERE id IN (1, 2, 3);
UPDATE h SET pixels = zeroblob(30), height = 5, width = 3, channels = 2 WHERE id = 6;
UPDATE a SET pixels = zeroblob(30), height = 5, width = 3, channels = 2 WHERE id = 6;
UPDATE h SET pixels = x'FF' WHERE id = 0;
UPDATE a SET pixels = x'FF' WHERE id = 0;
-- error: table h: pixels of id 0 are 2 bytes; expected 1 (shape 1x1x1, HWC uint8)
UPDATE h SET pixels = x'FFFF' WHERE id = 0;
UPDATE h SET id = id + 1000 WHERE id IN (7, 8, 9);
UPDATE a SET id = id + 1000 WHERE id IN (7, 8, 9);
DELETE FROM h WHERE id BETWEEN 20 AND 29;
DELETE FROM a WHERE id BETWEEN 20 AND 29;
-- expect: 90|90|90
SELECT (SELECT count(*) FROM h), (SELECT count(*) FROM a),
       (SELECT count(*) FROM a JOIN h USING (id) WHERE a.label = h.label AND a.pixels = h.pixels AND a.height = h.height
                                                   AND a.width = h.width AND a.channels = h.channels);
-- expect: 1|7|2|3|4|24
-- expect: 6|5|5|3|2|30
-- expect: 1007|1|28|28|1|784
SELECT id, label, height, width, channels, length(pixels) FROM h WHERE id IN (1, 6, 1007) ORDER BY id;

-- Transactions: a transaction reads its own rows (in its write buffer and written to the file, more than a
-- block of 1 MiB), ROLLBACK TO a savepoint forgets rows and changes after it, ROLLBACK forgets everything.
BEGIN;
INSERT INTO h(id, label, pixels, height, width, channels) SELECT id + 2000, label, pixels, height, width, channels FROM src;
INSERT INTO h(id, label, pixels, height, width, channels) SELECT id + 3000, label, pixels, height, width, channels FROM src;
INSERT INTO h(id, label, pixels, height, width, channels) SELECT id + 4000, label, pixels, height, width, channels FROM src;
SAVEPOINT s;
INSERT INTO h(id, label, pixels, height, width, channels) SELECT id + 5000, label, pixels, height, width, channels FROM src;
DELETE FROM h WHERE id = 2001;
UPDATE h SET label = 55 WHERE id = 3001;
INSERT OR REPLACE INTO h(id, label, pixels, height, width, channels) VALUES (4001, 1, x'0102030405', 5, 1, 1);
-- expect: 489|1|100
SELECT count(*), (SELECT count(*) FROM h WHERE id = 3001 AND label = 55),
       (SELECT count(*) FROM h JOIN src ON h.id = src.id + 5000 WHERE h.pixels = src.pixels AND h.height = src.height AND h.width = src.width AND h.channels = src.channels)
FROM h;
ROLLBACK TO s;
INSERT INTO h(id, label, pixels, height, width, channels) VALUES (6000, 6, x'0A0B0C0D0E0F', 1, 2, 3);
-- expect: 391|300|1|0A0B0C0D0E0F
SELECT count(*),
       (SELECT count(*) FROM h JOIN src ON h.id - src.id IN (2000, 3000, 4000) WHERE h.pixels = src.pixels AND h.label = src.label
                                                                              AND h.height = src.height AND h.width = src.width AND h.channels = src.channels),
       (SELECT count(*) FROM h WHERE id = 6000 AND height = 1 AND width = 2 AND channels = 3),
       (SELECT hex(pixels) FROM h WHERE id = 6000)
FROM h;
RELEASE s;
ROLLBACK;
-- expect: 90
SELECT count(*) FROM h;
-- The same in a transaction that commits: the rows that stay after ROLLBACK TO are the store's.
BEGIN;
INSERT INTO h(id, label, pixels, height, width, channels) SELECT id + 2000, label, pixels, height, width, channels FROM src;
INSERT INTO a(id, label, pixels, height, width, channels) SELECT id + 2000, label, pixels, height, width, channels FROM src;
SAVEPOINT s;
INSERT INTO h(id, label, pixels, height, width, channels) SELECT id + 3000, label, pixels, height, width, channels FROM src;
DELETE FROM h WHERE id = 2005;
ROLLBACK TO s;
INSERT INTO h(id, label, pixels, height, width, channels) VALUES (6000, 6, x'0A0B0C0D0E0F', 1, 2, 3);
INSERT INTO a(id, label, pixels, height, width, channels) VALUES (6000, 6, x'0A0B0C0D0E0F', 1, 2, 3);
COMMIT;

-- Another process: the committed rows, the same as lmdb's; imgstore_check finds nothing wrong.
-- (test.db keeps the tables: the new process connects them to their stores again.)
-- process
-- expect: 191|191|ok|ok
SELECT (SELECT count(*) FROM h),
       (SELECT count(*) FROM a JOIN h USING (id) WHERE a.label = h.label AND a.pixels = h.pixels AND a.height = h.height
                                                   AND a.width = h.width AND a.channels = h.channels),
       imgstore_check('hdf5', 'h.h5'), imgstore_check('hdf5', 'h.h5', 1);
-- A reader in another process while this one writes: the last committed state (SWMR beside the writer).
BEGIN;
INSERT INTO h(id, label, pixels, height, width, channels) VALUES (7000, 7, x'07', 1, 1, 1);
DELETE FROM h WHERE id = 6000;
-- expect: 191|1
.shell sqlite3 -batch -cmd '.load {extension}' :memory: "CREATE VIRTUAL TABLE temp.x USING hdf5(path='h.h5'); SELECT count(*), count(*) FILTER (WHERE id = 6000 AND height = 1 AND width = 2 AND channels = 3) FROM x;"
ROLLBACK;

-- Compaction: the file then holds exactly the live rows in id order, which plain h5py reads with the recipe.
-- expect: 191|1
SELECT json_extract(c, '$.rows'), json_extract(c, '$.bytes_after') < json_extract(c, '$.bytes_before')
FROM (SELECT imgstore_compact('hdf5', 'h.h5') AS c);
-- expect: 191|191|ok
SELECT (SELECT count(*) FROM h),
       (SELECT count(*) FROM a JOIN h USING (id) WHERE a.label = h.label AND a.pixels = h.pixels AND a.height = h.height
                                                   AND a.width = h.width AND a.channels = h.channels),
       imgstore_check('hdf5', 'h.h5', 1);
-- shell: /usr/bin/python3 -c "import h5py, numpy as np; f = h5py.File('h.h5', 'r'); o = f['offsets'][:]; s = f['shapes'][:]; print(len(o), bool((np.diff(f['ids'][:]) > 0).all()), bool((o[1:] == o[:-1] + s[:-1].prod(axis=1)).all()), int(o[-1] + s[-1].prod()) == f['images'].shape[0])"
-- shell-expect: 191 True True True
-- shell: /usr/bin/python3 -c "import h5py; f = h5py.File('h.h5', 'r'); out = open('h5py.txt', 'w'); [out.write('%d,%d,%s,%s\n' % (f['ids'][i], f['labels'][i], 'x'.join(str(int(x)) for x in f['shapes'][i]), f['images'][int(f['offsets'][i]):int(f['offsets'][i]) + int(f['shapes'][i].prod())].tobytes().hex().upper())) for i in range(len(f['ids']))]"
-- expect: 1
SELECT CAST(readfile('h5py.txt') AS TEXT) =
       (SELECT group_concat(id || ',' || label || ',' || height || 'x' || width || 'x' || channels || ',' || hex(pixels), char(10)) || char(10)
        FROM (SELECT id, label, height, width, channels, pixels FROM a ORDER BY id));

-- A commit that leaves more dead bytes than live ones (and at least 1 MiB of them) compacts the file by
-- itself, counting bytes (rows differ in size): 1,000 images of 32x32x1 to 32x32x4 (2.5 MiB), 800 deleted.
CREATE VIRTUAL TABLE ring USING hdf5(path='ring.h5', shape='any');
INSERT INTO ring(id, label, pixels, height, width, channels)
SELECT id, label, substr(pixels, 1, 1024 * (1 + id % 4)), 32, 32, 1 + id % 4 FROM synthetic(1000, '32x32x4', 3);
DELETE FROM ring WHERE id < 800;
-- shell: /usr/bin/python3 -c "import h5py; f = h5py.File('ring.h5', 'r'); print(len(f['ids']), int((f['ids'][:] < 0).sum()), f['images'].shape[0])"
-- shell-expect: 200 0 512000
-- expect: 200|512000|ok
SELECT count(*), sum(length(pixels)), imgstore_check('hdf5', 'ring.h5', 1) FROM ring;

-- Conversions: lmdb 'any' -> hdf5 'any' (gzip, on worker threads: its chunks go through HDF5's own filter) ->
-- png_dir 'any', each the same rows.
CREATE VIRTUAL TABLE hz USING hdf5(path='hz.h5', shape='any', compression='gzip:3', chunk=1000, threads=2);
INSERT INTO hz(id, label, pixels, height, width, channels) SELECT id, label, pixels, height, width, channels FROM a;
CREATE VIRTUAL TABLE p USING png_dir(path='p_png', shape='any');
INSERT INTO p(id, label, pixels, height, width, channels) SELECT id, label, pixels, height, width, channels FROM hz;
-- expect: 191|191|191
SELECT (SELECT count(*) FROM a JOIN hz USING (id) WHERE a.label = hz.label AND a.pixels = hz.pixels AND a.height = hz.height
                                                    AND a.width = hz.width AND a.channels = hz.channels),
       (SELECT count(*) FROM hz JOIN p USING (id) WHERE p.label = hz.label AND p.pixels = hz.pixels AND p.height = hz.height
                                                    AND p.width = hz.width AND p.channels = hz.channels),
       (SELECT count(*) FROM p JOIN h USING (id) WHERE p.label = h.label AND p.pixels = h.pixels AND p.height = h.height
                                                   AND p.width = h.width AND p.channels = h.channels);
-- shell: h5dump -p -H hz.h5 | grep -c 'DEFLATE'
-- shell-expect: 1
-- Deletes and replaces of a gzip store, a rollback, a compaction: still the same rows (scans read blocks of
-- bytes across partial chunks).
DELETE FROM hz WHERE id % 3 = 0;
DELETE FROM a WHERE id % 3 = 0;
INSERT OR REPLACE INTO hz(id, label, pixels, height, width, channels) SELECT id, label, pixels, height, width, channels FROM src WHERE id % 7 = 1;
INSERT OR REPLACE INTO a(id, label, pixels, height, width, channels) SELECT id, label, pixels, height, width, channels FROM src WHERE id % 7 = 1;
BEGIN;
INSERT INTO hz(id, label, pixels, height, width, channels) SELECT id + 9000, label, pixels, height, width, channels FROM src;
ROLLBACK;
-- expect: 134|134|ok
SELECT (SELECT count(*) FROM hz),
       (SELECT count(*) FROM a JOIN hz USING (id) WHERE a.label = hz.label AND a.pixels = hz.pixels AND a.height = hz.height
                                                    AND a.width = hz.width AND a.channels = hz.channels),
       imgstore_check('hdf5', 'hz.h5', 1);
-- expect: 134
SELECT json_extract(imgstore_compact('hdf5', 'hz.h5'), '$.rows');
-- expect: 134|134|ok
SELECT (SELECT count(*) FROM hz),
       (SELECT count(*) FROM hz JOIN a USING (id) WHERE a.label = hz.label AND a.pixels = hz.pixels AND a.height = hz.height
                                                    AND a.width = hz.width AND a.channels = hz.channels),
       imgstore_check('hdf5', 'hz.h5', 1);

-- A sharded hdf5 table of shape 'any': rows routed to three shards, each an hdf5 'any' store of its own.
CREATE VIRTUAL TABLE sh USING hdf5(path='sh', shape='any', shards=3);
INSERT INTO sh(id, label, pixels, height, width, channels) SELECT id, label, pixels, height, width, channels FROM a;
UPDATE sh SET label = label + 1 WHERE id % 4 = 0;
UPDATE a SET label = label + 1 WHERE id % 4 = 0;
INSERT OR REPLACE INTO sh(id, label, pixels, height, width, channels) VALUES (4, 4, x'01020304', 2, 2, 1);
INSERT OR REPLACE INTO a(id, label, pixels, height, width, channels) VALUES (4, 4, x'01020304', 2, 2, 1);
DELETE FROM sh WHERE id > 2000;
DELETE FROM a WHERE id > 2000;
BEGIN;
INSERT INTO sh(id, label, pixels, height, width, channels) SELECT id + 8000, label, pixels, height, width, channels FROM src;
ROLLBACK;
-- expect: 68|68|ok
SELECT (SELECT count(*) FROM sh),
       (SELECT count(*) FROM a JOIN sh USING (id) WHERE a.label = sh.label AND a.pixels = sh.pixels AND a.height = sh.height
                                                    AND a.width = sh.width AND a.channels = sh.channels),
       imgstore_check('hdf5', 'sh', 1);
-- shell: ls sh | grep -c '\.h5$'
-- shell-expect: 3
-- process
-- expect: 68|68
SELECT (SELECT count(*) FROM sh),
       (SELECT count(*) FROM a JOIN sh USING (id) WHERE a.label = sh.label AND a.pixels = sh.pixels AND a.height = sh.height
                                                    AND a.width = sh.width AND a.channels = sh.channels);
