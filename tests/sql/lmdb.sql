-- LMDB-specific behaviour: paths that are not stores, interop with LMDB's own tools, the map growing.

-- error: table d: path '.' is a directory; expected an LMDB data file
CREATE VIRTUAL TABLE d USING lmdb(path='.', shape='2x2x1');
-- shell: printf 'this is not a database, just text that is long enough to look like one...%.0s' $(seq 200) > junk.lmdb
-- error: table j: 'junk.lmdb' is not an LMDB file
CREATE VIRTUAL TABLE j USING lmdb(path='junk.lmdb', shape='2x2x1');
-- shell: /usr/bin/python3 -c "import lmdb; e = lmdb.open('plain.lmdb', subdir=False); t = e.begin(write=True); t.put(b'k', b'v'); t.commit()"
-- error: table p: 'plain.lmdb' is an LMDB file but not an imgstore store
CREATE VIRTUAL TABLE p USING lmdb(path='plain.lmdb', shape='2x2x1');

CREATE VIRTUAL TABLE t USING lmdb(path='t.lmdb', shape='4x3x2');
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500)
INSERT INTO t SELECT i, i % 10, randomblob(24) FROM n;
CREATE TABLE ref AS SELECT * FROM t;

-- mdb_stat counts as many entries in "images" as count(*).
-- shell: mdb_stat -n -s images t.lmdb | sed -n 's/ *Entries: //p'
-- shell-expect: 500
-- The documented layout: key = 8-byte big-endian id, value = 8-byte little-endian label + pixels.
-- shell: /usr/bin/python3 -c "import lmdb, struct; e = lmdb.open('t.lmdb', subdir=False, readonly=True, max_dbs=2); db = e.open_db(b'images'); v = e.begin().get(struct.pack('>q', 123), db=db); open('v123.hex', 'w').write('%d|%s' % (struct.unpack('<q', v[:8])[0], v[8:].hex().upper()))"
-- expect: 1
SELECT CAST(readfile('v123.hex') AS TEXT) = (SELECT label || '|' || hex(pixels) FROM t WHERE id = 123);
-- shell: /usr/bin/python3 -c "import lmdb; e = lmdb.open('t.lmdb', subdir=False, readonly=True, max_dbs=2); db = e.open_db(b'meta'); t = e.begin(); print(t.get(b'format', db=db).decode(), t.get(b'shape', db=db).decode())"
-- shell-expect: imgstore-lmdb 1 4x3x2

-- A second path to the same file (a symlink) shares the one environment of this process.
-- shell: ln -s t.lmdb link.lmdb
CREATE VIRTUAL TABLE t2 USING lmdb(path='link.lmdb');
INSERT INTO t2 VALUES (1000, 1, randomblob(24));
-- expect: 501
SELECT count(*) FROM t;
DELETE FROM t WHERE id = 1000;

-- A reader in another process sees committed rows, and keeps its snapshot while this one writes.
BEGIN;
INSERT INTO t VALUES (2000, 1, randomblob(24));
-- expect: 501
SELECT count(*) FROM t;
-- expect: 500
.shell sqlite3 -batch -cmd '.load {extension}' :memory: "CREATE VIRTUAL TABLE x USING lmdb(path='t.lmdb'); SELECT count(*) FROM x;"
COMMIT;
-- expect: 501
.shell sqlite3 -batch -cmd '.load {extension}' :memory: "CREATE VIRTUAL TABLE x USING lmdb(path='t.lmdb'); SELECT count(*) FROM x;"

