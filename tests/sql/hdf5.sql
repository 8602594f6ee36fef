-- hdf5 specifics: the documented layout as HDF5's own tools see it, damaged or foreign files, compression.

CREATE VIRTUAL TABLE h USING hdf5(path='h.h5', shape='8x6x3', chunk=16);
INSERT INTO h SELECT id * 2, label, pixels FROM synthetic(100, '8x6x3', 4);
DELETE FROM h WHERE id = 10;
UPDATE h SET label = 7 WHERE id = 12;
INSERT OR REPLACE INTO h SELECT 14, 3, pixels FROM synthetic(1, '8x6x3', 99);
-- h5dump -H shows the five datasets with the documented shapes and types (101 rows: 100, plus 1 for the replaced id).
-- shell: h5dump -H h.h5 | sed -n '/DATASET "/,$p' | grep -E 'DATASET|DATASPACE|H5T_STD' | tr '\n' ' ' | tr -s ' '
-- shell-expect: DATASET "checksums" { DATATYPE H5T_STD_U64LE DATASPACE SIMPLE { ( 101 ) / ( H5S_UNLIMITED ) } DATASET "commit" { DATATYPE H5T_STD_U64LE DATASPACE SIMPLE { ( 2 ) / ( 2 ) } DATASET "ids" { DATATYPE H5T_STD_I64LE DATASPACE SIMPLE { ( 101 ) / ( H5S_UNLIMITED ) } DATASET "images" { DATATYPE H5T_STD_U8LE DATASPACE SIMPLE { ( 101, 8, 6, 3 ) / ( H5S_UNLIMITED, 8, 6, 3 ) } DATASET "labels" { DATATYPE H5T_STD_I64LE DATASPACE SIMPLE { ( 101 ) / ( H5S_UNLIMITED ) } 
-- /commit holds [generation, rows]: three commits that changed committed rows in place or appended, 2 each.
-- shell: h5dump -a imgstore_format -a shape -d commit h.h5 | grep -A1 'DATA {' | grep '(0)' | tr '\n' ' ' | tr -s ' '
-- shell-expect: (0): "imgstore-hdf5 3" (0): "8x6x3" (0): 8, 101 
-- h5py, following docs/formats.md's recipe, reads one image equal to the row and the labels in id order.
-- shell: /usr/bin/python3 -c "import h5py, numpy as np; f = h5py.File('h.h5', 'r', swmr=True, locking=False); n = int(f['commit'][1]); ids = f['ids'][:n]; live = ids >= 0; order = np.argsort(ids[live]); open('labels.txt', 'w').write(','.join(str(x) for x in f['labels'][:n][live][order])); row = int(np.nonzero(ids == 14)[0][0]); open('img14.hex', 'w').write(f['images'][row].tobytes().hex().upper())"
-- expect: 1|1
SELECT CAST(readfile('labels.txt') AS TEXT) = (SELECT group_concat(label) FROM (SELECT label FROM h ORDER BY id)),
       CAST(readfile('img14.hex') AS TEXT) = (SELECT hex(pixels) FROM h WHERE id = 14);
-- Deletes are tombstones (-1 in /ids) and persist.
-- shell: /usr/bin/python3 -c "import h5py; f = h5py.File('h.h5', 'r'); print(list(f['ids'][:]).count(-1))"
-- shell-expect: 2
-- process
CREATE VIRTUAL TABLE h2 USING hdf5(path='h.h5');
-- expect: 99|0|7
SELECT count(*), count(*) FILTER (WHERE id = 10), (SELECT label FROM h2 WHERE id = 12) FROM h2;

-- ROLLBACK after writing more than a block leaves the file as it was, seen from a new process.
BEGIN;
INSERT INTO h2 SELECT id + 1000, label, pixels FROM synthetic(2000, '8x6x3', 4);
ROLLBACK;
-- process
CREATE VIRTUAL TABLE h3 USING hdf5(path='h.h5');
-- expect: 99
SELECT count(*) FROM h3;
-- shell: h5dump -H h.h5 | grep -c '( 101'
-- shell-expect: 4

-- Files that are not our stores.
-- error: table d: path '.' is a directory; expected an HDF5 file
CREATE VIRTUAL TABLE d USING hdf5(path='.', shape='2x2x1');
-- shell: echo 'not hdf5 at all' > text.h5
-- error: table t: 'text.h5' is not an HDF5 file
CREATE VIRTUAL TABLE t USING hdf5(path='text.h5', shape='2x2x1');
-- shell: /usr/bin/python3 -c "import h5py, numpy as np; f = h5py.File('other.h5', 'w'); f['data'] = np.zeros(3)"
-- error: table o: 'other.h5' is an HDF5 file without the dataset /images; expected an imgstore store (datasets /images, /labels, /ids)
CREATE VIRTUAL TABLE o USING hdf5(path='other.h5');
-- shell: /usr/bin/python3 -c "import h5py, numpy as np; f = h5py.File('dtype.h5', 'w'); f['images'] = np.zeros((2, 4, 4, 1), 'f4'); f['labels'] = np.zeros(2, 'i8'); f['ids'] = np.arange(2)"
-- error: table w: 'dtype.h5': dataset /images has the wrong type (not integer of 4 bytes); expected uint8 of rank 4 (N,H,W,C)
CREATE VIRTUAL TABLE w USING hdf5(path='dtype.h5');
-- shell: /usr/bin/python3 -c "import h5py, numpy as np; f = h5py.File('rank.h5', 'w'); f['images'] = np.zeros((2, 16), 'u1'); f['labels'] = np.zeros(2, 'i8'); f['ids'] = np.arange(2)"
-- error: table r: 'rank.h5': dataset /images has rank 2; expected uint8 of rank 4 (N,H,W,C)
CREATE VIRTUAL TABLE r USING hdf5(path='rank.h5');
-- shell: /usr/bin/python3 -c "import h5py, numpy as np; f = h5py.File('lab.h5', 'w'); f['images'] = np.zeros((2, 4, 4, 1), 'u1'); f['labels'] = np.zeros(2, 'u1'); f['ids'] = np.arange(2)"
-- error: table l: 'lab.h5': dataset /labels has the wrong type (integer of 1 bytes); expected int64 of rank 1 (N)
CREATE VIRTUAL TABLE l USING hdf5(path='lab.h5');
-- A file written by h5py in the same layout (no imgstore attributes) is read as it is.
-- shell: /usr/bin/python3 -c "import h5py, numpy as np; f = h5py.File('py.h5', 'w'); f['images'] = np.arange(2 * 4 * 4 * 1, dtype='u1').reshape(2, 4, 4, 1); f['labels'] = np.array([5, 6], 'i8'); f['ids'] = np.array([10, 3], 'i8')"
CREATE VIRTUAL TABLE py USING hdf5(path='py.h5');
-- expect: 3:6:101112131415161718191A1B1C1D1E1F,10:5:000102030405060708090A0B0C0D0E0F
SELECT group_concat(id || ':' || label || ':' || hex(pixels)) FROM py;

-- Compression: gzip makes the file smaller (only a little for noisy smooth images: deflate without PNG's
-- prediction filters); the bytes read back are the same.
CREATE VIRTUAL TABLE plain USING hdf5(path='plain.h5', shape='32x32x3', compression='none');
CREATE VIRTUAL TABLE gz USING hdf5(path='gz.h5', shape='32x32x3', compression='gzip:6');
INSERT INTO plain SELECT * FROM synthetic(500, '32x32x3', 2, 'smooth');
INSERT INTO gz SELECT * FROM synthetic(500, '32x32x3', 2, 'smooth');
-- expect: 1|1
SELECT file_bytes('gz.h5') < file_bytes('plain.h5'),
       (SELECT image_digest(id, label, pixels) FROM gz) = (SELECT image_digest(id, label, pixels) FROM synthetic(500, '32x32x3', 2, 'smooth'));
-- shell: h5dump -p -H gz.h5 | grep -c 'DEFLATE'
-- shell-expect: 1
-- threads=2 compresses whole chunks on worker threads (direct chunk writes) and inflates them ahead in scans;
-- threads=1 leaves it to HDF5's filter. The same images in several transactions, which start and end inside
-- chunks (chunk=7: 100, then 1..33 more), with a rolled-back load and a savepoint undone between: both stores
-- hold the same images, read the same by id and in scans, and the files are the same size.
CREATE VIRTUAL TABLE g1 USING hdf5(path='g1.h5', shape='32x32x3', compression='gzip:3', chunk=7, threads=1);
CREATE VIRTUAL TABLE g2 USING hdf5(path='g2.h5', shape='32x32x3', compression='gzip:3', chunk=7, threads=2);
INSERT INTO g1 SELECT * FROM synthetic(100, '32x32x3', 5, 'smooth');
INSERT INTO g2 SELECT * FROM synthetic(100, '32x32x3', 5, 'smooth');
BEGIN;
INSERT INTO g2 SELECT id + 5000, label, pixels FROM synthetic(900, '32x32x3', 6, 'smooth');
ROLLBACK;
BEGIN;
INSERT INTO g1 SELECT id + 100, label, pixels FROM synthetic(233, '32x32x3', 7, 'smooth');
INSERT INTO g2 SELECT id + 100, label, pixels FROM synthetic(233, '32x32x3', 7, 'smooth');
SAVEPOINT s;
INSERT INTO g2 SELECT id + 9000, label, pixels FROM synthetic(500, '32x32x3', 8, 'smooth');
ROLLBACK TO s;
RELEASE s;
-- A transaction reads its own rows, in the middle of being compressed.
-- expect: 333|1
SELECT count(*), (SELECT image_digest(id, label, pixels) FROM g1) = (SELECT image_digest(id, label, pixels) FROM g2) FROM g2;
COMMIT;
-- expect: 333|1|1
SELECT count(*), (SELECT image_digest(id, label, pixels) FROM g1) = (SELECT image_digest(id, label, pixels) FROM g2),
       (SELECT hex(pixels) FROM g1 WHERE id = 250) = (SELECT hex(pixels) FROM g2 WHERE id = 250) FROM g2;
-- h5py reads the threaded store's images as the unthreaded store's, and every stored chunk (filter mask and
-- compressed bytes) is the one HDF5's own deflate filter wrote (the whole chunks: past the last row, the last
-- chunk holds what the undone savepoint left in g2).
-- shell: /usr/bin/python3 -c "import h5py, numpy as np; a = h5py.File('g1.h5', 'r', swmr=True, locking=False); b = h5py.File('g2.h5', 'r', swmr=True, locking=False); n = int(b['commit'][1]); same = all(a['images'].id.read_direct_chunk((c, 0, 0, 0)) == b['images'].id.read_direct_chunk((c, 0, 0, 0)) for c in range(0, n - n % 7, 7)); print(n, np.array_equal(a['images'][:n], b['images'][:n]), np.array_equal(a['ids'][:n], b['ids'][:n]), same)"
-- shell-expect: 333 True True True
-- process
CREATE VIRTUAL TABLE g3 USING hdf5(path='g2.h5', threads=2);
CREATE VIRTUAL TABLE g4 USING hdf5(path='g1.h5', threads=1);
-- expect: 1
SELECT (SELECT image_digest(id, label, pixels) FROM g3) = (SELECT image_digest(id, label, pixels) FROM g4);
-- error: table c: compression 'lzf' is not valid; expected 'none', 'gzip' or 'gzip:1' to 'gzip:9'
CREATE VIRTUAL TABLE c USING hdf5(path='c.h5', shape='2x2x1', compression='lzf');
-- error: table c2: argument chunk='0' is not valid; expected an integer from 1 to 1048576
CREATE VIRTUAL TABLE c2 USING hdf5(path='c2.h5', shape='2x2x1', chunk=0);

-- Committed rows are read from the mapped file, this transaction's own rows from its buffer or through HDF5:
-- inside a transaction that wrote more than a block (1,000 rows), lookups by id, IN lists and scans see both.
BEGIN;
INSERT INTO plain SELECT id + 20000, label, pixels FROM synthetic(1000, '32x32x3', 9, 'smooth');
-- expect: 1500|1|1|1
SELECT count(*),
       (SELECT hex(pixels) FROM plain WHERE id = 20999) = (SELECT hex(pixels) FROM synthetic(1000, '32x32x3', 9, 'smooth') WHERE id = 999),
       (SELECT hex(pixels) FROM plain WHERE id = 7) = (SELECT hex(pixels) FROM synthetic(500, '32x32x3', 2, 'smooth') WHERE id = 7),
       (SELECT image_digest(id, label, pixels) FROM plain WHERE id IN (3, 20001, 20500, 499, 20998)) =
       (SELECT image_digest(id, label, pixels) FROM (SELECT id + 20000 AS id, label, pixels FROM synthetic(1000, '32x32x3', 9, 'smooth')
                                                     WHERE id IN (1, 500, 998)
                                                     UNION ALL SELECT * FROM synthetic(500, '32x32x3', 2, 'smooth') WHERE id IN (3, 499)))
FROM plain;
ROLLBACK;
-- expect: 500
SELECT count(*) FROM plain;

-- A second connection of this process (the shell's .connection 1) waits for the first one's transaction,
-- then gets SQLITE_BUSY; it reads the committed state meanwhile, and the new one after the COMMIT.
BEGIN;
INSERT INTO plain VALUES (1000, 1, zeroblob(3072));
.connection 1
.load {extension}
CREATE VIRTUAL TABLE temp.plain2 USING hdf5(path='plain.h5');
-- expect: 500
SELECT count(*) FROM plain2;
-- error: table plain2: 'plain.h5' is being written by another connection in this process
INSERT INTO plain2 VALUES (1001, 1, zeroblob(3072));
.connection 0
COMMIT;
.connection 1
-- expect: 501
SELECT count(*) FROM plain2;
.connection 0
-- Between transactions this process holds the file read-only, so another process reads it too.
-- expect: 501
.shell sqlite3 -batch -cmd '.load {extension}' :memory: "CREATE VIRTUAL TABLE temp.x USING hdf5(path='plain.h5'); SELECT count(*) FROM x;"
-- While this one writes (SWMR), another process opens the file and reads the last committed state; h5py
-- too, with swmr=True and locking=False (docs/formats.md). A writer in another process waits `timeout` ms for the
-- writer lock, then gets SQLITE_BUSY naming the store.
BEGIN;
INSERT INTO plain VALUES (1002, 1, zeroblob(3072));
-- expect: 501
.shell sqlite3 -batch -cmd '.load {extension}' :memory: "CREATE VIRTUAL TABLE temp.x USING hdf5(path='plain.h5', timeout=100); SELECT count(*) FROM x;" 2>&1
-- expect: 501
.shell /usr/bin/python3 -c "import h5py; f = h5py.File('plain.h5', 'r', swmr=True, locking=False); print(f['commit'][1])"
-- error: table x: 'plain.h5' is being written by another process; waited 100 ms, try again after it commits (5)
.shell sqlite3 -batch -cmd '.load {extension}' :memory: "CREATE VIRTUAL TABLE temp.x USING hdf5(path='plain.h5', timeout=100); DELETE FROM x WHERE id = 1;" 2>&1
COMMIT;
-- expect: 502
.shell sqlite3 -batch -cmd '.load {extension}' :memory: "CREATE VIRTUAL TABLE temp.x USING hdf5(path='plain.h5'); SELECT count(*) FROM x;"

-- ROLLBACK TO a savepoint that inserted rows leaves no orphan row in the file (the undo record was taken
-- after the row was counted: /ids read 1, 2, -1, 5 with rows = 4).
-- process
CREATE VIRTUAL TABLE o USING hdf5(path='orphan.h5', shape='2x2x1');
BEGIN;
INSERT INTO o VALUES (1, 1, x'01010101'), (2, 2, x'02020202');
SAVEPOINT a;
INSERT INTO o VALUES (3, 3, x'03030303');
INSERT INTO o VALUES (4, 4, x'04040404');
ROLLBACK TO a;
INSERT INTO o VALUES (5, 5, x'05050505');
COMMIT;
-- expect: 1,2,5
SELECT group_concat(id) FROM o;
-- shell: /usr/bin/python3 -c "import h5py; f = h5py.File('orphan.h5', 'r'); print(f['commit'][1], list(f['ids'][:]), list(f['labels'][:]))"
-- shell-expect: 3 [1, 2, 5] [1, 2, 5]

-- Reading a store does not change its file: not its bytes, not its modification time.
-- shell: touch -d '2020-01-01 00:00:00' orphan.h5 && md5sum orphan.h5 > before.txt && stat -c %Y orphan.h5 >> before.txt
-- process
CREATE VIRTUAL TABLE r USING hdf5(path='orphan.h5');
-- expect: 3|8
SELECT count(*), sum(id) FROM r;
-- shell: md5sum orphan.h5 > after.txt && stat -c %Y orphan.h5 >> after.txt && cmp before.txt after.txt && echo unchanged
-- shell-expect: unchanged

-- imgstore_check changes nothing: a journal left by an interrupted commit is reported and left (here one that
-- was never completed); imgstore_repair deals with it (an incomplete journal is just removed).
-- shell: printf 'IMGJRNL1cut short' > orphan.h5-journal && md5sum orphan.h5 > before.txt
-- expect: 1
SELECT imgstore_check('hdf5', 'orphan.h5') LIKE '%orphan.h5-journal is left from an interrupted commit%';
-- shell: test -e orphan.h5-journal && md5sum orphan.h5 | cmp - before.txt && echo unchanged
-- shell-expect: unchanged
-- expect: ok|ok
SELECT imgstore_repair('hdf5', 'orphan.h5'), imgstore_check('hdf5', 'orphan.h5', 1);
-- shell: test ! -e orphan.h5-journal && echo removed
-- shell-expect: removed

-- Version 1 files (made before SWMR: the committed row count in the `rows` attribute, no /commit) still open
-- and read as before (row 3 is past `rows`: an unfinished transaction's, not part of the store), but are no
-- longer written: a write says so and how to copy the store, and a copy is a version 3 store.
-- process
-- shell: /usr/bin/python3 -c "import h5py, numpy as np; f = h5py.File('v1.h5', 'w'); f.create_dataset('images', data=np.arange(12, dtype='u1').reshape(3, 2, 2, 1), maxshape=(None, 2, 2, 1), chunks=(4, 2, 2, 1)); f.create_dataset('labels', data=np.array([7, 8, 9], 'i8'), maxshape=(None,), chunks=(1024,)); f.create_dataset('ids', data=np.array([1, 2, 3], 'i8'), maxshape=(None,), chunks=(1024,)); f.attrs['imgstore_format'] = np.bytes_('imgstore-hdf5 1'); f.attrs['shape'] = np.bytes_('2x2x1'); f.attrs['rows'] = np.uint64(2)"
CREATE VIRTUAL TABLE v1 USING hdf5(path='v1.h5');
-- expect: 1:7:00010203,2:8:04050607
SELECT group_concat(id || ':' || label || ':' || hex(pixels)) FROM v1;
-- error: table v1: 'v1.h5' is an hdf5 store of format version 1 (or an HDF5 file made by another tool), which imgstore reads but no longer writes; copy it into a new store to write: CREATE VIRTUAL TABLE t2 USING hdf5(path='new.h5'); INSERT INTO t2 SELECT * FROM v1
INSERT INTO v1 VALUES (5, 5, x'05050505');
CREATE VIRTUAL TABLE v2 USING hdf5(path='v2.h5', shape='2x2x1');
INSERT INTO v2 SELECT * FROM v1;
INSERT INTO v2 VALUES (5, 5, x'05050505');
-- expect: 1:7:00010203,2:8:04050607,5:5:05050505
SELECT group_concat(id || ':' || label || ':' || hex(pixels)) FROM v2;
-- shell: /usr/bin/python3 -c "import h5py; f = h5py.File('v1.h5', 'r'); g = h5py.File('v2.h5', 'r', swmr=True, locking=False); print(f.attrs['imgstore_format'].decode(), f.attrs['rows'], list(f['ids'][:]), g.attrs['imgstore_format'].decode(), list(g['commit'][:]))"
-- shell-expect: imgstore-hdf5 1 2 [1, 2, 3] imgstore-hdf5 3 [4, 3]

-- A format 2 store (no /checksums: made by imgstore before checksums; here a format 3 store with its checksums
-- removed by h5py) is read and written as format 2, unchecked.
-- process
CREATE VIRTUAL TABLE f3 USING hdf5(path='f2.h5', shape='2x2x1');
INSERT INTO f3 VALUES (1, 1, x'01010101'), (2, 2, x'02020202'), (3, 3, x'03030303');
-- shell: /usr/bin/python3 -c "import h5py, numpy as np; f = h5py.File('f2.h5', 'r+'); del f['checksums']; f.attrs['imgstore_format'] = np.bytes_('imgstore-hdf5 2')"
-- process
CREATE VIRTUAL TABLE f2 USING hdf5(path='f2.h5');
UPDATE f2 SET label = 9 WHERE id = 2;
DELETE FROM f2 WHERE id = 1;
INSERT INTO f2 VALUES (4, 4, x'04040404');
-- expect: 2:9:02020202,3:3:03030303,4:4:04040404|ok
SELECT group_concat(id || ':' || label || ':' || hex(pixels)), imgstore_check('hdf5', 'f2.h5', 1) FROM f2;
-- shell: /usr/bin/python3 -c "import h5py; g = h5py.File('f2.h5', 'r', swmr=True, locking=False); print(g.attrs['imgstore_format'].decode(), sorted(g), list(g['commit'][:]))"
-- shell-expect: imgstore-hdf5 2 ['commit', 'ids', 'images', 'labels'] [8, 4]

-- A writer that died mid-commit (here simulated with h5py: /commit's generation odd, id 1 tombstoned in place,
-- its journal beside) is recovered by a reader that has the store open, once it finds the writer lock free:
-- it waits 50 ms for the odd generation, then rolls the journal back.
-- process
CREATE VIRTUAL TABLE dead USING hdf5(path='dead.h5', shape='2x2x1');
INSERT INTO dead VALUES (1, 1, x'01010101'), (2, 2, x'02020202');
.shell /usr/bin/python3 -c "import h5py, struct, zlib; f = h5py.File('dead.h5', 'r+'); g, rows = (int(x) for x in f['commit'][:]); f['commit'][0] = g + 1; f['ids'][0] = -1; f.close(); body = b'IMGJRNL1' + struct.pack('<QQ', rows, 1) + struct.pack('<Qqq', 0, 1, 1); open('dead.h5-journal', 'wb').write(body + struct.pack('<I', zlib.crc32(body)))"
-- expect: 1,2
SELECT group_concat(id) FROM dead;
-- shell: test ! -e dead.h5-journal && /usr/bin/python3 -c "import h5py; print(list(h5py.File('dead.h5', 'r')['commit'][:]))"
-- shell-expect: [4, 2]