-- The map grows by itself: with a 1 MiB starting map (a test hook; users never set it), 10 MB go in.
-- shell: IMGSTORE_LMDB_MAP_MIN=1048576 sqlite3 -batch -cmd '.load {extension}' :memory: "CREATE VIRTUAL TABLE g USING lmdb(path='grow.lmdb', shape='32x32x3'); WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 99) INSERT INTO g SELECT i, 0, randomblob(3072) FROM n; WITH RECURSIVE n(i) AS (SELECT 100 UNION ALL SELECT i + 1 FROM n WHERE i < 2599) INSERT INTO g SELECT i, 0, randomblob(3072) FROM n WHERE i % 100 = 0; SELECT count(*) FROM g;" >/dev/null && for k in $(seq 1 24); do IMGSTORE_LMDB_MAP_MIN=1048576 sqlite3 -batch -cmd '.load {extension}' :memory: "CREATE VIRTUAL TABLE g USING lmdb(path='grow.lmdb'); WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 99) INSERT INTO g SELECT 100000 + $k * 1000 + i, 0, randomblob(3072) FROM n;" || exit 1; done; IMGSTORE_LMDB_MAP_MIN=1048576 sqlite3 -batch -cmd '.load {extension}' :memory: "CREATE VIRTUAL TABLE g USING lmdb(path='grow.lmdb'); SELECT count(*) FROM g;"
-- shell-expect: 2525
-- One transaction far larger than the map (1 MiB here; a shipped build reserves 1 TiB of address space,
-- lmdb_env.hpp) fails with a clear SQLITE_FULL and leaves nothing behind; the map grows with the file, so the
-- same transaction run again succeeds.
-- shell: printf "%s\n" ".load {extension}" "CREATE VIRTUAL TABLE g USING lmdb(path='big.lmdb', shape='32x32x3');" "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 999) INSERT INTO g SELECT i, 0, randomblob(3072) FROM n;" "SELECT 'after failure', count(*) FROM g;" "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 999) INSERT INTO g SELECT i, 0, randomblob(3072) FROM n;" "SELECT 'after retry', count(*) FROM g;" | IMGSTORE_LMDB_MAP_MIN=1048576 stdbuf -o0 sqlite3 -batch :memory: 2>&1 | sed 's/near line [0-9]*: //' | tr '\n' ' '
-- shell-expect: Runtime error table g: the LMDB map of 'big.lmdb' (1 MiB) filled up in this transaction; it was rolled back and the map grows before the next one: run it again (in smaller transactions if it keeps failing) (13) after failure|0 after retry|1000

-- A data file cut short is refused before LMDB maps it (LMDB itself would fault on the missing pages).
-- shell: head -c 12288 t.lmdb > cut.lmdb
-- error: table cut: 'cut.lmdb' is not a usable LMDB file: it is 12288 bytes but its meta page says a B-tree starts at page
CREATE VIRTUAL TABLE cut USING lmdb(path='cut.lmdb');
-- expect: 1
SELECT imgstore_check('lmdb', 'cut.lmdb') LIKE '%(truncated)%';

-- imgstore_check reaches a store whose path holds quotes, one or two in a row.
CREATE VIRTUAL TABLE q1 USING lmdb(path='it''s.lmdb', shape='2x2x1');
INSERT INTO q1 VALUES (1, 2, zeroblob(4));
CREATE VIRTUAL TABLE q2 USING lmdb(path='two''''quotes.lmdb', shape='2x2x1');
INSERT INTO q2 VALUES (1, 2, zeroblob(4));
-- expect: ok|ok
SELECT imgstore_check('lmdb', 'it''s.lmdb', 1), imgstore_check('lmdb', 'two''''quotes.lmdb', 1);

-- A meta page whose last page number is so large that (last + 1) * page size wraps around 2^64 is refused as
-- damaged, not let through by an overflow (LMDB would then map the file as if it were that large).
-- shell: for last in wrap max; do /usr/bin/python3 -c "import struct, sys; d = bytearray(open('t.lmdb', 'rb').read()); ps = struct.unpack_from('<I', d, 40)[0]; last = 2**64 // ps - 1 if sys.argv[1] == 'wrap' else 2**64 - 1; [struct.pack_into('<Q', d, m * ps + 136, last) for m in (0, 1)]; open('huge-' + sys.argv[1] + '.lmdb', 'wb').write(d)" $last || exit 1; done
-- error: table hw: 'huge-wrap.lmdb' is not a usable LMDB file: its meta page names page 4503599627370495 as its last, more than 2^40 pages (damaged)
CREATE VIRTUAL TABLE hw USING lmdb(path='huge-wrap.lmdb');
-- error: table hm: 'huge-max.lmdb' is not a usable LMDB file: its meta page names page 18446744073709551615 as its last
CREATE VIRTUAL TABLE hm USING lmdb(path='huge-max.lmdb');
-- expect: 1|1
SELECT imgstore_check('lmdb', 'huge-wrap.lmdb') LIKE '%(damaged)%', imgstore_check('lmdb', 'huge-max.lmdb') LIKE '%(damaged)%';

-- Reading never writes: a failed open leaves the directory as it was (no '-lock' file left beside a text
-- file, a PNG, an LMDB file of another program or a store opened with the wrong shape).
-- shell: printf 'just some text, not a database at all...%.0s\n' $(seq 20) > x.txt
-- error: table x: 'x.txt' is not an LMDB file
CREATE VIRTUAL TABLE x USING lmdb(path='x.txt');
-- expect: 1
SELECT writefile('p.png', png_encode(randomblob(3072), '32x32x3')) > 3000;
-- error: table xp: 'p.png' is not an LMDB file
CREATE VIRTUAL TABLE xp USING lmdb(path='p.png');
-- shell: rm plain.lmdb-lock && $SQLITE3 -batch -cmd ".load $IMGSTORE_EXTENSION" :memory: "CREATE VIRTUAL TABLE s USING lmdb(path='shaped.lmdb', shape='2x2x1')" && rm shaped.lmdb-lock
-- error: table xl: 'plain.lmdb' is an LMDB file but not an imgstore store
CREATE VIRTUAL TABLE xl USING lmdb(path='plain.lmdb');
-- error: table xs: shape '3x3x1' disagrees with the store 'shaped.lmdb'
CREATE VIRTUAL TABLE xs USING lmdb(path='shaped.lmdb', shape='3x3x1');
-- shell: test ! -e x.txt-lock
-- shell: test ! -e p.png-lock
-- shell: test ! -e plain.lmdb-lock
-- shell: test ! -e shaped.lmdb-lock
-- A lock file that was there before a failed open stays.
-- shell: touch plain.lmdb-lock
-- error: table xl: 'plain.lmdb' is an LMDB file but not an imgstore store
CREATE VIRTUAL TABLE xl USING lmdb(path='plain.lmdb');
-- shell: test -e plain.lmdb-lock

-- A cursor that fails in its constructor (here: the first row of the scan or lookup is damaged) gives back
-- its read snapshot. It used to keep it counted, and since the map only grows while this process reads
-- nothing, the map never grew again: every later transaction too large for the map failed. Here the 1000-row
-- insert fills the 1 MiB map once, and its retry succeeds.
-- shell: IMGSTORE_LMDB_MAP_MIN=1048576 $SQLITE3 -batch -cmd ".load $IMGSTORE_EXTENSION" :memory: "CREATE VIRTUAL TABLE g USING lmdb(path='lease.lmdb', shape='32x32x3')" && /usr/bin/python3 -c "import lmdb, struct; e = lmdb.open('lease.lmdb', subdir=False, max_dbs=2); db = e.open_db(b'images'); t = e.begin(write=True); t.put(struct.pack('>q', 0), b'bad', db=db); t.commit()"
-- shell: printf "%s\n" ".load {extension}" "CREATE VIRTUAL TABLE g USING lmdb(path='lease.lmdb');" "SELECT id FROM g;" "SELECT id FROM g WHERE id = 0;" "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000) INSERT INTO g SELECT i, 0, randomblob(3072) FROM n;" "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000) INSERT INTO g SELECT i, 0, randomblob(3072) FROM n;" "SELECT 'after retry', count(*) FROM g WHERE id > 0;" | IMGSTORE_LMDB_MAP_MIN=1048576 stdbuf -o0 $SQLITE3 -batch :memory: 2>&1 | sed 's/near line [0-9]*: //' | tr '\n' ' '
-- shell-expect: Runtime error table g: the value of id 0 in 'lease.lmdb' is 3 bytes; expected 3080 (8-byte label + pixels) (11) Runtime error table g: the value of id 0 in 'lease.lmdb' is 3 bytes; expected 3080 (8-byte label + pixels) (11) Runtime error table g: the LMDB map of 'lease.lmdb' (1 MiB) filled up in this transaction; it was rolled back and the map grows before the next one: run it again (in smaller transactions if it keeps failing) (13) after retry|1000
